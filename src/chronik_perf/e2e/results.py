"""results/<UTC timestamp>_<target>/: results.json, HDR histograms, summary.md, charts."""

from __future__ import annotations

import datetime as dt
import json
import os
import re

import numpy as np

from .repeats import describe, totals

SCHEMA_VERSION = 1

TEST_TITLES = {"producer": "Producer Throughput", "consumer": "Consumer Throughput", "latency": "E2E Latency",
               "concurrent": "Concurrent Producers", "groups": "Consumer Groups"}


def run_dir(results_dir: str, target: str, when: dt.datetime) -> str:
    safe = re.sub(r"[^A-Za-z0-9._-]+", "-", target)
    path = os.path.join(results_dir, f"{when.strftime('%Y%m%dT%H%M%SZ')}_{safe}")
    os.makedirs(path, exist_ok=True)
    return path


def document(target: str, bootstrap: str, broker: dict, config: dict, environment: dict,
             started: dt.datetime, results: list[dict], status: str) -> dict:
    return {"schema_version": SCHEMA_VERSION, "target": target, "bootstrap_servers": bootstrap,
            "broker": broker, "config": config, "environment": environment,
            "started_utc": started.isoformat(timespec="seconds"),
            "finished_utc": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
            "status": status, "results": results}


def _plain(obj):
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


def write(path: str, doc: dict, histograms: dict[str, str]) -> str:
    """Write results.json (atomically), the histograms and summary.md; returns results.json's path."""
    out = os.path.join(path, "results.json")
    tmp = out + ".tmp"
    with open(tmp, "w", encoding="utf-8") as fh:
        json.dump(doc, fh, indent=2, default=_plain)
    os.replace(tmp, out)
    for test, encoded in histograms.items():
        with open(os.path.join(path, f"{test}.hdr"), "w", encoding="ascii") as fh:
            fh.write(encoded + "\n")
    with open(os.path.join(path, "summary.md"), "w", encoding="utf-8") as fh:
        fh.write(summary_markdown(doc))
    return out


def load(path: str) -> dict:
    """Read a results.json (or the results.json inside a run directory); ValueError naming the file when it is not
    one."""
    if os.path.isdir(path):
        path = os.path.join(path, "results.json")
    with open(path, encoding="utf-8") as fh:
        try:
            doc = json.load(fh)
        except json.JSONDecodeError as exc:
            raise ValueError(f"{path}: not JSON ({exc})") from None
    if not isinstance(doc, dict) or doc.get("schema_version") != SCHEMA_VERSION:
        found = doc.get("schema_version") if isinstance(doc, dict) else None
        raise ValueError(f"{path}: schema_version {found!r}, expected {SCHEMA_VERSION}: not a chronik-perf results file")
    for key, kind in (("target", str), ("config", dict), ("environment", dict), ("broker", dict), ("results", list)):
        if not isinstance(doc.get(key), kind):
            raise ValueError(f"{path}: {key!r} is missing or not a {kind.__name__}")
    if not all(isinstance(r, dict) and isinstance(r.get("test"), str) for r in doc["results"]):
        raise ValueError(f"{path}: every entry of 'results' needs a 'test' name")
    return doc


def fmt(value, digits: int = 2) -> str:
    if value is None:
        return "N/A"
    if isinstance(value, float) and digits == 0:
        return f"{value:,.0f}"
    return f"{value:,.{digits}f}" if isinstance(value, float) else f"{value:,}"


