"""The cluster as the client sees it: bootstrap, metadata, a connection per broker, leader routing and retries.

``Cluster`` owns the connections. ``connection(node_id)`` (re)connects with exponential backoff until
``reconnect_deadline`` seconds have passed, then raises ``BrokerUnavailableError``. ``retry(fn)`` runs an operation
again after a metadata refresh while it fails with a retriable error (NOT_LEADER_OR_FOLLOWER,
UNKNOWN_TOPIC_OR_PARTITION, LEADER_NOT_AVAILABLE, a lost connection...), up to the same deadline.
"""
import random
import threading
import time

from .closing import Closing
from .connection import Connection
from .errors import (BrokerUnavailableError, ConnectionLostError, KafkaClientError, ReplicaNotAvailableError,
                     RequestTimedOutError, TopicAlreadyExistsError, UnknownTopicOrPartitionError, check, error_for)

_LEADER_KNOWN = (0, ReplicaNotAvailableError.code)   # a partition's leader is usable despite a missing replica

_BACKOFF_MIN, _BACKOFF_MAX = 0.05, 1.0


class _Backoff:
    """Jittered exponential backoff up to a monotonic deadline; the last step is cut to end at the deadline."""

    def __init__(self, deadline):
        self.deadline, self.delay = deadline, _BACKOFF_MIN

    def wait(self):
        """Sleep one step and return True, or return False at once when the deadline has passed."""
        remaining = self.deadline - time.monotonic()
        if remaining <= 0:
            return False
        time.sleep(min(self.delay * (0.5 + random.random() / 2), remaining))
        self.delay = min(self.delay * 2, _BACKOFF_MAX)
        return True


class TopicInfo:
    """Metadata of one topic: ``partitions`` maps partition index -> leader node id (-1: none)."""

    __slots__ = ("name", "topic_id", "partitions", "error_code")

    def __init__(self, name, topic_id, partitions, error_code):
        self.name, self.topic_id, self.partitions, self.error_code = name, topic_id, partitions, error_code

    def __repr__(self):
        return f"TopicInfo({self.name!r}, partitions={self.partitions})"


def parse_servers(bootstrap_servers):
    """'h1:9092,h2:9093' -> [(h1, 9092), (h2, 9093)]."""
    out = []
    for item in bootstrap_servers.split(","):
        host, _, port = item.strip().rpartition(":")
        out.append((host or "localhost", int(port)))
    return out


