"""Driver comparison: the native client against confluent-kafka and Kafka's Java perf tools, same broker, same run.

    python examples/driver_comparison.py --target kafka [--start] [--num-messages 1000000] [--partitions 1,10]
                                         [--drivers native,confluent,java] [--repeat 2]
                                         [--batch-size BYTES]

For each partition count, every driver runs the e2e suite's producer benchmark (100-byte messages, acks=1 by
default) and then its consumer benchmark reading what it wrote, against the same broker; repeats alternate the
driver order and keep each driver's best run. Prints throughput, the ratio native/driver, and the client's CPU
time per message (user+system of the worker process over its whole life, so librdkafka's and the JVM's threads
count too), plus the same table as Markdown for the README.
"""
from __future__ import annotations

import argparse
import dataclasses
import os
import platform
import subprocess
import sys
import tempfile

from rich.console import Console
from rich.table import Table

from chronik_perf.e2e.config import build_config
from chronik_perf.e2e.runner import resolve, run_target


def cpu_model() -> str:
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
        return next(line.split(":", 1)[1].strip() for line in out.splitlines() if line.startswith("Model name"))
    except (OSError, subprocess.CalledProcessError, StopIteration):
        return platform.processor() or "unknown CPU"


def measure(target, cfg, console) -> dict:
    """{test: result entry} of one suite run (producer then consumer)."""
    doc, _ = run_target(target, cfg, console)
    return {r["test"]: r for r in doc["results"]}


def best(runs: list[dict], test: str) -> dict | None:
    ok = [r[test] for r in runs if test in r and not r[test].get("failed") and not r[test].get("skipped")]
    return max(ok, key=lambda r: r["throughput_msgs_s"] or 0) if ok else None


def cpu_us(entry: dict | None) -> float | None:
    if not entry or entry.get("client_cpu_s") is None or not entry.get("messages"):
        return None
    return entry["client_cpu_s"] / entry["messages"] * 1e6


def checked(entry: dict | None) -> str:
    v = entry and entry.get("verification")
    return f"{v['lost']}/{v['duplicated']}" if v else "not checked"


def fmt(x, digits=0, suffix="") -> str:
    return "n/a" if x is None else f"{x:,.{digits}f}{suffix}"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--target", default="kafka")
    p.add_argument("--bootstrap-servers")
    p.add_argument("--start", action="store_true")
    p.add_argument("--num-messages", type=int, default=1_000_000)
    p.add_argument("--message-size", type=int, default=100)
    p.add_argument("--acks", default="1")
    p.add_argument("--batch-size", type=int, help="batch.size for every driver (default: each client's own)")
    p.add_argument("--partitions", default="1,10")
    p.add_argument("--drivers", default="native,confluent,java")
    p.add_argument("--repeat", type=int, default=1)
    p.add_argument("-X", dest="client_config", action="append", default=[], metavar="KEY=VALUE")
    args = p.parse_args(argv)
    drivers = [d.strip() for d in args.drivers.split(",") if d.strip()]
    console = Console(stderr=True)
    target, announcement = resolve(args.target, args.bootstrap_servers, args.start)
    if announcement:
        console.print(announcement)
    from contextlib import ExitStack
    rows = []
    with ExitStack() as stack, tempfile.TemporaryDirectory() as results_dir:
        if target.start:
            from chronik_perf.brokers import start
            broker = stack.enter_context(start(target.name, reuse=True))
            target = dataclasses.replace(target, bootstrap_servers=broker.bootstrap_servers, start=False)
        for partitions in (int(x) for x in args.partitions.split(",")):
            runs = {d: [] for d in drivers}
            for i in range(args.repeat):
                for d in (drivers if i % 2 == 0 else drivers[::-1]):
                    cfg = build_config({}, {"tests": ["producer", "consumer"], "num_messages": args.num_messages,
                                            "message_size": args.message_size, "acks": args.acks,
                                            "num_partitions": partitions, "driver": d, "results_dir": results_dir,
                                            "client_config": dict(kv.split("=", 1) for kv in args.client_config),
                                            **({"batch_size": args.batch_size} if args.batch_size else {})})
                    console.print(f"[bold]{partitions} partition(s), {d}, run {i + 1}[/bold]")
                    runs[d].append(measure(target, cfg, console))
            for d in drivers:
                rows.append((partitions, d, best(runs[d], "producer"), best(runs[d], "consumer")))
    native = {(r[0]): r for r in rows if r[1] == "native"}
    table = Table(title=f"{args.num_messages:,} messages of {args.message_size} B, acks={args.acks}, "
                        f"batch.size={args.batch_size or 'client default'}, "
                        f"{args.target}; {cpu_model()}, {os.cpu_count()} CPUs")
    heads = ["Partitions", "Driver", "Produce msg/s", "native ×", "Produce CPU µs/msg", "Consume msg/s", "native ×",
             "Consume CPU µs/msg", "Lost/dup"]
    for h in heads:
        table.add_column(h, justify="left" if h == "Driver" else "right")
    md = ["| " + " | ".join(heads) + " |", "|" + "---|" * len(heads)]
    for partitions, d, prod, cons in rows:
        n = native.get(partitions)

        def ratio(mine, theirs):
            a = mine and mine.get("throughput_msgs_s")
            b = theirs and theirs.get("throughput_msgs_s")
            return f"{a / b:.2f}" if a and b else "n/a"
        cells = [str(partitions), d, fmt(prod and prod["throughput_msgs_s"]),
                 ratio(n and n[2], prod) if d != "native" else "", fmt(cpu_us(prod), 2),
                 fmt(cons and cons["throughput_msgs_s"]), ratio(n and n[3], cons) if d != "native" else "",
                 fmt(cpu_us(cons), 2), checked(cons)]
        table.add_row(*cells)
        md.append("| " + " | ".join(cells) + " |")
    Console().print(table)
    print("\n".join(md))
    return 0


if __name__ == "__main__":
    sys.exit(main())