def row(doc: dict, r: dict) -> list[str]:
    """System | Test | Throughput msg/s | MB/s | Avg latency | P99 | Verification."""
    lat = r.get("latency_ms") or {}
    v = r.get("verification")
    if r.get("skipped"):
        check = f"skipped: {r['skipped']}"
    elif r.get("failed"):
        first_line = r["failed"].splitlines()[0] if r["failed"] else ""
        check = f"FAILED: {first_line[:100]}"
    elif r["test"] == "producer" and r.get("driver") != "java":
        check = "read back by the consumer test"
    elif (summed := totals(r)) is not None:
        check = f"lost {summed['lost']} / dup {summed['duplicated']} in {len(r['repeats'])} runs"
    elif v:
        check = check_text(v)
    else:
        check = "not checked"
    throughput = r.get("throughput_msgs_s")
    rate = fmt(float(throughput), 0) if throughput is not None else "N/A"
    if r.get("short_window") and r["test"] != "latency":
        rate += f" (window {r['duration_s']:.2f} s < 1 s)"
    return [f"{doc['target']} ({r.get('driver', '?')})", TEST_TITLES.get(r["test"], r["test"]), rate,
            fmt(r.get("throughput_mb_s")),
            fmt(lat.get("avg")), fmt(lat.get("p99")), check]


def check_text(v: dict) -> str:
    """A verification in one cell: lost / dup / ooo, and unread, unknown, misrouted when there are any."""
    if v.get("count_only"):
        return f"count only: {v['in_log']} in the log for {v['expected']} acknowledged"
    parts = [f"lost {v['lost']}", f"dup {v['duplicated']}", f"ooo {fmt(v.get('out_of_order'))}"]
    parts += [f"{k} {v[k]}" for k in ("unread", "unknown", "misrouted") if v.get(k)]
    return " / ".join(parts)


MIN_TIMELINE_POINTS = 4  # a throughput-over-time line with fewer points is noise: a note replaces it


HEADERS = ["System", "Test", "Throughput (msg/s)", "Throughput (MB/s)", "Avg Latency (ms)", "P99 Latency (ms)",
           "Verification"]


def notes(r: dict) -> list[str]:
    """The findings of a result that do not fit the table: the runs of a repeated test, the concurrent
    bottleneck, the group timings."""
    out = []
    if (runs := describe(r)) is not None:
        out.append(f"{r['test']}: {runs}")
    if r.get("timeline") and len(r["timeline"]) < MIN_TIMELINE_POINTS and r["test"] != "latency":
        out.append(f"{r['test']}: {len(r['timeline'])} timeline point(s), too few for a throughput-over-time chart "
                   f"(a {r.get('duration_s', 0):.2f} s window)")
    if r.get("bottleneck"):
        out.append(f"concurrent bottleneck: {r['bottleneck']}")
    if r.get("initial_assignment_ms") is not None:
        out.append(f"groups: all partitions assigned after {r['initial_assignment_ms']:.0f} ms; "
                   f"rebalance on join {r['rebalance_join_ms']:.0f} ms, on leave {r['rebalance_leave_ms']:.0f} ms; "
                   f"balance (max-min partitions per member) {r['assignment_balance']}")
    return out


def summary_markdown(doc: dict) -> str:
    env = doc["environment"]
    lines = [f"# chronik-perf e2e: {doc['target']} ({doc['bootstrap_servers']})", "",
             f"Broker: {doc['broker'].get('name')} {doc['broker'].get('version') or ''}; "
             f"status: {doc['status']}; started {doc['started_utc']}", "",
             f"Machine: {env['cpu_model']}, {env['cpu_count']} CPUs, {env['os']}, Python {env['python']}", "",
             "| " + " | ".join(HEADERS) + " |", "|" + "---|" * len(HEADERS)]
    for r in doc["results"]:
        lines.append("| " + " | ".join(row(doc, r)) + " |")
    for r in doc["results"]:
        extra = [f"- {note}" for note in notes(r)]
        lat = r.get("latency_ms")
        if lat and r["test"] == "latency":
            extra.append("- latency (ms): " + ", ".join(f"{k} {fmt(lat.get(k))}" for k in
                                                        ("min", "avg", "p50", "p95", "p99", "p999", "max")))
        lines.extend(extra)
    return "\n".join(lines) + "\n"
