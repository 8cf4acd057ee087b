"""The confluent driver: confluent-kafka (librdkafka) producers and consumers in worker processes.

Tuned for benchmarking: no per-message Python callback on success (delivery.report.only.error, so
the only callbacks are for failed messages and every message not reported failed once flush()
returns was acknowledged), explicit partitions, batched consume() calls, header parsing in numpy.
"""

from __future__ import annotations

import json
import time
from array import array

import confluent_kafka
import numpy as np
from confluent_kafka import Consumer, KafkaError, Producer, TopicPartition

from ..payload import HEADER, HEADER_DTYPE, MessageFactory
from .base import ConsumeTally, ConsumerSpec, Control, Driver, FixedRate, ProcessWorker, ProducerSpec, ProduceTally
from .worker_results import ConsumerResult, ProducerResult
CLIENT_LOG_LEVEL = 3  # syslog "error": librdkafka's info lines (idle disconnects) are not results; -X log_level=7 to see
# Consumer settings so that librdkafka's prefetch is not the limit (its defaults stop fetching at 100k queued messages
# and back off 1 s; a consumer then sat at ~0.25 cores) and CRCs are checked as the native and Java consumers check
# them; -X consumer.<name>=<value> overrides each.
CONSUMER_DEFAULTS = {"queued.min.messages": 1_000_000, "queued.max.messages.kbytes": 1_048_576,
                     "fetch.queue.backoff.ms": 0, "check.crcs": True}
STATS_INTERVAL_MS = 1000  # librdkafka statistics, for the batching figures
FATAL_CODES = {KafkaError._ALL_BROKERS_DOWN, KafkaError._AUTHENTICATION}


class _ErrorLog:
    """Collects client errors; remembers whether the cluster became unreachable."""

    def __init__(self):
        self.messages: list[str] = []
        self.fatal: str | None = None

    def __call__(self, err):
        if len(self.messages) < 20:
            self.messages.append(str(err))
        if err.code() in FATAL_CODES or err.fatal():
            self.fatal = str(err)


class _Batching:
    """librdkafka's statistics (stats_cb) -> records and bytes per batch and per Produce request."""

    def __init__(self):
        self.batches = self.records = self.batch_bytes = 0.0
        self.requests = self.tx_bytes = self.tx = 0

    def __call__(self, text: str) -> None:
        doc = json.loads(text)
        for t in doc.get("topics", {}).values():
            cnt, size = t.get("batchcnt") or {}, t.get("batchsize") or {}
            n = cnt.get("cnt") or 0  # batches in this statistics window (windows restart at every report)
            self.batches += n
            self.records += (cnt.get("avg") or 0) * n
            self.batch_bytes += (size.get("avg") or 0) * n
        brokers = [b for b in doc.get("brokers", {}).values() if b.get("nodeid", -1) >= 0]
        self.requests = sum((b.get("req") or {}).get("Produce", 0) for b in brokers)
        self.tx, self.tx_bytes = sum(b.get("tx", 0) for b in brokers), sum(b.get("txbytes", 0) for b in brokers)

    def figures(self, messages: int) -> dict:
        """The figures up to the last statistics report (None before the first, in runs under a second)."""
        return {"records_per_batch": self.records / self.batches if self.batches else None,
                "bytes_per_batch": self.batch_bytes / self.batches if self.batches else None,
                "records_per_request": messages / self.requests if self.requests else None, "bytes_per_request": self.tx_bytes / self.tx if self.tx else None,
                "produce_requests": self.requests,
                "method": f"librdkafka statistics every {STATS_INTERVAL_MS} ms (batchcnt, batchsize; txbytes/tx "
                          "over every request, Produce or not)"}


def produce(spec: ProducerSpec, ctl: Control) -> ProducerResult:
    """Produce spec.num_messages; unthrottled, or on the fixed schedule of spec.rate stamping intended times."""
    errors = _ErrorLog()
    failed: list[int] = []

    def on_delivery(err, msg):
        if err is not None:
            failed.append(HEADER.unpack_from(msg.value())[1])
            if len(errors.messages) < 20:
                errors.messages.append(f"delivery failed: {err}")

    stats = _Batching()
    conf = {"bootstrap.servers": spec.bootstrap_servers, "delivery.report.only.error": True,
            "on_delivery": on_delivery, "error_cb": errors, "message.timeout.ms": 60000,
            "client.id": f"chronik-perf-p{spec.pid}", "log_level": CLIENT_LOG_LEVEL,
            "statistics.interval.ms": STATS_INTERVAL_MS, "stats_cb": stats}
    conf.update(spec.client_config)
    producer = Producer(conf)
    factory = MessageFactory(spec.pid, spec.message_size, spec.payload, spec.key_pattern,
                             spec.num_partitions, spec.run_length)
    producer.list_topics(spec.topic, timeout=10)  # connect and learn the leader before the clock starts
    ctl.set_ready()
    ctl.wait_go()
    topic, now = spec.topic, time.monotonic_ns
    tally = ProduceTally(spec, ctl)
    schedule = FixedRate(tally.start, spec.rate) if spec.rate else None
    seq = 0
    n = spec.num_messages
    while seq < n:
        if errors.fatal or (tally.stop_at is not None and not seq & 1023 and now() >= tally.stop_at):
            break
        ts = schedule.wait(seq) if schedule else now()
        key = factory.key(seq)
        try:
            producer.produce(topic, factory.value(seq, ts), key, partition=factory.partition(seq, key))
        except BufferError:
            producer.poll(0.01)
            continue
        seq += 1
        if schedule or not seq & 1023:
            producer.poll(0)
            tally.tick(lambda: seq - len(producer) - len(failed))
    deadline = time.monotonic() + spec.timeout_s
    while len(producer) and time.monotonic() < deadline and not errors.fatal:
        producer.flush(0.25)
        tally.sample(now(), seq - len(producer) - len(failed))
    tally.finish()
    unknown = len(producer)  # neither acknowledged nor failed when the wait ended: never owed, reported
    if errors.fatal:
        raise RuntimeError(f"broker unreachable: {errors.fatal}")
    if unknown:
        errors.messages.append(f"{unknown} messages neither acknowledged nor failed after {spec.timeout_s:.0f} s")
    producer.poll(0)
    return tally.result(seq, seq - len(failed) - unknown, failed, unknown, errors.messages,
                        batching=stats.figures(seq))


