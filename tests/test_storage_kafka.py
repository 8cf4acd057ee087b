"""Interop with a real Apache Kafka broker: its partition directory, read back with our Log and indexes.

One Kafka instance (own port, bounded heap) writes a topic with small segment.bytes and index.interval.bytes; after
a clean stop its files are opened with chronik_perf.storage. Then our LogSegment appends to a copy and Kafka,
restarted on that copy, serves what we wrote.
"""
import os
import random
import shutil
import time

import numpy as np
import pytest

from chronik_perf.index import OffsetIndex, TimeIndex
from chronik_perf.storage import Log

from conftest import fail_or_skip

confluent_kafka = pytest.importorskip("confluent_kafka")
from confluent_kafka.admin import AdminClient, NewTopic  # noqa: E402

from chronik_perf.brokers import BrokerError, instance_folder, start  # noqa: E402
from chronik_perf.brokers._process import free_port  # noqa: E402

from storage_records import batch_records, build_test_batch, peer_records  # noqa: E402

TOPIC = "storage-interop"
N_RECORDS = 6000
SEGMENT_BYTES = 1048576          # Kafka 4's minimum segment.bytes
INDEX_INTERVAL_BYTES = 10000
BASE_TS = int(time.time() * 1000) - 3_600_000


def expected_record(i):
    """The i-th produced record: (key, value, timestamp, headers); values vary in size and content."""
    rnd = random.Random(i)
    value = bytes(rnd.getrandbits(8) for _ in range(16)) * (10 + i % 70)
    headers = [("seq", str(i).encode())] if i % 3 else []
    return f"key-{i}".encode(), value, BASE_TS + 7 * i, headers


def _start_kafka(port, fresh):
    try:
        return start("kafka", port=port, fresh=fresh, heap="512m", timeout=180)
    except BrokerError as exc:
        fail_or_skip(f"Apache Kafka could not start: {exc}")


@pytest.fixture(scope="module")
def kafka_partition(tmp_path_factory):
    """Produce N_RECORDS with known contents, stop Kafka cleanly; yield (copy of the partition dir, port)."""
    port = free_port()
    broker = _start_kafka(port, fresh=True)
    try:
        admin = AdminClient({"bootstrap.servers": broker.bootstrap_servers})
        topic = NewTopic(TOPIC, num_partitions=1, replication_factor=1,
                         config={"segment.bytes": str(SEGMENT_BYTES),
                                 "index.interval.bytes": str(INDEX_INTERVAL_BYTES)})
        admin.create_topics([topic])[TOPIC].result(60)
        half = N_RECORDS // 2
        for compression, ids in (("none", range(half)), ("lz4", range(half, N_RECORDS))):
            producer = confluent_kafka.Producer({"bootstrap.servers": broker.bootstrap_servers,
                                                 "enable.idempotence": True, "linger.ms": 5,
                                                 "batch.size": 16384, "compression.type": compression})
            for i in ids:
                key, value, ts, headers = expected_record(i)
                producer.produce(TOPIC, key=key, value=value, timestamp=ts, headers=headers, partition=0)
                producer.poll(0)
            assert producer.flush(120) == 0
        log_dir = broker.log_dirs[0]
    finally:
        broker.stop()
    copy = tmp_path_factory.mktemp("kafka") / f"{TOPIC}-0"
    shutil.copytree(os.path.join(log_dir, f"{TOPIC}-0"), copy)
    yield str(copy), port
    shutil.rmtree(instance_folder("kafka", port), ignore_errors=True)


def read_all(log):
    """Every record from offset 0 on, following Log.read like a consumer's fetch loop."""
    out, offset = [], log.log_start_offset
    while True:
        data = log.read(offset, 1 << 20)
        if not data:
            return out
        records = batch_records(data)
        assert peer_records(data) == records            # kafka-python reads the same
        for rec in records:
            out.append(rec)
            offset = rec[0] + 1


def test_kafka_records_read_back(kafka_partition):
    directory, _ = kafka_partition
    with Log(directory) as log:
        assert len(log.segments) >= 3, "segment.bytes should have rolled several segments"
        assert log.log_start_offset == 0 and log.log_end_offset == N_RECORDS
        got = read_all(log)
    assert [r[0] for r in got] == list(range(N_RECORDS))
    for offset, ts, key, value, headers in got:
        assert (key, value, ts, headers) == expected_record(offset)


