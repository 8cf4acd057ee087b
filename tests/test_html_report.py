"""report.html: a self-contained page whose tables, charts and embedded data match the results it was written from,
checked by parsing it (always) and by loading it in headless Chromium (where Chromium is installed)."""
import base64
import html
import json
import random
import shutil
import struct
import subprocess
from html.parser import HTMLParser

import pytest
from hdrh.histogram import HdrHistogram

from chronik_perf.e2e import charts, html_report
from conftest import fail_or_skip
from chronik_perf.e2e.report import ordered_rows, ratio_rows

VOID = {"meta", "img", "br", "hr", "link", "input"}


def partitions(n, lost_in=None):
    return {str(p): {"received": 500, "missing": 0, "lost": 3 if p == lost_in else 0, "unread": 0, "duplicated": 0,
                     "out_of_order": 0, "misrouted": 0} for p in range(n)}


def verification(lost_in=None):
    lost = 3 if lost_in is not None else 0
    return {"expected": 1500, "received": 1500 - lost, "distinct": 1500 - lost, "lost": lost, "duplicated": 0,
            "out_of_order": 0, "per_partition": partitions(3, lost_in)}


def results_doc(target, rate, failed_reason="group consumed 0 of 3000 messages and stalled", lost_in=None):
    """A results document shaped like the suite's: every test, per-worker rates, partitions, environment."""
    rng = random.Random(7)
    timeline = [[t / 2, rate * (0.8 + 0.4 * rng.random())] for t in range(10)]
    return {
        "schema_version": 1, "target": target, "bootstrap_servers": "127.0.0.1:9095", "status": "complete",
        "started_utc": "2026-11-30T13:00:00+00:00",
        "broker": {"name": target, "version": "4.1.1", "cluster_id": "abc", "api_versions": {"Produce": [0, 13]}},
        "config": {"num_messages": 3000, "message_size": 200, "num_partitions": 3, "driver": "confluent"},
        "environment": {"cpu_model": "Test CPU", "cpu_count": 2, "python": "3.11.7",
                        "git": {"commit": "0123456789abcdef", "dirty": False}, "packages": {"numpy": "2.1"}},
        "results": [
            {"test": "producer", "driver": "confluent", "messages": 3000, "throughput_msgs_s": rate,
             "throughput_mb_s": rate * 200 / 1e6, "latency_ms": None, "verification": None, "timeline": timeline},
            {"test": "consumer", "driver": "confluent", "messages": 3000, "throughput_msgs_s": rate * 1.5,
             "throughput_mb_s": rate * 300 / 1e6, "latency_ms": None, "verification": verification(lost_in),
             "timeline": timeline},
            {"test": "latency", "driver": "confluent", "messages": 900, "throughput_msgs_s": 300.0,
             "throughput_mb_s": 0.06, "verification": verification(),
             "latency_ms": {"min": 0.2, "avg": 1.5, "p50": 1.1, "p95": 3.0, "p99": 6.5, "p999": 9.0, "max": 12.0},
             "latency_sample_ms": [rng.expovariate(1.0) for _ in range(500)]},
            {"test": "concurrent", "driver": "confluent", "messages": 3000, "throughput_msgs_s": rate * 0.9,
             "throughput_mb_s": 1.0, "latency_ms": None, "verification": verification(),
             "per_producer": [{"producer": 0, "messages": 1500, "throughput_msgs_s": rate * 0.45,
                               "cpu_utilisation": 0.48},
                              {"producer": 1, "messages": 1500, "throughput_msgs_s": rate * 0.44,
                               "cpu_utilisation": 0.51}],
             "bottleneck": "host CPU saturated"},
            {"test": "groups", "driver": "confluent", "failed": failed_reason},
        ]}


