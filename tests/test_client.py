"""The client against real brokers: Apache Kafka, Tansu and librdkafka's mock (session fixtures in conftest.py).

Every message carries its sequence number in its first 8 bytes, so what comes back is checked message by message.
"""
import threading
import time
import uuid

import numpy as np
import pytest
from confluent_kafka import Consumer as ConfluentConsumer
from confluent_kafka import TopicPartition
from confluent_kafka import murmur2 as librdkafka_murmur2

from chronik_perf.client import Cluster, Consumer, GroupConsumer, Producer, errors
from chronik_perf.records import CODECS

BROKERS = ["kafka_broker", "tansu_broker", "mock_broker"]


@pytest.fixture(params=BROKERS)
def broker(request):
    b = request.getfixturevalue(request.param)
    b.label = request.param
    return b


@pytest.fixture
def cluster(broker):
    c = Cluster(broker.bootstrap_servers, reconnect_deadline=20)
    yield c
    c.close()


def new_topic(cluster, broker, partitions=3):
    """A fresh topic: created (Kafka, Tansu) or auto-created with 4 partitions (the mock, which has no
    CreateTopics). Returns (name, partition count)."""
    name = f"client-{uuid.uuid4().hex[:12]}"
    if "mock" in broker.label:
        return name, len(cluster.topic(name, allow_auto_create=True).partitions)
    cluster.create_topics([name], partitions)
    return name, partitions


def values_of(n, size=100, start=0):
    return [b"%08d" % i + bytes([i % 251]) * (size - 8) for i in range(start, start + n)]


def read_all(cluster, topic, expected, timeout=60, **options):
    """Every record of the topic as {partition: (offsets, first 8 bytes of the values)} until ``expected``."""
    consumer = Consumer(cluster=cluster, **options)
    consumer.assign(topic)
    got, heads, offsets = 0, {}, {}
    deadline = time.monotonic() + timeout
    while got < expected and time.monotonic() < deadline:
        for fp in consumer.poll(1.0):
            got += fp.count
            heads.setdefault(fp.partition, []).append(fp.value_heads(8))
            offsets.setdefault(fp.partition, []).append(fp.offsets())
    out = {p: (np.concatenate(offsets[p]), [bytes(h) for h in np.concatenate(heads[p])]) for p in heads}
    return out, got, consumer


@pytest.mark.parametrize("compression", CODECS)
def test_produce_many_and_read_back_every_codec(cluster, broker, compression):
    topic, partitions = new_topic(cluster, broker)
    values = values_of(5000)
    with Producer(cluster=cluster, acks=1, compression=compression, batch_size=16384) as producer:
        delivery = producer.produce_many(topic, values).wait(60)
    assert (delivery.messages, delivery.acked, delivery.failed) == (5000, 5000, 0)
    assert len(delivery.batch_latencies_ns) == sum(len(v) for v in delivery.acked_offsets.values())
    assert all(latency > 0 for latency in delivery.batch_latencies_ns)
    read, got, _ = read_all(cluster, topic, 5000)
    assert got == 5000
    heads = sorted(h for _, hs in read.values() for h in hs)
    assert heads == [v[:8] for v in values]
    for p, (offsets, _) in read.items():                 # offsets dense from 0 within each partition
        assert list(offsets) == list(range(len(offsets)))
    assert len(read) == partitions                        # runs went to every partition


@pytest.mark.parametrize("acks", [0, 1, "all"])
def test_acks_levels_deliver(cluster, broker, acks):
    topic, _ = new_topic(cluster, broker, 1)
    with Producer(cluster=cluster, acks=acks) as producer:
        delivery = producer.produce_many(topic, values_of(3000), partition=0).wait(60)
    assert delivery.acked == 3000 and delivery.failed == 0
    assert (delivery.acked_offsets == {}) == (acks == 0) == (delivery.batch_latencies_ns == [])
    _, got, _ = read_all(cluster, topic, 3000, timeout=30)
    assert got == 3000


