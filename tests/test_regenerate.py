"""docs/regenerate.py writes every marked table from stored result files (no live benchmark runs here): with the
commit, machine and date; 'No data' where the files are missing; only the tables asked for; unknown markers refused."""
import importlib.util
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("regenerate", ROOT / "docs" / "regenerate.py")
regenerate = importlib.util.module_from_spec(_spec)
sys.modules["regenerate"] = regenerate   # dataclasses look their module up
_spec.loader.exec_module(regenerate)

COMMIT = "0123456789abcdef0123456789abcdef01234567"
ENV = {"cpu_model": "Test CPU 9000", "cpu_count": 2, "memory_gib": 23.4, "os": "Linux-6.18-x86_64", "python": "3.11.7",
       "git": {"commit": COMMIT, "dirty": False}}


def meta(name: str, commands: list[str], quick: bool = False) -> dict:
    return {"data_set": name, "quick": quick, "commands": commands, "exit_status": [0] * len(commands),
            "started_utc": "2026-11-30T13:05:00+00:00", "duration_s": 61.0,
            "load_average": {"before": 1.5, "after": 2.25}, "nice": 10, "environment": ENV}


def result_doc(target: str, producer_rate: float) -> dict:
    verified = {"lost": 0, "duplicated": 0, "out_of_order": 0, "per_partition": {}}
    return {"schema_version": 1, "target": target, "config": {"num_messages": 200000}, "environment": ENV,
            "broker": {"name": target}, "results": [
        {"test": "producer", "driver": "confluent", "throughput_msgs_s": producer_rate, "throughput_mb_s": 12.5,
         "latency_ms": None},
        {"test": "latency", "driver": "confluent", "throughput_msgs_s": 500.0, "throughput_mb_s": 0.25,
         "latency_ms": {"avg": 1.25, "p99": 7.5}, "verification": verified},
        {"test": "groups", "driver": "confluent", "failed": "group consumed 0 of 20000 messages and stalled"},
    ]}


@pytest.fixture
def tree(tmp_path):
    """A checkout with stale tables between markers, and stored results for some of the data sets."""
    (tmp_path / "docs" / "results").mkdir(parents=True)
    (tmp_path / "README.md").write_text("# x\n\n<!-- table:readme-e2e -->\n| STALE | 999 |\n<!-- /table:readme-e2e -->\n"
                                        "after\n")
    (tmp_path / "docs" / "results" / "summary.md").write_text("<!-- table:results-summary -->\n<!-- /table:results-summary -->\n")
    (tmp_path / "docs" / "results" / "page.md").write_text(
        "# Results\n\n<!-- table:records-ratios -->\nold records\n<!-- /table:records-ratios -->\n\ntext kept\n\n"
        "<!-- table:drivers -->\n| old | 1 |\n<!-- /table:drivers -->\n")
    data = tmp_path / regenerate.DATA
    for target, rate in (("kafka", 94803.0), ("tansu", 93625.0)):
        run = data / "e2e" / "runs" / f"20261130T130500Z_{target}"
        run.mkdir(parents=True)
        (run / "results.json").write_text(json.dumps(result_doc(target, rate)))
    e2e_meta = meta("e2e", ["python -m chronik_perf.e2e --targets kafka,tansu"])
    e2e_meta["exit_status"] = [1]            # the groups test failed: measured all the same, and the table says so
    (data / "e2e" / "meta.json").write_text(json.dumps(e2e_meta))
    (data / "records-ratios").mkdir()
    (data / "records-ratios" / "meta.json").write_text(json.dumps(meta(
        "records-ratios", ["python micro/run.py --fast", "python micro/report.py micro.json"], quick=True)))
    (data / "records-ratios" / "output-0.txt").write_text("wrote micro.json\n")
    (data / "records-ratios" / "output-1.txt").write_text(
        "## bars\n\nrecords/build/100x100B/chronik_perf: speedup over aiokafka 10.79x, bar at least 10x: met\n")
    return tmp_path


