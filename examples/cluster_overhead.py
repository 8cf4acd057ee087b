"""Benchmark: one e2e workload on this host's processes and on `--cluster local:2`, alternating, with spread.

    python examples/cluster_overhead.py [--target kafka | --bootstrap-servers HOST:PORT] [--rounds 3] [--quick]
                                        [--results-dir DIR] [--nice 10]
    python examples/cluster_overhead.py --report DIR      # the table again, from the results stored in DIR

Each round runs `python -m chronik_perf.e2e` once without and once with `--cluster local:2`, one after the other,
so that a change in the machine's load reaches both sides alike. The table gives, per test, each figure's median
and range (min..max) over the rounds on both sides, the ratio of the medians and whether the ranges overlap, and
the clients' CPU (cores kept busy, messages per core-second) and the harness's CPU: the coordinator's CPU while the
test's workers ran (results' `harness`) and, on the cluster, that plus the Dask worker processes' own CPU
(`cluster.dask_workers_cpu_s`), as a share of one core.
A ratio inside overlapping ranges is no measured difference.
"""
from __future__ import annotations

import argparse
import glob
import json
import os
import statistics
import subprocess
import sys
import tempfile

WORKLOAD = ["--tests", "producer,consumer,latency,concurrent", "--producer-seconds", "6", "--num-messages", "200000",
            "--message-size", "1024", "--num-partitions", "6", "--producers", "2", "--rate", "1000",
            "--duration", "10", "--warmup", "2"]
QUICK = ["--tests", "producer,consumer,latency,concurrent", "--quick"]
SIDES = ("local", "cluster")
TITLES = {"producer": "Producer Throughput", "consumer": "Consumer Throughput", "concurrent": "Concurrent Producers",
          "latency": "E2E Latency"}


def command(where: list[str], workload: list[str], side: str, results_dir: str) -> list[str]:
    """The suite's command line for one side of a round."""
    cluster = ["--cluster", "local:2"] if side == "cluster" else []
    return [sys.executable, "-m", "chronik_perf.e2e", *where, *workload, *cluster,
            "--results-dir", os.path.join(results_dir, side)]


def load(results_dir: str) -> dict[str, list[dict]]:
    """{side: results documents in the order they ran}."""
    out = {}
    for side in SIDES:
        docs = []
        for path in sorted(glob.glob(os.path.join(results_dir, side, "*", "results.json"))):
            with open(path, encoding="utf-8") as fh:
                docs.append(json.load(fh))
        out[side] = docs
    return out


def harness_core_percent(r: dict) -> float | None:
    """The harness's CPU as a share of one core while the test's workers ran: the coordinator's, plus, on a cluster,
    the Dask worker processes' (counted from the previous test's end, so a little more than the window)."""
    harness = r.get("harness") or {}
    cpu, wall = harness.get("cpu_s"), harness.get("wall_s")
    if cpu is None or not wall:
        return None
    cpu += (r.get("cluster") or {}).get("dask_workers_cpu_s") or 0.0
    return cpu / wall * 100


FIGURES = {
    "throughput msg/s": (lambda r: r.get("throughput_msgs_s"), 0),
    "p50 ms": (lambda r: (r.get("latency_ms") or {}).get("p50"), 2),
    "p99 ms": (lambda r: (r.get("latency_ms") or {}).get("p99"), 2),
    "client cores used": (lambda r: r.get("cores_used"), 2),
    "client msg per core-second": (lambda r: r.get("msgs_per_core_s"), 0),
    "harness CPU % of a core": (harness_core_percent, 1),
}


def figures_of(test: str) -> list[str]:
    if test == "latency":
        return ["p50 ms", "p99 ms", "harness CPU % of a core"]
    clients = ["client cores used", "client msg per core-second"] if test in ("producer", "consumer") else []
    return ["throughput msg/s", *clients, "harness CPU % of a core"]