def write_run(tmp_path, doc, name):
    """A run folder as the suite leaves it: results.json, latency.hdr and the PNG charts."""
    run = tmp_path / name
    run.mkdir()
    (run / "results.json").write_text(json.dumps(doc))
    hist = HdrHistogram(1, 3_600_000_000, 3)
    for ms in doc["results"][2]["latency_sample_ms"]:
        hist.record_value(int(ms * 1000) + 1)
    (run / "latency.hdr").write_text(hist.encode().decode("ascii") + "\n")
    assert len(charts.run_charts(doc, str(run))) == 4
    return str(run)


class Page(HTMLParser):
    """Checks nesting; collects tables by id, images, the embedded data and every external reference."""

    def __init__(self, text):
        super().__init__(convert_charrefs=True)
        self.stack, self.tables, self.images, self.external, self.scripts = [], {}, [], [], {}
        self._table = self._row = self._cell = self._script = None
        self.feed(text)
        self.close()
        assert not self.stack, f"unclosed: {self.stack}"

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        for key in ("src", "href"):
            if key in attrs and not attrs[key].startswith(("data:", "#")):
                self.external.append(attrs[key])
        if tag not in VOID:
            self.stack.append(tag)
        if tag == "table":
            self._table = self.tables.setdefault(attrs.get("id"), [])
        elif tag == "tr":
            self._row = []
        elif tag in ("td", "th"):
            self._cell = ""
        elif tag == "img":
            self.images.append((attrs.get("alt"), attrs["src"]))
        elif tag == "script":
            self._script = attrs.get("id")
            self.scripts[self._script] = ""

    def handle_endtag(self, tag):
        assert self.stack and self.stack[-1] == tag, f"</{tag}> closes {self.stack[-1:]}"
        self.stack.pop()
        if tag in ("td", "th"):
            self._row.append(self._cell)
            self._cell = None
        elif tag == "tr":
            self._table.append(self._row)
        elif tag == "script":
            self._script = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell += data
        if self._script is not None:
            self.scripts[self._script] += data


def png_size(src):
    assert src.startswith("data:image/png;base64,")
    data = base64.b64decode(src.split(",", 1)[1], validate=True)
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24])


def test_one_run_report_holds_table_charts_partitions_environment_and_data(tmp_path):
    doc = results_doc("kafka", 50_000.0, lost_in=1)
    run = write_run(tmp_path, doc, "run")
    path = html_report.write([doc], [run], f"{run}/report.html")
    page = Page(open(path, encoding="utf-8").read())
    assert page.external == []                                   # nothing fetched from anywhere
    header, *rows = page.tables["comparison-table"]
    assert rows == ordered_rows([doc]) and header[0] == "System"
    assert any(r[-1].startswith("FAILED: group consumed 0") for r in rows)
    assert sorted(alt for alt, _ in page.images) == sorted(alt for _, alt in html_report.RUN_CHARTS)
    assert all(w > 300 and h > 200 for w, h in (png_size(src) for _, src in page.images))
    assert page.tables["latency-0"][1] == ["E2E Latency", "0.20", "1.50", "1.10", "3.00", "6.50", "9.00", "12.00"]
    assert page.tables["workers-0"][1:] == [["Concurrent Producers", "producer 0", "1,500", "22,500", "0.48"],
                                            ["Concurrent Producers", "producer 1", "1,500", "22,000", "0.51"]]
    consumer = page.tables["verification-0-consumer"]
    assert [r[0] for r in consumer[1:]] == ["0", "1", "2"] and consumer[2][3] == "3"   # partition 1 lost 3
    assert ["git.commit", "0123456789abcdef"] in page.tables["environment-0"]
    assert ["num_messages", "3000"] in page.tables["config-0"]
    assert json.loads(page.scripts[html_report.DATA_ID]) == [doc]
    assert "ratio-table" not in page.tables


