"""The micro-benchmark tools: run.py writes a valid pyperf suite, compare.py gates regressions, report.py computes
peer ratios. No assertion on absolute speed."""
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyperf
import pytest

from micro import compare, report
from micro import run as run_script

ROOT = Path(__file__).resolve().parent.parent
MICRO = ROOT / "micro"

SELECTED = "^crc/crc32c/1KiB/(chronik_perf|crc32c)$"


@pytest.fixture(scope="module")
def suite_file(tmp_path_factory):
    """Two real benchmarks measured by `run.py --fast`."""
    out = tmp_path_factory.mktemp("micro") / "base.json"
    done = subprocess.run([sys.executable, str(MICRO / "run.py"), "--fast", "--group", "crc", "--select", SELECTED,
                           "-o", str(out)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "[crc 1/2] crc/crc32c/1KiB/chronik_perf" in done.stdout     # progress names the running benchmark
    return out


def scaled(src, dst, factor, only=None):
    """Copy a suite with the values of every benchmark (or of `only`) multiplied by factor."""
    data = json.loads(Path(src).read_text())
    for bench in data["benchmarks"]:
        name = bench.get("metadata", {}).get("name") or bench["runs"][0]["metadata"]["name"]
        if only is None or name == only:
            for run in bench["runs"]:
                if "values" in run:
                    run["values"] = [v * factor for v in run["values"]]
    Path(dst).write_text(json.dumps(data))
    return dst


def test_run_writes_a_pyperf_suite_with_metadata(suite_file):
    suite = pyperf.BenchmarkSuite.load(str(suite_file))
    names = sorted(b.get_name() for b in suite.get_benchmarks())
    assert names == ["crc/crc32c/1KiB/chronik_perf", "crc/crc32c/1KiB/crc32c"]
    for bench in suite.get_benchmarks():
        meta = bench.get_metadata()
        assert meta["throughput_bytes"] == 1024
        assert len(bench.get_values()) >= 6
        for key in ("cpu_model_name", "python_version", "chronik_perf_version", "version_crc32c", "chronik_perf_git"):
            assert meta.get(key), key
        assert meta["clock"] == "cpu"
    shown = subprocess.run([sys.executable, "-m", "pyperf", "show", str(suite_file)], capture_output=True, text=True)
    assert shown.returncode == 0 and "crc/crc32c/1KiB/crc32c" in shown.stdout


def noisy_suite(path, seed=0):
    """Two benchmarks whose 60 values each scatter like this machine's (5% noise, a few outliers)."""
    rng = np.random.default_rng(seed)
    medians = {"varint/encode/small/chronik_perf": 2e-7, "varint/encode/small/kafka-python": 7e-7}
    benches = []
    for name, median in medians.items():
        runs = []
        for _ in range(20):
            values = median * rng.lognormal(0, 0.05, 3)
            values[rng.random(3) < 0.05] *= 3
            runs.append(pyperf.Run(values.tolist(), warmups=[(1, median)], metadata={"name": name, "loops": 1},
                                   collect_metadata=False))
        benches.append(pyperf.Benchmark(runs))
    pyperf.BenchmarkSuite(benches).dump(str(path))
    return path


def run_compare(base, new, *options):
    return subprocess.run([sys.executable, str(MICRO / "compare.py"), str(base), str(new), *options],
                          capture_output=True, text=True)


def test_compare_flags_an_injected_2x_slowdown(tmp_path):
    base = noisy_suite(tmp_path / "base.json")
    slow = scaled(noisy_suite(tmp_path / "again.json", seed=1), tmp_path / "slow.json", 2.0,
                  only="varint/encode/small/chronik_perf")
    done = run_compare(base, slow)
    assert done.returncode == 1, done.stdout
    lines = {l.split()[0]: l for l in done.stdout.splitlines() if l.startswith("varint/")}
    assert "regressed" in lines["varint/encode/small/chronik_perf"]
    assert "[peers: kafka-python " in lines["varint/encode/small/chronik_perf"]     # the control, unchanged
    assert "no change" in lines["varint/encode/small/kafka-python"]
    assert "FAIL: 1 significant regression" in done.stdout


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_compare_calls_a_1_percent_change_no_change(tmp_path, seed):
    base = noisy_suite(tmp_path / "base.json")
    slightly = scaled(noisy_suite(tmp_path / "again.json", seed=seed), tmp_path / "slightly.json", 1.01)
    done = run_compare(base, slightly)
    assert done.returncode == 0, done.stdout
    assert "2 compared: 0 regressed, 0 improved, 2 no change" in done.stdout


def test_compare_on_a_real_run(suite_file, tmp_path):
    """Same measured values 1% slower: never a regression; 2x slower with a 150% threshold: not failing."""
    assert run_compare(suite_file, scaled(suite_file, tmp_path / "s.json", 1.01)).returncode == 0
    assert run_compare(suite_file, suite_file).stdout.count("no change (not significant)") == 2


def test_compare_warns_when_clocks_differ(suite_file, tmp_path):
    done = run_compare(noisy_suite(tmp_path / "wall.json"), suite_file)      # no clock key: pyperf's wall time
    assert "different clocks: ['wall'] and ['cpu']" in done.stderr
    assert "different clocks" not in run_compare(suite_file, suite_file).stderr


def test_compare_gate_respects_threshold(tmp_path):
    base = noisy_suite(tmp_path / "base.json")
    slow = scaled(noisy_suite(tmp_path / "again.json", seed=1), tmp_path / "slow.json", 1.5)
    assert run_compare(base, slow, "--threshold", "60").returncode == 0
    assert run_compare(base, slow, "--threshold", "40").returncode == 1


def test_compare_handles_unequal_and_constant_samples():
    rng = np.random.default_rng(1)
    same = compare.compare_values("x", [1.0] * 9, [1.0] * 20, 2.0, rng)       # pyperf's t-test raises here
    assert (same.verdict, same.p_value) == ("no change", 1.0)
    base = list(1.0 + 0.01 * rng.standard_normal(9))
    slower = compare.compare_values("x", base, list(2.0 + 0.02 * rng.standard_normal(30)), 2.0, rng)
    assert slower.verdict == "regressed" and slower.p_value < 0.05 and slower.low > 90
    faster = compare.compare_values("x", base, [0.5] * 5, 2.0, rng)
    assert faster.verdict == "improved"
    lone = compare.compare_values("x", [1.0], [2.0], 2.0, rng)
    assert lone.p_value is None and lone.verdict == "no change"


def test_compare_lists_one_sided_benchmarks(suite_file, tmp_path):
    data = json.loads(Path(suite_file).read_text())
    data["benchmarks"] = data["benchmarks"][:1]
    fewer = tmp_path / "fewer.json"
    fewer.write_text(json.dumps(data))
    results, only_base, only_new = compare.compare_suites(suite_file, fewer)
    assert len(results) == 1 and len(only_base) == 1 and only_new == []


def fixture_suite(path, medians, extra=None):
    """A pyperf suite whose benchmarks have the given medians (5 values each, median in the middle); `extra`:
    {name: more metadata}."""
    benches = []
    for name, median in medians.items():
        values = [median * f for f in (0.9, 0.95, 1.0, 1.05, 1.3)]
        run = pyperf.Run(values, warmups=[(1, median)],
                         metadata={"name": name, "loops": 1, "throughput_bytes": 1000, "throughput_items": 10,
                                   **(extra or {}).get(name, {})},
                         collect_metadata=False)
        benches.append(pyperf.Benchmark([run]))
    pyperf.BenchmarkSuite(benches).dump(str(path))
    return path


def test_report_peer_ratios(tmp_path):
    path = fixture_suite(tmp_path / "fixture.json", {
        "records/build/10x100B/chronik_perf": 2e-6,
        "records/build/10x100B/chronik_perf-append": 4e-6,
        "records/build/10x100B/aiokafka": 8e-6,
        "records/build/10x100B/kafka-python": 1e-4,
        "records/parse/10x100B/chronik_perf": 5e-6,
        "records/parse/10x100B/aiokafka": 2.5e-6,
        "crc/crc32c/64B/chronik_perf": 1e-7,
    })
    rows = report.load_rows(path)
    assert [r.median for r in rows][:2] == [2e-6, 4e-6]
    ratios = report.speedups(rows)
    assert ratios[("records", "build", "10x100B", "chronik_perf")] == pytest.approx(
        {"aiokafka": 4.0, "kafka-python": 50.0})
    assert ratios[("records", "build", "10x100B", "chronik_perf-append")] == pytest.approx(
        {"aiokafka": 2.0, "kafka-python": 25.0})
    assert ratios[("records", "parse", "10x100B", "chronik_perf")] == pytest.approx({"aiokafka": 0.5})
    assert ratios[("crc", "crc32c", "64B", "chronik_perf")] == {}
    assert not any(key[3] == "aiokafka" for key in ratios)
    first = rows[0]
    assert report.format_throughput(first) == "500.0 MB/s, 5.00 M items/s"


def test_report_cli_tables_and_charts(tmp_path):
    path = fixture_suite(tmp_path / "fixture.json", {"varint/encode/small/chronik_perf": 1e-7,
                                                     "varint/encode/small/kafka-python": 3e-7})
    done = subprocess.run([sys.executable, str(MICRO / "report.py"), str(path), "--html", str(tmp_path / "r.html"),
                           "--charts", str(tmp_path / "charts")], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "## varint" in done.stdout and "3.00x vs kafka-python" in done.stdout
    assert (tmp_path / "charts" / "varint.png").read_bytes()[:4] == b"\x89PNG"
    assert "data:image/png;base64" in (tmp_path / "r.html").read_text()


def listed(group, what="--list"):
    done = subprocess.run([sys.executable, "-m", f"micro.bench_{group}", what], capture_output=True, text=True,
                          check=True, cwd=ROOT)
    return done.stdout.split() if what == "--list" else done.stdout.splitlines()


@pytest.mark.parametrize("group", run_script.groups())
def test_every_benchmark_sets_up_and_runs_once(group):
    """`run.py --check` sets up every benchmark of the group and calls it once: a broken benchmark fails here."""
    names = listed(group)
    assert names and all(n.startswith(f"{group}/") for n in names)
    assert any(not n.rsplit("/", 1)[1].startswith("chronik_perf") for n in names)    # the peers are installed
    done = subprocess.run([sys.executable, str(MICRO / "run.py"), "--check", "--group", group], capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    checked = [line.split(" ", 1)[1] for line in done.stdout.splitlines() if line.startswith("checked ")]
    assert checked == names


def test_check_fails_on_a_broken_benchmark(tmp_path):
    """A benchmark whose set-up raises makes --check exit non-zero, naming the error."""
    script = tmp_path / "bench_broken.py"
    script.write_text("from micro._suite import Suite\n"
                      "def setup(meta):\n    from chronik_perf.kafka_python_peer import no_such_name\n"
                      "s = Suite('broken')\ns.add('op', 'p', 'chronik_perf', setup)\ns.run()\n")
    done = subprocess.run([sys.executable, str(script), "--check"], capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert done.returncode != 0 and "no_such_name" in done.stderr


def test_report_floors_and_flags(tmp_path):
    """Floors are not peers; ours/floor and the bar; a peer ahead or a missed bar is flagged in text, HTML, PNG."""
    path = fixture_suite(tmp_path / "fixture.json", {
        "storage/append/64x16KiB/chronik_perf": 1.2e-3,
        "storage/append/64x16KiB/floor-os.write": 1e-3,
        "records/parse/10x100B/chronik_perf": 5e-6,
        "records/parse/10x100B/aiokafka": 2.5e-6,
        "records/parse/10x100B/floor-crc": 1e-6,
        "crc/crc32c/1KiB/chronik_perf-software": 1e-6,
        "crc/crc32c/1KiB/crc32c": 1e-7,
        "crc/crc32c/1KiB/aiokafka": 2e-6,
        "crc/crc32c/1KiB/floor-memcpy": 5e-8,
    }, extra={"storage/append/64x16KiB/floor-os.write": {"floor_bar": 0.9},
              "crc/crc32c/1KiB/chronik_perf-software": {"peers": "aiokafka"}})
    rows = report.load_rows(path)
    ratios = report.speedups(rows)
    assert ratios[("storage", "append", "64x16KiB", "chronik_perf")] == {}
    assert ratios[("crc", "crc32c", "1KiB", "chronik_perf-software")] == pytest.approx({"aiokafka": 2.0})
    floors = report.floors(rows)
    flags = {r.case: report.verdict(r, ratios, floors.get(r.case)) for r in rows if r.ours}
    assert flags == {("storage", "append", "64x16KiB"): report.BELOW_BAR,
                     ("records", "parse", "10x100B"): report.PEER_AHEAD, ("crc", "crc32c", "1KiB"): ""}
    done = subprocess.run([sys.executable, str(MICRO / "report.py"), str(path), "--html", str(tmp_path / "r.html"),
                           "--charts", str(tmp_path / "charts")], capture_output=True, text=True)
    assert done.returncode == 1, done.stderr           # the append floor's bar is missed: a bar line says MISSED
    lines = {tuple(c.strip() for c in l.split("|")[1:3]): l for l in done.stdout.splitlines() if l.startswith("| ")}
    assert "0.83x (+200 us), bar 0.9x" in lines[("append/64x16KiB", "chronik_perf")]
    assert "!! BELOW FLOOR BAR" in lines[("append/64x16KiB", "chronik_perf")]
    assert "0.20x (+4 us)" in lines[("parse/10x100B", "chronik_perf")]
    assert "!! PEER AHEAD" in lines[("parse/10x100B", "chronik_perf")]
    assert "!!" not in lines[("crc32c/1KiB", "chronik_perf-software")]
    assert "2 row(s) flagged" in done.stdout
    page = (tmp_path / "r.html").read_text()
    assert page.count('<tr style="background:#fdd;color:#b00">') == 2


def test_report_prints_the_bars_and_exits_1_when_one_is_missed(tmp_path):
    """A peer bar and a floor bar, each met once and missed once: four bar lines, exit status 1; all met: 0."""
    medians = {"records/build/100x100B/chronik_perf": 1e-6, "records/build/100x100B/aiokafka": 9e-6,
               "protocol/metadata_decoding/1000topics/chronik_perf": 1e-3,
               "protocol/metadata_decoding/1000topics/floor-marshal": 1.5e-3,
               "protocol/fetch_response_decoding/10x1MiB/chronik_perf": 1.1e-3,
               "protocol/fetch_response_decoding/10x1MiB/floor-marshal": 1e-3,
               "crc/crc32c/1MiB/chronik_perf": 1e-4, "crc/crc32c/1MiB/crc32c": 2e-4}
    bars = {"records/build/100x100B/chronik_perf": {"bar_peer": "aiokafka", "peer_bar": 10.0},
            "crc/crc32c/1MiB/chronik_perf": {"bar_peer": "crc32c", "peer_bar": 0.9},
            "protocol/metadata_decoding/1000topics/floor-marshal": {"floor_bar": 1.0},
            "protocol/fetch_response_decoding/10x1MiB/floor-marshal": {"floor_bar": 1.0}}
    path = fixture_suite(tmp_path / "fixture.json", medians, extra=bars)
    done = subprocess.run([sys.executable, str(MICRO / "report.py"), str(path), "--no-charts"], capture_output=True,
                          text=True)
    assert done.returncode == 1, done.stdout + done.stderr
    lines = done.stdout.split("## bars", 1)[1].strip().splitlines()
    assert lines[:4] == [
        "records/build/100x100B/chronik_perf: speedup over aiokafka 9.00x, bar at least 10x: MISSED",
        "protocol/metadata_decoding/1000topics/chronik_perf: 0.67x the time of floor-marshal (1.50x its speed), "
        "bar at least 1x its speed: met",
        "protocol/fetch_response_decoding/10x1MiB/chronik_perf: 1.10x the time of floor-marshal (0.91x its speed), "
        "bar at least 1x its speed: MISSED",
        "crc/crc32c/1MiB/chronik_perf: speedup over crc32c 2.00x, bar at least 0.9x: met"]
    assert lines[4] == "bars met: 2 of 4"
    medians["records/build/100x100B/aiokafka"] = 2e-5
    medians["protocol/fetch_response_decoding/10x1MiB/chronik_perf"] = 9e-4
    path = fixture_suite(tmp_path / "met.json", medians, extra=bars)
    assert report.main([str(path), "--no-charts"]) == 0


@pytest.mark.parametrize("group,count", [("records", 3), ("crc", 1), ("protocol", 8)])
def test_the_issues_bars_are_on_their_benchmarks(group, count):
    """Issue 1's records and CRC bars, issues 3 and 15's protocol bars: each on the benchmark it names."""
    bars = listed(group, "--list-bars")
    expected = {"records": ["records/build/100x100B-unkeyed/chronik_perf: speedup over aiokafka at least 10x",
                            "records/parse/100x100B-unkeyed/chronik_perf: speedup over aiokafka at least 2x",
                            "records/parse/100x100B-unkeyed/chronik_perf-columns: speedup over aiokafka at least 5x"],
                "crc": ["crc/crc32c/1MiB/chronik_perf: speedup over crc32c at least 0.9x"],
                "protocol": ["protocol/produce_frame_encoding/16KiB/chronik_perf: "
                             "speedup over kafka-python at least 20x",
                             "protocol/produce_frame_decoding/16KiB/floor-marshal: ours at least 1x its speed",
                             "protocol/metadata_encoding/1000topics/chronik_perf: "
                             "speedup over kafka-python at least 20x",
                             "protocol/metadata_decoding/1000topics/floor-marshal: ours at least 1x its speed",
                             "protocol/fetch_response_decoding/10x1MiB/floor-marshal: ours at least 1x its speed",
                             "protocol/fetch_response_decoding/10x1MiB-zero_copy/floor-marshal: "
                             "ours at least 1x its speed",
                             "protocol/heartbeat_request_decoding/1000x10/floor-marshal: ours at least 1x its speed",
                             "protocol/heartbeat_response_decoding/1000x10/floor-marshal: ours at least 1x its speed"]}[group]
    assert bars == expected and len(bars) == count
