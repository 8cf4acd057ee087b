"""Cross-checks against real peers: kafka-python 3 (pure Python records) and aiokafka (Cython records).
Our batches parse in their readers with identical fields; theirs parse in ours; uncompressed
output is byte-identical to kafka-python's DefaultRecordBatchBuilder."""
import pytest

from aiokafka.record._crecords import DefaultRecordBatch as AioBatch
from aiokafka.record._crecords import DefaultRecordBatchBuilder as AioBuilder
from kafka.record.default_records import DefaultRecordBatch as KpBatch
from kafka.record.default_records import DefaultRecordBatchBuilder as KpBuilder

from chronik_perf.records import CODECS, build_batch, parse_batches

VALUES = [b"first", None, b"", bytes(range(256)) * 8, b"last" * 500]
KEYS = [b"k1", None, b"k3", b"", b"k5"]
TIMESTAMPS = [1_600_000_000_000, 1_600_000_000_010, 1_599_999_999_990, 1_600_000_000_020, 1_600_000_000_020]
HEADERS = [[("a", b"1")], [], [("n", None)], [("x", b""), ("y", b"yy")], []]
CODEC_ID = {name: i for i, name in enumerate(CODECS)}


def rows(records):
    return [(r.offset, r.timestamp, r.key, r.value, list(r.headers)) for r in records]


EXPECTED = [(10 + i, TIMESTAMPS[i], KEYS[i], VALUES[i], HEADERS[i]) for i in range(5)]


@pytest.mark.parametrize("codec", CODECS)
@pytest.mark.parametrize("peer", [KpBatch, AioBatch], ids=["kafka-python", "aiokafka"])
def test_ours_parse_in_peer_readers(codec, peer):
    data = build_batch(VALUES, KEYS, timestamps=TIMESTAMPS, headers=HEADERS, base_offset=10,
                       compression=codec, producer_id=5, producer_epoch=1, base_sequence=100)
    batch = peer(bytes(data))
    assert batch.validate_crc()
    assert batch.compression_type == CODEC_ID[codec]
    assert (batch.base_offset, batch.last_offset_delta) == (10, 4)
    assert (batch.first_timestamp, batch.max_timestamp) == (TIMESTAMPS[0], max(TIMESTAMPS))
    assert (batch.producer_id, batch.producer_epoch, batch.base_sequence) == (5, 1, 100)
    assert rows(batch) == EXPECTED


def peer_build(builder_cls, codec):
    builder = builder_cls(2, CODEC_ID[codec], 0, 5, 1, 100, 1 << 20)
    for i in range(5):
        builder.append(i, TIMESTAMPS[i], KEYS[i], VALUES[i], HEADERS[i])
    return bytes(builder.build())


@pytest.mark.parametrize("codec", CODECS)
@pytest.mark.parametrize("builder", [KpBuilder, AioBuilder], ids=["kafka-python", "aiokafka"])
def test_peer_batches_parse_in_ours(codec, builder):
    data = peer_build(builder, codec)
    [batch] = parse_batches(data)
    assert batch.compression == codec
    assert (batch.producer_id, batch.producer_epoch, batch.base_sequence) == (5, 1, 100)
    assert (batch.base_timestamp, batch.max_timestamp) == (TIMESTAMPS[0], max(TIMESTAMPS))
    expected = [(e[0] - 10,) + e[1:] for e in EXPECTED]
    assert rows(batch.records()) == expected
    cols = batch.columns()
    assert list(cols["offset"]) == [0, 1, 2, 3, 4]
    assert list(cols["timestamp"]) == TIMESTAMPS


def test_uncompressed_bytes_identical_to_kafka_python():
    ours = build_batch(VALUES, KEYS, timestamps=TIMESTAMPS, headers=HEADERS, producer_id=5,
                       producer_epoch=1, base_sequence=100, partition_leader_epoch=0)
    assert ours == peer_build(KpBuilder, "none")


def test_uncompressed_bytes_identical_transactional():
    builder = KpBuilder(2, 0, 1, 77, 2, 0, 1 << 20)
    builder.append(0, 123, None, b"only", [])
    theirs = bytes(builder.build())
    ours = build_batch([b"only"], timestamps=[123], producer_id=77, producer_epoch=2, base_sequence=0,
                       transactional=True, partition_leader_epoch=0)
    assert ours == theirs
