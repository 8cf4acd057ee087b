"""Latency histograms: one HDR range for every worker, built where the latencies are measured, merged by the benchmark.

A consumer that measures latency returns its histogram encoded (HdrHistogram.encode), not one figure per message;
the benchmark adds the encoded histograms of all its consumers into one (decode_and_add), which needs every part
to use the same range: HIST_MAX_US and HIST_DIGITS.
"""

from __future__ import annotations

import numpy as np
from hdrh.histogram import HdrHistogram

HIST_MAX_US = 3600 * 1_000_000  # an hour, in microseconds: nothing real overflows it
HIST_DIGITS = 3
SAMPLE_POINTS = 2000  # points of the CDF sample kept for the chart


def empty() -> HdrHistogram:
    """A histogram of microseconds over the shared range."""
    return HdrHistogram(1, HIST_MAX_US, HIST_DIGITS)


def of(latency_ns: np.ndarray) -> HdrHistogram:
    """The histogram of latencies given in nanoseconds (rounded to microseconds; 0 and below count as 1 µs)."""
    hist = empty()
    us = np.clip((np.asarray(latency_ns, dtype=np.int64) + 500) // 1000, 1, HIST_MAX_US)
    values, counts = np.unique(us, return_counts=True)
    for v, c in zip(values.tolist(), counts.tolist()):
        hist.record_value(v, c)
    return hist


def measured(latency_ns: np.ndarray, pid: np.ndarray, seq: np.ndarray, from_seq: int = 0,
             corrections: dict[int, int] | None = None) -> dict:
    """A consumer's latency part: the messages from sequence `from_seq` on (after the warm-up) of the producer ids
    in `corrections` (None: of every producer), each latency plus its producer's clock correction (ns).

    Returns {"latency_hist": encoded histogram, "latency_count": messages in it, "latency_negative": how many
    were 0 or below before clipping}."""
    lat = np.asarray(latency_ns, dtype=np.int64)
    pid, seq = np.asarray(pid, dtype=np.int64), np.asarray(seq, dtype=np.int64)
    keep = seq >= from_seq
    if corrections is not None:
        ids = np.array(sorted(corrections), dtype=np.int64)
        shift = np.array([corrections[i] for i in ids.tolist()], dtype=np.int64)
        keep &= np.isin(pid, ids)
        if len(ids):
            lat = lat + shift[np.clip(np.searchsorted(ids, pid), 0, len(ids) - 1)]
    lat = lat[keep]
    return {"latency_hist": of(lat).encode().decode("ascii"), "latency_count": int(len(lat)),
            "latency_negative": int((lat <= 0).sum())}


def merge(encoded: list[str]) -> HdrHistogram:
    """One histogram holding every part (decode_and_add of each encoded histogram)."""
    hist = empty()
    for part in encoded:
        hist.decode_and_add(part)
    return hist


def summary(hist: HdrHistogram, negative_clipped: int = 0) -> dict:
    """min/avg/p50/p95/p99/p99.9/max in ms, and the count."""
    pct = {f"p{str(p).replace('.', '')}": hist.get_value_at_percentile(p) / 1000 for p in (50, 95, 99, 99.9)}
    return {"min": hist.get_min_value() / 1000, "avg": hist.get_mean_value() / 1000, **pct,
            "max": hist.get_max_value() / 1000, "count": int(hist.get_total_count()),
            "negative_clipped": int(negative_clipped)}


def cdf_sample(hist: HdrHistogram, k: int = SAMPLE_POINTS) -> list[float]:
    """k evenly spaced order statistics (ms) of the histogram, for the CDF chart (values at bucket precision)."""
    pairs = [(it.value_iterated_to, it.count_at_value_iterated_to) for it in hist.get_recorded_iterator()]
    if not pairs:
        return []
    values = np.array([v for v, _ in pairs], dtype=np.int64)
    ends = np.cumsum([c for _, c in pairs])
    total = int(ends[-1])
    ranks = np.linspace(0, total - 1, min(k, total)).astype(np.int64)
    picked = values[np.searchsorted(ends, ranks, side="right")]
    return [round(float(v) / 1000, 4) for v in picked]