def consume(spec: ConsumerSpec, ctl: Control) -> ConsumerResult:
    """Read until spec.expected messages arrived (or stopped, or idle too long); report what arrived."""
    errors = _ErrorLog()
    conf = {"bootstrap.servers": spec.bootstrap_servers, "group.id": spec.group or f"chronik-perf-{spec.topic}",
            "enable.auto.commit": bool(spec.group), "auto.offset.reset": "earliest", "error_cb": errors,
            "enable.partition.eof": False, "client.id": f"chronik-perf-c{spec.worker_id}",
            "log_level": CLIENT_LOG_LEVEL, **CONSUMER_DEFAULTS}
    if spec.group and spec.group_protocol == "consumer":
        conf["group.protocol"] = "consumer"
    conf.update(spec.client_config)
    consumer = Consumer(conf)
    if spec.group:
        def on_assign(c, parts):
            ctl.emit("assigned", worker=spec.worker_id, partitions=[p.partition for p in parts])

        def on_revoke(c, parts):
            ctl.emit("revoked", worker=spec.worker_id, partitions=[p.partition for p in parts])
            try:
                c.commit(asynchronous=False)
            except confluent_kafka.KafkaException:
                pass  # nothing consumed yet, or the group already moved on

        ctl.emit("joining", worker=spec.worker_id)
        consumer.subscribe([spec.topic], on_assign=on_assign, on_revoke=on_revoke)
    else:
        consumer.list_topics(spec.topic, timeout=10)
        consumer.assign([TopicPartition(spec.topic, p, confluent_kafka.OFFSET_BEGINNING) for p in spec.partitions])
    ctl.set_ready()
    # Headers and partitions go to flat buffers: a Python object kept per message (the bytes slice of a header)
    # makes every full garbage collection walk all of them, and the surviving Message objects start a full pass about
    # every 130,000 messages, so the cost per message grew with the log (a 30M-message read ran at ~65k msg/s).
    heads, parts = bytearray(), array("i")
    tally = ConsumeTally(spec, ctl)
    short = False
    while tally.wanted():
        if ctl.should_stop() or errors.fatal:
            break
        # poll() returns as soon as one message is there; consume(n, timeout) would wait for n or the timeout,
        # delaying every arrival by up to the timeout. Whatever else is already fetched is drained at once.
        first_msg = consumer.poll(0.1)
        batch = [] if first_msg is None else [first_msg, *consumer.consume(999, timeout=0)]
        t = time.monotonic_ns()
        got = 0
        last: dict[int, int] = {}
        for m in batch:
            if m.error():
                if m.error().code() != KafkaError._PARTITION_EOF and len(errors.messages) < 20:
                    errors.messages.append(str(m.error()))
                continue
            v = m.value()
            heads += v[:HEADER.size]
            p = m.partition()
            parts.append(p)
            last[p] = m.offset()
            tally.nbytes += len(v)
            got += 1
        for p, offset in last.items():
            tally.reached(p, offset + 1)
        if len(heads) != HEADER.size * len(parts):
            short = True
            break
        if got and tally.counts_ids:
            h = np.frombuffer(heads[-got * HEADER.size:], dtype=HEADER_DTYPE)
            tally.ids(h["pid"], h["seq"])
        if not tally.record(t, got):
            break
    tally.finish()
    ctl.emit("closing", worker=spec.worker_id)
    consumer.close()
    if errors.fatal:
        raise RuntimeError(f"broker unreachable: {errors.fatal}")
    if short:
        raise RuntimeError("a message shorter than the 20-byte benchmark header arrived: not our topic?")
    return tally.result(errors.messages, np.frombuffer(parts, dtype=np.int32), np.frombuffer(heads, dtype=HEADER_DTYPE))


class ConfluentDriver(Driver):
    """confluent-kafka (librdkafka) in worker processes."""

    name = "confluent"
    producer_work = {"per_message": "Python produce() per message"}
    consumer_work = {"per_message": "Python Message per message", "crc_checked": True}

    def describe(self) -> dict:
        return {"driver": self.name, "client": "confluent-kafka", "version": confluent_kafka.version()[0],
                "librdkafka": confluent_kafka.libversion()[0]}

    def start_producer(self, spec: ProducerSpec, gated: bool = False) -> ProcessWorker:
        return ProcessWorker(produce, spec, gated)

    def start_consumer(self, spec: ConsumerSpec) -> ProcessWorker:
        return ProcessWorker(consume, spec)