def test_keyed_messages_land_where_kafkas_partitioner_puts_them(cluster, broker):
    topic, partitions = new_topic(cluster, broker, 5)
    keys = [b"key-%d" % (i % 37) for i in range(2000)]
    values = [b"%08d" % i + k for i, k in enumerate(keys)]
    with Producer(cluster=cluster, acks="all") as producer:
        assert producer.produce_many(topic, values, keys=keys).wait(60).acked == 2000
    read, got, _ = read_all(cluster, topic, 2000)
    assert got == 2000
    for p, (_, heads) in read.items():
        for h in heads:
            assert librdkafka_murmur2(keys[int(h)], partitions) == p


def test_idempotent_producer_writes_sequences(cluster, broker):
    topic, _ = new_topic(cluster, broker, 1)
    with Producer(cluster=cluster, acks="all", idempotent=True, batch_size=8192) as producer:
        assert producer.producer_id >= 0 and producer.producer_epoch >= 0
        producer.produce_many(topic, values_of(1000), partition=0).wait(60)
        producer.produce_many(topic, values_of(1000, start=1000), partition=0).wait(60)
    consumer = Consumer(cluster=cluster)
    consumer.assign(topic)
    batches, deadline = [], time.monotonic() + 30
    while sum(b.record_count for b in batches) < 2000 and time.monotonic() < deadline:
        for fp in consumer.poll(1.0):
            batches.extend(fp.batches)
    assert sum(b.record_count for b in batches) == 2000
    assert {b.producer_id for b in batches} == {producer.producer_id}
    assert [b.base_sequence for b in batches] == list(np.cumsum([0] + [b.record_count for b in batches[:-1]]))


def test_send_with_linger_delivers_without_an_explicit_flush(cluster, broker):
    topic, _ = new_topic(cluster, broker, 1)
    producer = Producer(cluster=cluster, acks=1, linger_ms=20)
    for v in values_of(50):
        producer.send(topic, v, partition=0)
    pending = producer.sent
    deadline = time.monotonic() + 10
    while pending.acked < 50 and time.monotonic() < deadline:   # the linger thread ships the open batch
        time.sleep(0.02)
    assert pending.acked == 50
    for v in values_of(10, start=50):
        producer.send(topic, v, key=b"k")
    assert producer.flush(30).acked == 60 and producer.sent.messages == 0
    producer.close()
    _, got, _ = read_all(cluster, topic, 60, timeout=20)
    assert got == 60


def test_our_batches_read_by_librdkafka(cluster, broker):
    topic, _ = new_topic(cluster, broker, 1)
    with Producer(cluster=cluster, acks=1, compression="zstd") as producer:
        producer.produce_many(topic, values_of(500), keys=[b"k%d" % i for i in range(500)], partition=0).wait(60)
    c = ConfluentConsumer({"bootstrap.servers": broker.bootstrap_servers, "group.id": topic,
                           "enable.auto.commit": False})
    c.assign([TopicPartition(topic, 0, 0)])
    got, deadline = [], time.monotonic() + 30
    while len(got) < 500 and time.monotonic() < deadline:
        got.extend(m for m in c.consume(500, 1.0) if m.error() is None)
    c.close()
    assert [(m.key(), m.value()) for m in got] == [(b"k%d" % i, v) for i, v in enumerate(values_of(500))]


def test_fetch_limits_and_sessions(cluster, broker):
    topic, partitions = new_topic(cluster, broker, 2)
    with Producer(cluster=cluster, batch_size=4096) as producer:
        producer.produce_many(topic, values_of(4000)).wait(60)
    read, got, consumer = read_all(cluster, topic, 4000, partition_max_bytes=8192, max_wait_ms=100)
    assert got == 4000
    _, got_all, unlimited = read_all(cluster, topic, 4000, max_wait_ms=100)
    assert got_all == 4000                               # 432 KB: a few 1 MiB fetches, many 8 KiB ones
    if "mock" not in broker.label:                       # the mock answers one batch per partition, whatever the limit
        assert unlimited.fetch_requests <= 4 < 10 <= consumer.fetch_requests
    sessions = [s.session_id for s in consumer._sessions.values()]
    if "kafka" in broker.label:                                            # Kafka hands out fetch sessions
        assert all(sessions)
    # min_bytes above what is there: the broker waits max_wait_ms before answering
    consumer.assign(topic, offsets="latest")
    t0 = time.monotonic()
    consumer.min_bytes, consumer.max_wait_ms = 1 << 20, 300
    assert consumer.poll(0.25) == []
    assert time.monotonic() - t0 >= 0.2


