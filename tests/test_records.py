"""Record batches v2: building, parsing, columns, and the header fields Kafka defines."""
import struct
from collections.abc import Mapping

import numpy as np
import pytest

from chronik_perf.records import (
    BatchBuilder, CODECS, Columns, CorruptRecordError, Record, build_batch, crc32c, parse_batches,
)

VALUES = [b"v0", None, b"", b"value-three" * 30]
KEYS = [b"k0", b"k1", None, b""]
TIMESTAMPS = [1_700_000_000_005, 1_700_000_000_001, 1_700_000_000_009, 1_700_000_000_002]
HEADERS = [[("h", b"1")], [], [("null", None), ("é", b"")], [("a", b"x" * 200), ("b", b"y")]]


@pytest.mark.parametrize("codec", CODECS)
def test_build_then_parse_every_field(codec):
    data = build_batch(VALUES, KEYS, timestamps=TIMESTAMPS, headers=HEADERS, base_offset=42,
                       compression=codec, producer_id=7, producer_epoch=3, base_sequence=11,
                       transactional=True, partition_leader_epoch=5)
    [batch] = parse_batches(data)
    assert (batch.base_offset, batch.partition_leader_epoch, batch.magic) == (42, 5, 2)
    assert batch.batch_length == len(data) - 12 and batch.size_in_bytes == len(data)
    assert batch.crc == crc32c(data[21:]) == struct.unpack_from(">I", data, 17)[0]
    assert batch.compression == codec and batch.attributes & 7 == CODECS.index(codec)
    assert batch.is_transactional and not batch.is_control and batch.timestamp_type == 0
    assert batch.last_offset_delta == 3 and batch.record_count == 4
    assert batch.base_timestamp == TIMESTAMPS[0] and batch.max_timestamp == max(TIMESTAMPS)
    assert (batch.producer_id, batch.producer_epoch, batch.base_sequence) == (7, 3, 11)
    assert (batch.last_offset, batch.next_offset) == (45, 46)
    got = batch.records()
    assert [r.offset for r in got] == [42, 43, 44, 45]
    assert [r.timestamp for r in got] == TIMESTAMPS
    assert [r.key for r in got] == KEYS
    assert [r.value for r in got] == VALUES
    assert [r.headers for r in got] == HEADERS
    assert got[0] == Record(42, TIMESTAMPS[0], b"k0", b"v0", [("h", b"1")])


@pytest.mark.parametrize("codec", CODECS)
def test_columns_index_the_data(codec):
    data = build_batch(VALUES, KEYS, timestamps=TIMESTAMPS, headers=HEADERS, compression=codec,
                       base_offset=100)
    [batch] = parse_batches(data)
    cols = batch.columns()
    for name in ("offset", "timestamp", "key_start", "key_length", "value_start", "value_length"):
        assert cols[name].dtype == np.int64 and cols[name].shape == (4,)
    assert list(cols["offset"]) == [100, 101, 102, 103]
    assert list(cols["timestamp"]) == TIMESTAMPS
    buf = memoryview(cols["data"])
    for i in range(4):
        for kind, expected in (("key", KEYS[i]), ("value", VALUES[i])):
            start, length = cols[f"{kind}_start"][i], cols[f"{kind}_length"][i]
            assert (None if length == -1 else bytes(buf[start:start + length])) == expected
    if codec == "none":
        assert cols["data"] is data, "uncompressed columns index the caller's buffer, no copy"



@pytest.mark.parametrize("count", [1, 4, 5, 300])
def test_columns_are_a_read_only_mapping_whose_arrays_outlive_it(count):
    """Small batches keep their columns inside the Columns object, larger ones in one allocation: either way every
    array stays valid after the mapping and the batch are gone, and the mapping reads like the dict it replaced."""
    data = build_batch([b"v%d" % i for i in range(count)], timestamps=list(range(count)), base_offset=7)
    cols = parse_batches(data)[0].columns()
    assert isinstance(cols, Columns) and isinstance(cols, Mapping)
    names = ["offset", "timestamp", "key_start", "key_length", "value_start", "value_length", "data"]
    assert list(cols) == list(cols.keys()) == names and len(cols) == 7 and "data" in cols and "x" not in cols
    assert [k for k, _ in cols.items()] == names and dict(cols).keys() == set(names)
    assert cols.get("missing", 5) == 5 and cols["data"] is data
    with pytest.raises(KeyError):
        cols["offsets"]
    with pytest.raises(TypeError):
        cols["offset"] = np.zeros(count, dtype=np.int64)
    offsets, lengths = cols["offset"], cols["value_length"]
    del cols
    assert offsets.dtype == np.int64 and offsets.flags.c_contiguous and offsets.shape == (count,)
    assert offsets.tolist() == list(range(7, 7 + count))
    assert lengths.tolist() == [len(b"v%d" % i) for i in range(count)]