def table(runs: dict[str, list[dict]]) -> str:
    """Markdown: per test and figure, both sides' median (min..max), the ratio of medians and the overlap."""

    def values(side: str, test: str, figure: str) -> list[float]:
        get = FIGURES[figure][0]
        return [v for doc in runs[side] for r in doc["results"] if r["test"] == test and not r.get("failed")
                and (v := get(r)) is not None]

    def cell(vals: list[float], digits: int) -> str:
        return f"{statistics.median(vals):,.{digits}f} ({min(vals):,.{digits}f}..{max(vals):,.{digits}f})"

    rows = ["| Test | Figure | This host: median (min..max) | --cluster local:2: median (min..max) | Cluster / local "
            "| Runs |", "|---|---|---|---|---|---|"]
    for test, title in TITLES.items():
        for figure in figures_of(test):
            local, cluster = values("local", test, figure), values("cluster", test, figure)
            if not local or not cluster:
                continue
            digits = FIGURES[figure][1]
            apart = max(local) < min(cluster) or max(cluster) < min(local)
            spread = ("one run each: no spread" if min(len(local), len(cluster)) < 2
                      else "ranges apart" if apart else "ranges overlap")
            ratio = statistics.median(cluster) / statistics.median(local) if statistics.median(local) else None
            rows.append(f"| {title} | {figure} | {cell(local, digits)} | {cell(cluster, digits)} | "
                        f"{'' if ratio is None else f'{ratio:.2f}x'} | {len(local)} + {len(cluster)}, {spread} |")
    failed = [f"{side} {r['test']}: {r['failed']}" for side in SIDES for doc in runs[side] for r in doc["results"]
              if r.get("failed")]
    if failed:
        rows.append("")
        rows.append("Failed runs, left out of the figures: " + "; ".join(failed))
    return "\n".join(rows)


def first_runs(runs: dict[str, list[dict]]) -> str:
    """Markdown: the suite's comparison table of the first run on each side, each test's two rows together."""
    from chronik_perf.e2e.report import ordered_rows
    from chronik_perf.e2e.results import HEADERS
    where = {"local": "this host", "cluster": "--cluster local:2"}
    docs = [{**runs[side][0], "target": f"{runs[side][0]['target']} on {where[side]}"} for side in SIDES]
    lines = ["| " + " | ".join(HEADERS) + " |", "|" + "---|" * len(HEADERS)]
    return "\n".join(lines + ["| " + " | ".join(cells) + " |" for cells in ordered_rows(docs)])


def report(runs: dict[str, list[dict]]) -> int:
    """Print the tables, or one line on stderr when a side has no stored run (its every run failed): 0 or 1."""
    if empty := [side for side in SIDES if not runs.get(side)]:
        print(f"cluster_overhead: no results for the {' and '.join(empty)} side: every run failed (see the suite's "
              "output)", file=sys.stderr)
        return 1
    print(table(runs) + "\n\n" + first_runs(runs))
    return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--target", default="kafka")
    p.add_argument("--bootstrap-servers")
    p.add_argument("--start", action="store_true", help="let the suite start the target's broker if not running")
    p.add_argument("--rounds", type=int, default=3, help="local and cluster runs each (default 3)")
    p.add_argument("--quick", action="store_true", help="the suite's --quick sizes instead of the workload above")
    p.add_argument("--results-dir", help="where the runs' results go (default: a new temporary folder)")
    p.add_argument("--nice", type=int, default=0, help="run the suite under nice -n N")
    p.add_argument("--report", metavar="DIR", help="no runs: print the table from the results stored in DIR")
    args = p.parse_args(argv)
    if args.report:
        return report(load(args.report))
    if args.rounds < 2:
        p.error("--rounds must be at least 2: the table quotes each side's spread")
    results_dir = args.results_dir or tempfile.mkdtemp(prefix="cluster-overhead-")
    where = ["--bootstrap-servers", args.bootstrap_servers] if args.bootstrap_servers else ["--target", args.target]
    where += ["--start"] if args.start else []
    prefix = ["nice", "-n", str(args.nice)] if args.nice else []
    codes = []
    for i in range(args.rounds):
        for side in SIDES:
            cmd = command(where, QUICK if args.quick else WORKLOAD, side, results_dir)
            print(f"round {i + 1}/{args.rounds}, {side}: {' '.join(cmd[1:])}", flush=True)
            codes.append(subprocess.run(prefix + cmd, stdout=subprocess.DEVNULL).returncode)
    print(f"load average now: {', '.join(f'{x:.1f}' for x in os.getloadavg())}; results in {results_dir}")
    return max(report(load(results_dir)), *codes)


if __name__ == "__main__":
    sys.exit(main())
