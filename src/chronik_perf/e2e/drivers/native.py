"""The native driver: chronik-perf's own client (``chronik_perf.client``) on the Cython core, in worker processes.

Unthrottled producers build each run of messages at once — the 20-byte headers (producer id, sequence, send time)
and the filler in numpy, cut into values by the core — and hand the run to ``Producer.produce_many``: no Python
call per message between the workload and the socket. Fixed-rate producers (the latency test) stamp each message
with its intended time and use ``Producer.send`` with linger. Consumers decode headers straight from the fetched
batches' columns. Kafka property names from -X are mapped to the client's options; unknown ones are an error.
"""

from __future__ import annotations

import time

import numpy as np

from ...client import (BrokerUnavailableError, Cluster, Consumer, GroupConsumer, KafkaClientError, KIP848GroupConsumer,
                       Producer, RequestTimedOutError)
from ..payload import HEADER, HEADER_DTYPE, MessageFactory
from .base import ConsumeTally, ConsumerSpec, Control, Driver, FixedRate, ProcessWorker, ProducerSpec, ProduceTally
from .worker_results import ConsumerResult, ProducerResult
CHUNK_BYTES = 4 << 20                      # workload generated and handed over this much at a time

_PRODUCER_OPTIONS = {"acks": ("acks", str), "compression.type": ("compression", str),
                     "batch.size": ("batch_size", int), "linger.ms": ("linger_ms", float),
                     "enable.idempotence": ("idempotent", lambda v: str(v).lower() == "true"),
                     "max.in.flight.requests.per.connection": ("max_in_flight", int),
                     "request.timeout.ms": ("request_timeout", lambda v: int(v) / 1000),
                     "delivery.timeout.ms": ("delivery_timeout", lambda v: int(v) / 1000),
                     "message.timeout.ms": ("delivery_timeout", lambda v: int(v) / 1000)}
_CONSUMER_OPTIONS = {"fetch.max.bytes": ("max_bytes", int), "max.partition.fetch.bytes": ("partition_max_bytes", int),
                     "fetch.max.wait.ms": ("max_wait_ms", int), "fetch.wait.max.ms": ("max_wait_ms", int),
                     "fetch.min.bytes": ("min_bytes", int), "session.timeout.ms": ("session_timeout_ms", int),
                     "heartbeat.interval.ms": ("heartbeat_interval_ms", int),
                     "max.poll.interval.ms": ("rebalance_timeout_ms", int),
                     "partition.assignment.strategy": ("assignor", lambda v: "roundrobin" if "robin" in v.lower()
                                                       else "range"),
                     "group.remote.assignor": ("server_assignor", str)}
_GROUP_ONLY = {"session_timeout_ms", "heartbeat_interval_ms", "rebalance_timeout_ms", "assignor", "server_assignor"}
# Under KIP-848 the broker owns session timeout, heartbeat interval and assignor choice among its own assignors.
_CLASSIC_ONLY = {"session_timeout_ms": "session.timeout.ms", "heartbeat_interval_ms": "heartbeat.interval.ms",
                 "assignor": "partition.assignment.strategy"}



def _failed(error) -> RuntimeError:
    """The worker's failure: "broker unreachable" only for a lost connection or a timeout, else the client's error."""
    if isinstance(error, (BrokerUnavailableError, RequestTimedOutError, TimeoutError, OSError)):
        return RuntimeError(f"broker unreachable: {error}")
    return RuntimeError(f"client error ({type(error).__name__}): {error}")

def client_options(config: dict, table: dict) -> dict:
    """Kafka property names -> the client's keyword options; unknown names raise ValueError."""
    out = {}
    for key, value in config.items():
        if key not in table:
            raise ValueError(f"the native driver does not know the client setting {key!r} "
                             f"(known: {', '.join(sorted(table))})")
        name, convert = table[key]
        out[name] = convert(value)
    if out.get("acks") == "-1":
        out["acks"] = "all"
    elif out.get("acks") in ("0", "1"):
        out["acks"] = int(out["acks"])
    return out


