"""PNG charts (matplotlib, Agg): throughput per test (with the range of repeated runs), latency distribution and CDF,
throughput over time, per-worker rates."""

from __future__ import annotations

import os

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from hdrh.histogram import HdrHistogram  # noqa: E402

from .report import label, measured  # noqa: E402
from .results import MIN_TIMELINE_POINTS, TEST_TITLES  # noqa: E402


def run_charts(doc: dict, path: str) -> list[str]:
    """Charts of one run into its directory; returns the files written."""
    written = []
    tests = {t: r for t, r in measured(doc).items() if r.get("throughput_msgs_s")}
    if tests:
        fig, ax = plt.subplots(figsize=(8, 4))
        ax.bar([TEST_TITLES.get(t, t) for t in tests], [r["throughput_msgs_s"] for r in tests.values()],
               yerr=_run_range(tests.values()), capsize=4)
        ax.set_ylabel("messages / s")
        ax.set_title(f"Throughput per test — {label(doc)}")
        ax.tick_params(axis="x", labelrotation=15)
        written.append(_save(fig, path, "throughput.png"))
    lat = measured(doc).get("latency")
    hist_file = os.path.join(path, "latency.hdr")
    if lat and os.path.exists(hist_file):
        with open(hist_file, encoding="ascii") as fh:
            hist = HdrHistogram.decode(fh.read().strip())
        pct, vals = [], []
        for item in hist.get_percentile_iterator(5):
            pct.append(item.percentile_level_iterated_to)
            vals.append(hist.get_highest_equivalent_value(item.value_iterated_to) / 1000)
        fig, (a1, a2) = plt.subplots(1, 2, figsize=(11, 4))
        sample = lat.get("latency_sample_ms") or []
        if sample:
            a1.hist(sample, bins=60)
        a1.set_xlabel("latency (ms)")
        a1.set_ylabel("messages (sample)")
        a1.set_title("Latency distribution")
        a2.plot(vals, [p / 100 for p in pct])
        a2.set_xscale("log")
        a2.set_xlabel("latency (ms, log)")
        a2.set_ylabel("fraction ≤ latency")
        a2.set_title("Latency CDF (HDR histogram)")
        fig.suptitle(label(doc))
        written.append(_save(fig, path, "latency.png"))
    timelines = {t: r["timeline"] for t, r in measured(doc).items()
                 if len(r.get("timeline") or ()) >= MIN_TIMELINE_POINTS}  # shorter ones get a note (results.notes)
    if timelines:
        fig, ax = plt.subplots(figsize=(8, 4))
        for t, tl in timelines.items():
            ax.plot([p[0] for p in tl], [p[1] for p in tl], label=TEST_TITLES.get(t, t))
        ax.set_xlabel("seconds since the test started")
        ax.set_ylabel("messages / s")
        ax.set_title(f"Throughput over time — {label(doc)}")
        ax.legend()
        written.append(_save(fig, path, "throughput_over_time.png"))
    workers = [(f"{TEST_TITLES.get(t, t)}\n{kind} {w.get(kind, i)}", w.get("throughput_msgs_s") or 0)
               for t, r in measured(doc).items() for kind in ("producer", "consumer")
               for i, w in enumerate(r.get(f"per_{kind}") or [])]
    if workers:
        written.append(_bars(workers, f"Per-worker rates — {label(doc)}", path, "workers.png"))
    hosts = [(f"{TEST_TITLES.get(t, t)}\n{host} {role}s", f.get("throughput_msgs_s") or 0)
             for t, r in measured(doc).items()
             for host, roles in ((r.get("cluster") or {}).get("per_host") or {}).items() for role, f in roles.items()]
    if hosts:  # a Dask cluster run: each host's producers and consumers over their common window
        written.append(_bars(hosts, f"Per-host rates on the Dask cluster — {label(doc)}", path, "hosts.png"))
    return written


def _bars(bars: list[tuple[str, float]], title: str, path: str, name: str) -> str:
    """A bar chart of (label, msg/s) pairs."""
    fig, ax = plt.subplots(figsize=(8, 4))
    ax.bar([b[0] for b in bars], [b[1] for b in bars])
    ax.set_ylabel("messages / s")
    ax.set_title(title)
    ax.tick_params(axis="x", labelsize=8)
    return _save(fig, path, name)


def comparison_chart(docs: list[dict], out_file: str) -> str:
    """Grouped bars: throughput per test, one bar per run."""
    tests = [t for t in TEST_TITLES if any(t in measured(d) and measured(d)[t].get("throughput_msgs_s")
                                           for d in docs)]
    fig, ax = plt.subplots(figsize=(9, 4.5))
    width = 0.8 / max(1, len(docs))
    for i, doc in enumerate(docs):
        rs = [measured(doc).get(t) or {} for t in tests]
        ax.bar([x + i * width for x in range(len(tests))], [r.get("throughput_msgs_s") or 0 for r in rs], width,
               yerr=_run_range(rs), capsize=3, label=label(doc))
    ax.set_xticks([x + width * (len(docs) - 1) / 2 for x in range(len(tests))],
                  [TEST_TITLES[t] for t in tests], rotation=15)
    ax.set_ylabel("messages / s")
    ax.set_title("Throughput comparison")
    ax.legend()
    return _save(fig, os.path.dirname(out_file) or ".", os.path.basename(out_file))


def _run_range(results) -> list[list[float]]:
    """Error bars from the median run down to the slowest and up to the fastest of repeated runs (0 if one run)."""
    low, high = [], []
    for r in results:
        tp = (r.get("spread") or {}).get("throughput_msgs_s")
        low.append(tp["median"] - tp["min"] if tp else 0)
        high.append(tp["max"] - tp["median"] if tp else 0)
    return [low, high]


def _save(fig, path: str, name: str) -> str:
    out = os.path.join(path, name)
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out
