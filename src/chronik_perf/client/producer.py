"""The producer: record batches v2 from the core, routed to partition leaders, pipelined, with retries.

``produce_many(topic, values, keys=None, partition=None)`` is the bulk path: partitioning (Kafka's murmur2 for
keys, runs of one batch per partition otherwise), splitting into batch-sized runs and building each batch are C
loops over the whole list, so the interpreter runs per batch, never per message. Full batches leave at once; the
last, unfilled batch of each partition waits up to ``linger_ms`` for the next call's messages to that partition (as
a Kafka producer's accumulator holds an open batch), so equal ``batch_size``/``linger_ms`` give batches like other
clients'. ``send()`` is the one-message path with the same accumulation. Delivery is reported per call as counts
and per-batch latencies (``Delivery``), not per-message callbacks.
"""
import threading
import time

import numpy as np

from .. import _core
from ..records import BatchBuilder, build_batch
from .closing import Closing
from .cluster import Cluster
from .errors import BrokerUnavailableError, DuplicateSequenceNumberError, KafkaClientError, error_for

_ACKS = {"0": 0, "1": 1, "all": -1, "-1": -1, 0: 0, 1: 1, -1: -1}


class Delivery:
    """What happened to the messages of one produce_many call (or of send() calls up to a flush).

    ``messages`` handed over, ``acked``, ``failed``, ``errors`` (first few texts), ``batch_latencies_ns``
    (send to acknowledgement of each request's batches; none with acks=0), ``acked_offsets``
    ({partition: [(base_offset, count)]}, acks>=1)."""

    def __init__(self, producer):
        self._producer = producer
        self.messages = self.acked = self.failed = 0
        self.errors = []
        self.first_error = None
        self.batch_latencies_ns = []
        self.acked_offsets = {}
        self._failed_index = []
        self._outstanding = 0
        self._cond = threading.Condition()

    def __repr__(self):
        return (f"Delivery(messages={self.messages}, acked={self.acked}, failed={self.failed}, "
                f"outstanding={self._outstanding})")

    @property
    def done(self):
        return self._outstanding == 0

    def _add(self, count):
        with self._cond:
            self.messages += count
            self._outstanding += count

    def _ack(self, partition, count, latency_ns, base_offset):
        with self._cond:
            self.acked += count
            self._outstanding -= count
            if latency_ns is not None:
                self.batch_latencies_ns.append(latency_ns)
            if base_offset >= 0:
                self.acked_offsets.setdefault(partition, []).append((base_offset, count))
            self._cond.notify_all()

    def _fail(self, where, index, count, error):
        with self._cond:
            self.failed += count
            self._failed_index.append(np.arange(index, index + count) if isinstance(index, int) else index)
            self._outstanding -= count
            if self.first_error is None:
                self.first_error = error
            if len(self.errors) < 20:
                self.errors.append(f"{where}: {count} messages: {error}")
            self._cond.notify_all()

    def wait(self, timeout=None):
        """Wait until every message is acknowledged or failed (retrying what can be retried); returns self."""
        return self._producer.wait(self, timeout)

    def failed_indices(self):
        """Positions (in the produce_many call's values) of the messages that failed, int64 sorted."""
        with self._cond:
            parts = list(self._failed_index)
        return np.sort(np.concatenate(parts)) if parts else np.empty(0, dtype=np.int64)

    def raise_on_error(self):
        """Raise the first delivery error, if any message failed."""
        if self.first_error is not None:
            raise self.first_error


