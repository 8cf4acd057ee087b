"""The consumer: Fetch with fetch sessions, one request in flight per leader, batches decoded by the core.

``Consumer.assign(topic, partitions, offsets)`` then ``poll()`` returns ``FetchedPartition`` objects holding the
parsed ``RecordBatch``es of one Fetch answer (zero-copy slices of the response frame). As soon as an answer is
taken, the next Fetch to that broker is sent, so the broker works while the caller processes. Counting uses batch
headers, and ``FetchedPartition.columns()``/``value_heads()`` give numpy views (no bytes object per message).
"""
import queue
import time

import numpy as np

from ..protocol import ProtocolError
from ..records import parse_batches
from .closing import Closing
from .cluster import Cluster
from .errors import (BrokerUnavailableError, FetchSessionIdNotFoundError, InvalidFetchSessionEpochError,
                     KafkaClientError, OffsetOutOfRangeError, error_for)

EARLIEST, LATEST = -2, -1
_SESSION_ERRORS = (FetchSessionIdNotFoundError.code, InvalidFetchSessionEpochError.code)
_EMPTY_OFFSETS = np.empty(0, dtype=np.int64)


class FetchedPartition:
    """The records of one partition in one Fetch answer, from offset ``start`` on.

    ``count`` records (control batches and records before ``start`` excluded), ``batches`` as parsed,
    ``high_watermark`` of the partition when answered."""

    __slots__ = ("topic", "partition", "start", "batches", "count", "high_watermark", "nbytes")

    def __init__(self, topic, partition, start, batches, high_watermark, nbytes):
        self.topic, self.partition, self.start, self.batches = topic, partition, start, batches
        self.high_watermark, self.nbytes = high_watermark, nbytes
        count = 0
        for b in batches:
            if b.is_control:
                continue
            count += b.record_count if b.base_offset >= start else int((b.columns()["offset"] >= start).sum())
        self.count = count

    def __repr__(self):
        return f"FetchedPartition({self.topic}/{self.partition}, start={self.start}, count={self.count})"

    def columns(self):
        """Per data batch: its ``RecordBatch.columns()`` dict restricted to records at/after ``start``."""
        out = []
        for b in self.batches:
            if b.is_control:
                continue
            cols = b.columns()
            if b.base_offset < self.start:
                keep = cols["offset"] >= self.start
                cols = {k: (v if k == "data" else v[keep]) for k, v in cols.items()}
            out.append(cols)
        return out

    def value_heads(self, nbytes, columns=None):
        """The first ``nbytes`` of every value as a (count, nbytes) uint8 array (shorter values: ValueError);
        ``columns``: this partition's ``columns()``, when the caller has them already."""
        parts = []
        span = np.arange(nbytes, dtype=np.int64)
        for cols in self.columns() if columns is None else columns:
            if len(cols["value_start"]) == 0:
                continue
            if (cols["value_length"] < nbytes).any():
                raise ValueError(f"a value in {self.topic}/{self.partition} is shorter than {nbytes} bytes")
            data = np.frombuffer(cols["data"], dtype=np.uint8)
            parts.append(data[cols["value_start"][:, None] + span])
        return np.concatenate(parts) if parts else np.empty((0, nbytes), dtype=np.uint8)

    def offsets(self):
        """Offsets of the records, int64."""
        cols = self.columns()
        return np.concatenate([c["offset"] for c in cols]) if cols else _EMPTY_OFFSETS

    def records(self):
        """Record objects (one Python object per message: for tests and small reads)."""
        return [r for b in self.batches if not b.is_control for r in b.records() if r.offset >= self.start]


class _Session:
    """Fetch session state with one broker (KIP-227): id, epoch, and what the broker caches per partition."""

    __slots__ = ("session_id", "epoch", "cached", "response")

    def __init__(self):
        self.session_id, self.epoch, self.cached, self.response = 0, 0, {}, None