def test_kafka_indexes_agree_with_linear_scan(kafka_partition):
    directory, _ = kafka_partition
    rng = np.random.default_rng(7)
    with Log(directory) as log:
        for seg in log.segments:
            batches = seg.batch_positions()
            bases = np.array([b[1] for b in batches])
            lasts = np.array([b[2] for b in batches])
            positions = np.array([b[0] for b in batches])
            offsets_idx = OffsetIndex(seg.offset_index_path, seg.base_offset)
            assert offsets_idx.entries > 1
            entry_offsets, entry_positions = offsets_idx.arrays()
            # every entry names the last offset of the batch at its position (Kafka 4's rule)
            where = np.searchsorted(positions, entry_positions)
            assert (positions[where] == entry_positions).all() and (lasts[where] == entry_offsets).all()
            # a floor lookup plus a forward scan lands on the batch a linear scan finds
            targets = rng.integers(seg.base_offset, seg.next_offset, 500)
            _, start = offsets_idx.lookup_many(targets)
            holding = np.searchsorted(lasts, targets)           # first batch whose last offset >= target
            assert (positions[holding] >= start).all() and (bases[holding] <= targets).all()
            for t in targets[:50]:
                assert offsets_idx.lookup(int(t))[1] <= positions[np.searchsorted(lasts, t)]
            times = TimeIndex(seg.time_index_path, seg.base_offset)
            ts, ts_offsets = times.arrays()
            assert times.entries >= 1 and ts[-1] == seg.max_timestamp
            max_ts = np.maximum.accumulate(np.array([b[3] for b in batches]))
            # entry (T, O): T is the largest timestamp of the batches up to the one ending at O
            assert (max_ts[np.searchsorted(lasts, ts_offsets)] == ts).all()


def test_kafka_index_files_match_our_recover(kafka_partition, tmp_path):
    """Rebuilding the indexes from Kafka's .log with our recover() reproduces Kafka's index files byte for byte."""
    directory, _ = kafka_partition
    copy = tmp_path / "p"
    shutil.copytree(directory, copy)
    with Log(copy, index_interval_bytes=INDEX_INTERVAL_BYTES) as log:
        assert log.recover() == 0
    for name in sorted(os.listdir(directory)):
        if name.endswith((".index", ".timeindex")):
            with open(os.path.join(directory, name), "rb") as a, open(copy / name, "rb") as b:
                assert a.read() == b.read(), name


def test_kafka_timestamp_search(kafka_partition):
    directory, _ = kafka_partition
    with Log(directory) as log:
        for i in [0, 1, 2, 500, 2999, 3000, 3001, 4444, N_RECORDS - 1]:
            ts = expected_record(i)[2]
            assert log.find_offset_for_timestamp(ts) == i
            assert log.find_offset_for_timestamp(ts - 3) == i
        assert log.find_offset_for_timestamp(BASE_TS - 10**6) == 0
        assert log.find_offset_for_timestamp(BASE_TS + 7 * N_RECORDS) is None


def test_our_appends_are_served_by_kafka(kafka_partition):
    """Append batches with our Log to Kafka's partition directory; restarted, Kafka serves them to a consumer."""
    directory, port = kafka_partition
    extra = 40
    with Log(directory, segment_bytes=SEGMENT_BYTES, index_interval_bytes=INDEX_INTERVAL_BYTES) as log:
        for j in range(extra):
            first, last = log.append(build_test_batch([expected_record(N_RECORDS + j)]))
            assert first == last == N_RECORDS + j
    with Log(directory) as log:
        assert log.log_end_offset == N_RECORDS + extra
        assert [r[0] for r in read_all(log)] == list(range(N_RECORDS + extra))
    data = instance_folder("kafka", port) / "data" / f"{TOPIC}-0"
    shutil.rmtree(data)
    shutil.copytree(directory, data)
    broker = _start_kafka(port, fresh=False)
    try:
        consumer = confluent_kafka.Consumer({"bootstrap.servers": broker.bootstrap_servers, "group.id": "storage",
                                             "enable.auto.commit": False})
        consumer.assign([confluent_kafka.TopicPartition(TOPIC, 0, N_RECORDS - 5)])
        seen = []
        deadline = time.time() + 60
        while len(seen) < extra + 5 and time.time() < deadline:
            msg = consumer.poll(1.0)
            if msg is not None and not msg.error():
                seen.append((msg.offset(), msg.timestamp()[1], msg.key(), msg.value(),
                             [(k, v) for k, v in (msg.headers() or [])]))
        consumer.close()
    finally:
        broker.stop()
    assert [s[0] for s in seen] == list(range(N_RECORDS - 5, N_RECORDS + extra))
    for offset, ts, key, value, headers in seen:
        assert (key, value, ts, headers) == expected_record(offset)
