"""The client's KIP-848 consumer group protocol against the shared Kafka 4.4 (real broker), a fenced member also on
librdkafka's mock (which offers ConsumerGroupHeartbeat v1); a clear error on Tansu.

Members run in threads and log every record they read (partition, offset) and every assignment change, so the
checks cover ownership (every partition exactly once), delivery (nothing lost) and re-delivery (only on partitions
that changed hands) while a producer keeps writing through every membership change.
"""
import threading
import time
import uuid

import numpy as np
import pytest

from chronik_perf.client import Cluster, GroupConsumer, KIP848GroupConsumer, Producer, errors
from test_e2e_brokers import check_delivery, load_results, run_cli

PARTITIONS = 6
SETTLE_S = 60          # Kafka's default heartbeat interval is 5 s; a hand-over takes one to two of them
LEFT_S = 30            # below Kafka's 45 s session timeout, which a member that did not leave with epoch -1 would take


class Member(threading.Thread):
    """One group member polling in its own thread until stopped; logs reads and assignment changes."""

    def __init__(self, bootstrap, group, topic, name, moves):
        super().__init__(daemon=True, name=f"member-{name}")
        self.name_, self.moves, self.stop = name, moves, threading.Event()
        self.reads = []            # (partition, offsets array)
        self.group = KIP848GroupConsumer(
            bootstrap, group, [topic], max_wait_ms=100,
            on_assign=lambda ps: moves.append(("assign", name, sorted(p for _, p in ps))),
            on_revoke=lambda ps: moves.append(("revoke", name, sorted(p for _, p in ps))))
        self.error = None

    def run(self):
        try:
            while not self.stop.is_set():
                for fp in self.group.poll(0.2):
                    self.reads.append((fp.partition, fp.offsets()))
            self.group.close()
        except BaseException as exc:          # surfaced by the test
            self.error = exc

    def owned(self):
        return {p for _, p in self.group.assignment}


def _wait(condition, what, timeout=SETTLE_S):
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"not within {timeout} s: {what}"
        time.sleep(0.05)


def _settled(members):
    """Every partition owned by exactly one live member, every member owning some, no reconciliation pending."""
    owned = [p for m in members for p in m.owned()]
    return (sorted(owned) == list(range(PARTITIONS)) and all(m.owned() for m in members)
            and not any(m.group.rebalancing for m in members))


def test_kip848_members_share_partitions_through_joins_and_a_leave(kafka_broker):
    bootstrap = kafka_broker.bootstrap_servers
    admin = Cluster(bootstrap)
    topic = f"kip848-{uuid.uuid4().hex[:12]}"
    admin.create_topics([topic], PARTITIONS)
    group = f"kip848-group-{uuid.uuid4().hex[:8]}"
    moves, writing = [], threading.Event()
    producer = Producer(cluster=admin, linger_ms=5)
    sent = [0]

    def write():                        # keeps every partition growing while members come and go
        while not writing.wait(0.02):
            producer.produce_many(topic, [b"%08d" % (sent[0] + i) for i in range(30)],
                                  partition=np.arange(30, dtype=np.int32) % PARTITIONS)
            sent[0] += 30
    writer = threading.Thread(target=write, daemon=True)
    writer.start()
    a = Member(bootstrap, group, topic, "a", moves)
    a.start()
    _wait(lambda: _settled([a]), "the first member owns everything")
    b, c = Member(bootstrap, group, topic, "b", moves), Member(bootstrap, group, topic, "c", moves)
    b.start()
    c.start()
    _wait(lambda: _settled([a, b, c]), "three members share the partitions after two joined")
    assert all(m.group.member_epoch > 0 for m in (a, b, c))
    a.stop.set()
    a.join(30)
    assert a.group.assignment == []
    # leaving with epoch -1 frees its partitions at once; a member that merely vanished would hold them until
    # Kafka's session timeout (45 s) ran out
    _wait(lambda: _settled([b, c]), "two members share the partitions after one left", timeout=LEFT_S)
    writing.set()
    writer.join(30)
    producer.flush(60)
    producer.close()
    ends = admin.list_offsets(topic, None, -1)
    assert sum(ends.values()) == sent[0] > 0

    def read_to_end():
        got = {}
        for m in (a, b, c):
            for p, offs in list(m.reads):
                if len(offs):
                    got[p] = max(got.get(p, 0), int(offs[-1]) + 1)
        return all(got.get(p, 0) >= ends[p] for p in ends)
    _wait(read_to_end, "the last two members read every partition to its end")
    for m in (b, c):
        m.stop.set()
        m.join(30)
    assert not any(m.error for m in (a, b, c)), [m.error for m in (a, b, c)]

    owners = {}
    for kind, name, ps in moves:
        for p in ps:
            owners.setdefault(p, set()).add(name)
    moved = {p for p, names in owners.items() if len(names) > 1}
    assert moved and {"a", "b", "c"} == set().union(*owners.values()), moves   # the joins and the leave moved some
    assert {p for kind, _, ps in moves if kind == "revoke" for p in ps} <= moved
    for p in range(PARTITIONS):
        offsets = np.concatenate([o for m in (a, b, c) for q, o in m.reads if q == p])
        counts = np.bincount(offsets, minlength=ends[p])
        assert len(counts) == ends[p] and counts.min() >= 1, f"partition {p}: offsets lost"
        # Each hand-over commits before it is acknowledged and the new owner starts from that commit, so no offset
        # is read twice, not even on the partitions that moved
        assert counts.max() == 1, f"partition {p} (moved: {p in moved}): {int((counts > 1).sum())} offsets read twice"
    # every hand-over committed before it was acknowledged, and the last members committed on close
    reader = GroupConsumer(cluster=admin, group_id=group, topics=[topic])     # OffsetFetch only, never joins
    assert reader.committed(topic, range(PARTITIONS)) == ends
    admin.close()


