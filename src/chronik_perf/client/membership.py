"""What both consumer group protocols share: the coordinator connection, committed offsets, commits, start positions.

``GroupMember`` is the base of ``GroupConsumer`` (classic: JoinGroup/SyncGroup/Heartbeat) and ``KIP848GroupConsumer``
(consumer protocol: ConsumerGroupHeartbeat). It owns a ``Consumer`` that reads the partitions the group gives it.
"""
from ..protocol import ProtocolError
from .closing import Closing
from .cluster import Cluster
from .connection import Connection
from .consumer import EARLIEST, LATEST, Consumer
from .errors import (BrokerUnavailableError, CoordinatorLoadInProgressError, CoordinatorNotAvailableError,
                     KafkaClientError, NotCoordinatorError, check, error_for)

COORDINATOR_CODES = (CoordinatorLoadInProgressError.code, CoordinatorNotAvailableError.code, NotCoordinatorError.code)


class GroupMember(Closing):
    """A member of consumer group ``group_id`` reading ``topics``; fetch options as for ``Consumer``."""

    def __init__(self, bootstrap_servers, group_id, topics, *, cluster, auto_offset_reset, request_timeout,
                 reconnect_deadline, client_id, on_assign, on_revoke, fetch_options):
        self._own_cluster = cluster is None
        self.cluster = cluster or Cluster(bootstrap_servers, client_id=client_id, request_timeout=request_timeout,
                                          reconnect_deadline=reconnect_deadline)
        self.consumer = Consumer(cluster=self.cluster, auto_offset_reset=auto_offset_reset,
                                 request_timeout=request_timeout, **fetch_options)
        self.group_id, self.topics = group_id, list(topics)
        self.on_assign, self.on_revoke = on_assign, on_revoke     # callbacks with [(topic, partition)]
        self.reset_to = EARLIEST if auto_offset_reset == "earliest" else LATEST
        self.request_timeout, self.client_id = request_timeout, client_id
        self.member_id = ""
        self.assignment = []                  # [(topic, partition)]
        self.rebalances = []
        self._coordinator = None

    # ------------------------------------------------------------------ coordinator

    def _coord(self):
        if self._coordinator is not None and not self._coordinator.closed:
            return self._coordinator

        def attempt():
            conn = self.cluster.any_connection()
            answer = conn.call("FindCoordinator", {"key": self.group_id, "key_type": 0,
                                                   "coordinator_keys": [self.group_id]})
            found = answer["coordinators"][0] if conn.version("FindCoordinator") >= 4 else answer
            if found["error_code"]:
                raise error_for(found["error_code"], f"FindCoordinator {self.group_id}")
            return Connection(found["host"], found["port"], node_id=found["node_id"], client_id=self.client_id,
                              request_timeout=self.request_timeout)
        self._coordinator = self.cluster.retry(attempt, "FindCoordinator")
        return self._coordinator

    def _call(self, api, body, timeout=None, version=None):
        """A request to the coordinator; a lost or moved coordinator is looked up again by the caller's retry."""
        conn = self._coord()
        try:
            answer = conn.call(api, body, timeout=timeout, version=version)
        except (BrokerUnavailableError, ProtocolError):
            conn.close()
            raise
        code = answer.get("error_code", 0)
        if code in COORDINATOR_CODES:
            conn.close()
            self._coordinator = None
        return answer

    # ------------------------------------------------------------------ offsets

    def _start_positions(self, assignment):
        """Read the partitions of ``assignment`` ({topic: [partitions]}) from the group's committed offsets on."""
        for topic, parts in assignment.items():
            if not parts:
                continue
            committed = self.committed(topic, parts)
            missing = [p for p in parts if committed.get(p, -1) < 0]
            if missing:
                committed.update(self.cluster.list_offsets(topic, missing, self.reset_to))
            self.consumer.assign(topic, parts, {p: committed[p] for p in parts})

    def committed(self, topic, partitions):
        """{partition: committed offset (-1: none)} for this group."""
        answer = self.cluster.retry(lambda: self._call("OffsetFetch", {
            "group_id": self.group_id, "topics": [{"name": topic, "partition_indexes": list(partitions)}],
            "require_stable": False}), "OffsetFetch")
        check(answer.get("error_code", 0), f"OffsetFetch {self.group_id}")
        out = {}
        for t in answer["topics"]:
            for p in t["partitions"]:
                check(p["error_code"], f"OffsetFetch {topic}/{p['partition_index']}")
                out[p["partition_index"]] = p["committed_offset"]
        return out

    def _commit_identity(self):
        """(generation or member epoch, member id, OffsetCommit version or None for the negotiated one)."""
        raise NotImplementedError

    def commit(self, pairs=None):
        """Commit the current positions of the assigned partitions (or of the (topic, partition) ``pairs``)."""
        topics = {}
        for (t, p), off in self.consumer.positions.items():
            if pairs is None or (t, p) in pairs:
                topics.setdefault(t, []).append({"partition_index": p, "committed_offset": off,
                                                 "committed_metadata": None})
        if not topics:
            return
        epoch, member_id, version = self._commit_identity()
        answer = self._call("OffsetCommit", {
            "group_id": self.group_id, "generation_id_or_member_epoch": epoch, "member_id": member_id,
            "group_instance_id": None, "retention_time_ms": -1,
            "topics": [{"name": t, "partitions": ps} for t, ps in topics.items()]}, version=version)
        for t in answer["topics"]:
            for p in t["partitions"]:
                check(p["error_code"], f"OffsetCommit {t['name']}/{p['partition_index']}")

    def _commit_quietly(self, pairs=None):
        try:
            self.commit(pairs)
        except KafkaClientError:
            pass                                     # the group moved on: the next owner starts from commits

    def _close_connections(self):
        if self._coordinator is not None:
            self._coordinator.close()
        if self._own_cluster:
            self.cluster.close()