class _Run:
    """Messages of one partition on their way into batches: values, keys and timestamps (None: none given) and
    ``parts``, whose messages they are in order: (Delivery, positions in its call (int start or array), count,
    monotonic time handed over)."""

    __slots__ = ("values", "keys", "timestamps", "parts")

    def __init__(self, values, keys, timestamps, parts):
        self.values, self.keys, self.timestamps, self.parts = values, keys, timestamps, parts

    @property
    def created(self):
        return self.parts[0][3]

    def then(self, other):
        """This run followed by ``other`` (keys and timestamps filled in where only one of them has them)."""
        n, m = len(self.values), len(other.values)
        keys = None if self.keys is None and other.keys is None else \
            [*(self.keys if self.keys is not None else [None] * n), *(other.keys if other.keys is not None else [None] * m)]
        timestamps = None
        if self.timestamps is not None or other.timestamps is not None:
            now_ms = int(time.time() * 1000)
            timestamps = np.concatenate([np.asarray(r.timestamps if r.timestamps is not None else
                                                    np.full(len(r.values), now_ms), dtype=np.int64)
                                         for r in (self, other)])
        return _Run([*self.values, *other.values], keys, timestamps, self.parts + other.parts)

    def split(self, max_bytes):
        """Batch-sized runs (C loop over the values), each with its share of the parts."""
        out, start = [], 0
        for end in _core.batch_bounds(self.values, self.keys, max_bytes):
            out.append(_Run(self.values[start:end], None if self.keys is None else self.keys[start:end],
                            None if self.timestamps is None else self.timestamps[start:end],
                            _slice_parts(self.parts, start, end)))
            start = end
        return out


def _slice_parts(parts, start, end):
    """The parts of messages start..end-1 of a run."""
    out, pos = [], 0
    for delivery, index, count, created in parts:
        lo, hi = max(start, pos), min(end, pos + count)
        if lo < hi:
            out.append((delivery, index + lo - pos if isinstance(index, int) else index[lo - pos:hi - pos],
                        hi - lo, created))
        pos += count
    return out


class _Batch:
    __slots__ = ("topic", "partition", "data", "count", "parts", "created", "attempts")

    def __init__(self, topic, partition, data, parts):
        self.topic, self.partition, self.data, self.parts = topic, partition, data, parts
        self.count = sum(p[2] for p in parts)
        self.created = parts[0][3]       # when its oldest message was handed over: the delivery timeout counts from it
        self.attempts = 0

    def acked(self, latency_ns, base_offset):
        for delivery, _, count, _ in self.parts:
            delivery._ack(self.partition, count, latency_ns, base_offset)
            if base_offset >= 0:
                base_offset += count

    def failed(self, error):
        for delivery, index, count, _ in self.parts:
            delivery._fail(f"{self.topic}/{self.partition}", index, count, error)


