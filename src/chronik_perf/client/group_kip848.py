"""Consumer groups, KIP-848 consumer protocol: ConsumerGroupHeartbeat (API key 68) with assignment by the broker.

``KIP848GroupConsumer`` joins with member epoch 0 and a member id of its own (ConsumerGroupHeartbeat v1 requires
the client to choose it), then heartbeats at the interval the broker answers. The broker's assignor decides;
each answer that carries an assignment names the partitions (by topic id, resolved through Metadata) the member
may own now. ``poll()`` reconciles the member to it incrementally: partitions taken away stop being fetched and
their positions are committed (OffsetCommit v9, member id and member epoch) before the heartbeat that reports the
new ownership, which is the acknowledgement the broker waits for; partitions given are read from the group's
committed offsets on. A fenced member (FENCED_MEMBER_EPOCH, UNKNOWN_MEMBER_ID) loses its partitions without a
commit and joins again with epoch 0; a heartbeat after one whose answer was lost repeats every field, as a join
does, so that the broker answers with the whole assignment; ``close()`` commits and leaves with epoch -1. ``rebalances`` holds one dict
per reconciliation (epoch, start when the change began: joining, or the answer that brought a new assignment;
end when the member reads its new partitions; duration_ms, partitions, added, revoked).
"""
import threading
import time
import uuid

from ..protocol import ProtocolError, pick_version
from .errors import (FencedMemberEpochError, KafkaClientError, UnknownMemberIdError, UnsupportedVersionError, check,
                     error_for)
from .membership import COORDINATOR_CODES, GroupMember

_API = "ConsumerGroupHeartbeat"
_FENCED = (UnknownMemberIdError.code, FencedMemberEpochError.code)   # drop everything, join again
_LEAVE_EPOCH = -1
_COMMIT_VERSION = 9                 # OffsetCommit with a member epoch and topic names (v10 names topics by id)
# Joining names the topics and sends an empty regex (no pattern; v1+). Kafka takes it as no regex; librdkafka's
# mock wants names and regex both set or both null, and aborts its process otherwise.
_NO_REGEX = ""
_METADATA_EVERY_S = 1.0             # refreshes for topic ids an assignment names but Metadata does not know yet
_JOIN_RETRY_S = 0.2                 # a heartbeat that failed on the way to the broker is tried again this soon


