"""check-regression and compare refuse results that measured different work, warn on a different machine or
software, and compare anyway what --allow-different names."""
import copy
import json

import pytest

from chronik_perf.e2e.cli import main
from chronik_perf.e2e.comparable import ALLOWABLE, WORKLOAD, for_comparison, for_regression, header
from chronik_perf.e2e.config import BenchConfig
from chronik_perf.e2e.results import SCHEMA_VERSION


def result(throughput=1000.0, target="kafka", **config):
    """A results document as the suite writes it, with one producer result."""
    cfg = BenchConfig(**config).to_dict()
    return {"schema_version": SCHEMA_VERSION, "target": target, "bootstrap_servers": "127.0.0.1:1",
            "broker": {"name": target, "version": "4.1.1"}, "config": cfg,
            "environment": {"cpu_model": "CPU A", "cpu_count": 2, "memory_gib": 24.0, "python": "3.11.2",
                            "packages": {"chronik-perf": "0.1.0"}, "git": {"commit": "a" * 40, "dirty": False},
                            "client": {"driver": cfg["driver"], "version": "2.6.0", "librdkafka": "2.6.0"}},
            "results": [{"test": "producer", "driver": cfg["driver"], "throughput_msgs_s": throughput,
                         "latency_ms": {"p99": 5.0}}]}


def write(tmp_path, name, doc):
    path = tmp_path / name
    path.write_text(json.dumps(doc))
    return str(path)


def gate(tmp_path, capsys, baseline, current, *extra):
    code = main(["check-regression", "--baseline", write(tmp_path, "b.json", baseline),
                 "--current", write(tmp_path, "c.json", current), *extra])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_a_different_driver_and_message_size_are_refused_in_one_line(tmp_path, capsys):
    code, out, err = gate(tmp_path, capsys, result(driver="native", message_size=100),
                          result(500.0, driver="confluent", message_size=1024))
    assert code == 2 and out == ""  # refused before any figure is read
    assert err.splitlines() == ["not comparable: driver native -> confluent; message_size 100 -> 1024 "
                                "(--allow-different driver,message_size compares them anyway)"]


@pytest.mark.parametrize("key,before,after", [
    ("num_partitions", 6, 1), ("replication_factor", 1, 3), ("acks", "all", "1"), ("compression", "none", "lz4"),
    ("batch_size", None, 16384), ("linger_ms", None, 20.0), ("producers", 4, 2), ("consumers", 3, 1),
    ("rate", 2000, 500), ("duration", 20.0, 5.0), ("key_pattern", "none", "random"), ("payload", "random", "zeros"),
    ("group_protocol", "classic", "consumer"), ("num_messages", 200_000, 20_000), ("warmup", 3.0, 1.0)])
def test_every_workload_difference_is_refused(tmp_path, capsys, key, before, after):
    code, _, err = gate(tmp_path, capsys, result(**{key: before}), result(**{key: after}))
    assert code == 2 and err.startswith(f"not comparable: {key} ")


def test_client_settings_name_the_setting_that_differs(tmp_path, capsys):
    code, _, err = gate(tmp_path, capsys, result(client_config={"linger.ms": "5", "acks": "1"}),
                        result(client_config={"linger.ms": "50", "acks": "1"}))
    assert code == 2 and "client_config {linger.ms=5} -> {linger.ms=50}" in err


def test_a_different_target_or_cpu_is_refused_by_the_gate(tmp_path, capsys):
    code, _, err = gate(tmp_path, capsys, result(), result(target="tansu"))
    assert code == 2 and "target kafka -> tansu" in err
    other_cpu = result()
    other_cpu["environment"].update(cpu_model="CPU B", cpu_count=8)
    code, _, err = gate(tmp_path, capsys, result(), other_cpu)
    assert code == 2 and "cpu_model CPU A -> CPU B; cpu_count 2 -> 8" in err


def test_the_override_compares_and_the_verdict_names_what_differed(tmp_path, capsys):
    code, out, err = gate(tmp_path, capsys, result(driver="native", message_size=100),
                          result(500.0, driver="confluent", message_size=1024),
                          "--allow-different", "driver,message_size")
    assert code == 1 and err == "" and "REGRESSION  producer: throughput" in out
    assert out.splitlines()[-1] == ("1 regression(s) beyond 10%; compared despite: driver native -> confluent; "
                                    "message_size 100 -> 1024")
    code, out, _ = gate(tmp_path, capsys, result(driver="native"), result(driver="confluent"),
                        "--allow-different", "driver")
    assert code == 0 and out.splitlines()[-1].endswith("compared despite: driver native -> confluent")
    code, _, err = gate(tmp_path, capsys, result(driver="native", acks="1"), result(driver="confluent"),
                        "--allow-different", "driver")  # allowing one key leaves the others refused
    assert code == 2 and err.startswith("not comparable: acks 1 -> all (")


