"""Storage and index speed, one run, with ratios against peers measured in the same run.

    python micro/ratios_storage.py [--entries 1000000] [--segment-mib 256]

Prints: single OffsetIndex.lookup ns/call (random and sequential targets) on a 1M-entry index, next to the same
Python loop calling abs() (the interpreter's own floor on this machine at this moment); lookup_many of 1M
random targets against numpy.searchsorted on the same offsets; LogSegment.append GB/s of 16 KiB batches (to the
page cache) against plain file writes of the same bytes; LogSegment.recover() GB/s on a 256 MiB segment against
the `crc32c` package checksumming the same bytes. Files go to a temporary directory, deleted afterwards.
"""
import argparse
import os
import platform
import shutil
import tempfile
import time

import numpy as np

from chronik_perf.index import OffsetIndex
from chronik_perf.records import build_batch
from chronik_perf.storage import LogSegment


def best_of(fn, repeat=5):
    """Smallest wall time of `repeat` calls of fn()."""
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def sample_index(n):
    rng = np.random.default_rng(1)
    rel = np.cumsum(rng.integers(1, 4, n)).astype(np.int64)
    pos = np.cumsum(rng.integers(1, 300, n)).astype(np.int64)
    raw = np.empty(n, dtype=[("rel", ">i4"), ("pos", ">i4")])
    raw["rel"], raw["pos"] = rel, pos
    return raw.tobytes(), rel


def bench_lookups(n):
    data, rel = sample_index(n)
    index = OffsetIndex(data, 0)
    rng = np.random.default_rng(2)
    random_targets = rng.integers(0, int(rel[-1]) + 1, n)
    lookup = index.lookup
    for label, targets in (("random", random_targets[:200_000].tolist()),
                           ("sequential", np.arange(0, int(rel[-1]), max(int(rel[-1]) // 200_000, 1))[:200_000].tolist())):
        def run():
            for t in targets:
                lookup(t)
        def baseline():
            for t in targets:
                abs(t)
        ns = best_of(run, 3) / len(targets) * 1e9
        floor = best_of(baseline, 3) / len(targets) * 1e9
        print(f"OffsetIndex.lookup, {n:,} entries, {label} targets: {ns:.0f} ns/call "
              f"(the same loop calling abs(): {floor:.0f} ns/call)")
    ours = best_of(lambda: index.lookup_many(random_targets))
    theirs = best_of(lambda: np.searchsorted(rel, random_targets, side="right"))
    print(f"lookup_many of {n:,} random targets: {n / ours / 1e6:.1f} M/s; numpy.searchsorted on the same offsets: "
          f"{n / theirs / 1e6:.1f} M/s; ratio {theirs / ours:.2f}x")


def make_batch(size):
    """A v2 batch of about `size` bytes: 1 KiB records (built once, not timed)."""
    count = size // 1040
    value = os.urandom(1000)
    return build_batch([value] * count, [b"key-%05d" % i for i in range(count)],
                       timestamps=[1_700_000_000_000 + i for i in range(count)])


def bench_segment(workdir, segment_mib):
    batch = make_batch(16 * 1024)
    count = segment_mib * 1024 * 1024 // len(batch)
    total = count * len(batch)

    def append_all():
        d = tempfile.mkdtemp(dir=workdir)
        with LogSegment(d, 0, create=True, max_bytes=2**31 - 1) as seg:
            t0 = time.perf_counter()
            for _ in range(count):
                seg.append(batch)
            elapsed = time.perf_counter() - t0
        shutil.rmtree(d)
        return elapsed

    def write_all():
        path = os.path.join(workdir, "plain")
        with open(path, "wb", buffering=0) as f:
            t0 = time.perf_counter()
            for _ in range(count):
                f.write(batch)
            elapsed = time.perf_counter() - t0
        os.remove(path)
        return elapsed

    ours = min(append_all() for _ in range(3))
    plain = min(write_all() for _ in range(3))
    print(f"LogSegment.append of {count:,} batches of {len(batch):,} B ({total / 2**20:.0f} MiB): "
          f"{total / ours / 1e9:.2f} GB/s; plain file writes of the same batches: {total / plain / 1e9:.2f} GB/s; "
          f"ratio {plain / ours:.2f}x")

    d = os.path.join(workdir, "recover")
    os.mkdir(d)
    with LogSegment(d, 0, create=True, max_bytes=2**31 - 1) as seg:
        for _ in range(count):
            seg.append(batch)
    times = []
    for _ in range(3):
        with LogSegment(d, 0) as seg:
            t0 = time.perf_counter()
            assert seg.recover() == 0
            times.append(time.perf_counter() - t0)
    ours = min(times)
    with open(os.path.join(d, "00000000000000000000.log"), "rb") as f:
        data = f.read()
    import crc32c
    peer = best_of(lambda: crc32c.crc32c(data), 3)
    print(f"LogSegment.recover() of a {len(data) / 2**20:.0f} MiB segment: {len(data) / ours / 1e9:.2f} GB/s; "
          f"the crc32c package over the same bytes: {len(data) / peer / 1e9:.2f} GB/s; ratio {peer / ours:.2f}x")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, default=1_000_000)
    parser.add_argument("--segment-mib", type=int, default=256)
    args = parser.parse_args()
    cpu = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")),
               platform.processor())
    print(f"machine: {cpu}, {os.cpu_count()} cores, Python {platform.python_version()}")
    bench_lookups(args.entries)
    workdir = tempfile.mkdtemp(prefix="chronik-storage-bench-")
    try:
        bench_segment(workdir, args.segment_mib)
    finally:
        shutil.rmtree(workdir)


if __name__ == "__main__":
    main()