def test_defaults_and_now_timestamps():
    import time
    before = int(time.time() * 1000)
    [batch] = parse_batches(build_batch([b"a", b"b"]))
    after = int(time.time() * 1000)
    assert batch.partition_leader_epoch == -1 and batch.producer_id == -1
    assert batch.producer_epoch == -1 and batch.base_sequence == -1 and not batch.is_transactional
    assert before <= batch.base_timestamp <= batch.max_timestamp <= after
    assert [r.key for r in batch.records()] == [None, None]


def test_values_as_any_buffer_and_timestamps_as_numpy():
    values = [bytearray(b"ba"), memoryview(b"mv"), np.frombuffer(b"np", dtype=np.uint8), b"b"]
    data = build_batch(values, timestamps=np.array([5, 6, 7, 8]))
    assert [r.value for r in parse_batches(data)[0].records()] == [b"ba", b"mv", b"np", b"b"]



class Stamp(int):
    """An int subclass: build_batch converts it through int's protocol, not its own fast read of exact ints."""


@pytest.mark.parametrize("codec", ["none", "zstd"])
def test_plain_and_general_inputs_build_the_same_bytes(codec):
    """Lists of bytes/None with int timestamps are read in place; any other input (tuples held first, a bytearray
    value, an int subclass or numpy timestamps) takes the general path. Both write the same batch."""
    values, keys, stamps = [b"v0", None, b"", b"x" * 300], [b"k0", None, b"k2", b""], [5, 3, 2**40, 9]
    plain = build_batch(values, keys, timestamps=stamps, compression=codec, base_offset=3)
    variants = [
        build_batch(tuple(values), tuple(keys), timestamps=tuple(stamps), compression=codec, base_offset=3),
        build_batch(iter(values), iter(keys), timestamps=iter(stamps), compression=codec, base_offset=3),
        build_batch(values[:3] + [bytearray(values[3])], keys, timestamps=stamps, compression=codec, base_offset=3),
        build_batch(values, keys[:3] + [memoryview(b"")], timestamps=stamps, compression=codec, base_offset=3),
        build_batch(values, keys, timestamps=[Stamp(t) for t in stamps], compression=codec, base_offset=3),
        build_batch(values, keys, timestamps=np.array(stamps), compression=codec, base_offset=3),
    ]
    assert all(v == plain for v in variants)
    records = parse_batches(plain)[0].records()
    assert [(r.key, r.value, r.timestamp) for r in records] == list(zip(keys, values, stamps))
    with pytest.raises(OverflowError):
        build_batch([b"a"], timestamps=[2**63])
    with pytest.raises(ValueError, match="2 keys for 1 values"):
        build_batch((b"a",), (b"k", b"k"))

def test_build_argument_errors():
    with pytest.raises(ValueError, match="at least one record"):
        build_batch([])
    with pytest.raises(ValueError, match="keys"):
        build_batch([b"a"], [b"k", b"k2"])
    with pytest.raises(ValueError, match="timestamps"):
        build_batch([b"a"], timestamps=[1, 2])
    with pytest.raises(TypeError, match="header key"):
        build_batch([b"a"], headers=[[(b"bytes-key", b"v")]])
    with pytest.raises(TypeError):
        build_batch([1234])
    with pytest.raises(ValueError, match="unknown compression"):
        build_batch([b"a"], compression="brotli")


