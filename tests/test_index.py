"""OffsetIndex and TimeIndex: Kafka's floor lookups, append rules, zero tail, truncation and corrupt files."""
import collections
import os

import numpy as np
import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st

from chronik_perf.index import CorruptLogError, OffsetIndex, TimeIndex

OFFSET_DTYPE = np.dtype([("rel", ">i4"), ("pos", ">i4")])
TIME_DTYPE = np.dtype([("ts", ">i8"), ("rel", ">i4")])


def offset_index_bytes(rel, pos, tail_slots=0):
    entries = np.zeros(len(rel) + tail_slots, dtype=OFFSET_DTYPE)
    entries["rel"][: len(rel)] = rel
    entries["pos"][: len(rel)] = pos
    return entries.tobytes()


def time_index_bytes(ts, rel, tail_slots=0):
    entries = np.zeros(len(ts) + tail_slots, dtype=TIME_DTYPE)
    entries["ts"][: len(ts)] = ts
    entries["rel"][: len(ts)] = rel
    return entries.tobytes()


def reference_floor(keys, targets):
    """Index of the greatest key <= target, -1 if none (the oracle: numpy)."""
    return np.searchsorted(keys, targets, side="right") - 1


@pytest.fixture
def sample_offsets():
    rng = np.random.default_rng(3)
    rel = np.cumsum(rng.integers(1, 50, 5000))
    pos = np.cumsum(rng.integers(100, 20000, 5000))
    return rel, pos


def test_offset_lookup_is_a_floor(sample_offsets):
    rel, pos = sample_offsets
    base = 1_000_000
    idx = OffsetIndex(offset_index_bytes(rel, pos, tail_slots=100), base)
    assert idx.entries == len(rel) == len(idx)
    targets = np.concatenate([np.random.default_rng(4).integers(base - 100, base + rel[-1] + 100, 20000),
                              base + rel, [base, base - 1, 0, 2**62]])
    slots = reference_floor(base + rel, targets)
    want_offsets = np.where(slots >= 0, base + rel[slots], base)
    want_positions = np.where(slots >= 0, pos[slots], 0)
    got_offsets, got_positions = idx.lookup_many(targets)
    assert (got_offsets == want_offsets).all() and (got_positions == want_positions).all()
    for t in targets[::97]:
        assert idx.lookup(int(t)) == (int(want_offsets[list(targets).index(t)]),
                                      int(want_positions[list(targets).index(t)]))
    assert idx.lookup(base - 1) == (base, 0)          # below the first entry: Kafka's (base_offset, 0)
    offsets, positions = idx.arrays()
    assert (offsets == base + rel).all() and (positions == pos).all()
    assert idx.entry(0) == (base + int(rel[0]), int(pos[0])) and idx.last_offset == base + int(rel[-1])


def test_time_lookup_is_a_floor():
    rng = np.random.default_rng(5)
    ts = 1_700_000_000_000 + np.cumsum(rng.integers(1, 1000, 3000))
    rel = np.cumsum(rng.integers(0, 5, 3000))
    idx = TimeIndex(time_index_bytes(ts, rel, tail_slots=7), 42)
    targets = np.concatenate([rng.integers(ts[0] - 5000, ts[-1] + 5000, 10000), ts, [-1, 0, 2**63 - 1]])
    slots = reference_floor(ts, targets)
    got_ts, got_offsets = idx.lookup_many(targets)
    assert (got_ts == np.where(slots >= 0, ts[slots], -1)).all()
    assert (got_offsets == np.where(slots >= 0, 42 + rel[slots], 42)).all()
    assert idx.lookup(int(ts[0]) - 1) == (-1, 42)
    assert idx.lookup(int(ts[10])) == (int(ts[10]), 42 + int(rel[10]))
    assert idx.last_entry == (int(ts[-1]), 42 + int(rel[-1]))


def test_zero_tail_rules():
    # slot 0 may be all zeros (offset base at position 0); entries end at the first zero slot after it
    idx = OffsetIndex(offset_index_bytes([0, 5, 9], [0, 4100, 8300], tail_slots=50), 10)
    assert idx.entries == 3 and idx.lookup(12) == (10, 0) and idx.lookup(99) == (19, 8300)
    assert OffsetIndex(bytes(8 * 100), 0).entries == 0          # a preallocated, never written index
    assert OffsetIndex(b"", 0).entries == 0 and OffsetIndex(b"", 7).lookup(100) == (7, 0)
    assert TimeIndex(bytes(12 * 10), 0).entries == 0
    assert TimeIndex(b"", 3).lookup(5) == (-1, 3)


@pytest.mark.parametrize("data, problem", [
    (offset_index_bytes([1, 2], [10, 20]) + b"\x00", "multiple"),
    (offset_index_bytes([1, 5, 3], [10, 20, 30]), "not above"),
    (offset_index_bytes([1, 5, 7], [10, 30, 20]), "not above"),
    (offset_index_bytes([1, -5], [10, 20]), "negative"),
    (offset_index_bytes([1, 2], [10, 20], tail_slots=3) + offset_index_bytes([9], [99]), "after the zero"),
])
def test_corrupt_offset_index(data, problem):
    with pytest.raises(CorruptLogError, match=problem):
        OffsetIndex(data, 0)