def produce(spec: ProducerSpec, ctl: Control) -> ProducerResult:
    """Produce spec.num_messages: in runs through produce_many, or one by one on a fixed-rate schedule."""
    options = client_options(spec.client_config, _PRODUCER_OPTIONS)
    options.setdefault("delivery_timeout", 60.0)
    producer = Producer(spec.bootstrap_servers, client_id=f"chronik-perf-p{spec.pid}", **options)
    producer.cluster.topic(spec.topic)               # connect and learn the leaders before the clock starts
    work = MessageFactory(spec.pid, spec.message_size, spec.payload, spec.key_pattern, spec.num_partitions,
                          spec.run_length)
    ctl.set_ready()
    ctl.wait_go()
    if spec.rate:
        return _produce_at_rate(spec, ctl, producer, work)
    now, n = time.monotonic_ns, spec.num_messages
    chunk = max(1, CHUNK_BYTES // spec.message_size)
    deliveries = []
    tally = ProduceTally(spec, ctl)
    seq = 0
    error = None
    while seq < n and error is None and (tally.stop_at is None or now() < tally.stop_at):
        m = min(chunk, n - seq)
        values, keys = work.values(seq, m, now()), work.keys(seq, m)
        try:                                         # unkeyed: runs of messages, each to one partition
            parts = work.partitions(seq, m)
            deliveries.append((seq, producer.produce_many(spec.topic, values, keys=keys, partition=parts)))
        except KafkaClientError as exc:
            error = exc
            break
        seq += m
        tally.tick(lambda: sum(d.acked for _, d in deliveries))
    try:
        for _, d in deliveries:
            d.wait(spec.timeout_s)
    except TimeoutError as exc:                  # what is neither acknowledged nor failed now is unknown
        error = error or exc
    tally.finish()
    failed = {int(first + i) for first, d in deliveries for i in d.failed_indices()}
    acked = sum(d.acked for _, d in deliveries)
    batching = _batching(producer)
    latencies = np.concatenate([np.asarray(d.batch_latencies_ns, dtype=np.int64) for _, d in deliveries]
                               or [np.empty(0, dtype=np.int64)])
    errors = [e for _, d in deliveries for e in d.errors][:20]
    try:
        producer.close(timeout=10)
    except TimeoutError:
        pass
    if error is not None and not acked:
        raise _failed(error)
    if error is not None:
        errors.append(f"stopped after {seq} messages: {error}")
    return tally.result(seq, acked, failed, seq - acked - len(failed), errors, batching=batching,
                        ack_latency_ms=_latency_summary(latencies), batches=int(latencies.size))


def _produce_at_rate(spec: ProducerSpec, ctl: Control, producer: Producer, work: MessageFactory) -> ProducerResult:
    n = spec.num_messages
    tally = ProduceTally(spec, ctl)
    schedule = FixedRate(tally.start, spec.rate)
    for seq in range(n):
        intended = schedule.wait(seq)
        key = work.key(seq)
        p = work.partition(seq, key) if key is None else None  # keyed: the client's murmur2 partitioner
        producer.send(spec.topic, work.value(seq, intended), key=key, partition=p)
        tally.tick(lambda: producer.sent.acked)
    errors = []
    try:
        delivery = producer.flush(spec.timeout_s)
    except TimeoutError as exc:                  # what is neither acknowledged nor failed now is unknown
        delivery = producer.sent
        errors.append(f"gave up waiting: {exc}")
    tally.finish()
    batching = _batching(producer)
    try:
        producer.close(timeout=10)
    except TimeoutError:
        pass
    if delivery.acked == 0 and delivery.failed:
        raise _failed(delivery.first_error)
    failed = delivery.failed_indices().tolist()
    return tally.result(n, delivery.acked, failed, n - delivery.acked - len(failed), errors + delivery.errors,
                        batching=batching)


def _batching(producer: Producer) -> dict:
    """Records and bytes per batch and per Produce request, from what the producer sent."""
    st = producer.stats
    return {"records_per_batch": st["records"] / st["batches"] if st["batches"] else None,
            "bytes_per_batch": st["batch_bytes"] / st["batches"] if st["batches"] else None,
            "records_per_request": st["records"] / st["requests"] if st["requests"] else None,
            "bytes_per_request": st["batch_bytes"] / st["requests"] if st["requests"] else None,
            "method": "counted by chronik_perf.client as it sends (record-batch bytes, without request headers)"}


def _latency_summary(latencies_ns: np.ndarray) -> dict | None:
    if latencies_ns.size == 0:
        return None
    ms = latencies_ns / 1e6
    return {"min": float(ms.min()), "avg": float(ms.mean()), "p50": float(np.percentile(ms, 50)),
            "p95": float(np.percentile(ms, 95)), "p99": float(np.percentile(ms, 99)),
            "p999": float(np.percentile(ms, 99.9)), "max": float(ms.max())}


def consume_records(spec: ConsumerSpec, ctl: Control) -> ConsumerResult:
    """consume() with one Python Record object per message (FetchedPartition.records()): the same per-message work as
    confluent-kafka's Message objects, so the Python-level ceiling stands beside the C-level one."""
    return consume(spec, ctl, materialise=True)


_SHORT = "a message shorter than the 20-byte benchmark header arrived: not our topic?"


def _columns_read(fp) -> tuple[np.ndarray, int, int]:
    """(benchmark headers as a (count, 20) uint8 array, value bytes, last offset) of one fetched partition, from
    its batches' columns: no Python object per message."""
    cols = fp.columns()
    try:
        head = fp.value_heads(HEADER.size, cols)
    except ValueError:
        raise RuntimeError(_SHORT) from None
    if not len(head):
        return head, 0, -1
    last = next(int(c["offset"][-1]) for c in reversed(cols) if len(c["offset"]))
    return head, sum(int(c["value_length"].sum()) for c in cols), last


def _values_read(fp) -> tuple[np.ndarray, int, int]:
    """_columns_read through one Python Record object per message."""
    values = [r.value for r in fp.records()]
    if any(len(v) < HEADER.size for v in values):
        raise RuntimeError(_SHORT)
    head = np.frombuffer(b"".join(v[:HEADER.size] for v in values), dtype=np.uint8).reshape(-1, HEADER.size)
    return head, sum(len(v) for v in values), int(fp.offsets()[-1]) if values else -1


def consume(spec: ConsumerSpec, ctl: Control, materialise: bool = False) -> ConsumerResult:
    """Read until every owed id arrived (or stopped, or idle too long); report what arrived."""
    options = client_options(spec.client_config, _CONSUMER_OPTIONS)
    kip848 = bool(spec.group) and spec.group_protocol == "consumer"
    if kip848:
        misplaced = [_CLASSIC_ONLY[k] for k in options if k in _CLASSIC_ONLY]
    else:
        misplaced = ["group.remote.assignor"] if "server_assignor" in options else []
    if misplaced:
        raise ValueError(f"{', '.join(misplaced)} cannot be set for the {spec.group_protocol} group protocol")
    client_id = f"chronik-perf-c{spec.worker_id}"
    if spec.group:
        def on_assign(parts):
            ctl.emit("assigned", worker=spec.worker_id, partitions=[p for _, p in parts])

        def on_revoke(parts):
            ctl.emit("revoked", worker=spec.worker_id, partitions=[p for _, p in parts])
        ctl.emit("joining", worker=spec.worker_id)
        member = KIP848GroupConsumer if kip848 else GroupConsumer
        reader = member(spec.bootstrap_servers, spec.group, [spec.topic], client_id=client_id, on_assign=on_assign,
                        on_revoke=on_revoke, **options)
    else:
        fetch = {k: v for k, v in options.items() if k not in _GROUP_ONLY}
        reader = Consumer(cluster=Cluster(spec.bootstrap_servers, client_id=client_id), **fetch)
        reader.assign(spec.topic, spec.partitions, "earliest")
    ctl.set_ready()
    heads, parts = [], []
    tally = ConsumeTally(spec, ctl)
    try:
        while tally.wanted():
            if ctl.should_stop():
                break
            fetched = reader.poll(0.1)
            t = time.monotonic_ns()
            got = 0
            for fp in fetched:
                head, nbytes, last = _values_read(fp) if materialise else _columns_read(fp)
                if not len(head):
                    continue
                heads.append(head)
                parts.append(np.full(len(head), fp.partition, dtype=np.int32))
                tally.nbytes += nbytes
                tally.reached(fp.partition, last + 1)
                if tally.counts_ids:
                    h = head.reshape(-1).view(HEADER_DTYPE)
                    tally.ids(h["pid"], h["seq"])
                got += len(head)
            if not tally.record(t, got):
                break
    except KafkaClientError as exc:
        raise _failed(exc) from exc
    finally:
        tally.finish()
        ctl.emit("closing", worker=spec.worker_id)
        if spec.group:
            reader.close()
        else:
            reader.cluster.close()
    header = (np.concatenate(heads).reshape(-1).view(HEADER_DTYPE) if heads
              else np.empty(0, dtype=HEADER_DTYPE))
    return tally.result([], np.concatenate(parts) if parts else np.empty(0, dtype=np.int32), header)


class NativeDriver(Driver):
    """chronik-perf's own client on the Cython core, in worker processes."""

    name = "native"
    producer_work = {"per_message": "numpy values, C batches (produce_many)"}
    consumer_work = {"per_message": "C scan of batch framing, no Python object", "crc_checked": True}

    def describe(self) -> dict:
        from ... import __version__
        return {"driver": self.name, "client": "chronik_perf.client", "version": __version__}

    def unsupported(self, test: str) -> str | None:
        return None

    def start_producer(self, spec: ProducerSpec, gated: bool = False) -> ProcessWorker:
        return ProcessWorker(produce, spec, gated)

    def start_consumer(self, spec: ConsumerSpec) -> ProcessWorker:
        return ProcessWorker(consume, spec)


class NativeRecordsDriver(NativeDriver):
    """The native driver whose consumers build one Python Record per message (same work as confluent's Message)."""

    name = "native-records"
    consumer_work = {"per_message": "Python Record per message", "crc_checked": True}

    def start_consumer(self, spec: ConsumerSpec) -> ProcessWorker:
        return ProcessWorker(consume_records, spec)
