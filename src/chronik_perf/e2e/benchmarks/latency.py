"""Benchmark 3: end-to-end latency on a fixed-rate schedule, free of coordinated omission.

The producer sends message i at the intended time start + i/rate and stamps that intended time
(CLOCK_MONOTONIC) in the message; if it falls behind (a stall in the client or the broker), it sends
the late messages at once with their original stamps, so the stall shows in the latency instead of
hiding behind fewer sends. The consumer, a separate process on the same host and so on the same
CLOCK_MONOTONIC, subtracts the stamp from the time consume() handed the message over and returns the
HDR histogram of these latencies. Messages of the first --warmup seconds are verified but not counted
in the histogram. On a Dask cluster each worker runs one pair (its producer on its consumer's host),
the pairs share the rate and read disjoint partitions, and the benchmark merges their histograms.
"""

from __future__ import annotations

import numpy as np

from .. import histograms
from ..drivers.worker_results import ConsumerResult
from ..verify import Stream, unread_counts, verify
from .common import (RunContext, TestFailed, cpu_figures, create_topic, consumer_spec, end_offsets, entry,
                     expected_of, producer_spec, wait_for, wait_ready)

METHOD = "fixed-rate schedule, intended send time to consume(), same-host CLOCK_MONOTONIC"


def run_latency(ctx: RunContext) -> dict:
    cfg = ctx.cfg
    n = max(1, int(cfg.rate * cfg.duration))
    topic, partitions = create_topic(ctx, "latency", cfg.num_partitions)
    own = ctx.driver.start_latency(producer_spec(ctx, topic, partitions, 0, n, rate=cfg.rate, latency=True),
                                   consumer_spec(ctx, topic, partitions, n, record_latency=True, worker_id=0))
    if own is not None:
        (r,) = wait_for(ctx, "latency", [own], n, timeout=cfg.duration * 10 + 120)
        return entry("latency", ctx, r.messages, r.nbytes, r.duration_s, latency_ms=r.latency_ms,
                     errors=r.errors, method=r.method, startup_s=r.startup_s, **cpu_figures(r, r.messages))
    # One pair on one host; on a cluster one per worker (driver.latency_pairs), each producer on its consumer's host,
    # sharing the rate: the broker sees the same load either way.
    pairs = ctx.driver.latency_pairs(partitions)
    rate = cfg.rate / pairs
    count = max(1, int(rate * cfg.duration))
    pspecs = [producer_spec(ctx, topic, partitions, pid, count, rate=rate, latency=True) for pid in range(pairs)]
    owned = [list(range(partitions))[i::pairs] for i in range(pairs)]  # each consumer reads its share of partitions
    arriving = _arriving(ctx.partition_of(partitions), [count] * pairs, partitions)
    cspecs = []
    for i, parts in enumerate(owned):
        spec = consumer_spec(ctx, topic, partitions, int(arriving[parts].sum()), record_latency=True, worker_id=i,
                             latency_from_seq=int(rate * cfg.warmup))
        spec.partitions = parts
        cspecs.append(spec)
    consumers = [ctx.driver.start_consumer(c) for c in cspecs]
    wait_ready(consumers)
    producers = [ctx.driver.start_producer(p, gated=True) for p in pspecs]
    wait_ready(producers)
    for w in producers:  # every pair's schedule starts at one moment (on a cluster, one start gate)
        w.go()
    results = wait_for(ctx, "latency", producers + consumers, 2 * count * pairs, timeout=cfg.duration * 10 + 120)
    prs, crs = results[:pairs], results[pairs:]
    if not any(cr.received for cr in crs):
        raise TestFailed("no message arrived")
    hist = histograms.merge([cr.latency_hist for cr in crs])
    if hist.get_total_count() == 0:
        raise TestFailed("every message arrived inside the warm-up period")
    summary = histograms.summary(hist, sum(cr.latency_negative for cr in crs))
    ctx.histograms["latency"] = hist.encode().decode()
    verification = verify([expected_of(pr) for pr in prs],
                          [Stream(cr.partition, cr.pid, cr.seq) for cr in crs], ctx.partition_of(partitions),
                          unread_counts(end_offsets(ctx, topic), [cr.positions for cr in crs]))
    duration = (max(pr.end_ns for pr in prs) - min(pr.start_ns for pr in prs)) / 1e9
    messages = verification["distinct"]
    method = METHOD if pairs == 1 else (f"{METHOD}; {pairs} producer-consumer pairs at {rate:g} msg/s each, "
                                        "each consumer's histogram merged")
    return entry("latency", ctx, messages, messages * cfg.message_size, duration, latency_ms=summary,
                 verification=verification, errors=[e for r in results for e in r.errors], method=method,
                 rate_target=cfg.rate, warmup_s=cfg.warmup, samples=summary["count"],
                 latency_sample_ms=histograms.cdf_sample(hist), pairs=pairs,
                 latency_parts=[_part(cr) for cr in crs], client_cpu_s=_total(pr.cpu_s for pr in prs))


def _arriving(partition_of, counts: list[int], partitions: int) -> np.ndarray:
    """How many of the messages producers 0..k-1 send (counts[pid] each) go to each partition."""
    per = np.zeros(partitions, dtype=np.int64)
    for pid, n in enumerate(counts):
        seqs = np.arange(n, dtype=np.int64)
        if hasattr(partition_of, "many"):
            parts = partition_of.many(np.full(n, pid, dtype=np.int64), seqs)
        else:
            parts = np.fromiter((partition_of(pid, s) for s in seqs.tolist()), dtype=np.int64, count=n)
        per += np.bincount(parts, minlength=partitions)
    return per


def _part(cr: ConsumerResult) -> dict:
    """One consumer's share of the merged histogram: its count and percentiles."""
    s = histograms.summary(histograms.merge([cr.latency_hist]), cr.latency_negative)
    return {"consumer": cr.worker, "count": s["count"], "p50": s["p50"], "p99": s["p99"], "max": s["max"]}


def _total(values) -> float | None:
    values = list(values)
    return None if any(v is None for v in values) else sum(values)
