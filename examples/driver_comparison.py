"""Driver comparison preset: the suite's producer and consumer tests through several drivers, like with like.

    python examples/driver_comparison.py [--target kafka | --bootstrap-servers HOST:PORT] [--start]
                                         [--drivers native,native-records,confluent,java] [--repeat 5]
                                         [--seconds 10] [--num-messages 2000000] [--batch-size 65536] [-X K=V]

It runs `python -m chronik_perf.e2e --drivers ... --tests producer,consumer` with what a fair comparison needs:
every producer test runs for --seconds (Java's ProducerPerformance, which has no duration, sends --num-messages),
every consumer reads the same log (one fill of --num-messages, written once), every driver gets the same
batch.size and acks, and each figure is the median of --repeat runs (at least 5). The suite prints cores used,
messages per core-second, records per batch, bytes per request and whether each driver's work per message is the
same; this script then names every median window shorter than --seconds, whose rate is less certain.
"""
from __future__ import annotations

import argparse
import glob
import json
import os
import sys
import tempfile

from chronik_perf.e2e.cli import run_main
from chronik_perf.e2e.report import WORK_HEADERS, work_rows

MIN_REPEAT = 5


def load_runs(results_dir: str) -> list[dict]:
    """The results documents of one comparison, in the order the drivers ran."""
    docs = []
    for path in sorted(glob.glob(os.path.join(results_dir, "*", "results.json"))):
        with open(path, encoding="utf-8") as fh:
            docs.append(json.load(fh))
    return docs


def short_windows(docs: list[dict], seconds: float) -> list[str]:
    """'driver test: N s' for every median run whose throughput window is shorter than `seconds`."""
    return [f"{r['driver']} {r['test']}: {r['duration_s']:.1f} s" for doc in docs for r in doc["results"]
            if r.get("duration_s") is not None and r["duration_s"] < seconds]


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--target", default="kafka")
    p.add_argument("--bootstrap-servers")
    p.add_argument("--start", action="store_true")
    p.add_argument("--drivers", default="native,native-records,confluent,java")
    p.add_argument("--repeat", type=int, default=MIN_REPEAT)
    p.add_argument("--seconds", type=float, default=10.0, help="producer window (default 10)")
    p.add_argument("--num-messages", type=int, default=2_000_000, help="the shared fill; Java's producer count")
    p.add_argument("--message-size", type=int, default=100)
    p.add_argument("--partitions", type=int, default=6)
    p.add_argument("--acks", default="1")
    p.add_argument("--batch-size", type=int, default=65536)
    p.add_argument("-X", dest="client_config", action="append", default=[], metavar="KEY=VALUE")
    p.add_argument("--results-dir", default=None)
    args = p.parse_args(argv)
    if args.repeat < MIN_REPEAT:
        p.error(f"--repeat must be at least {MIN_REPEAT}: a comparison quotes medians of repeated runs")
    results_dir = args.results_dir or tempfile.mkdtemp(prefix="driver-comparison-")
    where = ["--bootstrap-servers", args.bootstrap_servers] if args.bootstrap_servers else ["--target", args.target]
    code = run_main([*where, *(["--start"] if args.start else []), "--drivers", args.drivers,
                     "--tests", "producer,consumer", "--repeat", str(args.repeat),
                     "--producer-seconds", str(args.seconds), "--num-messages", str(args.num_messages),
                     "--message-size", str(args.message_size), "--num-partitions", str(args.partitions),
                     "--acks", args.acks, "--batch-size", str(args.batch_size), "--results-dir", results_dir,
                     *[x for kv in args.client_config for x in ("-X", kv)]])
    docs = load_runs(results_dir)
    print("| " + " | ".join(WORK_HEADERS) + " |\n|" + "---|" * len(WORK_HEADERS))
    for cells in work_rows(docs):
        print("| " + " | ".join(cells) + " |")
    short = short_windows(docs, args.seconds)
    print(f"median of {args.repeat} runs per figure; windows under {args.seconds:g} s: "
          + ("; ".join(short) if short else "none"))
    return code


if __name__ == "__main__":
    sys.exit(main())