def test_writes_tables_with_commit_machine_and_date(tree):
    assert regenerate.main(["--write-only", "--root", str(tree)]) == 0
    readme = (tree / "README.md").read_text()
    assert "STALE" not in readme and readme.endswith("<!-- /table:readme-e2e -->\nafter\n")
    assert "Commit 0123456789 ·" in readme and "Test CPU 9000, 2 CPUs" in readme and "2026-11-30 13:05 UTC" in readme
    assert "load average 1.5 before, 2.25 after" in readme and "exit status 1 (a failed test" in readme
    rows = [line for line in readme.splitlines() if line.startswith("| ")]
    assert rows[0].startswith("| System | Test |")
    # tests grouped together, targets in order within a test
    assert [r.split(" | ")[:2] for r in rows[1:]] == [
        ["| kafka (confluent)", "Producer Throughput"], ["| tansu (confluent)", "Producer Throughput"],
        ["| kafka (confluent)", "E2E Latency"], ["| tansu (confluent)", "E2E Latency"],
        ["| kafka (confluent)", "Consumer Groups"], ["| tansu (confluent)", "Consumer Groups"]]
    assert "94,803" in rows[1] and "7.50" in rows[3] and "FAILED: group consumed 0" in rows[5]
    page = (tree / "docs" / "results" / "page.md").read_text()
    assert "old records" not in page and "#### bars" in page and "aiokafka 10.79x" in page and "quick mode" in page
    assert "text kept" in page
    drivers = re.search(r"<!-- table:drivers -->\n(.*?)<!-- /table", page, re.S)[1]
    assert drivers.startswith("**No data.**") and "| old | 1 |" not in drivers
    assert str(tree) not in drivers and "docs/results/data/drivers/meta.json" in drivers
    summary = (tree / "docs" / "results" / "summary.md").read_text()
    assert "All stored results come from one commit." in summary
    assert "| e2e | 0123456789 | 2026-11-30 13:05 UTC | Test CPU 9000, 2 CPUs | full |" in summary
    assert "| records-ratios | 0123456789 | 2026-11-30 13:05 UTC | Test CPU 9000, 2 CPUs | quick |" in summary
    assert "| micro | no data | | | |" in summary


def test_only_rewrites_the_tables_named_and_running_again_is_stable(tree):
    assert regenerate.main(["--write-only", "--only", "records-ratios", "--root", str(tree)]) == 0
    assert "STALE" in (tree / "README.md").read_text()
    page = (tree / "docs" / "results" / "page.md").read_text()
    assert "aiokafka 10.79x" in page and "| old | 1 |" in page
    regenerate.main(["--write-only", "--root", str(tree)])
    first = [(p, p.read_text()) for p in regenerate.pages(tree)]
    regenerate.main(["--write-only", "--root", str(tree)])
    assert first == [(p, p.read_text()) for p in regenerate.pages(tree)]


def test_unknown_marker_and_unknown_name_are_refused(tree):
    (tree / "docs" / "other.md").write_text("<!-- table:made-up -->\nx\n<!-- /table:made-up -->\n")
    with pytest.raises(SystemExit, match="docs/other.md: made-up"):
        regenerate.main(["--write-only", "--root", str(tree)])
    with pytest.raises(SystemExit, match="unknown data set or table: nope"):
        regenerate.main(["--write-only", "--only", "nope", "--root", str(tree)])


def test_run_stores_output_environment_and_keeps_old_data_on_failure(tree, monkeypatch):
    ok = regenerate.DataSet("probe", lambda opts, out: [[sys.executable, "-c", "print('| a | 1 |')"]],
                            {"probe": regenerate.markdown_table_lines})
    assert regenerate.run(ok, regenerate.Options(), tree, nice=0)
    folder = tree / regenerate.DATA / "probe"
    stored = json.loads((folder / "meta.json").read_text())
    assert stored["exit_status"] == [0] and stored["environment"]["cpu_count"] >= 1
    assert stored["environment"]["git"]["commit"]            # the checkout chronik_perf is imported from
    assert regenerate.markdown_table_lines(folder) == "| a | 1 |"
    failing = regenerate.DataSet("probe", lambda opts, out: [[sys.executable, "-c", "raise SystemExit(3)"]],
                                 ok.tables)
    assert not regenerate.run(failing, regenerate.Options(), tree, nice=0)
    assert (folder / "output-0.txt").read_text() == "| a | 1 |\n"
    unrunnable = regenerate.DataSet("probe", failing.commands, ok.tables, missing=lambda: "needs a binary")
    assert regenerate.run(unrunnable, regenerate.Options(), tree, nice=0)      # not run, not failed: data kept
    assert (folder / "output-0.txt").read_text() == "| a | 1 |\n"


def test_chronik_data_set_runs_only_with_a_binary(monkeypatch):
    chronik = next(ds for ds in regenerate.DATA_SETS if ds.name == "chronik")
    monkeypatch.delenv("CHRONIK_SERVER", raising=False)
    assert "CHRONIK_SERVER=PATH" in chronik.missing()
    monkeypatch.setenv("CHRONIK_SERVER", "/opt/chronik-server")
    assert chronik.missing() is None
    commands = chronik.commands(regenerate.Options(), Path("out"))
    assert [c[c.index("--targets") + 1] for c in commands] == ["chronik,kafka"] * 2
    assert ["--driver", "native"] == commands[1][-4:-2] and "--driver" not in commands[0]


