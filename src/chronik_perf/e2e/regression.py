"""check-regression: compare matching tests of two results files against a threshold.

When both results were repeated (``--repeat``), a change beyond the threshold counts only if the two runs' ranges
do not overlap (the current best is worse than the baseline's worst); otherwise it is reported as within the
run-to-run spread.
"""

from __future__ import annotations

from .repeats import overlap, totals
from .report import measured


def _delivery(r: dict, key: str) -> int:
    """Messages lost or duplicated: over every run of a repeated result, else in its one run."""
    return (totals(r) or r.get("verification") or {}).get(key) or 0


def _judge(failures: list, notes: list, line: str, beyond: bool, apart: bool) -> None:
    if beyond and apart:
        failures.append(line)
    elif beyond:
        notes.append(line + " beyond the threshold, but within the run-to-run spread")
    else:
        notes.append(line)


def regressions(baseline: dict, current: dict, threshold_pct: float) -> tuple[list[str], list[str]]:
    """(failures, notes): throughput drops or p99 rises beyond threshold_pct percent, per matching test."""
    failures, notes = [], []
    base, cur = measured(baseline), measured(current)
    common = [t for t in base if t in cur]
    if not common:
        failures.append("no test was measured in both files")
    for test in common:
        b, c = base[test], cur[test]
        bt, ct = b.get("throughput_msgs_s"), c.get("throughput_msgs_s")
        if bt and ct is not None:
            change = (ct - bt) / bt * 100
            _judge(failures, notes, f"{test}: throughput {bt:,.0f} -> {ct:,.0f} msg/s ({change:+.1f}%)",
                   change < -threshold_pct, not overlap(b, c, "throughput_msgs_s"))
        bp, cp = (b.get("latency_ms") or {}).get("p99"), (c.get("latency_ms") or {}).get("p99")
        if bp and cp is not None:
            change = (cp - bp) / bp * 100
            _judge(failures, notes, f"{test}: p99 latency {bp:.3f} -> {cp:.3f} ms ({change:+.1f}%)",
                   change > threshold_pct, not overlap(b, c, "p99_ms"))
        for key in ("lost", "duplicated"):
            before, now = _delivery(b, key), _delivery(c, key)
            if now > before:
                failures.append(f"{test}: {now} messages {key} (baseline: {before})")
    for test in base:
        if test not in cur:
            notes.append(f"{test}: in the baseline only (not compared)")
    return failures, notes
