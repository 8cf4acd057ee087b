"""Benchmarks 1 and 2: one producer's and one consumer's throughput."""

from __future__ import annotations

from ..verify import Stream, unread_counts, verify
from .common import (Filled, RunContext, consumer_spec, cpu_figures, create_topic, end_offsets, entry, expected_of,
                     owed, produce_to, producer_spec, timeline_rates, wait_for)


MAX_TIMED = 1 << 40  # the message ceiling of a producer test that runs for a time


def run_producer(ctx: RunContext) -> dict:
    """Max msgs/s and MB/s from one producer, counting only acknowledged messages."""
    cfg = ctx.cfg
    topic, partitions = create_topic(ctx, "producer", cfg.num_partitions)
    timed = bool(cfg.producer_seconds) and ctx.driver.name != "java"  # ProducerPerformance only counts
    spec = producer_spec(ctx, topic, partitions, 0, MAX_TIMED if timed else cfg.num_messages)
    if timed:
        spec.duration_s, spec.timeout_s = cfg.producer_seconds, cfg.producer_seconds + 120
    (r,) = wait_for(ctx, "producer", [ctx.driver.start_producer(spec)], cfg.num_messages if not timed else 0,
                    timeout=spec.timeout_s + 60)
    ctx.filled = Filled(topic, partitions, [expected_of(r)])
    duration = (r.end_ns - r.start_ns) / 1e9
    return entry("producer", ctx, r.acked, r.nbytes, duration, sent=r.sent,
                 unacknowledged=len(r.failed), errors=r.errors, **cpu_figures(r, r.acked),
                 ack_latency_ms=r.ack_latency_ms, batching=r.batching, work=ctx.driver.producer_work,
                 client_metrics=r.client_metrics,
                 timeline=timeline_rates(r.timeline), topic=topic, partitions=partitions)


def run_consumer(ctx: RunContext) -> dict:
    """Consumption rate of one consumer reading what the producer benchmark wrote (or a fresh fill)."""
    cfg = ctx.cfg
    if ctx.shared_fill is None and ctx.filled is None:
        topic, partitions = create_topic(ctx, "consumer", cfg.num_partitions)
        ctx.filled = produce_to(ctx, topic, partitions, "consumer: filling topic")
    filled = ctx.shared_fill or ctx.filled
    spec = consumer_spec(ctx, filled.topic, filled.partitions, filled.acked, worker_id=0,
                         owed=owed(filled.expected) if ctx.driver.verifies else None)
    (r,) = wait_for(ctx, "consumer", [ctx.driver.start_consumer(spec)], filled.acked,
                    timeout=max(120.0, filled.acked / 2000))
    end = r.last_ns or r.start_ns
    duration = (end - r.start_ns) / 1e9
    verification = None
    messages, nbytes = r.received, r.nbytes
    if ctx.driver.verifies:
        verification = verify(filled.expected, [Stream(r.partition, r.pid, r.seq)],
                              ctx.partition_of(filled.partitions),
                              unread_counts(end_offsets(ctx, filled.topic), [r.positions]))
        messages = verification["distinct"]  # duplicates and strangers are reported, never counted as throughput
        nbytes = messages * cfg.message_size
    return entry("consumer", ctx, messages, nbytes, duration, verification=verification, read_in_total=r.received,
                 errors=r.errors, **cpu_figures(r, messages), group_join_ms=r.rebalance_ms,
                 timeline=timeline_rates(r.timeline), topic=filled.topic,
                 work={**ctx.driver.consumer_work, "fill": filled.topic,
                       "fill_written_by": filled.written_by or ctx.driver.name})
