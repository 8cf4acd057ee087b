"""report.html: one self-contained page (no network, no script) per run, or for several runs side by side.

The comparison table and, for several runs, the ratios and the comparison chart; then per run its charts (throughput
per test, latency distribution and CDF, throughput over time, per-worker rates) embedded as PNG data URIs, latency
percentiles, per-worker rates, verification per partition, the findings, the environment and the configuration.
The results documents themselves are embedded as JSON (<script type="application/json" id="chronik-perf-results">)
so that the page carries its own data.
"""

from __future__ import annotations

import base64
import datetime as dt
import html
import json
import os

from .comparable import header
from .report import RATIO_HEADERS, label, ordered_rows, ratio_rows
from .results import HEADERS, TEST_TITLES, fmt, notes

DATA_ID = "chronik-perf-results"
RUN_CHARTS = (("throughput.png", "Throughput per test"), ("latency.png", "Latency distribution and CDF"),
              ("throughput_over_time.png", "Throughput over time"), ("workers.png", "Per-worker rates"))
PERCENTILES = ("min", "avg", "p50", "p95", "p99", "p999", "max")
PARTITION_COLUMNS = ("received", "missing", "lost", "unread", "duplicated", "out_of_order", "misrouted")

STYLE = """
body { font: 14px/1.45 system-ui, sans-serif; margin: 2em auto; max-width: 1200px; padding: 0 1em; color: #222; }
h1 { font-size: 1.6em; } h2 { border-bottom: 1px solid #ccc; margin-top: 2em; } h3 { margin-top: 1.5em; }
table { border-collapse: collapse; margin: .5em 0 1em; font-variant-numeric: tabular-nums; }
th, td { border: 1px solid #ccc; padding: .25em .6em; text-align: left; vertical-align: top; }
th { background: #f3f3f3; } td.num { text-align: right; }
tr.bad td { background: #fdecea; }
img { max-width: 100%; border: 1px solid #eee; margin: .5em 0; }
.meta { color: #555; } code { background: #f5f5f5; padding: 0 .2em; }
"""


def write(docs: list[dict], run_dirs: list[str | None], out_file: str, comparison_png: str | None = None) -> str:
    """Write the report of one or several runs (charts read from each run's directory); returns its path."""
    page = render(docs, run_dirs, comparison_png)
    tmp = out_file + ".tmp"
    with open(tmp, "w", encoding="utf-8") as fh:
        fh.write(page)
    os.replace(tmp, out_file)
    return out_file


def render(docs: list[dict], run_dirs: list[str | None], comparison_png: str | None = None) -> str:
    """The whole page as a string."""
    title = "chronik-perf e2e: " + ", ".join(label(d) for d in docs)
    made = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    parts = [f"<h1>{_e(title)}</h1>", f'<p class="meta">Report written {made}.</p>',
             '<h2 id="comparison">Comparison</h2>']
    if len(docs) > 1:
        parts.append(f'<p class="meta">{_e(header(docs))}</p>')
    parts.append(_table(HEADERS, ordered_rows(docs), "comparison-table", bad=_bad_row))
    if len(docs) > 1:
        parts.append(f"<h3>Ratios against {_e(label(docs[0]))}</h3>")
        parts.append(_table(RATIO_HEADERS, ratio_rows(docs), "ratio-table"))
        parts.append(_image(comparison_png, "Throughput comparison"))
    for i, (doc, run_dir) in enumerate(zip(docs, run_dirs)):
        parts.append(_run_section(i, doc, run_dir))
    data = json.dumps(docs, default=str).replace("</", "<\\/")
    return ("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
            f"<title>{_e(title)}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n" + "\n".join(parts) +
            f'\n<script type="application/json" id="{DATA_ID}">{data}</script>\n</body>\n</html>\n')


