"""Verification from log end offsets, for workloads nobody reads back (or tools that carry no ids)."""

from __future__ import annotations

from confluent_kafka import Consumer, TopicPartition

from ..verify import Expected
from .common import RunContext


def log_count_check(ctx: RunContext, topic: str, expected: list[Expected]) -> dict:
    """Compare acknowledged messages with the sum of the topic's high watermarks (counts only, no ids)."""
    md = ctx.admin.list_topics(topic, timeout=10).topics[topic]
    consumer = Consumer({"bootstrap.servers": ctx.bootstrap_servers, "group.id": f"chronik-perf-{ctx.run_id}-wm"})
    try:
        in_log = 0
        for p in md.partitions:
            lo, hi = consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)
            in_log += hi - lo
    finally:
        consumer.close()
    acked = sum(e.acked for e in expected)
    sent = sum(e.sent for e in expected)
    return {"method": "log end offsets (counts only: no per-message ids read back)", "expected": acked,
            "in_log": in_log, "lost": max(0, acked - in_log), "duplicated": max(0, in_log - sent),
            "out_of_order": None}