def test_list_offsets(cluster, broker):
    if "tansu" in broker.label:
        pytest.skip("Tansu 0.6 answers ListOffsets(latest) with a wrong offset (measured: 65031 for 66888 records)")
    topic, _ = new_topic(cluster, broker, 2)
    with Producer(cluster=cluster) as producer:
        producer.produce_many(topic, values_of(300), partition=1).wait(30)
    assert cluster.list_offsets(topic, [0, 1], -2) == {0: 0, 1: 0}
    assert cluster.list_offsets(topic, [0, 1], -1) == {0: 0, 1: 300}


def test_create_and_delete_topics(cluster, broker):
    if "mock" in broker.label:
        pytest.skip("librdkafka's mock has no working CreateTopics (see README, brokers)")
    name = f"client-admin-{uuid.uuid4().hex[:10]}"
    cluster.create_topics([name], 4)
    assert sorted(cluster.topic(name).partitions) == [0, 1, 2, 3]
    with pytest.raises(errors.TopicAlreadyExistsError):
        cluster.create_topics([name], 4)
    cluster.create_topics([name], 4, exist_ok=True)
    cluster.delete_topics([name])
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        answer = cluster.refresh_metadata([name])
        if answer["topics"][0]["error_code"] == 3:
            break
        time.sleep(0.2)
    assert name not in cluster.topics


def test_unknown_topic_is_a_named_error(broker):
    cluster = Cluster(broker.bootstrap_servers, reconnect_deadline=2)
    with pytest.raises(errors.KafkaClientError):
        cluster.topic(f"never-created-{uuid.uuid4().hex}", wait=1.0)
    cluster.close()


def _member(bootstrap, group, topic, stop, log, **kw):
    g = GroupConsumer(bootstrap, group, [topic], heartbeat_interval_ms=300, session_timeout_ms=6000,
                      rebalance_timeout_ms=8000, max_wait_ms=100, **kw)
    g.stop = stop
    g.count = 0
    log.append(g)
    while not stop.is_set():
        g.count += sum(fp.count for fp in g.poll(0.2))
    g.close()


@pytest.mark.parametrize("assignor", ["range", "roundrobin"])
def test_group_members_share_partitions_and_rebalance(broker, assignor):
    admin = Cluster(broker.bootstrap_servers)
    topic, partitions = new_topic(admin, broker, 4)
    with Producer(cluster=admin) as producer:
        producer.produce_many(topic, values_of(4000)).wait(60)
    group = f"client-group-{uuid.uuid4().hex[:8]}"
    stops, members, threads = [threading.Event(), threading.Event()], [], []
    for stop in stops:
        t = threading.Thread(target=_member, args=(broker.bootstrap_servers, group, topic, stop, members),
                             kwargs={"assignor": assignor}, daemon=True)
        t.start()
        threads.append(t)

    def settled():
        return (len(members) == 2 and not any(m.rebalancing for m in members)
                and sum(len(m.assignment) for m in members) == partitions and all(m.assignment for m in members))
    deadline = time.monotonic() + 120        # the mock waits session timeout - 1 s per rebalance round
    while not settled() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert settled(), [(m.assignment, m.rebalancing) for m in members]
    a, b = sorted(members, key=lambda m: m.stop is stops[1])   # b is the member that will leave
    assert not set(a.assignment) & set(b.assignment)
    assert abs(len(a.assignment) - len(b.assignment)) <= 1
    assert all(r["duration_ms"] > 0 for m in members for r in m.rebalances)
    stops[1].set()                                       # one member leaves: the other takes every partition
    threads[1].join(30)
    deadline = time.monotonic() + 120
    while len(a.assignment) != partitions and time.monotonic() < deadline:
        time.sleep(0.1)
    assert len(a.assignment) == partitions and len(a.rebalances) >= 2
    while a.count + b.count < 4000 and time.monotonic() < deadline:    # the rest of b's partitions, read by a
        time.sleep(0.1)
    stops[0].set()
    threads[0].join(30)
    assert a.count + b.count >= 4000                     # each partition read from its committed offset on
    check = GroupConsumer(broker.bootstrap_servers, group, [topic])
    committed = check.committed(topic, range(partitions))
    check.close(commit=False)
    assert sum(committed.values()) == 4000
    admin.close()