@pytest.mark.parametrize("broker_name", ["kafka_broker", "mock_broker"])
def test_kip848_fenced_member_rejoins_with_epoch_0(request, broker_name):
    broker = request.getfixturevalue(broker_name)
    admin = Cluster(broker.bootstrap_servers)
    topic = f"kip848-{uuid.uuid4().hex[:12]}"
    if broker_name == "mock_broker":              # no CreateTopics: auto-created with 4 partitions
        partitions = sorted(admin.topic(topic, allow_auto_create=True).partitions)
    else:
        admin.create_topics([topic], 2)
        partitions = [0, 1]
    moves = []
    m = Member(broker.bootstrap_servers, f"kip848-fence-{uuid.uuid4().hex[:8]}", topic, "m", moves)
    m.start()
    _wait(lambda: sorted(m.owned()) == partitions and not m.group.rebalancing, "the member owns every partition")
    epoch = m.group.member_epoch
    with m.group._state:
        m.group.member_epoch = epoch + 10      # an epoch the broker never gave: it answers FENCED_MEMBER_EPOCH
    m.group._wake.set()
    _wait(lambda: ("revoke", "m", partitions) in moves, "the fenced member gives its partitions up")
    _wait(lambda: sorted(m.owned()) == partitions and not m.group.rebalancing, "the member joined again")
    assert 0 < m.group.member_epoch != epoch + 10
    kinds = [k for k, *_ in moves]
    assert kinds.count("revoke") == 1, moves
    for given in (moves[:kinds.index("revoke")], moves[kinds.index("revoke") + 1:]):    # before and after the fence
        assert {k for k, *_ in given} == {"assign"} and sorted(p for *_, ps in given for p in ps) == partitions, moves
    m.stop.set()
    m.join(30)
    assert m.error is None
    admin.close()


def test_kip848_on_a_broker_without_it_is_a_named_error(tansu_broker):
    with pytest.raises(errors.UnsupportedVersionError, match="KIP-848 consumer group protocol"):
        KIP848GroupConsumer(tansu_broker.bootstrap_servers, "kip848-refused", ["any"])


def test_e2e_groups_with_native_kip848_members(kafka_broker, tmp_path):
    proc = run_cli(["--target", "kafka", "--bootstrap-servers", kafka_broker.bootstrap_servers, "--driver", "native",
                    "--group-protocol", "consumer", "--tests", "groups", "--quick", "--producer-seconds", "0",
                    "--num-messages", "3000", "--message-size", "200", "--num-partitions", "3", "--producers", "2",
                    "--consumers", "2"], tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    doc, _ = load_results(tmp_path)
    [groups] = doc["results"]
    assert groups["driver"] == "native" and groups["group_protocol"] == "consumer"
    assert not groups.get("failed") and not groups.get("skipped"), groups
    assert groups["messages"] == 3000
    check_delivery("kafka", groups)
    for key in ("initial_assignment_ms", "rebalance_join_ms"):
        assert 0 < groups[key] < SETTLE_S * 1000, (key, groups)
    assert 0 < groups["rebalance_leave_ms"] < LEFT_S * 1000, groups
