"""The e2e suite through the native driver (our client), against the mock, Tansu and Kafka, with small sizes."""
import json
import os

import pytest

from chronik_perf.e2e.config import TESTS
from test_e2e_brokers import COMMON_KEYS, SMALL, check_delivery, load_results, run_cli


@pytest.fixture(scope="module", params=["mock", "tansu", "kafka"])
def native_suite(request, tmp_path_factory):
    broker = request.getfixturevalue(f"{request.param}_broker")
    out = tmp_path_factory.mktemp(f"native-{request.param}")
    proc = run_cli(["--target", request.param, "--bootstrap-servers", broker.bootstrap_servers, "--driver", "native",
                    *SMALL], out)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    doc, _ = load_results(out)
    return request.param, doc


def test_native_driver_runs_all_five_verified(native_suite):
    name, doc = native_suite
    assert [r["test"] for r in doc["results"]] == list(TESTS)
    asked = {"producer": 3000, "consumer": 3000, "latency": 900, "concurrent": 3000, "groups": 3000}
    for r in doc["results"]:
        assert not r.get("failed") and not r.get("skipped"), r
        assert COMMON_KEYS <= set(r) and r["driver"] == "native"
        assert r["messages"] == asked[r["test"]]
        # a window of zero (every message in one fetch) has no rate, and the result says its window is too short
        assert r["throughput_msgs_s"] > 0 if r["throughput_msgs_s"] is not None else "short_window" in r, r
        assert r["bytes"] == r["messages"] * 200
        if r["test"] != "producer":
            check_delivery(name, r)
    lat = doc["results"][2]["latency_ms"]
    assert 0 < lat["min"] <= lat["p50"] <= lat["p99"] <= lat["max"]
    groups = doc["results"][4]
    assert groups["rebalance_join_ms"] > 0 and groups["rebalance_leave_ms"] > 0
    # One rebalance per membership change: the initial join in about the broker's initial delay (3 s on the
    # mock), not the tens of seconds of repeated rebalances a lost SyncGroup race costs.
    assert groups["initial_assignment_ms"] < 15000, groups
    assert doc["environment"]["client"]["client"] == "chronik_perf.client"
    assert doc["results"][0]["ack_latency_ms"]["p50"] > 0       # per-batch acknowledgement latencies


def test_drivers_side_by_side(mock_broker, tmp_path):
    proc = run_cli(["--target", "mock", "--bootstrap-servers", mock_broker.bootstrap_servers, "--drivers",
                    "native,confluent", "--quick", "--tests", "producer,consumer", "--num-messages", "2000"], tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "mock (native)" in proc.stdout and "mock (confluent)" in proc.stdout
    assert "Ratios against mock (native)" in proc.stdout
    docs = []
    for d in os.listdir(tmp_path):
        if os.path.isdir(tmp_path / d):
            with open(tmp_path / d / "results.json") as fh:
                docs.append(json.load(fh))
    assert sorted({r["driver"] for doc in docs for r in doc["results"]}) == ["confluent", "native"]


def test_unknown_client_setting_is_an_error(mock_broker, tmp_path):
    proc = run_cli(["--target", "mock", "--bootstrap-servers", mock_broker.bootstrap_servers, "--driver", "native",
                    "--quick", "--tests", "producer", "-X", "producer.no.such.setting=1"], tmp_path)
    assert "does not know the client setting 'no.such.setting'" in proc.stdout