def test_produce_many_holds_its_unfilled_batch_for_linger_ms(mock_broker):
    """Full batches leave at once and stay within batch_size; a partition's last, unfilled batch waits linger_ms for
    the next call's messages (two calls' tails in one batch, as a Kafka producer's accumulator fills an open batch),
    leaves by itself once linger_ms passed, and at once with linger_ms=0."""
    from chronik_perf import _core
    with Cluster(mock_broker.bootstrap_servers) as cluster:
        topic = f"client-{uuid.uuid4().hex[:12]}"
        cluster.topic(topic, allow_auto_create=True)
        first, second = values_of(1000), values_of(10, start=1000)
        ends = _core.batch_bounds(first, None, 16384)
        assert len(_core.batch_bounds(first + second, None, 16384)) == len(ends)  # the tail has room for 10 more
        held = Producer(cluster=cluster, batch_size=16384, linger_ms=600_000)
        a = held.produce_many(topic, first, partition=0)
        assert held.stats["batches"] == len(ends) - 1                 # the full ones are on their way, the last held
        b = held.produce_many(topic, second, partition=0)
        assert held.stats["batches"] == len(ends) - 1
        held.flush(30)
        assert held.stats["batches"] == len(ends) and held.stats["records"] == 1010
        assert (a.acked, b.acked, a.failed + b.failed) == (1000, 10, 0)
        consumer = Consumer(cluster=cluster)
        consumer.assign(topic, [0])
        sizes, got = [], 0
        deadline = time.monotonic() + 60
        while got < 1010 and time.monotonic() < deadline:
            for fp in consumer.poll(1.0):
                got += fp.count
                sizes += [batch.size_in_bytes for batch in fp.batches]
        assert got == 1010 and len(sizes) == len(ends) and max(sizes) <= 16384, sizes
        lingering = Producer(cluster=cluster, linger_ms=20)
        assert lingering.produce_many(topic, values_of(5), partition=1).wait(30).acked == 5  # no flush needed
        assert lingering.stats["batches"] == 1
        at_once = Producer(cluster=cluster, linger_ms=0)
        at_once.produce_many(topic, values_of(5), partition=2)
        assert at_once.stats["batches"] == 1                              # sent inside the call
        for p in (held, lingering, at_once):
            p.close()


class _LateFollower(GroupConsumer):
    """A member that, the first time it syncs as a follower, sends its SyncGroup only after the leader's sync was
    answered; it records the answers (or errors) of its SyncGroup and LeaveGroup calls."""

    def __init__(self, *args, leader_synced, **kw):
        super().__init__(*args, **kw)
        self.leader_synced, self.held, self.calls = leader_synced, False, []

    def _call(self, api, body, **kw):
        if api == "SyncGroup" and not self.leader and not self.held:
            self.held = True
            assert self.leader_synced.wait(60)
        try:
            answer = super()._call(api, body, **kw)
        except Exception as exc:
            self.calls.append((api, exc))
            raise
        if api == "SyncGroup" and self.leader:
            self.leader_synced.set()
        self.calls.append((api, answer))
        return answer


