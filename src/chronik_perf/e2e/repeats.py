"""--repeat N: every test runs N times; its result is the median run, with each run's figures and their spread.

The median run is chosen by the test's headline figure: p99 latency for the latency test, throughput for the others
(the lower middle run when N is even). Its whole entry (verification, timeline, histogram) becomes the test's
result, so every figure shown comes from one real run; ``repeats`` lists every run and ``spread`` gives the min,
median-run and max of throughput and p99, which the regression check uses as the run-to-run noise.
"""

from __future__ import annotations

SPREAD_FIGURES = ("throughput_msgs_s", "p99_ms")


def _p99(r: dict):
    return (r.get("latency_ms") or {}).get("p99")


def headline(r: dict):
    """The figure a test is ranked by, oriented so that lower is better (None when the run has none)."""
    if r["test"] == "latency":
        return _p99(r)
    throughput = r.get("throughput_msgs_s")
    return -throughput if throughput is not None else None


def figures(r: dict) -> dict:
    """One run's figures as kept in ``repeats``."""
    v = r.get("verification") or {}
    return {"throughput_msgs_s": r.get("throughput_msgs_s"), "throughput_mb_s": r.get("throughput_mb_s"),
            "p50_ms": (r.get("latency_ms") or {}).get("p50"), "p99_ms": _p99(r),
            "lost": v.get("lost"), "duplicated": v.get("duplicated"), "duration_s": r.get("duration_s")}


def combine(runs: list[tuple[dict, str | None]]) -> tuple[dict, str | None]:
    """(entry, histogram) of the median run of ``runs`` [(entry, histogram)], with ``repeats`` and ``spread``."""
    if len(runs) == 1:
        return runs[0]
    ranked = sorted(range(len(runs)), key=lambda i: (headline(runs[i][0]) is None, headline(runs[i][0]) or 0))
    middle = ranked[(len(runs) - 1) // 2]
    out = dict(runs[middle][0])
    out["repeats"] = [figures(r) for r, _ in runs]
    out["median_run"] = middle + 1
    spread = {}
    for name in SPREAD_FIGURES:
        values = [f[name] for f in out["repeats"]]
        if all(v is not None for v in values):
            spread[name] = {"min": min(values), "median": out["repeats"][middle][name], "max": max(values)}
    out["spread"] = spread
    return out, runs[middle][1]


def totals(r: dict) -> dict | None:
    """{"lost": n, "duplicated": n} summed over every run of a repeated result, or None when it was not repeated or
    not verified."""
    runs = r.get("repeats")
    if not runs or any(f["lost"] is None for f in runs):
        return None
    return {key: sum(f[key] or 0 for f in runs) for key in ("lost", "duplicated")}


def describe(r: dict) -> str | None:
    """One line on a repeated result: how many runs, and the range of its figures."""
    runs = r.get("repeats")
    if not runs:
        return None
    parts = []
    tp = r["spread"].get("throughput_msgs_s")
    if tp and tp["median"]:
        parts.append(f"throughput {tp['min']:,.0f}..{tp['max']:,.0f} msg/s "
                     f"(range {(tp['max'] - tp['min']) / tp['median']:.1%} of the median)")
    p99 = r["spread"].get("p99_ms")
    if p99:
        parts.append(f"p99 {p99['min']:.3f}..{p99['max']:.3f} ms")
    return f"median of {len(runs)} runs (run {r['median_run']})" + (": " + ", ".join(parts) if parts else "")


def overlap(a: dict, b: dict, figure: str) -> bool | None:
    """Whether the runs of two repeated results overlap in ``figure`` (throughput_msgs_s or p99_ms); None unless
    both were repeated."""
    sa, sb = (a.get("spread") or {}).get(figure), (b.get("spread") or {}).get(figure)
    if not sa or not sb:
        return None
    return sa["min"] <= sb["max"] and sb["min"] <= sa["max"]