def _run_section(i: int, doc: dict, run_dir: str | None) -> str:
    broker = doc.get("broker") or {}
    out = [f'<h2 id="run-{i}">{_e(label(doc))}</h2>',
           f'<p class="meta">{_e(doc.get("bootstrap_servers", ""))} · broker {_e(broker.get("name"))} '
           f'{_e(broker.get("version") or "")} · status {_e(doc.get("status"))} · started {_e(doc.get("started_utc"))}'
           f'{" · " + _e(run_dir) if run_dir else ""}</p>']
    charts = [_image(os.path.join(run_dir, name), alt) for name, alt in RUN_CHARTS if run_dir]
    out.extend(c for c in charts if c)
    latency = [[TEST_TITLES.get(r["test"], r["test"]), *(fmt(r["latency_ms"].get(k)) for k in PERCENTILES)]
               for r in doc["results"] if r.get("latency_ms")]
    if latency:
        out += ["<h3>Latency (ms)</h3>", _table(["Test", *PERCENTILES], latency, f"latency-{i}")]
    workers = _worker_rows(doc)
    if workers:
        out += ["<h3>Per-worker rates</h3>",
                _table(["Test", "Worker", "Messages", "Throughput (msg/s)", "CPU (cores)"], workers, f"workers-{i}")]
    out += _verification(i, doc)
    findings = [f"{TEST_TITLES.get(r['test'], r['test'])}: {n}" for r in doc["results"] for n in notes(r)]
    findings += [f"{TEST_TITLES.get(r['test'], r['test'])}: {r.get('failed') or 'skipped: ' + str(r.get('skipped'))}"
                 for r in doc["results"] if r.get("failed") or r.get("skipped")]
    if findings:
        out += ["<h3>Findings</h3>", "<ul>" + "".join(f"<li>{_e(f)}</li>" for f in findings) + "</ul>"]
    out += ["<h3>Environment</h3>", _table(["Key", "Value"], _flat(doc.get("environment") or {}), f"environment-{i}"),
            "<h3>Broker</h3>", _table(["Key", "Value"], _flat(broker), f"broker-{i}"),
            "<h3>Configuration</h3>", _table(["Key", "Value"], _flat(doc.get("config") or {}), f"config-{i}")]
    return "\n".join(out)


def _worker_rows(doc: dict) -> list[list[str]]:
    rows = []
    for r in doc["results"]:
        for kind in ("producer", "consumer"):
            for w in r.get(f"per_{kind}") or []:
                rows.append([TEST_TITLES.get(r["test"], r["test"]), f"{kind} {w.get(kind, '?')}", fmt(w.get("messages")),
                             fmt(_float(w.get("throughput_msgs_s")), 0), fmt(w.get("cpu_utilisation"))])
    return rows


def _verification(i: int, doc: dict) -> list[str]:
    out = []
    for r in doc["results"]:
        v = r.get("verification") or {}
        per = v.get("per_partition") or {}
        if not per:
            continue
        rows = [[str(p), *(fmt(counts.get(c)) for c in PARTITION_COLUMNS)] for p, counts in
                sorted(per.items(), key=lambda kv: int(kv[0]) if str(kv[0]).lstrip("-").isdigit() else 0)]
        total = ", ".join(f"{k} {fmt(v.get(k))}" for k in ("expected", "received", "distinct", "lost", "duplicated",
                                                            "out_of_order") if k in v)
        out += [f"<h3>Verification per partition: {_e(TEST_TITLES.get(r['test'], r['test']))}</h3>",
                f'<p class="meta">{_e(total)}</p>',
                _table(["Partition", *PARTITION_COLUMNS], rows, f"verification-{i}-{r['test']}", bad=_bad_partition)]
    return out


def _bad_row(cells: list[str]) -> bool:
    check = cells[-1]
    return check.startswith("FAILED") or any(f"{k} {n}" in check for k in ("lost", "dup") for n in "123456789")


def _bad_partition(cells: list[str]) -> bool:
    return any(c not in ("0", "N/A") for c in cells[3:])


def _flat(d: dict, prefix: str = "") -> list[list[str]]:
    rows = []
    for key, value in d.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            rows += _flat(value, name + ".")
        else:
            rows.append([name, value if isinstance(value, str) else json.dumps(value, default=str)])
    return rows


def _table(headers, rows: list[list[str]], table_id: str, bad=None) -> str:
    head = "".join(f"<th>{_e(h)}</th>" for h in headers)
    body = []
    for cells in rows:
        css = ' class="bad"' if bad and bad(cells) else ""
        body.append(f"<tr{css}>" + "".join(f'<td{_num(c)}>{_e(c)}</td>' for c in cells) + "</tr>")
    return f'<table id="{table_id}"><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table>'


def _image(path: str | None, alt: str) -> str:
    """An <img> with the PNG inlined, or nothing when the chart was not drawn."""
    if not path or not os.path.exists(path):
        return ""
    with open(path, "rb") as fh:
        data = base64.b64encode(fh.read()).decode("ascii")
    return f'<figure><img alt="{_e(alt)}" src="data:image/png;base64,{data}"><figcaption>{_e(alt)}</figcaption></figure>'


def _num(cell) -> str:
    text = str(cell).replace(",", "").replace(".", "", 1).rstrip("x")
    return ' class="num"' if text.isdigit() else ""


def _float(value):
    return float(value) if value is not None else None


def _e(value) -> str:
    return html.escape("" if value is None else str(value))