def test_group_survives_the_mocks_refused_sync_and_leaves_at_once(mock_broker):
    """librdkafka's mock hands out the assignment as soon as the leader's SyncGroup lists every member, and refuses a
    follower's SyncGroup that arrives later with INVALID_REQUEST and a null assignment (which Kafka's schema does not
    allow): the follower must rejoin, not die. Leaving must take effect at once (LeaveGroup v0-2: the mock reads
    every version as those), not when the member's session times out."""
    admin = Cluster(mock_broker.bootstrap_servers)
    topic = f"client-{uuid.uuid4().hex[:12]}"
    partitions = len(admin.topic(topic, allow_auto_create=True).partitions)
    group, synced = f"client-group-{uuid.uuid4().hex[:8]}", threading.Event()
    stops, members, failures, threads = [threading.Event(), threading.Event()], [], [], []

    def run(stop):
        try:
            g = _LateFollower(mock_broker.bootstrap_servers, group, [topic], leader_synced=synced,
                              heartbeat_interval_ms=300, session_timeout_ms=4000, rebalance_timeout_ms=8000,
                              max_wait_ms=100)
            g.stop = stop
            members.append(g)
            while not stop.is_set():
                g.poll(0.2)
            g.close()
        except Exception as exc:                 # a member that dies fails the test with its error
            failures.append(exc)
    for stop in stops:
        threads.append(threading.Thread(target=run, args=(stop,), daemon=True))
        threads[-1].start()

    def owned(m):
        return set(m.assignment) if not m.rebalancing else set()

    def wait(condition):
        deadline = time.monotonic() + 120        # the mock waits session timeout - 1 s per rebalance round
        while not condition() and not failures and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not failures, failures
        assert condition(), [(m.assignment, m.rebalancing) for m in members]
    wait(lambda: len(members) == 2 and all(owned(m) for m in members)
         and len(owned(members[0]) | owned(members[1])) == partitions)
    refused = [c for m in members for api, c in m.calls if api == "SyncGroup" and isinstance(c, Exception)]
    assert refused and "null" in str(refused[0]), [m.calls for m in members]  # the scenario did happen
    leaving = next(m for m in members if m.stop is stops[1])
    stay = next(m for m in members if m.stop is stops[0])
    stops[1].set()
    threads[1].join(30)
    leaves = [c for api, c in leaving.calls if api == "LeaveGroup"]
    assert len(leaves) == 1 and isinstance(leaves[0], dict) and leaves[0]["error_code"] == 0, leaves
    wait(lambda: len(owned(stay)) == partitions)
    stops[0].set()
    threads[0].join(30)
    admin.close()


def test_linger_zero_send_gathers_while_the_window_is_full_instead_of_waiting(kafka_broker):
    """linger 0 with the one in-flight slot taken: send() does not wait for the answer; what is sent meanwhile leaves
    in the next request once an answer frees the slot (as Kafka's accumulator does), in order (idempotent: the
    broker checks the sequences). Before, every message was its own request behind the previous answer."""
    with Cluster(kafka_broker.bootstrap_servers, max_in_flight=1) as cluster:
        topic = f"client-{uuid.uuid4().hex[:12]}"
        cluster.create_topics([topic], 1)
        producer = Producer(cluster=cluster, acks="all", linger_ms=0, idempotent=True)
        n = 2000
        for v in values_of(n):
            producer.send(topic, v, partition=0)
        delivery = producer.flush(60)
        assert (delivery.acked, delivery.failed) == (n, 0)
        assert producer.stats["records"] == n and producer.stats["requests"] < n
        producer.close()
        out, got, _ = read_all(cluster, topic, n, timeout=30)
        assert got == n and out[0][1] == [b"%08d" % i for i in range(n)]


def test_send_names_each_failed_message_and_linger_zero_sends_at_once(kafka_broker):
    with Cluster(kafka_broker.bootstrap_servers) as cluster:
        topic = f"client-{uuid.uuid4().hex[:12]}"
        cluster.create_topics([topic], 2)
        producer = Producer(cluster=cluster, acks=1, linger_ms=0)
        producer.send(topic, b"a" * 100, partition=0)
        assert producer.stats["batches"] == 1  # on its way inside send(), no polling thread in between
        for _ in range(2):
            producer.send(topic, b"a" * 100, partition=0)
        producer.send(topic, b"x" * (2 << 20), partition=1)  # above the broker's 1 MB limit: this one fails
        for _ in range(2):
            producer.send(topic, b"a" * 100, partition=0)
        delivery = producer.flush(30)
        assert (delivery.acked, delivery.failed) == (5, 1)
        assert delivery.failed_indices().tolist() == [3]  # only the failed message, not every message sent
        producer.close()
