"""Terminal tables (rich): the seed's comparison table for one or several runs, with ratios."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from .comparable import header
from .repeats import overlap
from .results import HEADERS, TEST_TITLES, notes, row


def results_table(docs: list[dict], title: str = "Performance Comparison") -> Table:
    """System | Test | Throughput | MB/s | Avg latency | P99 | Verification, tests grouped together."""
    table = Table(title=title)
    for h in HEADERS:
        table.add_column(h, justify="right" if "(" in h else "left")
    for cells in ordered_rows(docs):
        table.add_row(*cells)
    return table


def ordered_rows(docs: list[dict]) -> list[list[str]]:
    """The cells of every result of every run, tests in the suite's order and runs in the given order within a test."""
    order = list(TEST_TITLES) + ["interrupted"]
    rows = [(order.index(r["test"]) if r["test"] in order else 99, i, doc, r)
            for i, doc in enumerate(docs) for r in doc["results"]]
    return [row(doc, r) for _, _, doc, r in sorted(rows, key=lambda x: (x[0], x[1]))]


def ratio_table(docs: list[dict]) -> Table:
    """Each run against the first: throughput ratio (higher is better) and p99 ratio (lower is better); with
    --repeat, each ratio says whether the two sets of runs overlap."""
    table = Table(title=f"Ratios against {label(docs[0])}")
    for h in RATIO_HEADERS:
        table.add_column(h)
    for cells in ratio_rows(docs):
        table.add_row(*cells)
    return table


RATIO_HEADERS = ("System", "Test", "Throughput ratio", "P99 latency ratio")


def ratio_rows(docs: list[dict]) -> list[list[str]]:
    """System | Test | throughput ratio | p99 ratio of every later run against the first, per test both measured."""
    base, rows = docs[0], []
    for doc in docs[1:]:
        for test, r in measured(doc).items():
            b = measured(base).get(test)
            if not b:
                continue
            throughput = _ratio(r.get("throughput_msgs_s"), b.get("throughput_msgs_s"),
                                overlap(r, b, "throughput_msgs_s"))
            rows.append([label(doc), TEST_TITLES.get(test, test), throughput,
                         _ratio(_p99(r), _p99(b), overlap(r, b, "p99_ms"))])
    return rows


def label(doc: dict) -> str:
    drivers = {r.get("driver") for r in doc["results"] if r.get("driver")}
    return f"{doc['target']} ({', '.join(sorted(drivers))})"


def measured(doc: dict) -> dict[str, dict]:
    """Tests that produced figures (not skipped or failed), by name."""
    return {r["test"]: r for r in doc["results"] if not r.get("skipped") and not r.get("failed")}


def _p99(r: dict):
    return (r.get("latency_ms") or {}).get("p99")


def _ratio(a, b, overlapping=None) -> str:
    """a/b; for repeated results, whether the two sets of runs overlap (then the ratio may be noise)."""
    if a is None or not b:
        return "N/A"
    if overlapping is None:
        return f"{a / b:.2f}x"
    return f"{a / b:.2f}x ({'runs overlap' if overlapping else 'runs apart'})"


WORK_HEADERS = ("Driver", "Test", "msg/s", "Runs", "Window (s)", "Cores used", "msg per core-s", "Records/batch",
                "Bytes/request", "CRC checked", "Work per message", "Same work as first")


def work_rows(docs: list[dict]) -> list[list[str]]:
    """Producer and consumer rows of a driver comparison: rate (the median run's), how many runs and their windows,
    CPU, batching, and whether the work per message is the same as in the first driver's row (what differs, when it
    is not)."""
    rows = []
    for test in ("producer", "consumer"):
        base = None
        for doc in docs:
            r = measured(doc).get(test)
            if not r:
                continue
            base = base or r
            b = r.get("batching") or {}
            work = r.get("work") or {}
            rows.append([r.get("driver", "?"), TEST_TITLES[test], _num(r.get("throughput_msgs_s")),
                         str(len(r.get("repeats") or [r])), windows(r), _num(r.get("cores_used"), 2), _num(r.get("msgs_per_core_s")),
                         _num(b.get("records_per_batch"), 1), _num(b.get("bytes_per_request")),
                         {True: "yes", False: "no"}.get(work.get("crc_checked"), "-"), work.get("per_message", "?"),
                         same_work(base, r)])
    return rows


def windows(r: dict) -> str:
    """The throughput window of a result in seconds, or the shortest and longest of its repeated runs'."""
    spans = [f["duration_s"] for f in r.get("repeats") or [r] if f.get("duration_s") is not None]
    if not spans:
        return "N/A"
    low, high = min(spans), max(spans)
    return f"{low:.1f}" if f"{low:.1f}" == f"{high:.1f}" else f"{low:.1f}–{high:.1f}"


def same_work(base: dict, r: dict) -> str:
    """'yes', or what differs from the base row: the per-message work, CRC checking, the log read, the batching."""
    if r is base:
        return "(reference)"
    a, b = base.get("work") or {}, r.get("work") or {}
    diffs = [k.replace("_", " ") for k in ("per_message", "crc_checked", "fill") if a.get(k) != b.get(k)]
    rb, bb = (base.get("batching") or {}).get("records_per_batch"), (r.get("batching") or {}).get("records_per_batch")
    if rb and bb and abs(rb - bb) > 0.1 * rb:
        diffs.append(f"records per batch {bb:,.0f} vs {rb:,.0f}")
    if r.get("short_window") or base.get("short_window"):
        diffs.append("window < 1 s")
    return "yes" if not diffs else "no: " + ", ".join(diffs)


def _num(x, digits: int = 0) -> str:
    return "N/A" if x is None else f"{x:,.{digits}f}"


def print_results(console: Console, docs: list[dict]) -> None:
    """The results table; for several runs, first what they share, and after it the ratios."""
    if len(docs) > 1:
        console.print(header(docs), highlight=False, soft_wrap=True)
    console.print(results_table(docs))
    if len(docs) > 1:
        console.print(ratio_table(docs))
        rows = work_rows(docs)
        if len({r[0] for r in rows}) > 1:
            table = Table(title="Driver comparison: CPU, batching and the work per message")
            for h in WORK_HEADERS:
                table.add_column(h)
            for cells in rows:
                table.add_row(*cells)
            console.print(table)
    for doc in docs:
        for r in doc["results"]:
            for note in notes(r):
                console.print(f"[dim]{doc['target']} {note}[/dim]", highlight=False)