class Producer(Closing):
    """Produce to one cluster. ``acks`` 0, 1 or "all"; ``compression`` none/gzip/snappy/lz4/zstd; ``batch_size``
    bytes per batch; ``linger_ms``: how long an unfilled batch waits for more messages (produce_many and send());
    ``idempotent`` turns on InitProducerId and sequence numbers."""

    def __init__(self, bootstrap_servers=None, *, cluster=None, acks=1, compression="none", compression_level=None,
                 batch_size=262144, linger_ms=5.0, idempotent=False, max_in_flight=5, request_timeout=30.0,
                 delivery_timeout=120.0, reconnect_deadline=30.0, client_id="chronik-perf-producer"):
        if acks not in _ACKS:
            raise ValueError(f"acks must be 0, 1 or 'all', not {acks!r}")
        self.acks = _ACKS[acks]
        if idempotent and self.acks != -1:
            raise ValueError("idempotence needs acks='all'")
        self._own_cluster = cluster is None
        self.cluster = cluster or Cluster(bootstrap_servers, client_id=client_id, max_in_flight=max_in_flight,
                                          request_timeout=request_timeout, reconnect_deadline=reconnect_deadline)
        self.compression, self.compression_level = compression, compression_level
        self.batch_size, self.linger_s = batch_size, linger_ms / 1000.0
        self.request_timeout, self.delivery_timeout = request_timeout, delivery_timeout
        self.idempotent = idempotent
        self.producer_id, self.producer_epoch = -1, -1
        self._sequences = {}                 # (topic, partition) -> next sequence
        self._sticky = 0
        self._retries = []                   # batches to send again (filled by reader threads)
        self._retry_lock = threading.Lock()
        self._deliveries = []                # unfinished deliveries, for flush()
        self._open = {}                      # (topic, partition) -> (BatchBuilder, created, positions) for send()
        self._open_lock = threading.Lock()
        self._tails = {}                     # (topic, partition) -> _Run: produce_many's unfilled last batch
        self._bulk_lock = threading.Lock()   # one bulk hand-over or tail shipping at a time: batch order per partition
        self._pending = Delivery(self)           # the Delivery of send() calls since the last flush
        self._send_count = 0                 # send() calls since the last flush: a message's position in _pending
        self.stats = {"batches": 0, "records": 0, "requests": 0, "batch_bytes": 0}  # what left, for batching figures
        self._closed = False
        self._linger = None
        if idempotent:
            self._init_producer_id()

    # ------------------------------------------------------------------ bulk path

    def produce_many(self, topic, values, keys=None, partition=None, timestamps=None):
        """Produce every value (bytes) of ``values``; returns a Delivery (call ``.wait()`` for the outcome).

        ``partition``: one partition for all, or a partition per message (int array-like). ``keys``: a sequence of
        bytes/None as long as ``values``; with ``partition=None`` keyed messages go where Kafka's murmur2
        partitioner puts them, unkeyed ones in batch-sized runs to one partition after another.
        ``timestamps``: ms since the epoch per message (default: when its batch is built)."""
        n = len(values)
        delivery = Delivery(self)
        if n == 0:
            return delivery
        delivery._add(n)
        self._deliveries.append(delivery)
        num_partitions = len(self.cluster.topic(topic).partitions)
        now = time.monotonic()
        if partition is not None and not isinstance(partition, (int, np.integer)):
            parts = np.asarray(partition, dtype=np.int32)
            if parts.shape != (n,) or (n and not 0 <= parts.min() <= parts.max() < num_partitions):
                raise ValueError(f"partition must be one partition or {n} partitions in 0..{num_partitions - 1}")
        elif partition is None and keys is not None:
            parts = _core.key_partitions(keys, num_partitions)
        else:
            parts = None
        with self._bulk_lock:
            if isinstance(partition, (int, np.integer)):
                runs = self._accumulate(topic, int(partition), _Run(values, keys, timestamps,
                                                                    [(delivery, 0, n, now)]))
            elif parts is not None:
                runs = []
                nulls = parts < 0
                if nulls.any():              # null keys: one partition for this call's unkeyed messages
                    parts[nulls] = self._sticky % num_partitions
                    self._sticky += 1
                order = np.argsort(parts, kind="stable")
                edges = np.searchsorted(parts[order], np.arange(num_partitions + 1))
                for p in range(num_partitions):
                    idx = order[edges[p]:edges[p + 1]]
                    if len(idx):
                        runs += self._accumulate(topic, p, _Run(
                            _core.take(values, idx), None if keys is None else _core.take(keys, idx),
                            None if timestamps is None else np.asarray(timestamps)[idx], [(delivery, idx, len(idx),
                                                                                            now)]))
            else:                            # sticky: fill one partition's batch, then the next partition's
                runs = []
                pieces = self._accumulate(topic, self._sticky % num_partitions,
                                          _Run(values, None, timestamps, [(delivery, 0, n, now)]), keep_tail=False)
                for i, run in enumerate(pieces):
                    p = self._sticky % num_partitions
                    if i and (topic, p) in self._tails:      # what that partition holds leaves first
                        runs.append((p, self._tails.pop((topic, p))))
                    if i == len(pieces) - 1 and self._hold(topic, p, run) is None:
                        break                    # held open: the next call goes on filling this partition
                    runs.append((p, run))
                    self._sticky += 1
            self._send_runs(topic, runs)
        if self._tails:
            self._start_linger()
        return delivery

    def _accumulate(self, topic, partition, run, keep_tail=True):
        """``run`` after the partition's held tail, split into batch-sized runs: [(partition, run)] ready to leave.
        With keep_tail the last, unfilled one is held as the new tail (see _hold); otherwise it is returned too."""
        tail = self._tails.pop((topic, partition), None)
        runs = (tail.then(run) if tail is not None else run).split(self.batch_size)
        if not keep_tail:
            return runs
        last = self._hold(topic, partition, runs.pop())
        return [(partition, r) for r in runs + ([last] if last is not None else [])]

    def _hold(self, topic, partition, run):
        """Keep ``run`` open for more messages while its oldest message is younger than linger_ms; else return it."""
        if self.linger_s > 0 and time.monotonic() - run.created < self.linger_s:
            self._tails[topic, partition] = run
            return None
        return run

    def _ship_tails(self, older_than=None):
        """Send produce_many's held tails (those handed over before ``older_than``, if given)."""
        with self._bulk_lock:
            due = [k for k, run in self._tails.items() if older_than is None or run.created <= older_than]
            by_topic = {}
            for topic, p in due:
                by_topic.setdefault(topic, []).append((p, self._tails.pop((topic, p))))
            for topic, runs in by_topic.items():
                self._send_runs(topic, runs)

    def _send_runs(self, topic, runs):
        """Build each run's batch and send them in rounds (a request carries at most one batch per partition)."""
        queues = {}
        for p, run in runs:
            queues.setdefault(p, []).append(run)
        depth = max((len(q) for q in queues.values()), default=0)
        for i in range(depth):
            self.drain_retries()
            self._ship([_Batch(topic, p, self._build(topic, p, q[i].values, q[i].keys, q[i].timestamps), q[i].parts)
                        for p, q in queues.items() if i < len(q)])

    def _build(self, topic, partition, values, keys, timestamps):
        seq = -1
        if self.idempotent:
            seq = self._sequences.get((topic, partition), 0)
            self._sequences[topic, partition] = (seq + len(values)) & 0x7FFFFFFF
        return build_batch(values, keys, timestamps=timestamps, compression=self.compression,
                           compression_level=self.compression_level, producer_id=self.producer_id,
                           producer_epoch=self.producer_epoch, base_sequence=seq)

    # ------------------------------------------------------------------ one-message path

    def send(self, topic, value, key=None, partition=None, timestamp=None):
        """Queue one message; it leaves in a batch when the batch is full, linger_ms passed (with linger_ms 0: at
        once, or with the next free in-flight slot when max_in_flight requests await answers), or on flush(). A failure names its messages by position among the send() calls since the last flush."""
        if partition is None:
            num_partitions = len(self.cluster.topic(topic).partitions)
            partition = (int(_core.key_partitions([key], num_partitions)[0]) if key is not None
                         else self._sticky % num_partitions)
        ready = []
        with self._open_lock:
            position = self._send_count
            entry = self._open.get((topic, partition))
            if entry is None:
                entry = self._open[topic, partition] = (self._new_builder(topic, partition), time.monotonic(), [])
            if not entry[0].append(value, key, timestamp):
                ready.append(self._finish(topic, partition, *entry))
                entry = self._open[topic, partition] = (self._new_builder(topic, partition), time.monotonic(), [])
                entry[0].append(value, key, timestamp)
                if key is None:
                    self._sticky += 1
            self._send_count += 1
            entry[2].append(position)
            self._pending._add(1)
            if self.linger_s <= 0 and ready:     # a full batch leaves before the open one: order kept
                self._ship(ready)
                ready = []
        if self.linger_s <= 0:
            self._ship_free()
        for batch in ready:
            self._ship([batch])
        self._start_linger()

    def _ship_free(self):
        """linger 0: send the open send() batches, one Produce request per leader, where its connection has a free
        in-flight slot. Where all are taken the batch stays open and gathers the next messages until an answer
        frees one (its handler calls this again), as a Kafka producer's accumulator does: send() never waits on
        the window, and a slow answer delays messages by that answer's time, not by a queue of one-message
        requests behind it."""
        with self._open_lock:
            by_leader = {}
            for key in self._open:
                try:
                    conn = self.cluster.connection(self.cluster.leader(*key))
                except KafkaClientError:
                    conn = None                  # no leader now: _ship retries or fails the batch
                by_leader.setdefault(conn, []).append(key)
            for conn, keys in by_leader.items():
                reserved = conn is not None and self.acks != 0 and conn.reserve()
                if conn is not None and self.acks != 0 and not reserved:
                    continue
                batches = [self._finish(*key, *self._open.pop(key)) for key in keys]
                if conn is None:
                    self._ship(batches)
                else:
                    self._request(conn, batches, reserved)

    def _start_linger(self):
        if self._linger is None:
            self._linger = threading.Thread(target=self._linger_loop, name="producer-linger", daemon=True)
            self._linger.start()

    @property
    def sent(self):
        """The Delivery of the send() calls since the last flush (updated as batches are acknowledged)."""
        return self._pending

    def _new_builder(self, topic, partition):
        return BatchBuilder(self.compression, max_bytes=self.batch_size, compression_level=self.compression_level,
                            producer_id=self.producer_id, producer_epoch=self.producer_epoch,
                            base_sequence=self._sequences.get((topic, partition), 0) if self.idempotent else -1)

    def _finish(self, topic, partition, builder, created, positions):
        if self.idempotent:
            key = (topic, partition)
            self._sequences[key] = (self._sequences.get(key, 0) + len(builder)) & 0x7FFFFFFF
        return _Batch(topic, partition, builder.build(), [(self._pending, np.asarray(positions, dtype=np.int64),
                                                            len(builder), created)])

    def _ship_open(self, older_than=None):
        """Send every open send() batch (those created before ``older_than``, if given)."""
        with self._open_lock:
            ready = [(k, entry) for k, entry in self._open.items() if older_than is None or entry[1] <= older_than]
            for k, _ in ready:
                del self._open[k]
            batches = [self._finish(t, p, *entry) for (t, p), entry in ready]
        if batches:
            self._ship(batches)

    def _linger_loop(self):
        while not self._closed:
            # with linger 0 send() and answers ship (_ship_free): here only retries and a safety net, a few times a second
            time.sleep(max(self.linger_s / 2, 0.001) if self.linger_s > 0 else 0.05)
            try:
                if self.linger_s > 0:
                    self._ship_open(time.monotonic() - self.linger_s)
                elif self._open:
                    self._ship_free()
                self._ship_tails(time.monotonic() - self.linger_s)
                self.drain_retries()
            except KafkaClientError:
                pass                              # failures are reported through the batches' Delivery

    # ------------------------------------------------------------------ sending and answers

    def _ship(self, batches):
        """Send batches (one per partition at most), grouped by leader into one Produce request each."""
        by_leader = {}
        for b in batches:
            try:
                node = self.cluster.leader(b.topic, b.partition)
            except KafkaClientError as exc:
                self._retry_or_fail(b, exc)
                continue
            by_leader.setdefault(node, []).append(b)
        for node, group in by_leader.items():
            try:
                conn = self.cluster.connection(node)
            except KafkaClientError as exc:
                for b in group:
                    self._retry_or_fail(b, exc)
                continue
            self._request(conn, group)

    def _request(self, conn, group, reserved=False):
        """One Produce request on ``conn`` carrying ``group`` (one batch per partition); ``reserved``: a window slot
        is held already (Connection.reserve)."""
        topics = {}
        for b in group:
            topics.setdefault(b.topic, []).append({"index": b.partition, "records": b.data})
            b.attempts += 1
            self.stats["batches"] += 1
            self.stats["records"] += b.count
            self.stats["batch_bytes"] += len(b.data)
        self.stats["requests"] += 1
        body = {"transactional_id": None, "acks": self.acks, "timeout_ms": int(self.request_timeout * 1000),
                "topic_data": [{"name": t, "partition_data": parts} for t, parts in topics.items()]}
        try:
            if self.acks == 0:
                conn.send("Produce", body, expect_response=False)
                for b in group:                          # acks=0: delivered once written; no latency
                    b.acked(None, -1)
            else:
                conn.send("Produce", body, callback=self._answer_handler(group), reserved=reserved)
        except KafkaClientError as exc:
            for b in group:
                self._retry_or_fail(b, exc)

    def _answer_handler(self, group):
        by_partition = {(b.topic, b.partition): b for b in group}

        def on_answer(body, error, response):          # runs in the connection's reader thread
            handle(body, error, response)
            if error is None and self.linger_s <= 0 and self._open:
                self._ship_free()                      # a slot just freed: what gathered meanwhile leaves now

        def handle(body, error, response):
            if error is not None:
                for b in group:
                    self._retry_or_fail(b, error)
                return
            latency = time.monotonic_ns() - response.sent_ns
            for t in body["responses"]:
                for p in t["partition_responses"]:
                    b = by_partition.pop((t["name"], p["index"]), None)
                    if b is None:
                        continue
                    code = p["error_code"]
                    if code == 0 or (code == DuplicateSequenceNumberError.code and self.idempotent):
                        b.acked(latency, p["base_offset"])
                    else:
                        self._retry_or_fail(b, error_for(code, p.get("error_message") or ""))
            for b in by_partition.values():
                b.failed(error_for(-1, "partition missing from the Produce answer"))
        return on_answer

    def _retry_or_fail(self, batch, error):
        if getattr(error, "retriable", False) and time.monotonic() - batch.created < self.delivery_timeout:
            with self._retry_lock:
                self._retries.append(batch)
        else:
            batch.failed(error)

    def drain_retries(self):
        """Send again the batches whose last attempt failed with a retriable error (after a metadata refresh)."""
        if not self._retries:
            return
        with self._retry_lock:
            batches, self._retries = self._retries, []
        time.sleep(min(0.05 * max(b.attempts for b in batches), 1.0))
        try:
            self.cluster.refresh_metadata(list({b.topic for b in batches}))
        except BrokerUnavailableError as exc:
            for b in batches:
                b.failed(exc)
            return
        rounds = {}
        for b in batches:                               # one batch per partition per request
            rounds.setdefault((b.topic, b.partition), []).append(b)
        while rounds:
            self._ship([q.pop(0) for q in rounds.values()])
            rounds = {k: q for k, q in rounds.items() if q}

    def wait(self, delivery, timeout=None):
        """Wait until every message of ``delivery`` is acknowledged or failed; returns it. Retries happen here."""
        deadline = time.monotonic() + (self.delivery_timeout + self.request_timeout if timeout is None else timeout)
        while True:
            self.drain_retries()
            with delivery._cond:
                if delivery._outstanding == 0:
                    break
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"{delivery._outstanding} messages unacknowledged after the timeout")
                delivery._cond.wait(min(left, 0.05))
        if delivery in self._deliveries:
            self._deliveries.remove(delivery)
        return delivery

    def flush(self, timeout=None):
        """Send every queued message and wait for all outstanding deliveries; returns the send() Delivery."""
        self._ship_open()
        self._ship_tails()
        with self._open_lock:
            pending, self._pending = self._pending, Delivery(self)
            self._send_count = 0
        for d in list(self._deliveries) + [pending]:
            self.wait(d, timeout)
        return pending

    def close(self, timeout=None):
        """Flush, then close the connections (when this producer opened them)."""
        try:
            if not self._closed:
                self.flush(timeout)
        finally:
            self._closed = True
            if self._own_cluster:
                self.cluster.close()

    # ------------------------------------------------------------------ idempotence

    def _init_producer_id(self):
        def attempt():
            answer = self.cluster.any_connection().call("InitProducerId", {"transactional_id": None,
                                                                           "transaction_timeout_ms": 60000})
            if answer["error_code"]:
                raise error_for(answer["error_code"], "InitProducerId")
            return answer
        answer = self.cluster.retry(attempt, "InitProducerId")
        self.producer_id, self.producer_epoch = answer["producer_id"], answer["producer_epoch"]
