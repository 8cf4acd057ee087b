"""Consumer groups, classic protocol: FindCoordinator, JoinGroup, SyncGroup, Heartbeat, OffsetCommit/Fetch, LeaveGroup.

``GroupConsumer`` wraps a ``Consumer``: ``poll()`` joins (or rejoins when the heartbeat thread learns of a
rebalance) before fetching. The elected leader assigns partitions with the ``range`` or ``roundrobin`` assignor
(the same results as Kafka's RangeAssignor and RoundRobinAssignor). Every rebalance is timed: ``rebalances`` holds
one dict per completed join (generation, start and end on the monotonic clock, duration_ms, partitions).
"""
import threading
import time

from .. import protocol
from ..protocol import ProtocolError
from .errors import (CoordinatorNotAvailableError, KafkaClientError, MemberIdRequiredError, RebalanceInProgressError,
                     UnknownMemberIdError, check, error_for)
from .membership import COORDINATOR_CODES, GroupMember


def range_assign(members, partitions):
    """Kafka's RangeAssignor. members: {member_id: [topics]}; partitions: {topic: count}
    -> {member_id: {topic: [partitions]}}."""
    out = {m: {} for m in members}
    for topic in sorted(partitions):
        subscribed = sorted(m for m, topics in members.items() if topic in topics)
        if not subscribed:
            continue
        per, extra = divmod(partitions[topic], len(subscribed))
        start = 0
        for i, m in enumerate(subscribed):
            n = per + (1 if i < extra else 0)
            if n:
                out[m][topic] = list(range(start, start + n))
            start += n
    return out


def roundrobin_assign(members, partitions):
    """Kafka's RoundRobinAssignor: all (topic, partition) in order, dealt to the sorted members in turn, skipping
    members not subscribed to the topic."""
    out = {m: {} for m in members}
    order = sorted(members)
    i = 0
    for topic in sorted(partitions):
        for p in range(partitions[topic]):
            for _ in range(len(order)):
                m = order[i % len(order)]
                i += 1
                if topic in members[m]:
                    out[m].setdefault(topic, []).append(p)
                    break
    return out


ASSIGNORS = {"range": range_assign, "roundrobin": roundrobin_assign}


