"""LogSegment and Log: Kafka's file names, offset assignment, index rule, reads, recovery and corrupt files."""
import collections
import os
import shutil

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from chronik_perf._core import CorruptRecordError
from chronik_perf.index import OffsetIndex, TimeIndex
from chronik_perf.storage import CorruptLogError, Log, LogSegment, segment_file_name

from storage_records import batch_records, build_test_batch, peer_records

TS0 = 1_700_000_000_000


def make_batch(n, ts, value_size=100, base_offset=0, compression="none"):
    """n records with keys k0.., timestamps ts, ts+1, ..."""
    return build_test_batch([(b"k%d" % i, bytes([i % 251]) * value_size, ts + i, [("h", b"%d" % i)])
                             for i in range(n)], compression=compression, base_offset=base_offset)


def fill(segment, count, records_per_batch=4, value_size=100):
    batches = [make_batch(records_per_batch, TS0 + 10 * i, value_size, base_offset=999) for i in range(count)]
    return [segment.append(b) for b in batches], batches


def test_file_names_and_offset_assignment(tmp_path):
    assert segment_file_name(42, ".log") == "00000000000000000042.log"
    with LogSegment(tmp_path, 1000, create=True) as seg:
        assigned, batches = fill(seg, 5)
        assert assigned == [(1000 + 4 * i, 1003 + 4 * i) for i in range(5)]
        assert seg.next_offset == 1020 and seg.size == sum(map(len, batches))
        records = batch_records(seg.read(1000, 1 << 20))
        assert peer_records(seg.read(1000, 1 << 20)) == records     # kafka-python agrees: offsets, CRCs
    assert sorted(os.listdir(tmp_path)) == ["00000000000000001000.index", "00000000000000001000.log",
                                            "00000000000000001000.timeindex"]
    assert [r[0] for r in records] == list(range(1000, 1020))
    assert records[5][1:4] == (TS0 + 10 + 1, b"k1", bytes([1]) * 100)
    data = open(tmp_path / "00000000000000001000.log", "rb").read()
    assert data[8:] .startswith(batches[0][8:]) and int.from_bytes(data[:8], "big") == 1000


def test_append_rejects_bad_batches(tmp_path):
    good = make_batch(2, TS0)
    flipped = bytearray(good)
    flipped[-1] ^= 1
    with LogSegment(tmp_path, 0, create=True) as seg:
        for bad, problem in [(bytes(flipped), "CRC"), (good[:-1], "truncated"), (good + b"x", "buffer holds"),
                             (b"", "empty"), (good[:16] + b"\x01" + good[17:], "magic")]:
            with pytest.raises(CorruptRecordError, match=problem):
                seg.append(bad)
        assert seg.size == 0 and seg.next_offset == 0


