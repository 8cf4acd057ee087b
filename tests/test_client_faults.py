"""Brokers dying under the client. Each test starts its own broker on a free port and kills only that one.

- Tansu killed in the middle of a produce run: the client says so (a named error or failed deliveries), does not
  hang, and reconnects once a broker is back at the address.
- Kafka killed (SIGTERM then SIGKILL at once) in the middle of an acks=all run and restarted on its data: every
  message the client reported acknowledged is read back.
"""
import threading
import time
import uuid

import numpy as np
import pytest

from chronik_perf.brokers import BrokerError, start
from chronik_perf.brokers._process import free_port
from chronik_perf.client import BrokerUnavailableError, Cluster, Consumer, KafkaClientError, Producer
from conftest import fail_or_skip


def _start(name, port, **options):
    try:
        return start(name, port=port, **options)
    except BrokerError as exc:
        fail_or_skip(f"{name} broker unavailable: {exc}")


def _values(start, n):
    return [b"%012d" % i + b"v" * 88 for i in range(start, start + n)]


def test_tansu_killed_mid_produce_is_reported_and_the_client_reconnects():
    port = free_port()
    broker = _start("tansu", port)
    try:
        cluster = Cluster(broker.bootstrap_servers, reconnect_deadline=3, request_timeout=5)
        cluster.create_topics(["faults"], 1)
        producer = Producer(cluster=cluster, acks=1, delivery_timeout=6, request_timeout=5)
        killer = threading.Timer(0.5, broker.stop, kwargs={"timeout": 0})
        killer.start()
        reported, acked, t0 = None, 0, time.monotonic()
        while reported is None and time.monotonic() - t0 < 60:
            try:
                delivery = producer.produce_many("faults", _values(0, 20000), partition=0).wait(30)
            except KafkaClientError as exc:            # no leader connection at all: raised at once
                reported = exc
                break
            acked += delivery.acked
            if delivery.failed:
                reported = delivery.first_error
        killer.join()
        elapsed = time.monotonic() - t0
        assert isinstance(reported, BrokerUnavailableError), reported   # named: a lost broker, not a bug
        assert "unreachable" in str(reported)
        assert acked > 0 and elapsed < 20                # one reconnect deadline (3 s) and delivery timeout
        # The broker comes back at the same address (Tansu keeps nothing in memory mode): the same Cluster
        # reconnects and produces again.
        broker = _start("tansu", port)
        cluster.create_topics(["faults"], 1, exist_ok=True)
        again = producer.produce_many("faults", _values(0, 1000), partition=0).wait(30)
        assert again.acked == 1000 and again.failed == 0
        producer.close()
        cluster.close()
    finally:
        broker.stop(timeout=5)


def test_unreachable_after_restart_window_is_a_clear_error():
    port = free_port()
    broker = _start("tansu", port)
    cluster = Cluster(broker.bootstrap_servers, reconnect_deadline=2, request_timeout=3)
    cluster.create_topics(["gone"], 1)
    broker.stop(timeout=0)
    producer = Producer(cluster=cluster, acks=1, delivery_timeout=4, request_timeout=3)
    t0 = time.monotonic()
    with pytest.raises(BrokerUnavailableError, match="unreachable"):
        producer.produce_many("gone", _values(0, 100), partition=0).wait(20).raise_on_error()
    assert time.monotonic() - t0 < 15
    consumer = Consumer(cluster=cluster)
    with pytest.raises(BrokerUnavailableError):
        consumer.assign("gone", [0], offsets=0)
        consumer.poll(5)
    cluster.close()


def test_kafka_killed_mid_run_keeps_every_acknowledged_message():
    port = free_port()
    broker = _start("kafka", port, fresh=True)
    topic = f"durable-{uuid.uuid4().hex[:8]}"
    acked_ranges = []                                   # (partition, base_offset, count)
    try:
        cluster = Cluster(broker.bootstrap_servers, reconnect_deadline=3, request_timeout=5)
        cluster.create_topics([topic], 2)
        producer = Producer(cluster=cluster, acks="all", delivery_timeout=5, request_timeout=5, batch_size=16384)
        killer = threading.Timer(2.0, broker.stop, kwargs={"timeout": 0})
        killer.start()
        seq, t0, failed = 0, time.monotonic(), 0
        while time.monotonic() - t0 < 40:
            try:
                d = producer.produce_many(topic, _values(seq, 5000)).wait(30)
            except KafkaClientError:
                failed += 1
                break
            seq += 5000
            for p, ranges in d.acked_offsets.items():
                acked_ranges.extend((p, base, n) for base, n in ranges)
            if d.failed:
                failed += d.failed
                break
        killer.join()
        assert failed, "the broker was killed but every produce succeeded"
        assert acked_ranges, "nothing was acknowledged before the kill"
        cluster.close()
        broker = _start("kafka", port)                 # same data directory (kafka-<port>)
        cluster = Cluster(broker.bootstrap_servers, reconnect_deadline=30)
        consumer = Consumer(cluster=cluster, max_wait_ms=200)
        consumer.assign(topic)
        ends = cluster.list_offsets(topic, None)
        have = {p: set() for p in ends}
        deadline = time.monotonic() + 60
        while any(consumer.positions[topic, p] < ends[p] for p in ends) and time.monotonic() < deadline:
            for fp in consumer.poll(1.0):
                have[fp.partition].update(fp.offsets().tolist())
        missing = [(p, base, n) for p, base, n in acked_ranges
                   if not have[p].issuperset(range(base, base + n))]
        assert not missing, f"acknowledged but lost after restart: {missing[:5]}"
        total = sum(n for _, _, n in acked_ranges)
        assert sum(len(v) for v in have.values()) >= total
        assert np.all(np.diff(sorted(have[0])) == 1)     # dense offsets: nothing half-written in the middle
        cluster.close()
    finally:
        broker.stop(timeout=10)
