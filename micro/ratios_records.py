"""Speed of the records core against its peers, measured in one run on this machine.

Prints one ratio per line (higher is better for chronik_perf), each with both medians:
  build_batch 100x100B vs aiokafka DefaultRecordBatchBuilder (appends + build)   bar: >= 10x
  parse_batches()[0].records() vs iterating aiokafka DefaultRecordBatch         bar: >= 2x
  parse_batches()[0].columns() vs the same aiokafka iteration                   bar: >= 5x
  crc32c on 1 MiB vs the crc32c package                                         bar: >= 0.9x
Both sides run in the same process, alternating, and each median is over `--repeat` rounds of at
least 20 ms. Our parse_batches() verifies the CRC (its default); aiokafka's iteration does not.
After the bars, one context line (no bar): a consumer loop reading each record's offset, timestamp,
key and value, through records() and through aiokafka's iteration.
The header shows the load average: on a busy machine both sides slow down, not equally.
Usage: python micro/ratios_records.py [--repeat N]
"""
import argparse
import os
import statistics
import sys
import time

from aiokafka.record._crecords import DefaultRecordBatch, DefaultRecordBatchBuilder
import crc32c as crc32c_pkg

from chronik_perf import records

BARS = {"build": 10.0, "records": 2.0, "columns": 5.0, "crc32c_1MiB": 0.9}


def per_call(fn, min_time=0.02):
    """Median seconds per call of fn over interleavable timed rounds."""
    loops = 1
    while True:
        t0 = time.perf_counter()
        for _ in range(loops):
            fn()
        elapsed = time.perf_counter() - t0
        if elapsed >= min_time:
            return elapsed / loops
        loops *= 2


def compare(ours, peer, repeat):
    """Alternate ours and the peer `repeat` times; return (median ours, median peer)."""
    a, b = [], []
    for _ in range(repeat):
        a.append(per_call(ours))
        b.append(per_call(peer))
    return statistics.median(a), statistics.median(b)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=41, help="timed rounds per side (default 41)")
    args = parser.parse_args()

    values = [os.urandom(100) for _ in range(100)]
    timestamps = list(range(1_700_000_000_000, 1_700_000_000_100))

    def ours_build():
        return records.build_batch(values, timestamps=timestamps)

    def aiokafka_build():
        builder = DefaultRecordBatchBuilder(2, 0, 0, -1, -1, -1, 1 << 20)
        for i, value in enumerate(values):
            builder.append(i, timestamps[i], None, value, [])
        return builder.build()

    batch = ours_build()

    def aiokafka_iterate():
        return list(DefaultRecordBatch(batch))

    def ours_records():
        return records.parse_batches(batch)[0].records()

    def ours_columns():
        return records.parse_batches(batch)[0].columns()

    blob = os.urandom(1 << 20)
    rows = [
        ("build", "build_batch 100x100B vs aiokafka builder", ours_build, aiokafka_build),
        ("records", "parse_batches()[0].records() vs aiokafka iteration", ours_records, aiokafka_iterate),
        ("columns", "parse_batches()[0].columns() vs aiokafka iteration", ours_columns, aiokafka_iterate),
        ("crc32c_1MiB", "crc32c 1 MiB vs crc32c package", lambda: records.crc32c(blob),
         lambda: crc32c_pkg.crc32c(blob)),
    ]
    print(f"# {cpu_model()}, {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}, "
          f"Python {sys.version.split()[0]}, crc32c implementation: {records.crc32c_implementation()}")
    failed = False
    for key, label, ours, peer in rows:
        t_ours, t_peer = compare(ours, peer, args.repeat)
        ratio = t_peer / t_ours
        ok = ratio >= BARS[key]
        failed |= not ok
        print(f"{key}: {ratio:.2f}x  ({label}; median {t_ours * 1e6:.2f} us vs {t_peer * 1e6:.2f} us; "
              f"bar {BARS[key]}x {'met' if ok else 'MISSED'})")

    def ours_consume():
        for r in records.parse_batches(batch)[0].records():
            r.offset, r.timestamp, r.key, r.value

    def aiokafka_consume():
        for r in DefaultRecordBatch(batch):
            r.offset, r.timestamp, r.key, r.value

    t_ours, t_peer = compare(ours_consume, aiokafka_consume, args.repeat)
    print(f"context, no bar: consumer loop reading offset/timestamp/key/value of each record: "
          f"{t_peer / t_ours:.2f}x  (records() vs aiokafka iteration; median {t_ours * 1e6:.2f} us vs "
          f"{t_peer * 1e6:.2f} us)")
    return 1 if failed else 0


def cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown CPU"


if __name__ == "__main__":
    sys.exit(main())