@pytest.mark.parametrize("data, problem", [
    (time_index_bytes([5, 6], [1, 2])[:-1], "multiple"),
    (time_index_bytes([5, 5], [1, 2]), "not above"),
    (time_index_bytes([5, 6], [2, 1]), "not above"),
    (time_index_bytes([5, 6], [1, -2]), "negative"),
])
def test_corrupt_time_index(data, problem):
    with pytest.raises(CorruptLogError, match=problem):
        TimeIndex(data, 0)


def test_corrupt_index_file(tmp_path):
    path = tmp_path / "00000000000000000000.index"
    path.write_bytes(offset_index_bytes([3, 2], [1, 2]))
    with pytest.raises(CorruptLogError, match=str(path)):
        OffsetIndex(path, 0)


def test_offset_index_append_rules(tmp_path):
    path = tmp_path / "00000000000000000100.index"
    with OffsetIndex(path, 100, writable=True, max_index_size=8 * 4 + 5) as idx:
        assert os.path.getsize(path) == 32 and idx.max_entries == 4   # preallocated, rounded to whole entries
        idx.append(100, 0)
        idx.append(105, 4096)
        for offset, position in [(105, 9000), (104, 9000), (110, 4000), (99, 9000), (100 + 2**31, 9000),
                                 (111, -1), (111, 2**31)]:
            with pytest.raises(ValueError):
                idx.append(offset, position)
        idx.append(110, 4096)                      # equal positions are allowed
        idx.append(120, 8192)
        with pytest.raises(ValueError, match="full"):
            idx.append(130, 9000)
        assert idx.lookup(119) == (110, 4096)
    assert os.path.getsize(path) == 32                 # close trims to the entries (here: all slots)
    with OffsetIndex(path, 100) as idx:
        assert idx.arrays()[0].tolist() == [100, 105, 110, 120]
        with pytest.raises(ValueError, match="read-only"):
            idx.append(130, 9999)
    with pytest.raises(ValueError, match="read-only"):
        OffsetIndex(b"", 0, writable=True)


@pytest.mark.parametrize("target, left", [(0, 0), (100, 0), (104, 1), (105, 1), (106, 2), (120, 3), (121, 4),
                                          (10**9, 4)])
def test_truncate_to(tmp_path, target, left):
    path = tmp_path / "x.index"
    with OffsetIndex(path, 100, writable=True) as idx:
        for offset, position in [(100, 0), (105, 10), (110, 20), (120, 30)]:
            idx.append(offset, position)
        idx.truncate_to(target)
        assert idx.entries == left
        idx.append(500, 40)                            # appends continue after the cut
    with OffsetIndex(path, 100) as idx:
        assert idx.entries == left + 1
    tpath = tmp_path / "x.timeindex"
    with TimeIndex(tpath, 100, writable=True) as t:
        for ts, offset in [(1000, 100), (1001, 105), (1002, 110), (1003, 120)]:
            assert t.append(ts, offset)
        t.truncate_to(target)
        assert t.entries == left


def test_reopen_writable_keeps_entries_and_preallocates(tmp_path):
    path = tmp_path / "y.index"
    with OffsetIndex(path, 0, writable=True, max_index_size=800) as idx:
        idx.append(3, 100)
    assert os.path.getsize(path) == 8
    with OffsetIndex(path, 0, writable=True, max_index_size=800) as idx:
        assert idx.entries == 1 and os.path.getsize(path) == 800
        idx.append(9, 200)
        idx.flush()
        assert OffsetIndex(path, 0).entries == 2      # a reader sees the preallocated file's entries
    assert os.path.getsize(path) == 16


def test_time_index_maybe_append_rules(tmp_path):
    with TimeIndex(tmp_path / "t.timeindex", 10, writable=True, max_index_size=12 * 3) as t:
        assert not t.append(-1, 10)                    # not above the empty index's -1
        assert t.append(500, 12)
        assert not t.append(500, 13)                   # same timestamp: ignored, as Kafka does
        with pytest.raises(ValueError):
            t.append(400, 14)                          # timestamps never go back
        with pytest.raises(ValueError):
            t.append(600, 11)                          # nor offsets
        assert t.append(600, 12)                       # same offset, larger timestamp: fine
        assert t.is_full                               # the last slot is kept for the roll entry
        with pytest.raises(ValueError, match="full"):
            t.append(700, 20)
        assert t.append(700, 20, final=True)
        assert t.arrays()[0].tolist() == [500, 600, 700]


def test_closed_index_raises(tmp_path):
    idx = OffsetIndex(offset_index_bytes([1], [2]), 0)
    idx.close()
    with pytest.raises(ValueError, match="closed"):
        idx.lookup(1)


