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
    base = docs[0]
    table = Table(title=f"Ratios against {label(base)}")
    for h in ("System", "Test", "Throughput ratio", "P99 latency ratio"):
        table.add_column(h)
    for doc in docs[1:]:
        for test, r in measured(doc).items():
            b = measured(base).get(test)
            if not b:
                continue
            throughput = _ratio(r.get("throughput_msgs_s"), b.get("throughput_msgs_s"),
                                overlap(r, b, "throughput_msgs_s"))
            table.add_row(label(doc), TEST_TITLES.get(test, test), throughput,
                          _ratio(_p99(r), _p99(b), overlap(r, b, "p99_ms")))
    return table


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


def print_results(console: Console, docs: list[dict]) -> None:
    """The results table; for several runs, first what they share, and after it the ratios."""
    if len(docs) > 1:
        console.print(header(docs), highlight=False, soft_wrap=True)
    console.print(results_table(docs))
    if len(docs) > 1:
        console.print(ratio_table(docs))
    for doc in docs:
        for r in doc["results"]:
            for note in notes(r):
                console.print(f"[dim]{doc['target']} {note}[/dim]", highlight=False)
