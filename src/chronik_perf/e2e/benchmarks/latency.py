"""Benchmark 3: end-to-end latency on a fixed-rate schedule, free of coordinated omission.

The producer sends message i at the intended time start + i/rate and stamps that intended time
(CLOCK_MONOTONIC) in the message; if it falls behind (a stall in the client or the broker), it sends
the late messages at once with their original stamps, so the stall shows in the latency instead of
hiding behind fewer sends. The consumer, a separate process on the same host and so on the same
CLOCK_MONOTONIC, subtracts the stamp from the time consume() handed the message over. Messages of
the first --warmup seconds are verified but not counted in the histogram.
"""

from __future__ import annotations

import numpy as np

from ..verify import Stream, unread_counts, verify
from .common import (RunContext, TestFailed, cpu_figures, create_topic, consumer_spec, end_offsets, entry,
                     expected_of, latency_summary, producer_spec, wait_for, wait_ready)


def run_latency(ctx: RunContext) -> dict:
    cfg = ctx.cfg
    n = max(1, int(cfg.rate * cfg.duration))
    topic, partitions = create_topic(ctx, "latency", cfg.num_partitions)
    pspec = producer_spec(ctx, topic, partitions, 0, n, rate=cfg.rate, latency=True)
    cspec = consumer_spec(ctx, topic, partitions, n, record_latency=True, worker_id=0)
    own = ctx.driver.start_latency(pspec, cspec)
    if own is not None:
        (r,) = wait_for(ctx, "latency", [own], n, timeout=cfg.duration * 10 + 120)
        return entry("latency", ctx, r.messages, r.nbytes, r.duration_s, latency_ms=r.latency_ms,
                     errors=r.errors, method=r.method, startup_s=r.startup_s, **cpu_figures(r, r.messages))
    consumer = ctx.driver.start_consumer(cspec)
    wait_ready([consumer])
    producer = ctx.driver.start_producer(pspec)
    pr, cr = wait_for(ctx, "latency", [producer, consumer], 2 * n, timeout=cfg.duration * 10 + 120)
    lat = cr.latency_ns
    if len(lat) == 0:
        raise TestFailed("no message arrived")
    measured = lat[cr.seq >= int(cfg.rate * cfg.warmup)]
    if len(measured) == 0:
        raise TestFailed("every message arrived inside the warm-up period")
    summary, hist = latency_summary(measured)
    ctx.histograms["latency"] = hist.encode().decode()
    verification = verify([expected_of(pr)], [Stream(cr.partition, cr.pid, cr.seq)],
                          ctx.partition_of(partitions), unread_counts(end_offsets(ctx, topic), [cr.positions]))
    duration = (pr.end_ns - pr.start_ns) / 1e9
    messages = verification["distinct"]
    return entry("latency", ctx, messages, messages * cfg.message_size, duration, latency_ms=summary,
                 verification=verification, errors=pr.errors + cr.errors,
                 method="fixed-rate schedule, intended send time to consume(), same-host CLOCK_MONOTONIC",
                 rate_target=cfg.rate, warmup_s=cfg.warmup, samples=int(len(measured)),
                 latency_sample_ms=_sample(measured), client_cpu_s=pr.cpu_s)


def _sample(lat_ns: np.ndarray, k: int = 2000) -> list[float]:
    """A sorted sample of latencies (ms) for the CDF chart; the histogram holds the full distribution."""
    s = np.sort(lat_ns)
    if len(s) > k:
        s = s[np.linspace(0, len(s) - 1, k).astype(np.int64)]
    return [round(float(v) / 1e6, 4) for v in s]
