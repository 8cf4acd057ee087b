"""check-regression: compare matching tests of two results files against a threshold."""

from __future__ import annotations

from .report import measured


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
            line = f"{test}: throughput {bt:,.0f} -> {ct:,.0f} msg/s ({change:+.1f}%)"
            (failures if change < -threshold_pct else notes).append(line)
        bp, cp = (b.get("latency_ms") or {}).get("p99"), (c.get("latency_ms") or {}).get("p99")
        if bp and cp is not None:
            change = (cp - bp) / bp * 100
            line = f"{test}: p99 latency {bp:.3f} -> {cp:.3f} ms ({change:+.1f}%)"
            (failures if change > threshold_pct else notes).append(line)
        for key in ("lost", "duplicated"):
            before = (b.get("verification") or {}).get(key) or 0
            now = (c.get("verification") or {}).get(key) or 0
            if now > before:
                failures.append(f"{test}: {now} messages {key} (baseline: {before})")
    for test in base:
        if test not in cur:
            notes.append(f"{test}: in the baseline only (not compared)")
    return failures, notes
