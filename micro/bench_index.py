"""Kafka's offset index (.index): single floor lookups, bulk `lookup_many` and appends, chronik_perf's OffsetIndex
against numpy.searchsorted (and the standard library's bisect for single lookups) over the same offsets.

Lookups run over 1000 random targets per call (items = 1000) on indexes of 1K and 1M entries (the latter close to
Kafka's 10 MiB index limit); lookup_many maps 100K random targets to (offset, position) arrays; append fills an
empty writable 10K-entry index file (fresh for every call, created outside the timing).
Floors: for single lookups, the same Python loop calling a C builtin that returns a 2-tuple (`divmod`, the
interpreter's call cost per target); for lookup_many, numpy.searchsorted alone (the bare binary search, no
gather of results); for append, `struct.pack_into` of each entry into a bytearray (`floor-pack_into`).
"""
import os
from functools import partial

from ._suite import Suite, count_label, now, scratch_dir

ENTRIES = (1000, 1_000_000)
TARGETS = 1000
MANY = 100_000
APPENDS = 10_000


def sample_index(n):
    """(raw bytes of an n-entry offset index, its relative offsets as int64): gaps of 1-3 offsets, 1-299 bytes."""
    import numpy as np
    rng = np.random.default_rng(1)
    rel = np.cumsum(rng.integers(1, 4, n)).astype(np.int64)
    pos = np.cumsum(rng.integers(1, 300, n)).astype(np.int64)
    raw = np.empty(n, dtype=[("rel", ">i4"), ("pos", ">i4")])
    raw["rel"], raw["pos"] = rel, pos
    return raw.tobytes(), rel


def index_and_targets(entries, count):
    """(raw index bytes, relative offsets as an int64 array, random target offsets as an int64 array)."""
    import numpy as np
    data, rel = sample_index(entries)
    targets = np.random.default_rng(3).integers(0, int(rel[-1]) + 1, count)
    return data, rel, targets


def lookup(impl, entries):
    def setup(meta):
        data, rel, targets = index_and_targets(entries, TARGETS)
        targets = targets.tolist()
        if impl == "chronik_perf":
            from chronik_perf.index import OffsetIndex
            find = OffsetIndex(data, 0).lookup
        elif impl == "numpy":
            import numpy as np
            positions = np.frombuffer(data, dtype=">i4")[1::2].astype(np.int64)
            search = np.searchsorted

            def find(t):
                i = search(rel, t, "right") - 1
                return (int(rel[i]), int(positions[i])) if i >= 0 else (0, 0)
        else:
            import bisect
            import numpy as np
            keys = rel.tolist()
            positions = np.frombuffer(data, dtype=">i4")[1::2].tolist()
            right = bisect.bisect_right

            def find(t):
                i = right(keys, t) - 1
                return (keys[i], positions[i]) if i >= 0 else (0, 0)
        return lambda: [find(t) for t in targets]
    return setup


def lookup_many(impl, entries):
    def setup(meta):
        import numpy as np
        data, rel, targets = index_and_targets(entries, MANY)
        if impl == "chronik_perf":
            from chronik_perf.index import OffsetIndex
            index = OffsetIndex(data, 0)
            return lambda: index.lookup_many(targets)
        positions = np.frombuffer(data, dtype=">i4")[1::2].astype(np.int64)

        def run():
            i = np.searchsorted(rel, targets, side="right") - 1
            found = i >= 0
            safe = np.where(found, i, 0)
            return np.where(found, rel[safe], 0), np.where(found, positions[safe], 0)
        return run
    return setup


def append(meta):
    from chronik_perf.index import OffsetIndex
    path = os.path.join(scratch_dir("index"), "00000000000000000000.index")
    offsets = [3 * i for i in range(APPENDS)]
    positions = [4096 * i for i in range(APPENDS)]

    def time_func(loops):
        total = 0.0
        for _ in range(loops):
            with open(path, "wb") as f:
                f.truncate(APPENDS * 8)
            index = OffsetIndex(path, 0, writable=True)
            add = index.append
            t0 = now()
            for offset, position in zip(offsets, positions):
                add(offset, position)
            total += now() - t0
            index.close()
        return total
    return time_func


def lookup_floor(entries):
    def setup(meta):
        targets = index_and_targets(entries, TARGETS)[2].tolist()
        return lambda: [divmod(t, 1) for t in targets]
    return setup


def lookup_many_floor(meta):
    import numpy as np
    _, rel, targets = index_and_targets(ENTRIES[-1], MANY)
    return partial(np.searchsorted, rel, targets, "right")


def append_floor(meta):
    import struct
    pack = struct.Struct(">ii").pack_into
    entries = [(8 * i, 3 * i, 4096 * i) for i in range(APPENDS)]

    def run():
        out = bytearray(APPENDS * 8)
        for at, offset, position in entries:
            pack(out, at, offset, position)
    return run


if __name__ == "__main__":
    suite = Suite("index", requires="chronik_perf.index")
    for entries in ENTRIES:
        for impl in ("chronik_perf", "numpy", "bisect"):
            suite.add("lookup", f"{count_label(entries)}entries", impl, lookup(impl, entries), items=TARGETS)
        suite.add("lookup", f"{count_label(entries)}entries", "floor-call", lookup_floor(entries), items=TARGETS)
    for impl in ("chronik_perf", "numpy"):
        suite.add("lookup_many", f"{count_label(ENTRIES[-1])}entries", impl, lookup_many(impl, ENTRIES[-1]), items=MANY)
    suite.add("lookup_many", f"{count_label(ENTRIES[-1])}entries", "floor-searchsorted", lookup_many_floor, items=MANY)
    suite.add_timed("append", f"{count_label(APPENDS)}entries", "chronik_perf", append, items=APPENDS,
                    nbytes=APPENDS * 8)
    suite.add("append", f"{count_label(APPENDS)}entries", "floor-pack_into", append_floor, items=APPENDS,
              nbytes=APPENDS * 8)
    suite.run()
