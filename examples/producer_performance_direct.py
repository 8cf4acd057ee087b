"""ProducerPerformance run directly and through `--driver java`, alternating: does the suite cost the tool anything?

    python examples/producer_performance_direct.py [--bootstrap-servers 127.0.0.1:9095] [--runs 5]
                                                   [--num-messages 500000] [--message-size 100] [--partitions 6]

Each round creates two fresh topics with the same settings and runs Kafka's
org.apache.kafka.tools.ProducerPerformance on one of them straight from a subprocess (the command line the java
driver builds, nothing around it), and the suite's producer test with --driver java on the other; the order of the
two alternates between rounds. It prints every run, the suite process's own CPU while the tool ran, and whether the
suite's median lies within the range of the direct runs. A benchmark, not a test: run it on a quiet machine.
"""
from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import uuid

from rich.console import Console

from chronik_perf.client import Cluster
from chronik_perf.e2e.benchmarks.common import producer_settings
from chronik_perf.e2e.config import TARGET_ADDRESSES, build_config
from chronik_perf.e2e.drivers.base import ProducerSpec
from chronik_perf.e2e.drivers.java import JavaDriver, parse_producer
from chronik_perf.e2e.runner import Target, run_target


def direct(driver: JavaDriver, cfg, bootstrap: str) -> float:
    """records/s of one ProducerPerformance run on a fresh topic, started by a bare subprocess."""
    topic = f"chronik-perf-direct-{uuid.uuid4().hex[:8]}"
    with Cluster(bootstrap) as cluster:
        cluster.create_topics([topic], cfg.num_partitions, cfg.replication_factor, timeout=30)
    spec = ProducerSpec(bootstrap, topic, 0, cfg.num_messages, cfg.message_size, cfg.payload, cfg.key_pattern,
                        cfg.num_partitions, 1, producer_settings(cfg))
    out = subprocess.run(driver.producer_command(spec), capture_output=True, text=True, check=True).stdout
    with Cluster(bootstrap) as cluster:
        cluster.delete_topics([topic], timeout=30)
    return parse_producer(out)["records_per_s"]


def through_suite(cfg, bootstrap: str) -> tuple[float, dict]:
    """records/s of the suite's producer test with --driver java, and the suite's own CPU while it ran."""
    doc, _ = run_target(Target("kafka", bootstrap), cfg, Console(stderr=True, quiet=True))
    r = doc["results"][0]
    if r.get("failed"):
        raise SystemExit(f"the suite's producer test failed: {r['failed']}")
    return r["throughput_msgs_s"], r["harness"]


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--bootstrap-servers", default=TARGET_ADDRESSES["kafka"])
    p.add_argument("--runs", type=int, default=5)
    p.add_argument("--num-messages", type=int, default=500_000)
    p.add_argument("--message-size", type=int, default=100)
    p.add_argument("--partitions", type=int, default=6)
    p.add_argument("--acks", default="1")
    p.add_argument("--results-dir", default="results/producer-performance-direct")
    args = p.parse_args(argv)
    cfg = build_config({}, {"tests": ["producer"], "driver": "java", "num_messages": args.num_messages,
                            "message_size": args.message_size, "num_partitions": args.partitions, "acks": args.acks,
                            "results_dir": args.results_dir})
    driver = JavaDriver()
    runs_direct, runs_suite, harness = [], [], []
    for i in range(args.runs):
        for kind in (("direct", "suite") if i % 2 == 0 else ("suite", "direct")):
            if kind == "direct":
                runs_direct.append(direct(driver, cfg, args.bootstrap_servers))
                print(f"round {i + 1} direct: {runs_direct[-1]:,.0f} records/s", flush=True)
            else:
                rate, cost = through_suite(cfg, args.bootstrap_servers)
                runs_suite.append(rate)
                harness.append(cost)
                print(f"round {i + 1} suite:  {rate:,.0f} records/s; the suite's own process used "
                      f"{cost['cpu_s']:.3f} CPU s over {cost['wall_s']:.1f} s ({cost['cores']:.3%} of a core)",
                      flush=True)
    lo, hi = min(runs_direct), max(runs_direct)
    med = statistics.median(runs_suite)
    print(f"direct: median {statistics.median(runs_direct):,.0f}, range {lo:,.0f}..{hi:,.0f} records/s "
          f"({args.runs} runs)")
    print(f"suite:  median {med:,.0f}, range {min(runs_suite):,.0f}..{max(runs_suite):,.0f} records/s; suite "
          f"process at most {max(h['cores'] for h in harness):.3%} of a core")
    print("the suite's median is " + ("within" if lo <= med <= hi else "OUTSIDE") + " the range of the direct runs")
    return 0 if lo <= med <= hi else 1


if __name__ == "__main__":
    sys.exit(main())