class Consumer(Closing):
    """Read assigned partitions. ``max_bytes``/``partition_max_bytes``/``max_wait_ms``/``min_bytes`` go into every
    Fetch; ``fetch_sessions`` uses incremental fetch sessions where the broker offers them (Fetch v7+)."""

    def __init__(self, bootstrap_servers=None, *, cluster=None, max_bytes=52428800, partition_max_bytes=1048576,
                 max_wait_ms=500, min_bytes=1, isolation_level=0, fetch_sessions=True, auto_offset_reset="earliest",
                 request_timeout=30.0, reconnect_deadline=30.0, client_id="chronik-perf-consumer"):
        self._own_cluster = cluster is None
        self.cluster = cluster or Cluster(bootstrap_servers, client_id=client_id, request_timeout=request_timeout,
                                          reconnect_deadline=reconnect_deadline)
        self.max_bytes, self.partition_max_bytes = max_bytes, partition_max_bytes
        self.max_wait_ms, self.min_bytes, self.isolation_level = max_wait_ms, min_bytes, isolation_level
        self.fetch_sessions = fetch_sessions
        self.reset_to = EARLIEST if auto_offset_reset == "earliest" else LATEST
        self.request_timeout = request_timeout
        self.positions = {}                  # (topic, partition) -> next offset to fetch
        self._sessions = {}                  # node id -> _Session
        self._answers = queue.Queue()        # (node, session, body or None, error or None)
        self._in_flight = set()              # nodes with a Fetch outstanding
        self.fetch_requests = 0

    # ------------------------------------------------------------------ assignment

    def assign(self, topic, partitions=None, offsets="earliest"):
        """Read ``partitions`` (None: all) of ``topic`` from ``offsets``: "earliest", "latest", an offset for all,
        or {partition: offset}."""
        info = self.cluster.topic(topic)
        partitions = sorted(info.partitions) if partitions is None else list(partitions)
        if isinstance(offsets, dict):
            start = dict(offsets)
        elif isinstance(offsets, int):
            start = {p: offsets for p in partitions}
        else:
            start = self.cluster.list_offsets(topic, partitions, EARLIEST if offsets == "earliest" else LATEST)
        for p in partitions:
            self.positions[topic, p] = start[p]
        self._reset_sessions()

    def unassign(self, pairs=None):
        """Stop reading (topic, partition) pairs (None: everything)."""
        for key in list(self.positions) if pairs is None else pairs:
            self.positions.pop(key, None)
        self._reset_sessions()

    def _reset_sessions(self):
        for session in self._sessions.values():
            session.session_id, session.epoch, session.cached = 0, 0, {}

    # ------------------------------------------------------------------ fetching

    def poll(self, timeout=1.0):
        """Records from the next Fetch answer (a list of FetchedPartition, maybe empty after ``timeout`` s)."""
        self._send_fetches()
        deadline = time.monotonic() + timeout
        while True:
            try:
                node, session, body, error = self._answers.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                return []
            self._in_flight.discard(node)
            if session is not self._sessions.get(node):
                continue                     # an answer for a session we reset meanwhile
            out = self._handle(node, session, body, error)
            self._send_fetches()
            if out or time.monotonic() >= deadline:
                return out

    def _send_fetches(self):
        by_leader = {}
        for (topic, p) in self.positions:
            try:
                node = self.cluster.leader(topic, p)
            except KafkaClientError:
                continue
            by_leader.setdefault(node, []).append((topic, p))
        for node, parts in by_leader.items():
            if node in self._in_flight:
                continue
            session = self._sessions.get(node)
            if session is None:
                session = self._sessions[node] = _Session()
            try:
                conn = self.cluster.connection(node)
                body = self._fetch_body(conn, session, parts)
                conn.send("Fetch", body, zero_copy=True, timeout=self.request_timeout + self.max_wait_ms / 1000,
                          callback=lambda b, e, r, node=node, session=session: self._answers.put((node, session, b, e)))
            except BrokerUnavailableError:
                self._sessions.pop(node, None)
                raise
            self._in_flight.add(node)
            self.fetch_requests += 1

    def _fetch_body(self, conn, session, parts):
        use_sessions = self.fetch_sessions and conn.version("Fetch") >= 7
        wanted = {tp: self.positions[tp] for tp in parts}
        if use_sessions and session.session_id:
            send = {tp: off for tp, off in wanted.items() if session.cached.get(tp) != off}
            forgotten = [tp for tp in session.cached if tp not in wanted]
            epoch = session.epoch
        else:
            send, forgotten = wanted, []
            epoch = 0 if use_sessions else -1
        session.response = (dict(send), forgotten, epoch)
        topics = {}
        for (topic, p), off in send.items():
            topics.setdefault(topic, []).append({"partition": p, "fetch_offset": off,
                                                 "partition_max_bytes": self.partition_max_bytes})
        gone = {}
        for topic, p in forgotten:
            gone.setdefault(topic, []).append(p)
        return {"replica_id": -1, "max_wait_ms": self.max_wait_ms, "min_bytes": self.min_bytes,
                "max_bytes": self.max_bytes, "isolation_level": self.isolation_level,
                "session_id": session.session_id if epoch > 0 else 0, "session_epoch": epoch,
                "topics": [{"topic": t, "partitions": ps} for t, ps in topics.items()],
                "forgotten_topics_data": [{"topic": t, "partitions": ps} for t, ps in gone.items()], "rack_id": ""}

    def _handle(self, node, session, body, error):
        """Apply one Fetch answer: advance positions, update the session, return the data."""
        if error is not None:
            self._sessions.pop(node, None)
            if isinstance(error, KafkaClientError) and error.retriable:
                self._refresh()
                return []
            raise error
        if body.get("error_code", 0):
            if body["error_code"] in _SESSION_ERRORS:
                self._sessions.pop(node, None)
                return []
            raise error_for(body["error_code"], f"Fetch from broker {node}")
        sent, forgotten, epoch = session.response
        asked = {**session.cached, **sent}  # the offset this request fetched each partition from
        if epoch >= 0 and body.get("session_id", 0):
            if epoch == 0:
                session.session_id, session.cached = body["session_id"], {}
            session.cached.update(sent)
            for tp in forgotten:
                session.cached.pop(tp, None)
            session.epoch = epoch + 1 if epoch < 0x7FFFFFFF else 1
        else:
            session.session_id, session.epoch, session.cached = 0, 0, {}
        out, refresh = [], False
        for t in body["responses"]:
            topic = t["topic"]
            for p in t["partitions"]:
                tp = (topic, p["partition_index"])
                if tp not in self.positions:
                    continue
                code = p["error_code"]
                if code == OffsetOutOfRangeError.code:
                    self.positions[tp] = self.cluster.list_offsets(topic, [tp[1]], self.reset_to)[tp[1]]
                    continue
                if code:
                    exc = error_for(code, f"Fetch {topic}/{tp[1]}")
                    if not exc.retriable:
                        raise exc
                    refresh = True
                    continue
                records = p["records"]
                if not records:
                    continue
                batches = parse_batches(records)
                if not batches:
                    continue
                start = self.positions[tp]
                if asked.get(tp, start) != start:      # the position moved (seek, rebalance) after this request
                    continue
                if batches[-1].next_offset <= start:     # refetching the same offset would never end
                    raise ProtocolError(f"Fetch {topic}/{tp[1]} from broker {node} at offset {start}: its batches "
                                        f"end at offset {batches[-1].last_offset}, before it")
                self.positions[tp] = batches[-1].next_offset
                out.append(FetchedPartition(topic, tp[1], start, batches, p["high_watermark"], len(records)))
        if refresh:
            self._sessions.pop(node, None)
            self._refresh()
        return out

    def _refresh(self):
        try:
            self.cluster.refresh_metadata(sorted({t for t, _ in self.positions}) or None)
        except BrokerUnavailableError:
            pass

    def close(self):
        """Close the connections (when this consumer opened them)."""
        if self._own_cluster:
            self.cluster.close()