class Cluster(Closing):
    """Connections to the brokers of one cluster, with metadata and leader routing."""

    def __init__(self, bootstrap_servers, *, client_id="chronik-perf", max_in_flight=5, request_timeout=30.0,
                 connect_timeout=10.0, reconnect_deadline=30.0):
        self.bootstrap = parse_servers(bootstrap_servers)
        self.client_id, self.max_in_flight = client_id, max_in_flight
        self.request_timeout, self.connect_timeout = request_timeout, connect_timeout
        self.reconnect_deadline = reconnect_deadline
        self.brokers = {}            # node id -> (host, port)
        self.controller_id = -1
        self.topics = {}             # name -> TopicInfo
        self._conns = {}             # node id (or ("bootstrap", i)) -> Connection
        self._lock = threading.RLock()
        self._gave_up = {}           # target -> when it was last found unreachable for a whole deadline
        self._any = self._connect_bootstrap()
        self.refresh_metadata()

    # ------------------------------------------------------------------ connections

    def _open(self, host, port, node_id):
        return Connection(host, port, node_id=node_id, client_id=self.client_id, max_in_flight=self.max_in_flight,
                          connect_timeout=self.connect_timeout, request_timeout=self.request_timeout)

    def _with_backoff(self, what, attempt):
        """Run attempt() until it succeeds, sleeping with jittered exponential backoff; the last try is at the deadline.

        Once a target stayed unreachable for a whole deadline, later calls within the next deadline try once and
        fail at once, so a dead broker costs one deadline, not one per request."""
        now = time.monotonic()
        deadline = now + self.reconnect_deadline
        gave_up = self._gave_up.get(what)
        if gave_up is not None and now - gave_up < self.reconnect_deadline:
            deadline = now
        backoff = _Backoff(deadline)
        while True:
            try:
                result = attempt()
                self._gave_up.pop(what, None)
                return result
            except BrokerUnavailableError as exc:
                last = exc
            if not backoff.wait():
                if gave_up is None or now - gave_up >= self.reconnect_deadline:
                    self._gave_up[what] = time.monotonic()
                raise BrokerUnavailableError(f"{what}: unreachable for {self.reconnect_deadline:g} s: {last}")

    def _connect_bootstrap(self):
        def attempt():
            errors = []
            for host, port in self.bootstrap:
                try:
                    return self._open(host, port, -1)
                except BrokerUnavailableError as exc:
                    errors.append(str(exc))
            raise BrokerUnavailableError("; ".join(errors))
        return self._with_backoff("bootstrap servers", attempt)

    def any_connection(self):
        """A live connection to some broker (for Metadata and admin requests)."""
        with self._lock:
            if self._any is not None and not self._any.closed:
                return self._any
            for conn in self._conns.values():
                if not conn.closed:
                    self._any = conn
                    return conn
        conn = self._connect_bootstrap()
        with self._lock:
            self._any = conn
        return conn

    def connection(self, node_id):
        """The connection to broker ``node_id``, reconnecting with backoff when it was lost."""
        with self._lock:
            conn = self._conns.get(node_id)
        if conn is not None and not conn.closed:
            return conn
        if node_id not in self.brokers:
            self.refresh_metadata()
            if node_id not in self.brokers:
                raise BrokerUnavailableError(f"broker {node_id} is not in the cluster's metadata")

        def attempt():
            host, port = self.brokers[node_id]
            return self._open(host, port, node_id)
        conn = self._with_backoff(f"broker {node_id} at {self.brokers[node_id][0]}:{self.brokers[node_id][1]}",
                                  attempt)
        with self._lock:
            old = self._conns.get(node_id)
            if old is not None and not old.closed:   # another thread won the race
                conn.close()
                return old
            self._conns[node_id] = conn
        return conn

    def close(self):
        with self._lock:
            conns = list(self._conns.values()) + ([self._any] if self._any is not None else [])
            self._conns.clear()
            self._any = None
        for conn in conns:
            conn.close()

    # ------------------------------------------------------------------ metadata

    def refresh_metadata(self, topics=None, allow_auto_create=False):
        """Ask a broker for metadata of ``topics`` (None: every topic); updates brokers, controller and topics."""
        body = {"topics": None if topics is None else [{"name": t} for t in topics],
                "allow_auto_topic_creation": allow_auto_create}
        for tries in range(3):                 # a connection lost mid-call: reconnect (with backoff) and ask again
            conn = self.any_connection()
            try:
                answer = conn.call("Metadata", body)
                break
            except (ConnectionLostError, RequestTimedOutError):
                conn.close()
                if tries == 2:
                    raise
        with self._lock:
            self.brokers = {b["node_id"]: (b["host"], b["port"]) for b in answer["brokers"]}
            self.controller_id = answer.get("controller_id", -1)
            for t in answer["topics"]:
                leaders = {p["partition_index"]: p["leader_id"] if p["error_code"] in _LEADER_KNOWN else -1
                           for p in t["partitions"]}
                info = TopicInfo(t["name"], t.get("topic_id"), leaders, t["error_code"])
                if t["error_code"] == 0:
                    self.topics[t["name"]] = info
                else:
                    self.topics.pop(t["name"], None)
        return answer

    def topic(self, name, *, wait=None, allow_auto_create=False):
        """TopicInfo of ``name`` with every partition led; refreshes metadata (until ``wait`` seconds) if needed."""
        deadline = time.monotonic() + (self.reconnect_deadline if wait is None else wait)
        while True:
            info = self.topics.get(name)
            if info is not None and info.partitions and all(v >= 0 for v in info.partitions.values()):
                return info
            answer = self.refresh_metadata([name], allow_auto_create)
            info = self.topics.get(name)
            if info is not None and info.partitions and all(v >= 0 for v in info.partitions.values()):
                return info
            if time.monotonic() > deadline:
                codes = [t["error_code"] for t in answer["topics"] if t["name"] == name]
                raise error_for(codes[0] if codes and codes[0] else 5, f"topic {name!r}: no leader for every "
                                                                       f"partition")
            time.sleep(0.1)

    def leader(self, topic, partition):
        """Node id leading ``topic``/``partition`` (from cached metadata, refreshed when unknown)."""
        node = self.topics[topic].partitions.get(partition, -1) if topic in self.topics else -1
        if node < 0:
            node = self.topic(topic).partitions.get(partition, -1)
            if node < 0:
                raise error_for(3, f"{topic}/{partition}")
        return node

    def retry(self, fn, what="request"):
        """fn() again after a metadata refresh while it raises a retriable error, up to the reconnect deadline."""
        backoff = _Backoff(time.monotonic() + self.reconnect_deadline)
        while True:
            try:
                return fn()
            except KafkaClientError as exc:
                if not exc.retriable or not backoff.wait():
                    raise
            try:
                self.refresh_metadata(list(self.topics) or None)
            except BrokerUnavailableError:
                pass

    # ------------------------------------------------------------------ admin

    def _controller(self):
        self.refresh_metadata([])
        node = self.controller_id
        return self.connection(node) if node in self.brokers else self.any_connection()

    def create_topics(self, names, num_partitions=1, replication_factor=1, config=None, *, timeout=30.0,
                      exist_ok=False):
        """Create topics and wait until every partition has a leader. Needs CreateTopics on the broker."""
        body = {"topics": [{"name": n, "num_partitions": num_partitions, "replication_factor": replication_factor,
                            "assignments": [], "configs": [{"name": k, "value": str(v)}
                                                           for k, v in (config or {}).items()]} for n in names],
                "timeout_ms": int(timeout * 1000), "validate_only": False}
        answer = self.retry(lambda: self._controller().call("CreateTopics", body, timeout=timeout), "CreateTopics")
        for t in answer["topics"]:
            if t["error_code"] == TopicAlreadyExistsError.code and exist_ok:
                continue
            check(t["error_code"], f"create topic {t['name']!r}: {t.get('error_message') or ''}")
        for n in names:
            self.topic(n, wait=timeout)

    def delete_topics(self, names, *, timeout=30.0, missing_ok=True):
        """Delete topics by name."""
        body = {"topic_names": list(names), "topics": [{"name": n} for n in names], "timeout_ms": int(timeout * 1000)}
        answer = self.retry(lambda: self._controller().call("DeleteTopics", body, timeout=timeout), "DeleteTopics")
        for r in answer["responses"]:
            if r["error_code"] == UnknownTopicOrPartitionError.code and missing_ok:
                continue
            check(r["error_code"], f"delete topic {r['name']!r}")
        for n in names:
            self.topics.pop(n, None)

    def list_offsets(self, topic, partitions, timestamp=-1):
        """{partition: offset} for ``timestamp`` (-1 latest, -2 earliest, else the first offset at/after it)."""
        info = self.topic(topic)
        partitions = list(info.partitions) if partitions is None else list(partitions)

        def attempt():
            by_leader, out = {}, {}
            for p in partitions:
                by_leader.setdefault(self.leader(topic, p), []).append(p)
            sent = [(node, self.connection(node).send("ListOffsets", {"replica_id": -1, "isolation_level": 0, "topics": [
                {"name": topic, "partitions": [{"partition_index": p, "timestamp": timestamp} for p in parts]}]}))
                for node, parts in by_leader.items()]
            for node, response in sent:
                for t in response.result(self.request_timeout + 1)["topics"]:
                    for p in t["partitions"]:
                        check(p["error_code"], f"ListOffsets {topic}/{p['partition_index']}")
                        out[p["partition_index"]] = p["offset"]
            return out
        return self.retry(attempt, "ListOffsets")
