"""What a producer or consumer worker hands back to its benchmark: one dataclass per role, the same from every driver.

Benchmarks read these attributes and write results.json from them; a driver that cannot know a figure leaves it None
(Kafka's perf tools carry no per-message ids, so their consumer result has empty id arrays).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


def _no_ids() -> np.ndarray:
    return np.empty(0, dtype=np.int64)


@dataclass(kw_only=True)
class WorkerResult:
    """What every worker reports beside its own figures: errors, and its CPU over the measured window (set by the
    process that ran it)."""

    errors: list[str] = field(default_factory=list)
    cpu_s: float | None = None          # CPU seconds from the start signal to the end
    cpu_window_s: float | None = None   # ... over this many wall seconds
    startup_cpu_s: float | None = None  # CPU before the window (a JVM's start-up), apart


@dataclass(kw_only=True)
class ProducerResult(WorkerResult):
    """One producer's outcome: what it sent, what the broker acknowledged, what failed, and when."""

    pid: int
    sent: int
    acked: int
    nbytes: int                          # bytes of the acknowledged messages
    start_ns: int
    end_ns: int
    failed: list[int] = field(default_factory=list)   # sequences the broker refused
    unknown: int = 0                     # neither acknowledged nor failed when the producer gave up waiting
    timeline: list[tuple[int, int]] = field(default_factory=list)  # (ns since start, acknowledged so far)
    batching: dict | None = None         # records and bytes per batch and per request
    ack_latency_ms: dict | None = None   # acknowledgement latency summary, where the client measures it
    batches: int | None = None
    client_metrics: dict | None = None   # the client's own metrics (Kafka's producer metrics)


@dataclass(kw_only=True)
class ConsumerResult(WorkerResult):
    """One consumer's outcome: what arrived, when, from which partitions, and where it stopped reading."""

    worker: int
    received: int                        # messages read, duplicates included
    nbytes: int
    start_ns: int
    first_ns: int | None = None
    last_ns: int | None = None
    timeline: list[tuple[int, int]] = field(default_factory=list)  # (ns since start, read so far)
    partition: np.ndarray = field(default_factory=_no_ids)  # per message read: its partition,
    pid: np.ndarray = field(default_factory=_no_ids)        # producer id,
    seq: np.ndarray = field(default_factory=_no_ids)        # sequence,
    arrival_ns: np.ndarray = field(default_factory=_no_ids)  # and monotonic arrival time
    latency_hist: str | None = None      # the encoded HDR histogram of the latencies measured, when asked for
    latency_count: int = 0               # ... the messages in it
    latency_negative: int = 0            # ... of which were 0 or below before clipping
    positions: dict[int, int] = field(default_factory=dict)  # partition -> offset after the last message read
    rebalance_ms: int | None = None      # the group join time a tool reports on its own


@dataclass(kw_only=True)
class LatencyResult(WorkerResult):
    """The outcome of a driver's own latency tool (Kafka's EndToEndLatency), which produces and consumes itself."""

    messages: int
    nbytes: int
    duration_s: float                    # the tool's measured loop, its start-up left out
    latency_ms: dict
    method: str
    start_ns: int | None = None          # monotonic start of that loop (CPU counts from here)
    startup_s: float | None = None       # the tool's run before the loop (JVM start-up, connecting)
