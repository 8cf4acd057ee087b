"""Tables and charts of one micro-benchmark suite: per group, median time ± spread, throughput, and chronik_perf's
speedup over each peer measured in the same run.

    python micro/report.py FILE [--html OUT] [--charts DIR | --no-charts]

Names are group/operation/parameter/implementation; implementations starting with "chronik_perf" are ours, the
others peers. Speedup = peer median / our median for the same group, operation and parameter (above 1: we are
faster). Spread is the median absolute deviation. Charts: one PNG per group (default FILE's name + "-charts/").
"""
import argparse
import base64
import html
import statistics
import sys
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import pyperf
from suite_arg import suite_file

OURS = "chronik_perf"


@dataclass
class Row:
    group: str
    operation: str
    parameter: str
    implementation: str
    median: float
    spread: float
    nbytes: int = None
    items: int = None
    compression_ratio: float = None
    clock: str = "wall"

    @property
    def ours(self):
        return self.implementation.startswith(OURS)

    @property
    def case(self):
        return self.group, self.operation, self.parameter


def load_rows(path):
    """One Row per benchmark of the suite at `path`, in the suite's order."""
    rows = []
    for bench in pyperf.BenchmarkSuite.load(str(path)).get_benchmarks():
        parts = bench.get_name().split("/")
        if len(parts) != 4:
            continue
        meta = bench.get_metadata()
        values = bench.get_values()
        median = statistics.median(values)
        spread = statistics.median(abs(v - median) for v in values)
        rows.append(Row(*parts, median, spread, meta.get("throughput_bytes"), meta.get("throughput_items"),
                        meta.get("compression_ratio"), meta.get("clock", "wall")))
    return rows


def speedups(rows):
    """{(group, operation, parameter, our implementation): {peer: peer median / our median}}."""
    by_case = defaultdict(list)
    for row in rows:
        by_case[row.case].append(row)
    out = {}
    for case, members in by_case.items():
        peers = [r for r in members if not r.ours]
        for ours in (r for r in members if r.ours):
            out[(*case, ours.implementation)] = {p.implementation: p.median / ours.median for p in peers}
    return out


def format_time(seconds):
    seconds = float(f"{seconds:.3g}")          # round first, so 999.7 us reads "1 ms"
    for unit, scale in (("s", 1), ("ms", 1e-3), ("us", 1e-6)):
        if seconds >= scale:
            return f"{seconds / scale:.3g} {unit}"
    return f"{seconds / 1e-9:.3g} ns"


def format_throughput(row):
    parts = []
    if row.nbytes:
        parts.append(f"{row.nbytes / row.median / 1e6:,.1f} MB/s")
    if row.items:
        rate = row.items / row.median
        parts.append(f"{rate / 1e6:,.2f} M items/s" if rate >= 1e6 else f"{rate / 1e3:,.1f} k items/s")
    return ", ".join(parts)


def group_table(rows, ratios):
    """Markdown table rows (header first) for one group."""
    lines = [["benchmark", "implementation", "median ± MAD", "throughput", "speedup of ours over peers"]]
    for row in rows:
        ratio = ratios.get((*row.case, row.implementation), {})
        extra = f" (ratio {row.compression_ratio:g})" if row.compression_ratio else ""
        lines.append([f"{row.operation}/{row.parameter}", row.implementation + extra,
                      f"{format_time(row.median)} ± {100 * row.spread / row.median:.1f}%", format_throughput(row),
                      ", ".join(f"{ratio[p]:.2f}x vs {p}" for p in ratio)])
    return lines


def markdown(table):
    widths = [max(len(r[i]) for r in table) for i in range(len(table[0]))]
    fmt = lambda r: "| " + " | ".join(c.ljust(w) for c, w in zip(r, widths)) + " |"   # noqa: E731
    return "\n".join([fmt(table[0]), "|" + "|".join("-" * (w + 2) for w in widths) + "|"] + [fmt(r) for r in table[1:]])


def chart(group, rows, out):
    """A horizontal bar chart of median times (log scale), one bar per implementation, written to `out`."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cases = list(dict.fromkeys((r.operation, r.parameter) for r in rows))
    impls = list(dict.fromkeys(r.implementation for r in rows))
    height = 0.8 / len(impls)
    fig, ax = plt.subplots(figsize=(9, 1 + 0.25 * len(cases) * max(len(impls), 2) * 0.6))
    for k, impl in enumerate(impls):
        ys, xs = [], []
        for i, case in enumerate(cases):
            for r in rows:
                if (r.operation, r.parameter) == case and r.implementation == impl:
                    ys.append(i + k * height)
                    xs.append(r.median)
        ax.barh(ys, xs, height=height, label=impl)
    ax.set_yticks([i + 0.4 - height / 2 for i in range(len(cases))], [f"{o}/{p}" for o, p in cases], fontsize=7)
    ax.invert_yaxis()
    ax.set_xscale("log")
    ax.set_xlabel("median time per call (s, log scale)")
    ax.set_title(f"{group}: lower is faster")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out, dpi=90)
    plt.close(fig)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("file", type=suite_file)
    parser.add_argument("--html", type=Path, metavar="OUT", help="also write an HTML page with tables and charts")
    parser.add_argument("--charts", type=Path, metavar="DIR", help="where the PNG charts go")
    parser.add_argument("--no-charts", action="store_true")
    args = parser.parse_args(argv)

    rows = load_rows(args.file)
    ratios = speedups(rows)
    groups = defaultdict(list)
    for row in rows:
        groups[row.group].append(row)
    for members in groups.values():     # operations and parameters in suite order, ours first within a case
        ops = list(dict.fromkeys(r.operation for r in members))
        params = list(dict.fromkeys(r.parameter for r in members))
        members.sort(key=lambda r: (ops.index(r.operation), params.index(r.parameter), not r.ours))
    charts = None if args.no_charts else (args.charts or args.file.with_name(args.file.stem + "-charts"))
    if charts:
        charts.mkdir(parents=True, exist_ok=True)
    clock = ", ".join(sorted({r.clock for r in rows}))
    print(f"{args.file.name}: times are {clock} time (--clock)\n")
    page = [f"<h1>{html.escape(args.file.name)}</h1><p>times are {clock} time (--clock)</p>"]
    for group, members in groups.items():
        table = group_table(members, ratios)
        print(f"## {group}\n\n{markdown(table)}\n")
        page.append(f"<h2>{html.escape(group)}</h2><table border=1 cellspacing=0 cellpadding=3>"
                    + "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in r) + "</tr>" for r in table)
                    + "</table>")
        if charts:
            png = charts / f"{group}.png"
            chart(group, members, png)
            page.append(f'<img src="data:image/png;base64,{base64.b64encode(png.read_bytes()).decode()}">')
    if charts:
        print(f"charts in {charts}/")
    if args.html:
        args.html.write_text("<html><body>" + "\n".join(page) + "</body></html>\n")
        print(f"wrote {args.html}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
