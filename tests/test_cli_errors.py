"""Every CLI of ours answers bad input with one error line (argparse-style) and a non-zero exit, never a traceback;
micro/run.py takes comma lists of groups; the e2e --help shows every default."""
import json

import pytest

from chronik_perf.brokers.__main__ import main as brokers_main
from chronik_perf.e2e.cli import main as e2e_main

from micro import compare, report
from micro import run as run_script


def refused(capsys, main, argv, *expected):
    """main(argv) exits 2 (argparse) or returns 2, with one error line naming each of `expected`."""
    try:
        code = main(argv)
    except SystemExit as exc:
        code = exc.code
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if "error:" in line]
    assert code == 2 and len(errors) == 1 and "Traceback" not in err, err
    assert all(text in errors[0] for text in expected), err


@pytest.fixture
def bad_files(tmp_path):
    files = {"missing": tmp_path / "missing.json", "garbage": tmp_path / "garbage.json",
             "other": tmp_path / "other.json"}
    files["garbage"].write_text("not json {")
    files["other"].write_text(json.dumps({"schema_version": 1, "results": 3}))
    return files


@pytest.mark.parametrize("name,says", [("missing", "No such file or directory"), ("garbage", "not a pyperf suite"),
                                       ("other", "not a pyperf suite")])
def test_micro_report_and_compare_refuse_what_is_not_a_suite(capsys, bad_files, name, says):
    path = str(bad_files[name])
    refused(capsys, report.main, [path, "--no-charts"], path, says)
    refused(capsys, compare.main, [path, path], path, says)


def test_micro_run_takes_comma_lists_of_groups_and_names_unknown_ones(capsys, monkeypatch):
    seen = []
    monkeypatch.setattr(run_script, "check", lambda chosen, select: seen.append(chosen) or 0)
    assert run_script.main(["--check", "--group", "crc,varint", "--group", "index"]) == 0
    assert seen == [["crc", "varint", "index"]]
    refused(capsys, run_script.main, ["--group", "crc,bogus"], "unknown group(s) bogus", "known: protocol")
    refused(capsys, run_script.main, ["--check", "--select", "("], "--select", "not a regular expression")


@pytest.mark.parametrize("name,says", [("missing", "No such file or directory"), ("garbage", "not JSON"),
                                       ("other", "'target' is missing")])
def test_e2e_compare_and_check_regression_refuse_what_is_not_a_results_file(capsys, bad_files, name, says):
    path = str(bad_files[name])
    refused(capsys, e2e_main, ["compare", path], path, says)
    refused(capsys, e2e_main, ["check-regression", "--baseline", path, "--current", path], path, says)


def test_e2e_check_regression_refuses_a_negative_threshold(capsys):
    refused(capsys, e2e_main, ["check-regression", "--baseline", "a", "--current", "b", "--threshold", "-5"],
            "--threshold", "0 or more")


@pytest.mark.parametrize("text,says", [("num-messages: many\n", "invalid --num-messages: 'many' (expected a number)"),
                                       ("rate: [1\n", "not valid YAML"), ("X: 5\n", "X must be a mapping"),
                                       ("batch-size: 0\n", "invalid --batch-size: 0"),
                                       ("linger-ms: -1\n", "invalid --linger-ms: -1"),
                                       ("tests: 5\n", "tests must be a list")])
def test_e2e_bad_workload_files_are_one_line(capsys, tmp_path, text, says):
    path = tmp_path / "w.yaml"
    path.write_text(text)
    refused(capsys, e2e_main, ["--workload", str(path), "--target", "mock"], says)
    refused(capsys, e2e_main, ["--workload", "nonesuch"], "nonesuch: no such file, nor a shipped workload "
                                                          "(high-throughput, latency-focused)")


def test_e2e_help_shows_every_default(capsys):
    with pytest.raises(SystemExit) as exc:
        e2e_main(["--help"])
    out = " ".join(capsys.readouterr().out.split())
    assert exc.value.code == 0
    for text in ("default producer,consumer,latency,concurrent,groups", "default 200000; --quick: 20000",
                 "default 1024; --quick: 512", "default 6; --quick: 3", "(default 1)", "default none",
                 "default all", "default the driver's own", "default 5, 0 in the latency test", "default confluent",
                 "default results", "default warning", "high-throughput, latency-focused"):
        assert text in out, text


@pytest.mark.parametrize("argv,says", [(["start", "kafka", "--port", "99999"], "port from 1 to 65535"),
                                       (["stop", "kafka", "--port", "x"], "port from 1 to 65535"),
                                       (["start", "kafka", "--timeout", "-1"], "seconds above 0"),
                                       (["start", "kafka", "--heap", "lots"], "heap size")])
def test_brokers_cli_bad_options_are_one_line(capsys, argv, says):
    refused(capsys, brokers_main, argv, says)
