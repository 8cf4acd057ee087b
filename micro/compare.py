"""Compare two micro-benchmark suites (two builds, same benchmarks) with Criterion's verdicts.

    python micro/compare.py BASE.json NEW.json [--threshold PCT] [--noise PCT]

Per benchmark present in both: the change of time in percent (Hodges-Lehmann estimate: the median of all
new/base ratios of values) with its 95% confidence interval, a two-sided p-value (Mann-Whitney rank-sum test by
permutations), and a verdict. As in Criterion.rs a change is called only when two gates pass: p < 0.05 and the
whole confidence interval outside ±noise (default 2%); otherwise "no change". Rank statistics rather than means
and a t-test, because a busy machine adds outliers. The test works for samples of unequal size and for
constant samples, where `pyperf compare_to`'s t-test raises and it reports "significant" regardless.
Exit status 1 when a regression is significant and its change exceeds --threshold (default 10%); benchmarks on
one side only are listed, not fatal. Each of our benchmarks also shows the change of its peers in the same files:
a control, since a change of build moves only ours while a busier machine moves the peers too.
"""
if __name__ == "__main__" and not __package__:  # `python micro/compare.py` runs `python -m micro.compare`
    import os, sys  # noqa: E401
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [os.path.dirname(os.path.dirname(os.path.abspath(
        __file__))), os.environ.get("PYTHONPATH")]))
    os.execv(sys.executable, [sys.executable, "-m", "micro.compare", *sys.argv[1:]])

import argparse
import sys
from dataclasses import dataclass

import numpy as np
import pyperf
from .suite_arg import suite_file

RESAMPLES = 10_000
ALPHA = 0.05
OURS = "chronik_perf"
Z95 = 1.959964


@dataclass
class Comparison:
    name: str
    change: float          # percent, time new vs base (positive: slower)
    low: float             # 95% confidence interval of the change, percent
    high: float
    p_value: float         # None when a side has fewer than 2 values
    verdict: str           # "regressed", "improved", "no change"
    reason: str


def average_ranks(x):
    """Ranks 1..n of x, ties sharing their average rank."""
    order = np.argsort(x, kind="mergesort")
    inverse = np.empty_like(order)
    inverse[order] = np.arange(len(x))
    ordered = x[order]
    first = np.r_[True, ordered[1:] != ordered[:-1]]
    dense = first.cumsum()[inverse]
    bounds = np.r_[np.nonzero(first)[0], len(x)]
    return 0.5 * (bounds[dense] + bounds[dense - 1] + 1)


def rank_sum_p_value(base, new, rng):
    """Two-sided p-value of the Mann-Whitney rank-sum test, by random permutations of the pooled values."""
    ranks = average_ranks(np.concatenate([base, new]))
    expected = len(new) * (len(ranks) + 1) / 2
    observed = abs(ranks[len(base):].sum() - expected)
    if observed == 0:
        return 1.0
    shuffled = rng.permuted(np.tile(ranks, (RESAMPLES, 1)), axis=1)
    return float((np.abs(shuffled[:, :len(new)].sum(axis=1) - expected) >= observed - 1e-9).mean())


def ratio_interval(base, new):
    """Hodges-Lehmann estimate of the time ratio new/base and its 95% distribution-free confidence interval
    (order statistics of all pairwise log ratios, the interval that inverts the rank-sum test)."""
    pairs = np.sort(np.log(new)[None, :] - np.log(base)[:, None], axis=None)
    n, m = len(base), len(new)
    k = int(np.floor(n * m / 2 - Z95 * np.sqrt(n * m * (n + m + 1) / 12)))
    k = min(max(k, 0), len(pairs) - 1)
    return np.exp(np.median(pairs)), np.exp(pairs[k]), np.exp(pairs[len(pairs) - 1 - k])