class GroupConsumer(GroupMember):
    """A member of consumer group ``group_id`` reading ``topics``; fetch options as for ``Consumer``.

    ``on_revoke(partitions)`` runs when a rebalance takes the assignment away (every partition: the classic
    protocol is eager), ``on_assign(partitions)`` when a join completes; both in the thread calling poll()."""

    def __init__(self, bootstrap_servers=None, group_id=None, topics=(), *, cluster=None, assignor="range",
                 session_timeout_ms=10000, rebalance_timeout_ms=30000, heartbeat_interval_ms=3000,
                 auto_offset_reset="earliest", request_timeout=30.0, reconnect_deadline=30.0,
                 client_id="chronik-perf-group", on_assign=None, on_revoke=None, **fetch_options):
        if assignor not in ASSIGNORS:
            raise ValueError(f"assignor must be one of {sorted(ASSIGNORS)}")
        super().__init__(bootstrap_servers, group_id, topics, cluster=cluster, auto_offset_reset=auto_offset_reset,
                         request_timeout=request_timeout, reconnect_deadline=reconnect_deadline,
                         client_id=client_id, on_assign=on_assign, on_revoke=on_revoke, fetch_options=fetch_options)
        self.assignor = assignor
        self.session_timeout_ms, self.rebalance_timeout_ms = session_timeout_ms, rebalance_timeout_ms
        self.heartbeat_s = heartbeat_interval_ms / 1000
        self.generation, self.leader = -1, False
        self._rejoin = threading.Event()
        self._rejoin.set()
        self._rejoin_since = None
        self._stop = threading.Event()
        self._hb_lock = threading.Lock()
        self._heartbeat = None

    # ------------------------------------------------------------------ membership

    def join(self):
        """Join (or rejoin) the group: JoinGroup, assignment by the leader, SyncGroup, committed offsets."""
        started = self._rejoin_since or time.monotonic()
        with self._hb_lock:
            self.consumer.unassign()
            deadline = time.monotonic() + 2 * self.rebalance_timeout_ms / 1000 + self.request_timeout
            while True:
                try:
                    assignment = self.cluster.retry(self._join_once, "JoinGroup")
                    break
                except RebalanceInProgressError:
                    if time.monotonic() > deadline:
                        raise
            owned = sorted((t, p) for t, parts in assignment.items() for p in parts)
            self._start_positions(assignment)
            self._rejoin.clear()
            self._rejoin_since = None
        ended = time.monotonic()
        self.rebalances.append({"generation": self.generation, "start": started, "end": ended,
                                "duration_ms": (ended - started) * 1000, "leader": self.leader,
                                "partitions": len(owned)})
        self.assignment = owned       # published last: whoever sees it also sees this rebalance recorded
        if self._heartbeat is None:
            self._heartbeat = threading.Thread(target=self._heartbeat_loop, name=f"heartbeat-{self.group_id}",
                                               daemon=True)
            self._heartbeat.start()
        return self.assignment

    def _join_once(self):
        subscription = protocol.encode_payload("ConsumerProtocolSubscription", 0,
                                               {"topics": self.topics, "user_data": None})
        body = {"group_id": self.group_id, "session_timeout_ms": self.session_timeout_ms,
                "rebalance_timeout_ms": self.rebalance_timeout_ms, "member_id": self.member_id,
                "group_instance_id": None, "protocol_type": "consumer", "reason": None,
                "protocols": [{"name": self.assignor, "metadata": subscription}]}
        answer = self._call("JoinGroup", body, timeout=self.rebalance_timeout_ms / 1000 + self.request_timeout)
        code = answer["error_code"]
        if code == MemberIdRequiredError.code:
            self.member_id = answer["member_id"]
            raise RebalanceInProgressError("rejoin with the member id the coordinator gave")
        if code == UnknownMemberIdError.code:           # start over as a new member
            self.member_id = ""
            raise RebalanceInProgressError("rejoin as a new member")
        if code in COORDINATOR_CODES:
            raise error_for(code, "JoinGroup")
        check(code, f"JoinGroup {self.group_id}")
        self.member_id, self.generation = answer["member_id"], answer["generation_id"]
        self.leader = answer["leader"] == self.member_id
        assignments = []
        if self.leader:
            assignments = self._assign(answer["members"], answer.get("protocol_name") or self.assignor)
        try:
            sync = self._call("SyncGroup", {"group_id": self.group_id, "generation_id": self.generation,
                                            "member_id": self.member_id, "group_instance_id": None,
                                            "protocol_type": "consumer", "protocol_name": self.assignor,
                                            "assignments": assignments})
        except ProtocolError as exc:
            # An answer that cannot be read is a failed sync too. librdkafka's mock answers a sync that arrives
            # after the leader's (it hands out assignments when the leader's sync lists every member) with
            # INVALID_REQUEST and a null assignment, which Kafka's schema does not allow.
            raise RebalanceInProgressError(f"SyncGroup {self.group_id}: unreadable answer ({exc})") from exc
        code = sync["error_code"]
        if code in COORDINATOR_CODES:
            raise error_for(code, "SyncGroup")
        if code:
            # A failed sync leaves the member without an assignment: rejoining is the only way on (as librdkafka
            # does).
            if code == UnknownMemberIdError.code:
                self.member_id = ""
            raise RebalanceInProgressError(f"SyncGroup {self.group_id}: {error_for(code)}")
        if not sync["assignment"]:
            return {}
        _, assigned = protocol.decode_payload("ConsumerProtocolAssignment", sync["assignment"])
        return {a["topic"]: list(a["partitions"]) for a in assigned["assigned_partitions"]}

    def _assign(self, members, protocol_name):
        subscriptions = {}
        for m in members:
            _, sub = protocol.decode_payload("ConsumerProtocolSubscription", m["metadata"])
            subscriptions[m["member_id"]] = set(sub["topics"])
        topics = sorted(set().union(*subscriptions.values()))
        # Assign from fresh metadata, as Kafka's clients do: partitions added since the last refresh get owners.
        self.cluster.refresh_metadata(topics)
        counts = {t: len(self.cluster.topic(t).partitions) for t in topics}
        plan = ASSIGNORS.get(protocol_name, ASSIGNORS[self.assignor])(subscriptions, counts)
        return [{"member_id": m, "assignment": protocol.encode_payload(
                    "ConsumerProtocolAssignment", 0,
                    {"assigned_partitions": [{"topic": t, "partitions": ps} for t, ps in sorted(parts.items())],
                     "user_data": None})} for m, parts in plan.items()]

    def _heartbeat_loop(self):
        while not self._stop.wait(self.heartbeat_s):
            if self._rejoin.is_set():
                continue
            with self._hb_lock:
                if self._rejoin.is_set() or self._stop.is_set():
                    continue
                try:
                    answer = self._call("Heartbeat", {"group_id": self.group_id, "generation_id": self.generation,
                                                      "member_id": self.member_id, "group_instance_id": None},
                                        timeout=self.heartbeat_s * 2 + 5)
                    code = answer["error_code"]
                except (KafkaClientError, ProtocolError):
                    code = CoordinatorNotAvailableError.code   # lost or unreadable: rejoin finds it again
                if code:
                    if code == UnknownMemberIdError.code:
                        self.member_id = ""
                    self._rejoin_since = time.monotonic()
                    self._rejoin.set()

    # ------------------------------------------------------------------ consuming

    def poll(self, timeout=1.0):
        """Rejoin if a rebalance is under way, then one Fetch round (list of FetchedPartition)."""
        if self._rejoin.is_set():
            if self.generation >= 0:
                self._commit_quietly()
                if self.on_revoke is not None and self.assignment:
                    self.on_revoke(self.assignment)
            self.join()
            if self.on_assign is not None:
                self.on_assign(self.assignment)
        return self.consumer.poll(timeout)

    @property
    def rebalancing(self):
        return self._rejoin.is_set()

    def _commit_identity(self):
        return self.generation, self.member_id, None

    def close(self, commit=True):
        """Commit (optionally), leave the group, stop heartbeats, close connections."""
        self._stop.set()
        try:
            if self.generation >= 0 and self.member_id:
                if commit and not self._rejoin.is_set():
                    self._commit_quietly()
                try:
                    self._call("LeaveGroup", {"group_id": self.group_id, "member_id": self.member_id,
                                              "members": [{"member_id": self.member_id, "group_instance_id": None,
                                                           "reason": None}]}, timeout=5)
                except (KafkaClientError, ProtocolError):
                    pass
        finally:
            if self._heartbeat is not None:
                self._heartbeat.join(self.heartbeat_s * 2 + 10)
            self._close_connections()