def test_large_values_grow_the_buffer():
    values = [b"s"] + [bytes([i]) * (100000 + i) for i in range(5)]
    [batch] = parse_batches(build_batch(values))
    assert [r.value for r in batch.records()] == values


@pytest.mark.parametrize("codec", CODECS)
def test_batch_builder_matches_build_batch(codec):
    builder = BatchBuilder(codec, base_offset=9, producer_id=1, producer_epoch=2, base_sequence=3)
    for v, k, t, h in zip(VALUES, KEYS, TIMESTAMPS, HEADERS):
        assert builder.append(v, key=k, timestamp=t, headers=h)
    assert len(builder) == 4
    built = builder.build()
    expected = build_batch(VALUES, KEYS, timestamps=TIMESTAMPS, headers=HEADERS, base_offset=9,
                           compression=codec, producer_id=1, producer_epoch=2, base_sequence=3)
    if codec == "none":
        assert built == expected
        assert builder.size_in_bytes == len(built)
    assert [r.value for r in parse_batches(built)[0].records()] == VALUES


def test_batch_builder_refuses_past_max_bytes_but_always_takes_the_first():
    builder = BatchBuilder(max_bytes=100)
    assert builder.append(b"x" * 500)           # the first record always fits
    assert not builder.append(b"y")
    assert len(builder) == 1
    builder = BatchBuilder(max_bytes=61 + 3 * 20)
    results = [builder.append(b"z" * 10, timestamp=1) for _ in range(5)]
    assert results == [True, True, True, False, False]
    assert builder.size_in_bytes <= 61 + 3 * 20
    assert len(parse_batches(builder.build())[0].records()) == 3
    with pytest.raises(ValueError):
        BatchBuilder().build()


def test_several_batches_and_trailing_partial():
    first = build_batch([b"a", b"b"], base_offset=0)
    second = build_batch([b"c"], base_offset=2)
    batches = parse_batches(first + second + second[:30])
    assert [b.base_offset for b in batches] == [0, 2]
    assert [b.position for b in batches] == [0, len(first)]
    assert len(parse_batches(first + second[:-1])) == 1


def test_log_append_time_uses_max_timestamp():
    data = bytearray(build_batch([b"a", b"b"], timestamps=[10, 20]))
    struct.pack_into(">h", data, 21, struct.unpack_from(">h", data, 21)[0] | 0x08)
    struct.pack_into(">I", data, 17, crc32c(bytes(data[21:])))
    [batch] = parse_batches(bytes(data))
    assert batch.timestamp_type == 1
    assert [r.timestamp for r in batch.records()] == [20, 20]
    assert list(batch.columns()["timestamp"]) == [20, 20]


def test_empty_batch_as_left_by_compaction():
    data = bytearray(build_batch([b"a"]))
    data = data[:61]
    struct.pack_into(">i", data, 8, 61 - 12)
    struct.pack_into(">i", data, 57, 0)
    struct.pack_into(">I", data, 17, crc32c(bytes(data[21:])))
    [batch] = parse_batches(bytes(data))
    assert batch.records() == [] and len(batch.columns()["offset"]) == 0


@pytest.mark.parametrize("base,delta", [(-(1 << 63) + 1, -3), ((1 << 63) - 2, 5)], ids=["below", "above"])
def test_a_timestamp_delta_past_the_64_bit_range_is_a_corrupt_record(base, delta):
    """Found by fuzz_records under UBSan: base timestamp + delta overflowed int64 (undefined in C, and a wrapped
    timestamp under -fwrapv); both readers reject it, naming the record."""
    raw = bytearray(build_batch([b"v"], timestamps=[base]))
    ts_delta = 61 + 2           # records start at 61: length varint (1 byte), attributes (1), timestamp delta
    assert raw[ts_delta] == 0
    raw[ts_delta] = (delta << 1) ^ (delta >> 63)        # zigzag, one byte for these deltas
    struct.pack_into(">I", raw, 17, crc32c(bytes(raw[21:])))
    batch = parse_batches(bytes(raw))[0]
    for read in (batch.records, batch.columns):
        with pytest.raises(CorruptRecordError, match="timestamp delta takes the timestamp outside the 64-bit range"
                                                     " in record 0"):
            read()