class KIP848GroupConsumer(GroupMember):
    """A member of consumer group ``group_id`` reading ``topics`` under the KIP-848 consumer protocol.

    ``server_assignor`` names the broker's assignor (None: the broker's default, ``uniform`` on Kafka).
    ``rebalance_timeout_ms`` is how long the broker waits for this member to give partitions up. Session timeout
    and heartbeat interval belong to the broker in this protocol. ``on_revoke(partitions)`` and
    ``on_assign(partitions)`` receive only the partitions that change hands (the protocol is incremental), in the
    thread calling poll(). A broker without the protocol raises UnsupportedVersionError at once."""

    def __init__(self, bootstrap_servers=None, group_id=None, topics=(), *, cluster=None, server_assignor=None,
                 rebalance_timeout_ms=30000, auto_offset_reset="earliest", request_timeout=30.0,
                 reconnect_deadline=30.0, client_id="chronik-perf-group", on_assign=None, on_revoke=None,
                 **fetch_options):
        super().__init__(bootstrap_servers, group_id, topics, cluster=cluster, auto_offset_reset=auto_offset_reset,
                         request_timeout=request_timeout, reconnect_deadline=reconnect_deadline,
                         client_id=client_id, on_assign=on_assign, on_revoke=on_revoke, fetch_options=fetch_options)
        self.server_assignor, self.rebalance_timeout_ms = server_assignor, rebalance_timeout_ms
        try:
            self._require_protocol()
        except BaseException:
            self._close_connections()
            raise
        self.member_id = uuid.uuid4().hex
        self.member_epoch = 0
        self.heartbeat_s = 1.0               # until the broker's first answer says otherwise
        self.error = None                    # a non-retriable error that ended the heartbeats; poll() raises it
        self._owned = {}                     # (topic id, partition) -> topic name: what the member reads
        self._reported = None                # the owned set the last heartbeat reported (None: not yet)
        self._target = None                  # the assignment of the last answer carrying one (None: none yet)
        self._joined = False                 # an answer to the current membership arrived (False again when fenced)
        self._changing_since = time.monotonic()   # start of the change under way (None: settled)
        self._lost = False                   # fenced while owning partitions: poll() drops them without a commit
        self._fences = 0
        self._full = True                    # the next heartbeat repeats every field (joining, or an answer lost)
        self._metadata_at = float("-inf")     # last Metadata refresh for topic ids of an assignment
        self._state = threading.Lock()       # the fields above, between poll() and the heartbeat thread
        self._send = threading.Lock()        # one heartbeat on the wire at a time
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._heartbeat = threading.Thread(target=self._heartbeat_loop, name=f"kip848-{group_id}", daemon=True)
        self._heartbeat.start()

    def _require_protocol(self):
        conn = self._coord()
        if not conn.supports(_API):
            raise UnsupportedVersionError(
                f"group {self.group_id!r}: the broker at {conn.host}:{conn.port} does not offer {_API} (API key 68), "
                f"so it cannot run the KIP-848 consumer group protocol; use the classic protocol")
        if pick_version("OffsetCommit", conn.api_versions) < _COMMIT_VERSION:
            raise UnsupportedVersionError(f"group {self.group_id!r}: the KIP-848 consumer protocol commits with "
                                          f"OffsetCommit v{_COMMIT_VERSION}, which the broker lacks")

    # ------------------------------------------------------------------ heartbeats (own thread)

    def _heartbeat_loop(self):
        next_at = time.monotonic()
        while True:
            self._wake.wait(max(0.0, next_at - time.monotonic()))
            self._wake.clear()
            if self._stop.is_set():
                return
            with self._state:
                releasing = self._lost           # poll() has not dropped the lost partitions yet
            if releasing:
                next_at = time.monotonic() + self.heartbeat_s
                continue
            try:
                fenced = self._heartbeat_once()
                next_at = time.monotonic() + (0 if fenced else self.heartbeat_s)
            except (KafkaClientError, ProtocolError) as exc:
                if not getattr(exc, "retriable", False):
                    self.error = exc
                    return
                next_at = time.monotonic() + min(self.heartbeat_s, _JOIN_RETRY_S if self.member_epoch == 0 else 1.0)

    def _heartbeat_once(self):
        """One heartbeat and what its answer says; True when the member was fenced and must join again."""
        with self._send:
            with self._state:
                epoch, owned = self.member_epoch, frozenset(self._owned)
            body = {"group_id": self.group_id, "member_id": self.member_id, "member_epoch": epoch,
                    "instance_id": None, "rack_id": None, "rebalance_timeout_ms": -1, "subscribed_topic_names": None,
                    "subscribed_topic_regex": None, "server_assignor": None,
                    "topic_partitions": None if owned == self._reported else _by_topic(owned)}
            if epoch == 0 or self._full:      # (re)joining, or the last answer was lost: everything, so the
                body.update(rebalance_timeout_ms=self.rebalance_timeout_ms, subscribed_topic_names=self.topics,
                            subscribed_topic_regex=_NO_REGEX, server_assignor=self.server_assignor,
                            topic_partitions=_by_topic(owned if epoch else ()))   # broker answers with the assignment
            self._full = True                 # until an answer arrives
            answer = self._call(_API, body, timeout=self.request_timeout)
            code = answer["error_code"]
            if code in _FENCED:
                # The last assignment stays the target: Kafka answers a join with a new one, librdkafka's mock
                # answers the join of a member it fenced with none when it keeps that member's partitions.
                with self._state:
                    self.member_epoch, self._reported, self._joined = 0, None, False
                    self._lost = bool(self._owned)
                    self._fences += 1
                    self._changing_since = time.monotonic()
                return True
            if code in COORDINATOR_CODES:
                raise error_for(code, f"{_API} {self.group_id}")
            check(code, f"{_API} {self.group_id}: {answer.get('error_message') or ''}")
            if answer.get("heartbeat_interval_ms", 0) > 0:
                self.heartbeat_s = answer["heartbeat_interval_ms"] / 1000
            self._full = False
            with self._state:
                self._reported = frozenset() if epoch == 0 else owned
                self._joined = True
                if answer.get("member_id"):
                    self.member_id = answer["member_id"]
                self.member_epoch = answer["member_epoch"]
                if answer.get("assignment") is not None:
                    self._target = frozenset((t["topic_id"], p) for t in answer["assignment"]["topic_partitions"]
                                             for p in t["partitions"])
                    if self._target != frozenset(self._owned) and self._changing_since is None:
                        self._changing_since = time.monotonic()
            return False

    # ------------------------------------------------------------------ reconciliation (the polling thread)

    def _reconcile(self):
        """Bring what the member reads in line with the broker's last assignment; wake the heartbeat to report it."""
        with self._state:
            lost, target, fences, epoch = self._lost, self._target, self._fences, self.member_epoch
            joined, owned = self._joined, dict(self._owned)
        if lost:
            pairs = [(name, p) for (_, p), name in sorted(owned.items())]
            self.consumer.unassign(pairs)
            with self._state:
                self._owned, self._lost = {}, False
            self.assignment = []
            if self.on_revoke is not None and pairs:
                self.on_revoke(pairs)
            self._wake.set()
            return
        if not joined or target is None or target == frozenset(owned):
            return
        revoked = sorted(k for k in owned if k not in target)
        added = sorted(k for k in target if k not in owned)
        names = self._topic_names({tid for tid, _ in added})
        taken = [(owned[k], k[1]) for k in revoked]
        if not taken and not any(tid in names for tid, _ in added):
            return                                     # only topics Metadata does not know yet: asked again later
        if taken:
            self._commit_quietly(set(taken))          # committed before the heartbeat that gives them up
            self.consumer.unassign(taken)
            for k in revoked:
                del owned[k]
            if self.on_revoke is not None:            # also before that heartbeat, as Kafka's consumer does
                self.on_revoke(taken)
        given = [(names[tid], p) for tid, p in added if tid in names]
        if given:
            by_topic = {}
            for name, p in given:
                by_topic.setdefault(name, []).append(p)
            self._start_positions(by_topic)
            owned.update(((tid, p), names[tid]) for tid, p in added if tid in names)
        with self._state:
            self._owned = owned
            if self._fences != fences:                 # fenced meanwhile: drop these at the next poll
                self._lost = bool(owned)
            started, self._changing_since = self._changing_since, None
        self.assignment = sorted((name, p) for (_, p), name in owned.items())
        self._wake.set()
        ended = time.monotonic()
        started = ended if started is None else started
        self.rebalances.append({"epoch": epoch, "start": started, "end": ended,
                                "duration_ms": (ended - started) * 1000, "partitions": len(owned),
                                "added": len(given), "revoked": len(taken)})
        if given and self.on_assign is not None:
            self.on_assign(given)

    def _topic_names(self, topic_ids):
        """{topic id: name} for the ids of an assignment; Metadata is asked again (at most once a second) for ids
        not known yet."""
        def known():
            return {info.topic_id: name for name, info in self.cluster.topics.items() if info.topic_id in topic_ids}
        names = known()
        if len(names) < len(topic_ids) and time.monotonic() - self._metadata_at >= _METADATA_EVERY_S:
            self._metadata_at = time.monotonic()
            self.cluster.refresh_metadata(self.topics)
            names = known()
        return names

    # ------------------------------------------------------------------ consuming

    def poll(self, timeout=1.0):
        """Reconcile with the broker's assignment, then one Fetch round (list of FetchedPartition)."""
        if self.error is not None:
            raise self.error
        self._reconcile()
        return self.consumer.poll(timeout)

    @property
    def rebalancing(self):
        """True until the member has joined, and while what it reads differs from the broker's last assignment."""
        with self._state:
            return (not self._joined or self._target is None or self._lost
                    or self._target != frozenset(self._owned))

    def _commit_identity(self):
        return self.member_epoch, self.member_id, _COMMIT_VERSION

    def close(self, commit=True):
        """Commit (optionally), leave the group with epoch -1, stop heartbeats, close connections."""
        self._stop.set()
        self._wake.set()
        try:
            self._heartbeat.join(self.request_timeout + 5)
            if self.member_epoch > 0:
                if commit and not self._lost:
                    self._commit_quietly()
                try:
                    self._call(_API, {"group_id": self.group_id, "member_id": self.member_id,
                                      "member_epoch": _LEAVE_EPOCH, "instance_id": None, "rack_id": None,
                                      "rebalance_timeout_ms": -1, "subscribed_topic_names": None,
                                      "subscribed_topic_regex": None, "server_assignor": None,
                                      "topic_partitions": None}, timeout=5)
                except (KafkaClientError, ProtocolError):
                    pass
        finally:
            self.assignment = []
            self._close_connections()


def _by_topic(pairs):
    topics = {}
    for tid, p in sorted(pairs):
        topics.setdefault(tid, []).append(p)
    return [{"topic_id": tid, "partitions": ps} for tid, ps in topics.items()]
