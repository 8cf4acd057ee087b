"""Benchmarks 1 and 2: one producer's and one consumer's throughput."""

from __future__ import annotations

from ..verify import Stream, verify
from .common import (Filled, RunContext, consumer_spec, cpu_figures, create_topic, entry, expected_of, produce_to,
                     producer_spec, timeline_rates, wait_for)


def run_producer(ctx: RunContext) -> dict:
    """Max msgs/s and MB/s from one producer, counting only acknowledged messages."""
    cfg = ctx.cfg
    topic, partitions = create_topic(ctx, "producer", cfg.num_partitions)
    spec = producer_spec(ctx, topic, partitions, 0, cfg.num_messages)
    (r,) = wait_for(ctx, "producer", [ctx.driver.start_producer(spec)], cfg.num_messages,
                    timeout=spec.timeout_s + 60)
    ctx.filled = Filled(topic, partitions, [expected_of(r)])
    duration = (r["end_ns"] - r["start_ns"]) / 1e9
    return entry("producer", ctx, r["acked"], r["bytes"], duration, sent=r["sent"],
                 unacknowledged=len(r["failed"]), errors=r["errors"], **cpu_figures(r, r["acked"]),
                 ack_latency_ms=r.get("ack_latency_ms"), batching=r.get("batching"),
                 client_metrics=r.get("client_metrics"),
                 latency_ms=r.get("latency_ms"), timeline=timeline_rates(r["timeline"]), topic=topic, partitions=partitions)


def run_consumer(ctx: RunContext) -> dict:
    """Consumption rate of one consumer reading what the producer benchmark wrote (or a fresh fill)."""
    cfg = ctx.cfg
    if ctx.filled is None:
        topic, partitions = create_topic(ctx, "consumer", cfg.num_partitions)
        ctx.filled = produce_to(ctx, topic, partitions, "consumer: filling topic")
    filled = ctx.filled
    spec = consumer_spec(ctx, filled.topic, filled.partitions, filled.acked, worker_id=0)
    (r,) = wait_for(ctx, "consumer", [ctx.driver.start_consumer(spec)], filled.acked,
                    timeout=max(120.0, filled.acked / 2000))
    end = r.get("last_ns") or r["start_ns"]
    duration = (end - r["start_ns"]) / 1e9
    verification = None
    if ctx.driver.verifies:
        verification = verify(filled.expected, [Stream(r["partition"], r["pid"], r["seq"])],
                              ctx.partition_of(filled.partitions))
    return entry("consumer", ctx, r["received"], r["bytes"], duration, verification=verification,
                 errors=r["errors"], **cpu_figures(r, r["received"]), group_join_ms=r.get("rebalance_ms"),
                 timeline=timeline_rates(r["timeline"]), topic=filled.topic)
