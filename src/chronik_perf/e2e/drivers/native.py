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

from ... import _core
from ...client import Cluster, Consumer, GroupConsumer, KafkaClientError, KIP848GroupConsumer, Producer
from ..payload import HEADER, HEADER_DTYPE, filler_pool, message_key
from .base import (SAMPLE_EVERY_NS, ConsumeTally, ConsumerSpec, Control, Driver, ProcessWorker, ProducerSpec,
                   wait_until)
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


class _Workload:
    """The messages of one producer, generated a run at a time in numpy (same layout as payload.MessageFactory)."""

    def __init__(self, spec: ProducerSpec):
        self.spec = spec
        self.size = spec.message_size
        self.body_len = spec.message_size - HEADER.size
        self.pool = np.frombuffer(filler_pool(spec.payload, self.body_len, seed=spec.pid), dtype=np.uint8)
        self.zeros = spec.payload == "zeros"

    def values(self, start: int, n: int, ts_ns: int) -> list[bytes]:
        """Values of sequences start..start+n-1, all stamped ts_ns."""
        buf = np.empty((n, self.size), dtype=np.uint8)
        head = np.empty(n, dtype=HEADER_DTYPE)
        head["pid"] = self.spec.pid
        head["seq"] = np.arange(start, start + n, dtype=np.uint64)
        head["ts"] = ts_ns
        buf[:, :HEADER.size] = head.view(np.uint8).reshape(n, HEADER.size)
        if self.body_len:
            if self.zeros:
                buf[:, HEADER.size:] = 0
            else:
                seqs = np.arange(start, start + n, dtype=np.int64)
                offs = (seqs * 7919) % (len(self.pool) - self.body_len + 1)
                buf[:, HEADER.size:] = self.pool[offs[:, None] + np.arange(self.body_len)]
        return _core.fixed_slices(buf, self.size)

    def keys(self, start: int, n: int) -> list | None:
        if self.spec.key_pattern == "none":
            return None
        return [message_key(self.spec.key_pattern, self.spec.pid, s) for s in range(start, start + n)]