def test_index_rule_matches_kafka(tmp_path):
    """An entry (last offset, position) is added when more than index_interval_bytes went in since the last one."""
    with LogSegment(tmp_path, 0, create=True, index_interval_bytes=1000) as seg:
        assigned, batches = fill(seg, 30, value_size=100)
        size = len(batches[0])                          # all batches have the same size here
        expected, since, position = [], 0, 0
        for (first, last), batch in zip(assigned, batches):
            if since > 1000:
                expected.append((last, position))
                since = 0
            since += len(batch)
            position += len(batch)
        offsets, positions = seg.offset_index.arrays()
        assert list(zip(offsets.tolist(), positions.tolist())) == expected and size > 300
        ts, ts_offsets = seg.time_index.arrays()
        assert ts.tolist() == [TS0 + 10 * (last // 4) + 3 for last, _ in expected]
        assert ts_offsets.tolist() == [last for last, _ in expected]


def test_read_returns_whole_batches(tmp_path):
    with LogSegment(tmp_path, 0, create=True, index_interval_bytes=500) as seg:
        _, batches = fill(seg, 20)
        size = len(batches[0])
        for offset in (0, 1, 37, 79):
            data = seg.read(offset, 1)                  # at least the batch holding the offset
            assert len(data) == size and batch_records(data)[0][0] == offset - offset % 4
        assert len(seg.read(10, 3 * size)) == 3 * size
        assert len(seg.read(10, 3 * size - 1)) == 2 * size
        assert seg.read(80, 1 << 20) == b""
        assert len(seg.read(-5, 1 << 20)) == 20 * size


def test_reopen_reads_state_back(tmp_path):
    with LogSegment(tmp_path, 0, create=True, index_interval_bytes=500) as seg:
        fill(seg, 20)
        max_ts = seg.max_timestamp
        entries = seg.offset_index.entries
    with LogSegment(tmp_path, 0) as seg:
        assert seg.next_offset == 80 and seg.max_timestamp == max_ts == TS0 + 193
        assert seg.offset_index.entries == entries and seg.time_index.last_entry == (max_ts, 79)
        assert seg.append(make_batch(1, TS0 + 5000)) == (80, 80)
    with LogSegment(tmp_path, 0) as seg:
        assert seg.next_offset == 81 and seg.max_timestamp == TS0 + 5000


def build_segment(directory, count=40, interval=700):
    with LogSegment(directory, 0, create=True, index_interval_bytes=interval) as seg:
        _, batches = fill(seg, count)
    return batches


def index_files(directory):
    return {name: open(os.path.join(directory, name), "rb").read()
            for name in os.listdir(directory) if name.endswith("index")}


def test_recover_rebuilds_the_same_indexes(tmp_path):
    build_segment(tmp_path)
    before = index_files(tmp_path)
    for name in before:
        os.remove(tmp_path / name)                      # Kafka rebuilds missing indexes on recovery
    with LogSegment(tmp_path, 0, index_interval_bytes=700) as seg:
        assert seg.offset_index.entries == 0 and seg.next_offset == 160     # still readable without indexes
        assert seg.recover() == 0
    assert index_files(tmp_path) == before


def test_recover_sees_the_file_as_it_is_now(tmp_path):
    """recover keeps the pages the open mapped only while they are the whole file: batches appended by another
    writer after the open are checked and indexed too, and a tail cut since is not read past."""
    batches = build_segment(tmp_path, count=10)
    grown = LogSegment(tmp_path, 0, index_interval_bytes=700)
    with LogSegment(tmp_path, 0, index_interval_bytes=700) as writer:
        fill(writer, 5)
    assert grown.recover() == 0 and grown.next_offset == 60
    assert grown.read(55) and grown.read(60) == b""
    grown.close()
    log_path = tmp_path / segment_file_name(0, ".log")
    cut = LogSegment(tmp_path, 0, index_interval_bytes=700)
    os.truncate(log_path, 12 * len(batches[0]) + 7)
    assert cut.recover() == 7 and cut.next_offset == 48
    assert log_path.stat().st_size == 12 * len(batches[0])
    cut.close()


@pytest.mark.parametrize("damage", ["truncate", "bitflip", "garbage", "zeros"])
def test_recover_truncates_from_the_first_bad_byte(tmp_path, damage):
    batches = build_segment(tmp_path)
    size = len(batches[0])
    log_path = tmp_path / segment_file_name(0, ".log")
    data = bytearray(log_path.read_bytes())
    if damage == "truncate":
        data = data[: 25 * size + 30]
        good = 25
    elif damage == "bitflip":
        data[17 * size + 200] ^= 0x10
        good = 17
    elif damage == "garbage":
        data += b"\xde\xad\xbe\xef" * 100
        good = 40
    else:
        data += bytes(4096)                             # a preallocated tail
        good = 40
    log_path.write_bytes(bytes(data))
    with LogSegment(tmp_path, 0, index_interval_bytes=700) as seg:
        assert seg.recover() == len(data) - good * size
        assert seg.size == good * size and seg.next_offset == 4 * good
        assert [r[0] for r in batch_records(seg.read(0, 1 << 30))] == list(range(4 * good))
        assert seg.offset_index.last_offset < 4 * good
        assert seg.append(make_batch(1, TS0 + 10**6)) == (4 * good, 4 * good)


@pytest.mark.parametrize("damaged", [None, 2, 5, 9])
def test_recover_with_large_batches(tmp_path, damaged):
    """Batches of 300 KiB and one of 1.5 MiB, with a flipped bit in any of them or none: recover keeps exactly the
    batches before the damaged one and, undamaged, rebuilds the same indexes."""
    sizes = [4, 4, 4, 4, 4, 20, 4, 4, 4, 4, 4]                  # records of 75 KiB; batch 5 is 1.5 MiB
    batches = [make_batch(n, TS0 + 100 * i, 75 << 10, base_offset=0) for i, n in enumerate(sizes)]
    with LogSegment(tmp_path, 0, create=True, max_bytes=1 << 30) as seg:
        for batch in batches:
            seg.append(batch)
    before = index_files(tmp_path)
    starts = [sum(map(len, batches[:i])) for i in range(len(batches) + 1)]
    log_path = tmp_path / segment_file_name(0, ".log")
    if damaged is not None:
        data = bytearray(log_path.read_bytes())
        data[starts[damaged] + len(batches[damaged]) // 2] ^= 0x01
        log_path.write_bytes(bytes(data))
    for name in before:
        os.remove(tmp_path / name)
    with LogSegment(tmp_path, 0) as seg:
        good = len(batches) if damaged is None else damaged
        assert seg.recover() == starts[-1] - starts[good]
        assert seg.size == starts[good] and seg.next_offset == sum(sizes[:good])
    if damaged is None:
        assert index_files(tmp_path) == before


def test_torn_segment_reads_only_after_recover(tmp_path):
    batches = build_segment(tmp_path)
    log_path = tmp_path / segment_file_name(0, ".log")
    with open(log_path, "r+b") as f:
        f.truncate(len(batches[0]) * 40 - 3)
    with LogSegment(tmp_path, 0, index_interval_bytes=700) as seg:
        assert "truncated batch" in seg.damage
        for use in (lambda: seg.read(0), lambda: seg.append(batches[0]), lambda: seg.find_offset_for_timestamp(0)):
            with pytest.raises(CorruptLogError, match="recover"):
                use()
        assert seg.recover() == len(batches[0]) - 3
        assert seg.damage is None and seg.next_offset == 156


@pytest.mark.parametrize("index_damage", ["past the log", "corrupt index file"])
def test_damaged_index_is_rebuilt_by_recover(tmp_path, index_damage):
    batches = build_segment(tmp_path)
    if index_damage == "past the log":
        with open(tmp_path / segment_file_name(0, ".log"), "r+b") as f:
            f.truncate(len(batches[0]) * 3)
    else:
        with open(tmp_path / segment_file_name(0, ".index"), "r+b") as f:
            f.write(b"\x7f" * 8)
    with LogSegment(tmp_path, 0, index_interval_bytes=700) as seg:
        with pytest.raises(CorruptLogError):
            seg.read(0)
        seg.recover()
        assert [r[0] for r in batch_records(seg.read(0, 1 << 30))] == list(range(seg.next_offset))


def test_truncate_to(tmp_path):
    batches = build_segment(tmp_path)
    size = len(batches[0])
    with LogSegment(tmp_path, 0, index_interval_bytes=700) as seg:
        assert seg.truncate_to(42) == 30 * size       # the batch holding 42 (40..43) goes whole
        assert seg.next_offset == 40 and seg.offset_index.last_offset < 40
        assert seg.time_index.last_entry[1] < 40
        assert seg.append(make_batch(1, TS0)) == (40, 40)


@pytest.mark.parametrize("compression", ["none", "zstd"])
def test_find_offset_for_timestamp(tmp_path, compression):
    """The first record whose timestamp is >= the target, as Kafka's time index lookup plus scan finds it."""
    d = tmp_path / "t-0"
    batches = [build_test_batch([(b"k", b"v" * 50, TS0 + 100 * b + 7 * i, []) for i in range(5)],
                                compression=compression) for b in range(60)]  # timestamps 100*b + 0, 7, .., 28
    with Log(d, segment_bytes=12 * len(batches[0]), index_interval_bytes=2 * len(batches[0]), create=True) as log:
        for batch in batches:
            log.append(batch)
        assert len(log.segments) > 3
        for target, want in [(TS0 - 5, 0), (TS0, 0), (TS0 + 1, 1), (TS0 + 28, 4), (TS0 + 29, 5),
                             (TS0 + 100 * 37 + 15, 37 * 5 + 3), (TS0 + 100 * 59 + 28, 299), (TS0 + 100 * 59 + 29, None)]:
            assert log.find_offset_for_timestamp(target) == want
        seg = log.segments[2]
        assert seg.find_offset_for_timestamp(TS0, starting_offset=seg.base_offset + 2) == seg.base_offset + 2


def test_log_rolls_and_reads_across_segments(tmp_path):
    d = tmp_path / "topic-0"
    batch_size = len(make_batch(4, TS0))
    with Log(d, segment_bytes=batch_size * 10, index_interval_bytes=500, create=True) as log:
        for i in range(95):
            assert log.append(make_batch(4, TS0 + 10 * i)) == (4 * i, 4 * i + 3)
        assert [s.base_offset for s in log.segments] == [0, 40, 80, 120, 160, 200, 240, 280, 320, 360]
        assert log.log_start_offset == 0 and log.log_end_offset == 380
    assert sorted(os.listdir(d))[:3] == ["00000000000000000000.index", "00000000000000000000.log",
                                         "00000000000000000000.timeindex"]
    # a rolled segment's indexes are trimmed and its time index ends with its largest timestamp
    assert os.path.getsize(d / segment_file_name(0, ".index")) == 8 * OffsetIndex(
        d / segment_file_name(0, ".index"), 0).entries
    assert TimeIndex(d / segment_file_name(40, ".timeindex"), 40).last_entry == (TS0 + 193, 79)
    with Log(d, segment_bytes=batch_size * 10) as log:
        assert log.log_end_offset == 380
        offset, seen = 0, []
        while data := log.read(offset, 2000):
            seen += [r[0] for r in batch_records(data)]
            offset = seen[-1] + 1
        assert seen == list(range(380))
        assert batch_records(log.read(203, 1))[0][0] == 200


def test_log_recover_drops_segments_after_a_corrupt_one(tmp_path):
    d = tmp_path / "topic-0"
    batch_size = len(make_batch(4, TS0))
    with Log(d, segment_bytes=batch_size * 10, create=True) as log:
        for i in range(35):
            log.append(make_batch(4, TS0 + 10 * i))
    with open(d / segment_file_name(40, ".log"), "r+b") as f:
        f.seek(3 * batch_size + 100)
        f.write(b"\xff")
    with Log(d, segment_bytes=batch_size * 10) as log:
        removed = log.recover()
        assert removed == (7 + 10 + 5) * batch_size        # the rest of segment 40, then 80 and 120
        assert [s.base_offset for s in log.segments] == [0, 40]
        assert log.log_end_offset == 52
    assert not os.path.exists(d / segment_file_name(80, ".log")) and not os.path.exists(d / segment_file_name(120, ".log"))


def test_log_rejects_overlapping_segments(tmp_path):
    d = tmp_path / "p"
    d.mkdir()
    build_segment(d, count=5)
    for suffix in (".log", ".index", ".timeindex"):
        shutil.copy(d / segment_file_name(0, suffix), d / segment_file_name(10, suffix))
    with pytest.raises(CorruptLogError, match="past the next segment"):
        Log(d)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.tuples(st.integers(0, 9000), st.integers(0, 255)), max_size=4), st.integers(0, 9000),
       st.binary(max_size=200))
def test_fuzz_damaged_log(tmp_path_factory, flips, cut, garbage):
    """Damaged .log files give CorruptLogError on open (never a crash) and recover() keeps exactly the good prefix."""
    d = tmp_path_factory.mktemp("fuzz")
    batches = build_segment(d, count=20)
    original = b"".join(batches)
    log_path = d / segment_file_name(0, ".log")
    data = bytearray(log_path.read_bytes())
    for pos, value in flips:
        if pos < len(data):
            data[pos] = value
    data = bytes(data[:cut]) + garbage
    log_path.write_bytes(data)
    try:
        with LogSegment(d, 0) as seg:
            seg.read(0, 1 << 20)
    except CorruptLogError:
        pass
    with LogSegment(d, 0, index_interval_bytes=700) as seg:
        seg.recover()
        kept = seg.size
        records = peer_records(seg.read(0, 1 << 30))     # the peer (kafka-python) validates what we kept
        offsets = [r[0] for r in records]
        assert offsets == sorted(set(offsets)) and seg.next_offset == (offsets[-1] + 1 if offsets else 0)
    # base offsets are outside the CRC, so a flip there may shift offsets; record contents never change
    assert [r[1:] for r in records] == [r[1:] for r in peer_records(original)][:len(records)]
    assert kept <= len(data)


FORGED_BATCHES = 40


@st.composite
def forged_entries(draw, heads):
    """Index entries over a segment whose batches are `heads` [(position, base, last, max_timestamp)]: entries at
    batch starts as Kafka writes them (each its batch's last offset and max timestamp), such entries with one
    field changed, or noise."""
    kind = draw(st.sampled_from(["valid", "changed", "noise"]))
    if kind == "noise":
        return (draw(st.lists(st.tuples(st.integers(0, 200), st.integers(0, 12000)), max_size=6)),
                draw(st.lists(st.tuples(st.integers(TS0 - 50, TS0 + 300), st.integers(0, 200)), max_size=6)))
    picked = sorted(draw(st.sets(st.integers(0, len(heads) - 1), max_size=8)))
    offsets = [[heads[i][2], heads[i][0]] for i in picked]
    times = [[heads[i][3], heads[i][2]] for i in sorted(draw(st.sets(st.integers(0, len(heads) - 1), max_size=8)))]
    if kind == "changed" and (offsets or times):
        entries = draw(st.sampled_from([e for e in (offsets, times) if e]))
        entry = entries[draw(st.integers(0, len(entries) - 1))]
        entry[draw(st.integers(0, 1))] += draw(st.integers(-3, 3).filter(bool))
    return [tuple(e) for e in offsets], [tuple(e) for e in times]


def check_forged_indexes(d, truth, offset_entries, time_entries, target):
    """Write forged index files over the good .log in d: a CorruptLogError, or reads that return exactly the right
    batches. Which one happened."""
    with open(d / segment_file_name(0, ".index"), "wb") as f:
        f.write(b"".join(o.to_bytes(4, "big", signed=True) + p.to_bytes(4, "big", signed=True)
                         for o, p in offset_entries))
    with open(d / segment_file_name(0, ".timeindex"), "wb") as f:
        f.write(b"".join(t.to_bytes(8, "big", signed=True) + o.to_bytes(4, "big", signed=True)
                         for t, o in time_entries))
    try:
        with LogSegment(d, 0) as seg:
            got = batch_records(seg.read(target, 1 << 20))
            found = seg.find_offset_for_timestamp(TS0 + 100)
    except CorruptLogError:
        return "CorruptLogError"
    assert got == [r for r in truth if r[0] >= target - target % 4]
    assert found == FORGED_BATCHES
    return "matches the reference" if offset_entries or time_entries else "no entries"


def test_fuzz_forged_indexes(tmp_path):
    """Forged index files over a good .log: CorruptLogError, or reads that return exactly the right batches. Both
    outcomes must come up often with entries present, or the test would check nothing."""
    build_segment(tmp_path, count=FORGED_BATCHES)
    with LogSegment(tmp_path, 0) as seg:
        truth = batch_records(seg.read(0, 1 << 30))
        heads = seg.batch_positions()
    outcomes = collections.Counter()

    @settings(max_examples=150, deadline=None)
    @given(forged_entries(heads), st.sampled_from([0, 37, 80, 159]))
    def run(entries, target):
        outcome = check_forged_indexes(tmp_path, truth, *entries, target)
        event(outcome)
        outcomes[outcome] += 1

    run()
    assert outcomes["matches the reference"] >= 30 and outcomes["CorruptLogError"] >= 30, outcomes