def test_environment_differences_are_warnings_above_the_verdict(tmp_path, capsys):
    current = result()
    env = current["environment"]
    env.update(memory_gib=64.0, python="3.12.1", git={"commit": "b" * 40, "dirty": True})
    env["client"].update(version="2.8.0", librdkafka="2.8.0", java='openjdk version "21.0.5"')
    current["broker"]["version"] = "4.4.0"
    code, out, _ = gate(tmp_path, capsys, result(), current)
    lines = out.splitlines()
    assert code == 0 and lines[-1] == "no regression beyond 10%"
    warnings = [line for line in lines if line.startswith("warning: ")]
    assert warnings == lines[:len(warnings)]  # above every figure
    for text in ("memory_gib 24.0 -> 64.0", "python 3.11.2 -> 3.12.1", f"chronik_perf {'a' * 12} -> {'b' * 12} (dirty)",
                 "broker_version 4.1.1 -> 4.4.0", "client_version 2.6.0 -> 2.8.0", "librdkafka 2.6.0 -> 2.8.0",
                 'java unset -> openjdk version "21.0.5"'):
        assert any(text in w for w in warnings), text
    current["environment"]["cpu_count"] = 8  # a different machine: allowed, then the verdict says so
    code, out, _ = gate(tmp_path, capsys, result(), current, "--allow-different", "cpu_count")
    assert code == 0 and out.splitlines()[-1] == "no regression beyond 10%; compared despite: cpu_count 2 -> 8"


def test_compare_of_targets_needs_the_same_workload_and_driver(tmp_path, capsys):
    kafka, tansu = write(tmp_path, "k.json", result()), write(tmp_path, "t.json", result(target="tansu"))
    assert main(["compare", kafka, tansu, "--chart", str(tmp_path / "c.png")]) == 0
    out = capsys.readouterr().out
    assert "same workload: message_size 1024, num_messages 200000" in out and "same driver: confluent" in out
    assert "targets: kafka, tansu" in out and "warning" not in out
    other = write(tmp_path, "o.json", result(target="tansu", message_size=100))
    assert main(["compare", kafka, tansu, other]) == 2
    assert capsys.readouterr().err.strip() == (f"not comparable: message_size 1024 -> 100 ({other}) "
                                                "(--allow-different message_size compares them anyway)")
    both = write(tmp_path, "b.json", result(target="tansu", driver="native"))
    assert main(["compare", kafka, both]) == 2
    assert "driver confluent -> native; target kafka -> tansu" in capsys.readouterr().err


def test_compare_of_drivers_needs_the_same_target_and_warns_on_another_machine(tmp_path, capsys):
    native = result(driver="native")
    native["environment"]["cpu_model"] = "CPU B"
    paths = [write(tmp_path, "c.json", result()), write(tmp_path, "n.json", native)]
    assert main(["compare", *paths, "--chart", str(tmp_path / "c.png")]) == 0
    out = capsys.readouterr().out
    assert "drivers: confluent, native" in out and "same target: kafka" in out
    assert "warning: cpu_model CPU A -> CPU B" in out  # a warning for compare, an error for the gate
    assert "client_version" not in out  # a different client is what a driver comparison compares


@pytest.mark.parametrize("command", [["compare", "a.json"], ["check-regression", "--baseline", "a", "--current", "b"]])
def test_an_unknown_key_to_allow_is_an_argparse_error_naming_the_known_ones(command, capsys):
    with pytest.raises(SystemExit) as exc:
        main([*command, "--allow-different", "driver,bogus"])
    err = capsys.readouterr().err
    assert exc.value.code == 2 and "unknown key(s) bogus" in err and ", ".join(ALLOWABLE) in err


def test_the_header_names_what_the_runs_share_and_what_was_allowed_to_differ():
    docs = [result(driver=d) for d in ("native", "confluent", "java")]
    line = header(docs)
    assert line.startswith("same workload: ")
    assert line.endswith("; drivers: native, confluent, java; same target: kafka")
    assert all(f"{key} " in line for key in WORKLOAD)
    docs[2]["config"]["acks"] = "1"
    assert "(differs: acks)" in header(docs)
    verdict = for_comparison(docs, {"acks"})
    assert verdict.refusal() is None and verdict.despite() == "compared despite: acks all -> 1"
    assert for_regression(docs[0], docs[0], set()).refusal() is None