def test_repository_markers_match_the_data_sets():
    """Every marker in README.md and docs/ has a data set, and every data set's table appears somewhere."""
    names = [m["name"] for page in regenerate.pages(ROOT) for m in regenerate.MARKER.finditer(page.read_text())]
    tables = {t for ds in regenerate.DATA_SETS for t in ds.tables} | {regenerate.SUMMARY}
    assert set(names) == tables
    assert len(names) == len(set(names))


def test_refuses_to_measure_with_a_core_older_than_its_sources(tree):
    pkg = tree / "src" / "chronik_perf"
    pkg.mkdir(parents=True)
    (pkg / "_core.cpython-311-x86_64-linux-gnu.so").write_bytes(b"")
    (pkg / "_records.pxi").write_text("# newer than the build")
    os.utime(pkg / "_core.cpython-311-x86_64-linux-gnu.so", (1, 1))
    assert regenerate.stale_core(tree) == ["src/chronik_perf/_records.pxi"]
    with pytest.raises(SystemExit, match="native core is older than its sources"):
        regenerate.main(["--only", "records-ratios", "--root", str(tree)])
    os.utime(pkg / "_core.cpython-311-x86_64-linux-gnu.so")          # rebuilt: now the newest
    assert regenerate.stale_core(tree) == []


def test_refuses_to_measure_another_checkouts_package(tree):
    (tree / "src" / "chronik_perf").mkdir(parents=True)
    assert regenerate.foreign_package(tree) == str(Path(regenerate.__file__).resolve().parents[1] / "src" / "chronik_perf")
    with pytest.raises(SystemExit, match="chronik_perf is imported from .* not from"):
        regenerate.main(["--only", "records-ratios", "--root", str(tree)])
    assert regenerate.foreign_package(ROOT) is None


def test_rewritten_docs_do_not_make_the_checkout_dirty():
    """The commit a table names is the measured code's: README.md and docs/ (which the script rewrites) do not count."""
    git = regenerate.environment(ROOT).get("git")
    if git is None:
        pytest.skip("chronik_perf is not imported from a git checkout")
    readme = ROOT / "README.md"
    text = readme.read_text()
    before = git["dirty"]
    try:
        readme.write_text(text + "\n")
        assert regenerate.environment(ROOT)["git"]["dirty"] == before
    finally:
        readme.write_text(text)


def test_micro_margins_name_each_group_s_row_farthest_from_its_floor_and_its_smallest_peer_margin(tmp_path):
    import pyperf

    def bench(name, seconds, **meta):
        run = pyperf.Run([seconds] * 3, metadata={"name": name, "loops": 1, **meta}, collect_metadata=False)
        return pyperf.Benchmark([run])
    pyperf.BenchmarkSuite([
        bench("crc/crc32c/1KiB/chronik_perf", 1e-6), bench("crc/crc32c/1KiB/crc32c", 2e-6),
        bench("crc/crc32c/1KiB/floor-memcpy", 0.5e-6),
        bench("crc/crc32c/1MiB/chronik_perf", 1e-3), bench("crc/crc32c/1MiB/crc32c", 1.5e-3),
        bench("crc/crc32c/1MiB/floor-memcpy", 0.1e-3),
        bench("storage/append/x/chronik_perf", 2e-3), bench("storage/append/x/floor-os.write", 1.8e-3, floor_bar=0.9),
    ]).dump(str(tmp_path / "micro.json"))
    rows = regenerate.micro_margins(tmp_path).splitlines()
    assert rows[2] == "| crc | `crc32c/1MiB` (floor-memcpy) | 0.10x | `crc32c/1MiB` | 1.50x |"
    assert rows[3] == "| storage | `append/x` (floor-os.write) | 0.90x | - | - |"


def test_cluster_overhead_report_without_runs_is_one_line_and_fails(tmp_path):
    """A side with no stored run (every run failed before writing results) gets one line on stderr and exit 1."""
    run = subprocess.run([sys.executable, str(ROOT / "examples/cluster_overhead.py"), "--report", str(tmp_path)],
                         capture_output=True, text=True)
    assert run.returncode == 1
    assert run.stdout == ""
    assert run.stderr.strip().splitlines() == [
        "cluster_overhead: no results for the local and cluster side: every run failed (see the suite's output)"]