HOSTILE = '</script><script>alert(1)</script><img src="http://example.invalid/x.png">'


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory):
    """Two runs side by side (the second with a failure reason full of markup), their folders and comparison chart."""
    tmp_path = tmp_path_factory.mktemp("two-runs")
    docs = [results_doc("kafka", 50_000.0), results_doc("tansu", 40_000.0, failed_reason=HOSTILE)]
    runs = [write_run(tmp_path, d, d["target"]) for d in docs]
    return docs, runs, charts.comparison_chart(docs, str(tmp_path / "comparison.png"))


def test_side_by_side_report_and_hostile_text(two_runs):
    docs, runs, chart = two_runs
    page = Page(html_report.render(docs, runs, chart))
    assert page.external == [] and set(page.scripts) == {html_report.DATA_ID}
    assert page.tables["comparison-table"][1:] == ordered_rows(docs)
    assert page.tables["ratio-table"][1:] == ratio_rows(docs)
    assert ["tansu (confluent)", "Producer Throughput", "0.80x", "N/A"] in page.tables["ratio-table"]
    assert "Throughput comparison" in [alt for alt, _ in page.images] and len(page.images) == 9
    assert {"environment-0", "environment-1", "verification-1-latency"} <= set(page.tables)
    assert json.loads(page.scripts[html_report.DATA_ID]) == docs


CHECK = """<script>
window.__errors = [];
window.addEventListener('error', e => window.__errors.push(String(e.message || (e.target && e.target.tagName) || e)), true);
const _error = console.error; console.error = (...a) => { window.__errors.push(a.join(' ')); _error(...a); };
window.addEventListener('load', () => {
  let data = null;
  try { data = JSON.parse(document.getElementById('chronik-perf-results').textContent).length; }
  catch (e) { window.__errors.push('data: ' + e); }
  const out = document.createElement('pre');
  out.id = 'browser-check';
  out.textContent = JSON.stringify({
    images: [...document.images].map(i => [i.complete, i.naturalWidth, i.naturalHeight]),
    rows: document.querySelectorAll('#comparison-table tbody tr').length,
    visible: document.getElementById('comparison-table').getBoundingClientRect().height,
    data, errors: window.__errors});
  document.body.appendChild(out);
});
</script>"""


def chromium():
    return shutil.which("chromium") or shutil.which("chromium-browser")


def test_report_loads_in_headless_chromium(two_runs, tmp_path):
    if chromium() is None:  # .ci/run installs it, so under CI=true a missing browser fails the test
        fail_or_skip("Chromium is not installed (Debian: apt-get install -y chromium)")
    docs, runs, chart = two_runs
    report = html_report.write(docs, runs, str(tmp_path / "report.html"), chart)
    probe = tmp_path / "probe.html"      # the same page with a script that reports what the browser saw
    probe.write_text(open(report, encoding="utf-8").read().replace("<head>", "<head>" + CHECK, 1))
    flags = [chromium(), "--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run",
             f"--user-data-dir={tmp_path / 'profile'}", "--virtual-time-budget=5000"]
    dom = subprocess.run(flags + ["--dump-dom", probe.as_uri()], capture_output=True, text=True, timeout=120)
    assert 'id="browser-check"' in dom.stdout, dom.stderr[-2000:]
    seen = json.loads(html.unescape(dom.stdout.split('<pre id="browser-check">', 1)[1].split("</pre>", 1)[0]))
    assert seen["errors"] == [] and seen["data"] == 2
    assert seen["rows"] == len(ordered_rows(docs)) and seen["visible"] > 100
    assert len(seen["images"]) == 9 and all(ok and w > 300 and h > 200 for ok, w, h in seen["images"])
    shot = tmp_path / "report.png"
    subprocess.run(flags + ["--hide-scrollbars", "--window-size=1280,2000", f"--screenshot={shot}",
                            f"file://{report}"], capture_output=True, timeout=120)
    import matplotlib.image
    pixels = matplotlib.image.imread(str(shot))
    assert pixels.shape[:2] == (2000, 1280) and pixels.std() > 0.05    # not a blank page