def produce(spec: ProducerSpec, ctl: Control) -> dict:
    """Produce spec.num_messages: in runs through produce_many, or one by one on a fixed-rate schedule."""
    options = client_options(spec.client_config, _PRODUCER_OPTIONS)
    options.setdefault("delivery_timeout", 60.0)
    producer = Producer(spec.bootstrap_servers, client_id=f"chronik-perf-p{spec.pid}", **options)
    producer.cluster.topic(spec.topic)               # connect and learn the leaders before the clock starts
    work = _Workload(spec)
    ctl.set_ready()
    ctl.wait_go()
    if spec.rate:
        return _produce_at_rate(spec, ctl, producer, work)
    now, n, run = time.monotonic_ns, spec.num_messages, spec.run_length
    chunk = max(1, CHUNK_BYTES // spec.message_size)
    deliveries, timeline = [], []
    start = now()
    next_sample = start + SAMPLE_EVERY_NS
    seq = 0
    error = None
    stop_at = start + int(spec.duration_s * 1e9) if spec.duration_s else None
    while seq < n and error is None and (stop_at is None or now() < stop_at):
        m = min(chunk, n - seq)
        values, keys = work.values(seq, m, now()), work.keys(seq, m)
        try:
            if keys is None:                         # runs of `run` messages, each to one partition
                parts = ((np.arange(seq, seq + m) // run + spec.pid) % spec.num_partitions).astype(np.int32)
                deliveries.append((seq, producer.produce_many(spec.topic, values, partition=parts)))
            else:
                deliveries.append((seq, producer.produce_many(spec.topic, values, keys=keys)))
        except KafkaClientError as exc:
            error = exc
            break
        seq += m
        t = now()
        if t >= next_sample:
            acked = sum(d.acked for _, d in deliveries)
            timeline.append((t - start, acked))
            ctl.progress(acked)
            next_sample = t + SAMPLE_EVERY_NS
    try:
        for _, d in deliveries:
            d.wait(spec.timeout_s)
    except TimeoutError as exc:                  # what is neither acknowledged nor failed now is unknown
        error = error or exc
    end = now()
    failed = [int(first + i) for first, d in deliveries for i in d.failed_indices()]
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
        raise RuntimeError(f"broker unreachable: {error}")
    if error is not None:
        errors.append(f"stopped after {seq} messages: {error}")
    timeline.append((end - start, acked))
    ctl.progress(acked)
    failed = sorted(set(failed))
    return {"pid": spec.pid, "sent": seq, "acked": acked, "failed": failed, "unknown": seq - acked - len(failed),
            "batching": batching, "bytes": acked * spec.message_size, "start_ns": start, "end_ns": end, "timeline": timeline,
            "errors": errors, "ack_latency_ms": _latency_summary(latencies), "batches": int(latencies.size)}


def _produce_at_rate(spec: ProducerSpec, ctl: Control, producer: Producer, work: _Workload) -> dict:
    now, interval, n = time.monotonic_ns, 1e9 / spec.rate, spec.num_messages
    timeline = []
    start = now()
    next_sample = start + SAMPLE_EVERY_NS
    for seq in range(n):
        intended = start + int(seq * interval)
        wait_until(intended)
        key = message_key(spec.key_pattern, spec.pid, seq)
        p = ((seq // spec.run_length + spec.pid) % spec.num_partitions) if key is None else None
        producer.send(spec.topic, work.values(seq, 1, intended)[0], key=key, partition=p)
        t = now()
        if t >= next_sample:
            timeline.append((t - start, producer.sent.acked))
            ctl.progress(producer.sent.acked)
            next_sample = t + SAMPLE_EVERY_NS
    errors = []
    try:
        delivery = producer.flush(spec.timeout_s)
    except TimeoutError as exc:                  # what is neither acknowledged nor failed now is unknown
        delivery = producer.sent
        errors.append(f"gave up waiting: {exc}")
    end = now()
    batching = _batching(producer)
    try:
        producer.close(timeout=10)
    except TimeoutError:
        pass
    if delivery.acked == 0 and delivery.failed:
        raise RuntimeError(f"broker unreachable: {delivery.first_error}")
    timeline.append((end - start, delivery.acked))
    ctl.progress(delivery.acked)
    failed = delivery.failed_indices()
    return {"pid": spec.pid, "sent": n, "acked": delivery.acked, "failed": failed.tolist(),
            "unknown": n - delivery.acked - len(failed), "bytes": delivery.acked * spec.message_size,
            "start_ns": start, "end_ns": end, "timeline": timeline, "errors": errors + delivery.errors,
            "batching": batching}


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


def consume_records(spec: ConsumerSpec, ctl: Control) -> dict:
    """consume() with one Python Record object per message (FetchedPartition.records()): the same per-message work as
    confluent-kafka's Message objects, so the Python-level ceiling stands beside the C-level one."""
    return consume(spec, ctl, materialise=True)


def consume(spec: ConsumerSpec, ctl: Control, materialise: bool = False) -> dict:
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
    span = np.arange(HEADER.size, dtype=np.int64)
    try:
        while tally.wanted():
            if ctl.should_stop():
                break
            fetched = reader.poll(0.1)
            t = time.monotonic_ns()
            got = 0
            for fp in fetched:
                if materialise:
                    values = [r.value for r in fp.records()]
                    if values:
                        if any(len(v) < HEADER.size for v in values):
                            raise RuntimeError("a message shorter than the 20-byte benchmark header arrived: "
                                               "not our topic?")
                        heads.append(np.frombuffer(b"".join(v[:HEADER.size] for v in values), dtype=np.uint8)
                                     .reshape(-1, HEADER.size))
                        parts.append(np.full(len(values), fp.partition, dtype=np.int32))
                        tally.nbytes += sum(len(v) for v in values)
                        tally.reached(fp.partition, int(fp.offsets()[-1]) + 1)
                        if tally.counts_ids:
                            h = heads[-1].reshape(-1).view(HEADER_DTYPE)
                            tally.ids(h["pid"], h["seq"])
                        got += len(values)
                    continue
                for cols in fp.columns():
                    n = len(cols["value_start"])
                    if not n:
                        continue
                    if (cols["value_length"] < HEADER.size).any():
                        raise RuntimeError("a message shorter than the 20-byte benchmark header arrived: "
                                           "not our topic?")
                    data = np.frombuffer(cols["data"], dtype=np.uint8)
                    heads.append(data[cols["value_start"][:, None] + span])
                    parts.append(np.full(n, fp.partition, dtype=np.int32))
                    tally.nbytes += int(cols["value_length"].sum())
                    tally.reached(fp.partition, int(cols["offset"][-1]) + 1)
                    if tally.counts_ids:
                        h = heads[-1].reshape(-1).view(HEADER_DTYPE)
                        tally.ids(h["pid"], h["seq"])
                    got += n
            if not tally.record(t, got):
                break
    except KafkaClientError as exc:
        raise RuntimeError(f"broker unreachable: {exc}") from exc
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