@st.composite
def index_sources(draw, time_index):
    """Bytes of an index file: valid entries (with a zero tail), valid entries with one byte changed, or noise."""
    kind = draw(st.sampled_from(["valid", "changed", "noise"]))
    if kind == "noise":
        return draw(st.binary(max_size=400))
    keys = sorted(draw(st.sets(st.integers(-1, 2**45) if time_index else st.integers(0, 2**31 - 1), max_size=40)))
    values = sorted(draw(st.lists(st.integers(0, 2**31 - 1), min_size=len(keys), max_size=len(keys))))
    tail = draw(st.integers(0, 8))
    data = bytearray(time_index_bytes(keys, values, tail) if time_index else offset_index_bytes(keys, values, tail))
    if kind == "changed" and data:
        data[draw(st.integers(0, len(data) - 1))] ^= draw(st.integers(1, 255))
    return bytes(data)


def check_index_bytes(cls, data, base, targets):
    """A clear error, or lookups that agree with a floor over the index's own entries: which one happened."""
    try:
        idx = cls(data, base)
    except CorruptLogError:
        return "CorruptLogError"
    keys, values = idx.arrays()
    t = np.array(targets, dtype=np.int64)
    slots = reference_floor(keys, t)
    got_keys, got_values = idx.lookup_many(t)
    missing_key, missing_value = (base, 0) if cls is OffsetIndex else (-1, base)
    assert (got_keys == np.where(slots >= 0, keys[np.maximum(slots, 0)] if len(keys) else 0, missing_key)).all()
    assert (got_values == np.where(slots >= 0, values[np.maximum(slots, 0)] if len(keys) else 0,
                                   missing_value)).all()
    for target in targets[:5]:
        got = idx.lookup(target)
        j = int(reference_floor(keys, np.array([target]))[0])
        assert got == ((int(keys[j]), int(values[j])) if j >= 0 else (missing_key, missing_value))
    return "matches the reference" if len(keys) else "empty"


@pytest.mark.parametrize("cls", [OffsetIndex, TimeIndex])
def test_fuzz_index_bytes(cls):
    """Any bytes give a clear error or an index whose lookups agree with a floor over its own entries; both
    outcomes (and non-empty indexes) must come up often, or the test would check nothing."""
    outcomes = collections.Counter()

    @settings(max_examples=200, deadline=None)
    @given(index_sources(cls is TimeIndex), st.integers(0, 2**40),
           st.lists(st.integers(-2**63, 2**63 - 1) | st.integers(-10, 2**46), max_size=20))
    def run(data, base, targets):
        outcome = check_index_bytes(cls, data, base, targets)
        event(outcome)
        outcomes[outcome] += 1

    run()
    assert outcomes["matches the reference"] >= 40 and outcomes["CorruptLogError"] >= 20, outcomes


def test_lookups_interleaved_with_appends_and_truncation(tmp_path):
    """Lookups stay exact while entries are appended and truncated (the lookup summary follows the entries)."""
    rng = np.random.default_rng(11)
    offsets, positions = [], []
    with OffsetIndex(tmp_path / "i.index", 0, writable=True) as idx, \
            TimeIndex(tmp_path / "t.timeindex", 0, writable=True) as tidx:
        for step in range(3000):
            if step % 700 == 699:
                cut = offsets[len(offsets) // 2]
                idx.truncate_to(cut)
                tidx.truncate_to(cut)
                del offsets[len(offsets) // 2:], positions[len(positions) // 2:]
            offset = (offsets[-1] if offsets else 0) + int(rng.integers(1, 9))
            position = (positions[-1] if positions else 0) + 100
            idx.append(offset, position)
            assert tidx.append(10 * offset, offset)
            offsets.append(offset)
            positions.append(position)
            target = int(rng.integers(0, offset + 5))
            j = int(reference_floor(np.array(offsets), np.array([target]))[0])
            assert idx.lookup(target) == ((offsets[j], positions[j]) if j >= 0 else (0, 0))
            assert tidx.lookup(10 * target) == ((10 * offsets[j], offsets[j]) if j >= 0 else (-1, 0))


def test_close_while_another_thread_looks_up():
    """close() during a GIL-free lookup_many in another thread is refused, never a crash on an unmapped file."""
    import threading
    idx = OffsetIndex(offset_index_bytes(np.arange(1, 200_001), np.arange(200_000) * 10), 0)
    targets = np.random.default_rng(1).integers(0, 200_000, 2_000_000)
    errors = []

    def reader():
        for _ in range(20):
            try:
                idx.lookup_many(targets)
            except ValueError as exc:                   # closed between two calls
                errors.append(str(exc))
                return

    thread = threading.Thread(target=reader)
    thread.start()
    while thread.is_alive():
        try:
            idx.close()
            break
        except ValueError as exc:
            assert "another thread" in str(exc)
    thread.join()
    idx.close()
    assert all("closed" in e for e in errors)