def compare_values(name, base, new, noise, rng):
    """A Comparison of two samples of times (seconds)."""
    base, new = np.asarray(base, float), np.asarray(new, float)
    ratio, low, high = ratio_interval(base, new)
    change, low, high = (100 * (float(x) - 1) for x in (ratio, low, high))
    if len(base) < 2 or len(new) < 2:
        return Comparison(name, change, low, high, None, "no change", "too few values to test")
    p_value = rank_sum_p_value(base, new, rng)
    if p_value >= ALPHA:
        verdict, reason = "no change", "not significant"
    elif low > noise:
        verdict, reason = "regressed", "significant"
    elif high < -noise:
        verdict, reason = "improved", "significant"
    else:
        verdict, reason = "no change", "within noise"
    return Comparison(name, change, low, high, p_value, verdict, reason)


def clocks(benchmarks):
    """The --clock values (cpu, wall) the benchmarks were timed with; "wall" for files without the key."""
    return {b.get_metadata().get("clock", "wall") for b in benchmarks.values()}


def compare_suites(base_path, new_path, noise=2.0, seed=0):
    """(comparisons of common benchmarks, names only in base, names only in new)."""
    base = {b.get_name(): b for b in pyperf.BenchmarkSuite.load(str(base_path)).get_benchmarks()}
    new = {b.get_name(): b for b in pyperf.BenchmarkSuite.load(str(new_path)).get_benchmarks()}
    if clocks(base) != clocks(new):
        print(f"warning: the files were timed with different clocks: {sorted(clocks(base))} and "
              f"{sorted(clocks(new))}", file=sys.stderr)
    rng = np.random.default_rng(seed)
    common = [n for n in base if n in new]
    results = [compare_values(n, base[n].get_values(), new[n].get_values(), noise, rng) for n in common]
    return results, [n for n in base if n not in new], [n for n in new if n not in base]


def peer_changes(results):
    """{our benchmark name: {peer implementation: its change, percent}} for the same group/operation/parameter:
    a control, since a build change moves only ours while a busier machine moves the peers too."""
    by_case = {}
    for r in results:
        case, impl = r.name.rsplit("/", 1)
        by_case.setdefault(case, {})[impl] = r.change
    return {f"{case}/{impl}": {p: c for p, c in impls.items() if not p.startswith(OURS)}
            for case, impls in by_case.items() for impl in impls if impl.startswith(OURS)}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("base", type=suite_file)
    parser.add_argument("new", type=suite_file)
    parser.add_argument("--threshold", type=float, default=10.0,
                        help="fail (exit 1) on a significant regression above this percent (default 10)")
    parser.add_argument("--noise", type=float, default=2.0,
                        help="changes whose confidence interval reaches inside ±noise percent are no change")
    args = parser.parse_args(argv)

    results, only_base, only_new = compare_suites(args.base, args.new, args.noise)
    width = max((len(r.name) for r in results), default=10)
    controls = peer_changes(results)
    failing = []
    for r in results:
        p = "p = n/a " if r.p_value is None else f"p = {r.p_value:.3f}"
        peers = controls.get(r.name)
        control = f"  [peers: {', '.join(f'{n} {c:+.1f}%' for n, c in peers.items())}]" if peers else ""
        print(f"{r.name:<{width}}  change {r.change:+7.2f}% [{r.low:+7.2f}% {r.high:+7.2f}%] ({p})  "
              f"{r.verdict} ({r.reason}){control}")
        if r.verdict == "regressed" and r.change > args.threshold:
            failing.append(r)
    for label, names in (("only in base", only_base), ("only in new", only_new)):
        for name in names:
            print(f"{name:<{width}}  {label}")
    counts = {v: sum(r.verdict == v for r in results) for v in ("regressed", "improved", "no change")}
    print(f"\n{len(results)} compared: {counts['regressed']} regressed, {counts['improved']} improved, "
          f"{counts['no change']} no change")
    if failing:
        print(f"FAIL: {len(failing)} significant regression(s) above {args.threshold:g}%: "
              + ", ".join(r.name for r in failing))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
