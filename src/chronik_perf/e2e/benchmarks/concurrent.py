"""Benchmark 4: N producers in separate processes, started together; aggregate and per-producer throughput."""

from __future__ import annotations

import psutil

from .common import (RunContext, create_topic, entry, expected_of, producer_spec, read_back, timeline_rates,
                     wait_for, wait_ready)
from .throughput import MAX_TIMED
from .offsets import log_count_check

CLIENT_BOUND = 0.85  # a producer process keeping this many cores busy or more is CPU-bound
HOST_BOUND = 0.90


def run_concurrent(ctx: RunContext) -> dict:
    cfg = ctx.cfg
    n_prod = cfg.producers
    topic, partitions = create_topic(ctx, "concurrent", cfg.num_partitions)
    timed = bool(cfg.producer_seconds) and ctx.driver.name != "java"  # ProducerPerformance only counts
    shares = [cfg.num_messages // n_prod + (1 if i < cfg.num_messages % n_prod else 0) for i in range(n_prod)]
    specs = [producer_spec(ctx, topic, partitions, pid, MAX_TIMED if timed else n) for pid, n in enumerate(shares)]
    for spec in specs if timed else ():
        spec.duration_s, spec.timeout_s = cfg.producer_seconds, cfg.producer_seconds + 120
    workers = [ctx.driver.start_producer(s, gated=True) for s in specs]
    wait_ready(workers)
    psutil.cpu_percent(None)
    for w in workers:
        w.go()
    results = wait_for(ctx, f"concurrent ({n_prod} processes)", workers, 0 if timed else cfg.num_messages,
                       timeout=max(s.timeout_s for s in specs) + 60)
    host_cpu = psutil.cpu_percent(None) / 100
    start = min(r.start_ns for r in results)
    end = max(r.end_ns for r in results)
    duration = (end - start) / 1e9
    per = []
    for r in results:
        d = (r.end_ns - r.start_ns) / 1e9
        per.append({"producer": r.pid, "messages": r.acked, "duration_s": round(d, 6),
                    "throughput_msgs_s": r.acked / d if d > 0 else None,
                    "cpu_utilisation": _utilisation(r, d)})
    acked = sum(r.acked for r in results)
    nbytes = sum(r.nbytes for r in results)
    expected = [expected_of(r) for r in results]
    if ctx.driver.verifies:
        verification = read_back(ctx, topic, partitions, expected, "concurrent: verifying")
    else:
        verification = log_count_check(ctx, topic, expected)
    return entry("concurrent", ctx, acked, nbytes, duration, producers=n_prod, per_producer=per,
                 host_cpu_utilisation=round(host_cpu, 3), bottleneck=bottleneck(per, host_cpu),
                 verification=verification, errors=[e for r in results for e in r.errors],
                 timeline=timeline_rates(_merge([r.timeline for r in results])), topic=topic)


def _utilisation(r: dict, duration_s: float) -> float | None:
    """Cores the producer process kept busy on average (CPU seconds over the window they were measured in; above
    1 when a client's own threads run in parallel, as librdkafka's and the JVM's do)."""
    window = r.cpu_window_s or duration_s
    return round(r.cpu_s / window, 3) if window > 0 and r.cpu_s is not None else None


def bottleneck(per: list[dict], host_cpu: float) -> str:
    """Name the likely limit from the producer processes' CPU use and the host's."""
    utils = [p["cpu_utilisation"] for p in per if p["cpu_utilisation"] is not None]
    if not utils:
        return "unknown (the driver reports no client CPU time)"
    avg = sum(utils) / len(utils)
    if avg >= CLIENT_BOUND:
        return f"client CPU: each producer process kept {avg:.2f} cores busy on average"
    if host_cpu >= HOST_BOUND:
        return (f"host CPU: {host_cpu:.0%} of all {psutil.cpu_count()} cores busy (clients and broker share them); "
                f"producers at {avg:.2f} cores each")
    return (f"broker or network: producers at {avg:.2f} cores each, host at {host_cpu:.0%}, waiting on "
            f"acknowledgements")


def _merge(timelines: list[list[tuple[int, int]]]) -> list[tuple[int, int]]:
    """Sum cumulative timelines of workers sampled at different instants (step functions)."""
    points = sorted({t for tl in timelines for t, _ in tl})
    out = []
    for t in points:
        total = 0
        for tl in timelines:
            last = 0
            for tt, n in tl:
                if tt > t:
                    break
                last = n
            total += last
        out.append((t, total))
    return out
