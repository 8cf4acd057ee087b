"""e2e suite without a broker: verification, message layout, configuration, CLI errors, tool output parsing."""
import signal
import time

import numpy as np
import pytest
from confluent_kafka import murmur2
from rich.console import Console

from chronik_perf.e2e.cli import main
from chronik_perf.e2e.config import build_config, load_workload
from chronik_perf.e2e.drivers.base import ProcessWorker, end_workers
from chronik_perf.e2e.drivers.worker_results import WorkerResult
from chronik_perf.e2e.regression import regressions
from chronik_perf.e2e.repeats import combine, totals
from chronik_perf.e2e.report import WORK_HEADERS, ratio_table, work_rows
from chronik_perf.e2e.drivers.java import (check_consumed, end_to_end_result, parse_consumer, parse_end_to_end,
                                           parse_metrics, parse_producer, producer_batching)
from chronik_perf.e2e.payload import HEADER, MessageFactory, message_key, parse_headers, partition_of
from chronik_perf.e2e.verify import Expected, Stream, verify


def stream(rows):
    a = np.array(rows, dtype=np.int64).reshape(-1, 3)
    return Stream(a[:, 0], a[:, 1], a[:, 2])


def in_order(pid, n, parts=2):
    return [(s % parts, pid, s) for s in range(n)]


def test_verify_clean_delivery_counts_nothing():
    report = verify([Expected(0, 50), Expected(1, 50)], [stream(in_order(0, 50) + in_order(1, 50))],
                    lambda pid, seq: seq % 2)
    assert (report["lost"], report["duplicated"], report["out_of_order"], report["unexpected"]) == (0, 0, 0, 0)
    assert report["received"] == report["expected"] == 100


def test_verify_catches_a_dropped_message_in_its_partition():
    rows = [r for r in in_order(0, 50) if r[2] != 17]
    report = verify([Expected(0, 50)], [stream(rows)], lambda pid, seq: seq % 2)
    assert report["lost"] == 1
    assert report["per_partition"]["1"]["lost"] == 1 and report["per_partition"]["0"]["lost"] == 0


def test_verify_catches_an_injected_duplicate_and_a_reordering():
    rows = in_order(0, 50)
    rows.insert(30, rows[10])  # redelivered later: a duplicate, not an out-of-order message
    rows[40], rows[42] = rows[42], rows[40]  # same partition (even seqs): one arrives after a higher one
    report = verify([Expected(0, 50)], [stream(rows)], lambda pid, seq: seq % 2)
    assert report["duplicated"] == 1 and report["per_partition"]["0"]["duplicated"] == 1
    assert report["out_of_order"] == 1
    assert report["lost"] == 0


def test_verify_does_not_owe_unacknowledged_messages_and_flags_strangers():
    rows = [r for r in in_order(0, 10) if r[2] != 3] + [(0, 7, 0)]
    report = verify([Expected(0, 10, failed={3})], [stream(rows)], lambda pid, seq: 0)
    assert report["lost"] == 0 and report["expected"] == 9 and report["unexpected"] == 1


def test_verify_orders_per_consumer_stream_and_dedups_across_them():
    a = in_order(0, 20)[:12]
    b = in_order(0, 20)[10:]  # two consumers overlap on 2 messages after a rebalance
    report = verify([Expected(0, 20)], [stream(a), stream(b)], lambda pid, seq: seq % 2)
    assert (report["duplicated"], report["out_of_order"], report["lost"]) == (2, 0, 0)


def test_header_round_trip_and_partitions():
    f = MessageFactory(3, 64, "random", "sequential", 6, run_length=10)
    values = [f.value(s, 1000 + s) for s in range(5)]
    assert all(len(v) == 64 for v in values)
    assert len(set(v[HEADER.size:] for v in values)) == 5  # random bodies differ (compression stays honest)
    h = parse_headers([v[:HEADER.size] for v in values])
    assert h["pid"].tolist() == [3] * 5 and h["seq"].tolist() == list(range(5))
    assert h["ts"].tolist() == [1000 + s for s in range(5)]
    key = message_key("sequential", 3, 4)
    assert f.partition(4, key) == murmur2(key, 6)
    assert [partition_of(None, 0, s, 4, 10) for s in (0, 9, 10, 39, 40)] == [0, 0, 1, 3, 0]


@pytest.mark.parametrize("payload", ["random", "text", "zeros"])
def test_bulk_values_and_partitions_are_the_messages_one_at_a_time(payload):
    """The native driver's runs (values, partitions) are byte for byte the messages value()/partition() build, so
    the verifier's one partition rule holds for every driver."""
    f = MessageFactory(2, 100, payload, "none", 5, run_length=7)
    assert f.values(40, 30, 123) == [f.value(s, 123) for s in range(40, 70)]
    assert f.partitions(40, 30).tolist() == [f.partition(s, None) for s in range(40, 70)]
    keyed = MessageFactory(2, 100, payload, "random", 5, run_length=7)
    assert keyed.partitions(0, 3) is None and keyed.keys(0, 3) == [keyed.key(s) for s in range(3)]
    assert MessageFactory(2, 20, payload, "none", 5, 7).values(0, 2, 9) == [HEADER.pack(2, s, 9) for s in (0, 1)]


def test_a_results_file_written_before_the_result_dataclasses_still_loads_and_compares(tmp_path, capsys):
    """results.json keeps its shape: the stored docs' run (written from the old dicts) loads, and compare and
    check-regression read it."""
    from pathlib import Path as P
    from chronik_perf.e2e.results import load
    runs = sorted((P(__file__).resolve().parent.parent / "docs" / "results" / "data" / "e2e" / "runs").glob("*"))
    doc = load(str(runs[0]))
    assert {r["test"] for r in doc["results"]} >= {"producer", "consumer"}
    assert main(["compare", str(runs[0]), str(runs[-1]), "--chart", str(tmp_path / "c.png")]) == 0
    assert "Producer Throughput" in capsys.readouterr().out
    assert main(["check-regression", "--baseline", str(runs[0]), "--current", str(runs[0])]) == 0


@pytest.mark.parametrize("name", ["high-throughput", "latency-focused"])
def test_shipped_workloads_load_by_name(name):
    cfg = build_config(load_workload(name), {})
    assert cfg.tests and cfg.message_size >= 20


def test_quick_then_workload_then_command_line(tmp_path):
    wl = tmp_path / "w.yaml"
    wl.write_text("num-messages: 77\nX:\n  linger.ms: 3\n")
    cfg = build_config(load_workload(str(wl)), {"quick": True, "message_size": 99,
                                                "client_config": {"consumer.session.timeout.ms": "7000"}})
    assert (cfg.num_messages, cfg.message_size, cfg.num_partitions) == (77, 99, 3)
    assert cfg.client_config == {"linger.ms": "3", "consumer.session.timeout.ms": "7000",
                                 "consumer.heartbeat.interval.ms": "500", "consumer.max.poll.interval.ms": "8000"}
    kip848 = build_config({}, {"quick": True, "group_protocol": "consumer"})
    assert not any("timeout" in k for k in kip848.client_config)
    wl.write_text("num-mesages: 5\n")
    with pytest.raises(ValueError, match="unknown option"):
        load_workload(str(wl))


@pytest.mark.parametrize("argv", [["--acks", "7"], ["--message-size", "5"], ["--tests", "producer,bogus"],
                                  ["--compression", "brotli"], ["-X", "novalue"], ["--target", "nowhere"],
                                  ["--targets", "kafka", "--target", "tansu"]])
def test_invalid_options_are_argparse_errors(argv, capsys):
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2
    assert "error" in capsys.readouterr().err


def test_java_tool_output_parsers():
    out = ("5000 records sent, 998.4 records/sec (0.97 MB/sec), 3.1 ms avg latency, 40.0 ms max latency.\n"
           "10000 records sent, 1999.600080 records/sec (1.95 MB/sec), 2.58 ms avg latency, 41.00 ms max latency, "
           "2 ms 50th, 5 ms 95th, 12 ms 99th, 39 ms 99.9th.\n")
    p = parse_producer(out)
    assert p["records"] == 10000 and p["records_per_s"] == pytest.approx(1999.60008)
    assert p["ack_latency_ms"]["p99"] == 12 and p["ack_latency_ms"]["max"] == 41
    c = parse_consumer("start.time, end.time, data.consumed.in.MB, MB.sec, data.consumed.in.nMsg, nMsg.sec, "
                       "rebalance.time.ms, fetch.time.ms, fetch.MB.sec, fetch.nMsg.sec\n"
                       "2026-11-26 18:00:00:000, 2026-11-26 18:00:04:000, 9.7656, 2.4414, 10000, 2500.0000, "
                       "3012, 988, 9.8812, 10121.4575\n")
    assert (c["messages"], c["fetch_ms"], c["rebalance_ms"]) == (10000, 988, 3012)
    e = parse_end_to_end("Avg latency: 1.8123 ms\nPercentiles: 50th = 1, 99th = 4, 99.9th = 9\n")
    assert (e["avg"], e["p50"], e["p99"], e["p999"]) == (1.8123, 1, 4, 9)
    with pytest.raises(ValueError):
        parse_producer("nothing useful\n")


# Kafka's perf tools as they print in 4.0/4.1 (records/sec with one decimal) and from 4.2 on (six decimals, a
# deprecation line for --producer-props, a 'steady state' line after --warmup-records), captured from real runs.
TOOL_OUTPUT = {
    "4.1": ("1000 records sent, 199.9 records/sec (0.02 MB/sec), 210.3 ms avg latency, 812.0 ms max latency.\n"
            "3000 records sent, 633.8 records/sec (0.06 MB/sec), 473.12 ms avg latency, 4065.00 ms max latency, "
            "443 ms 50th, 793 ms 95th, 839 ms 99th, 853 ms 99.9th.\n",
            "0\t1421.202082\nAvg latency: 69.0887 ms\n\nPercentiles: 50th = 29, 99th = 1421, 99.9th = 1421\n"),
    "4.4": ("Option --producer-props has been deprecated and will be removed in a future version. Use "
            "--command-property instead.\nWarmup first 1000 records. Steady state results will print after the "
            "complete test summary.\n"
            "3000 records sent, 633.847454 records/sec (0.06 MB/sec), 473.12 ms avg latency, 4065.00 ms max latency, "
            "443 ms 50th, 793 ms 95th, 839 ms 99th, 853 ms 99.9th.\n"
            "2000 steady state records sent, 1919.385797 records/sec (0.18 MB/sec), 390.90 ms avg latency, 515.00 ms "
            "max latency, 401 ms 50th, 470 ms 95th, 494 ms 99th, 494 ms 99.9th.\n \n",
            'Topic "t" does not exist. Will create topic with 1 partition(s) and replication factor = 1\n'
            "0\t1421.202082\nAvg latency: 69.0887 ms\nPercentiles: 50th = 29, 99th = 1421, 99.9th = 1421\n \n"),
}


@pytest.mark.parametrize("release", sorted(TOOL_OUTPUT))
def test_java_tool_output_of_every_kafka_4_release(release):
    producer, latency = TOOL_OUTPUT[release]
    p = parse_producer(producer)  # the whole run's line, never the steady-state part
    assert p["records"] == 3000 and p["records_per_s"] == pytest.approx(633.8, abs=0.1)
    assert p["ack_latency_ms"] == {"avg": 473.12, "p50": 443, "p95": 793, "p99": 839, "p999": 853, "max": 4065}
    e = parse_end_to_end(latency)
    assert (e["avg"], e["p50"], e["p99"], e["p999"]) == (69.0887, 29, 1421, 1421)


def test_java_end_to_end_rate_covers_only_its_measured_loop():
    """900 round trips of 2 ms in a JVM that ran 10 s: 500 msg/s over 1.8 s, with 8.2 s of start-up apart (the old
    figure, 900 over the JVM's 10 s, was 90 msg/s)."""
    out = "0\t3.1\nAvg latency: 2.0000 ms\nPercentiles: 50th = 2, 99th = 3, 99.9th = 5\n"
    r = end_to_end_result(out, 900, 200, started_ns=5_000_000_000, ended_ns=15_000_000_000, errors=[])
    assert r.duration_s == pytest.approx(1.8) and r.messages / r.duration_s == pytest.approx(500)
    assert r.startup_s == pytest.approx(8.2) and r.start_ns == 15_000_000_000 - 1_800_000_000
    assert r.nbytes == 900 * 200
    # a loop longer than the process (rounding of the printed average) is capped at the process's run
    assert end_to_end_result(out, 900, 200, 0, 1_000_000_000, []).duration_s == pytest.approx(1.0)


def test_java_metrics_and_early_consumer_exit():
    out = ("Metric Name                                                      Value\n"
           "producer-metrics:batch-size-avg:{client-id=perf-producer-client}  : 16056.818\n"
           "producer-metrics:records-per-request-avg:{client-id=perf-producer-client}  : 145.985\n"
           "producer-metrics:outgoing-byte-total:{client-id=perf-producer-client}  : 2000000.000\n"
           "producer-metrics:request-total:{client-id=perf-producer-client}  : 100.000\n"
           "producer-metrics:record-send-total:{client-id=perf-producer-client}  : 14598.500\n"
           "producer-node-metrics:request-latency-avg:{client-id=perf-producer-client, node-id=node-1}  : 46.4\n"
           "producer-metrics:request-latency-avg:{client-id=perf-producer-client}  : NaN\n")
    m = parse_metrics(out, "producer-metrics")
    assert m["batch-size-avg"] == 16056.818 and m["records-per-request-avg"] == 145.985
    assert np.isnan(m["request-latency-avg"]) and "node-id" not in str(m)
    b = producer_batching(m)
    assert b["bytes_per_request"] == 20000 and b["records_per_request"] == 145.985
    # 2 MB sent in batches of 16,057 B: ~124.6 batches for 14,598.5 records, ~117.2 records per batch
    assert b["records_per_batch"] == pytest.approx(14598.5 * 16056.818 / 2e6)
    assert producer_batching({k: v for k, v in m.items() if k != "record-send-total"})["records_per_batch"] is None
    warned = ("start.time, end.time, data.consumed.in.MB, MB.sec, data.consumed.in.nMsg, nMsg.sec, "
              "rebalance.time.ms, fetch.time.ms, fetch.MB.sec, fetch.nMsg.sec\n"
              "WARNING: Exiting before consuming the expected number of messages: timeout (3000 ms) exceeded.\n"
              "2026-11-30 12:37:00:214, 2026-11-30 12:37:03:407, 0.0100, 0.0000, 40, 0.0000, 2729, 464, 0.0, 0.0\n")
    assert parse_consumer(warned)["messages"] == 40
    with pytest.raises(ValueError, match="exited early, after 40 of 50 messages .WARNING"):
        check_consumed(warned, "", 40, 50)
    with pytest.raises(ValueError, match="after 40 of 50"):
        check_consumed("", "", 40, 50)  # a short count without the warning fails as well
    check_consumed("", "", 50, 50)


def test_console_script_dispatches_e2e(capsys):
    from chronik_perf.cli import main as cli_main
    assert cli_main(["--help"]) == 0 and "e2e" in capsys.readouterr().out
    with pytest.raises(SystemExit) as exc:
        cli_main(["e2e", "--help"])
    assert exc.value.code == 0 and "--bootstrap-servers" in capsys.readouterr().out
    assert cli_main(["bogus"]) == 2


def _busy_set_up_then_idle(spec, ctl):
    """A worker that spends CPU before its start signal (imports, connecting) and none after it."""
    t0 = time.process_time()
    while time.process_time() - t0 < spec:
        pass
    ctl.set_ready()
    ctl.wait_go()
    time.sleep(0.3)
    return WorkerResult()


def test_worker_cpu_is_counted_from_the_start_signal():
    worker = ProcessWorker(_busy_set_up_then_idle, 0.5, gated=True)
    deadline = time.monotonic() + 60
    while not worker.ready():
        assert time.monotonic() < deadline and worker.alive()
        time.sleep(0.01)
    worker.go()
    out = worker.result(60)
    assert out.cpu_s < 0.25  # the 0.5 s of set-up is not the benchmark's
    assert out.cpu_window_s >= 0.3


def _deaf_to_sigterm(spec, ctl):
    """A worker that ignores SIGTERM and never ends by itself (as one stuck in a client library can)."""
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    ctl.set_ready()
    while True:
        time.sleep(1)


def test_a_worker_that_ignores_sigterm_is_killed_after_the_grace():
    worker = ProcessWorker(_deaf_to_sigterm, None)
    deadline = time.monotonic() + 60
    while not worker.ready():
        assert time.monotonic() < deadline and worker.alive()
        time.sleep(0.01)
    end_workers([worker], grace=0.5)
    assert not worker.alive() and worker._proc.exitcode == -signal.SIGKILL


def _run(test, throughput, p99=None, lost=0):
    return ({"test": test, "throughput_msgs_s": throughput, "throughput_mb_s": throughput / 1000,
             "latency_ms": {"p50": 1.0, "p99": p99} if p99 is not None else None, "duration_s": 1.0,
             "verification": {"lost": lost, "duplicated": 0}}, f"hist-{throughput}")


def test_repeats_keep_the_median_run_whole_with_every_run_and_the_spread():
    entry, hist = combine([_run("producer", 300), _run("producer", 100), _run("producer", 200, lost=2)])
    assert entry["throughput_msgs_s"] == 200 and hist == "hist-200" and entry["median_run"] == 3
    assert [f["throughput_msgs_s"] for f in entry["repeats"]] == [300, 100, 200]
    assert entry["spread"]["throughput_msgs_s"] == {"min": 100, "median": 200, "max": 300}
    assert totals(entry) == {"lost": 2, "duplicated": 0}
    latency, _ = combine([_run("latency", 50, p99=9.0), _run("latency", 50, p99=3.0), _run("latency", 50, p99=5.0),
                          _run("latency", 50, p99=1.0)])
    assert latency["latency_ms"]["p99"] == 3.0  # ranked by p99; the lower middle of four
    assert combine([_run("producer", 5)]) == _run("producer", 5)  # one run: unchanged


def test_regression_within_the_run_to_run_spread_is_not_a_failure():
    def doc(*throughputs, lost=0):
        entry, _ = combine([_run("producer", t, lost=lost if i == 0 else 0) for i, t in enumerate(throughputs)])
        return {"results": [entry]}
    failures, notes = regressions(doc(100, 80, 120), doc(85, 70, 95), 10)  # -15%, ranges overlap
    assert not failures and "within the run-to-run spread" in notes[0]
    failures, _ = regressions(doc(100, 95, 105), doc(85, 80, 90), 10)  # -15%, ranges apart
    assert failures and "throughput" in failures[0]
    failures, _ = regressions(doc(100, 95, 105), doc(96, 101, 104, lost=3), 10)  # a loss in a run off the median
    assert failures == ["producer: 3 messages lost (baseline: 0)"]


def test_repeat_must_be_positive():
    with pytest.raises(ValueError, match="--repeat"):
        build_config({}, {"repeat": 0})


def test_ratios_of_repeated_results_say_whether_the_runs_overlap():
    def doc(target, *throughputs):
        entry, _ = combine([_run("producer", t) for t in throughputs])
        return {"target": target, "results": [{**entry, "driver": "confluent"}]}
    table = ratio_table([doc("a", 100, 90, 110), doc("b", 120, 105, 130), doc("c", 200, 190, 210)])
    rendered = Console(width=200, record=True)
    rendered.print(table)
    text = rendered.export_text()
    assert "1.20x (runs overlap)" in text and "2.00x (runs apart)" in text


def test_driver_comparison_rows_carry_runs_windows_cores_batching_and_the_work():
    """Each row of the driver comparison: the median run's rate, how many runs and the span of their windows, cores
    used, records per batch (Java's estimated from its metrics) and whether the work per message matches the first
    row's, naming what differs."""
    def driver(name, windows, per_batch, per_message):
        runs = [({**_run("producer", 1000 * i)[0], "duration_s": w}, None) for i, w in enumerate(windows, 1)]
        entry, _ = combine(runs)
        entry.update(driver=name, cores_used=0.5, msgs_per_core_s=4000.0,
                     batching={"records_per_batch": per_batch, "bytes_per_request": 300000.0},
                     work={"per_message": per_message})
        return {"target": "kafka", "results": [entry]}
    docs = [driver("native", [10.04, 10.46, 10.2], 520.0, "C batches"),
            driver("confluent", [10.0], 515.0, "C batches"),
            driver("java", [31.0, 29.5, 30.2], 300.0, "Java send() per message")]
    rows = [dict(zip(WORK_HEADERS, cells)) for cells in work_rows(docs)]
    assert [(r["Driver"], r["Runs"], r["Window (s)"]) for r in rows] == [
        ("native", "3", "10.0–10.5"), ("confluent", "1", "10.0"), ("java", "3", "29.5–31.0")]
    assert rows[0]["msg/s"] == "2,000" and rows[0]["Cores used"] == "0.50" and rows[2]["Records/batch"] == "300.0"
    assert rows[0]["Same work as first"] == "(reference)" and rows[1]["Same work as first"] == "yes"
    assert rows[2]["Same work as first"] == "no: per message, records per batch 300 vs 520"


class _Sleeper:
    """A worker seen from outside: done after `seconds`, doing nothing meanwhile (like a JVM tool)."""

    name = "sleeper"

    def __init__(self, seconds):
        self.until = time.monotonic() + seconds

    def done(self):
        return time.monotonic() >= self.until

    def progress(self):
        return 0

    def result(self, timeout):
        return {"ok": True}


def test_waiting_for_workers_costs_the_suite_no_core():
    from chronik_perf.e2e.benchmarks.common import RunContext, wait_for
    ctx = RunContext(build_config({}, {}), "unused:1", None, None)
    assert wait_for(ctx, "idle", [_Sleeper(1.0)], 1, timeout=30) == [{"ok": True}]
    harness = ctx.take_harness()
    assert harness["wall_s"] >= 0.9 and harness["cores"] < 0.1, harness  # a spinning loop reads ~1.0
    assert ctx.take_harness()["cpu_s"] == 0  # taken once, then reset


def _large_result(spec, ctl):
    """A worker whose result (like a consumer's arrival arrays) takes the parent a while to receive."""
    out = WorkerResult()
    out.errors = [np.random.default_rng(0).bytes(spec)]
    return out


def test_receiving_a_large_result_is_reported_apart_from_the_harness_cost():
    from chronik_perf.e2e.benchmarks.common import RunContext, wait_for
    ctx = RunContext(build_config({}, {}), "unused:1", None, None)
    (out,) = wait_for(ctx, "large", [ProcessWorker(_large_result, 200 << 20)], 1, timeout=120)
    assert len(out.errors[0]) == 200 << 20
    harness = ctx.take_harness()
    # unpickling 200 MiB in the parent happens after the worker's window: counted apart, not as the harness's cost
    assert harness["result_handover_cpu_s"] > 0.01, harness
    assert harness["cpu_s"] >= 0 and harness["cpu_s"] < harness["wall_s"], harness


def test_verify_keeps_unread_unknown_and_misrouted_apart_from_lost():
    rows = [r for r in in_order(0, 40) if r[2] not in (36, 38, 39)]  # 36, 38 in partition 0; 39 in partition 1
    rows[5] = (0, 0, 5)  # seq 5 was produced to partition 1 (odd) and arrives in partition 0: misrouted
    report = verify([Expected(0, 40)], [stream(rows)], lambda pid, seq: seq % 2, unread={0: 2})
    # partition 0 stopped 2 short of its end: its 2 missing messages are unread, not lost; partition 1's is lost
    assert (report["lost"], report["unread"], report["misrouted"]) == (1, 2, 1)
    assert report["per_partition"]["0"]["unread"] == 2 and report["per_partition"]["1"]["lost"] == 1
    assert report["distinct"] == 37
    owed = verify([Expected(0, 40, unknown=3)], [stream(rows)], lambda pid, seq: seq % 2)
    assert owed["lost"] == 0 and owed["unknown"] == 3 and owed["expected"] == 37  # unknown is never owed
    dup = verify([Expected(0, 10)], [stream(in_order(0, 10) + in_order(0, 3))], lambda pid, seq: seq % 2)
    assert dup["received"] == 13 and dup["distinct"] == 10 and dup["duplicated"] == 3


class _Ctl:
    started = None

    def progress(self, n):
        pass


def test_consumers_stop_on_owed_or_distinct_ids_never_on_raw_arrivals():
    from chronik_perf.e2e.drivers.base import ConsumeTally, ConsumerSpec
    by_count = ConsumeTally(ConsumerSpec("x", "t", {}, expected=3), _Ctl())
    for seq in (0, 1, 1, 1):  # four arrivals, two of them the same message again
        by_count.ids(np.array([0]), np.array([seq]))
        by_count.record(time.monotonic_ns(), 1)
    assert by_count.wanted()  # raw arrivals reached 3 (4), distinct ids only 2
    by_count.ids(np.array([0]), np.array([2]))
    assert not by_count.wanted()
    owed = ConsumeTally(ConsumerSpec("x", "t", {}, expected=3, owed=[(0, 5, [1], 1)]), _Ctl())
    owed.ids(np.array([0, 0, 0, 7]), np.array([0, 0, 2, 0]))  # a duplicate and a stranger count for nothing
    assert owed.wanted()
    owed.ids(np.array([0]), np.array([4]))  # 3 of the 4 not failed: one is unknown, so this is everything owed
    assert not owed.wanted()


def test_fixed_rate_senders_never_leave_before_the_intended_time():
    from chronik_perf.e2e.drivers.base import wait_until
    early = 0
    for i in range(300):
        t = time.monotonic_ns() + (i * 7919) % 200_000  # remainders under 200 µs, once sent early with a later stamp
        wait_until(t)
        early += time.monotonic_ns() < t
    assert early == 0


def test_the_shared_schedule_and_produce_tally():
    """FixedRate stamps message i with start + i/rate and never returns before it; ProduceTally's result counts
    acknowledged bytes, sorts the failed sequences once each and ends its timeline at the window's end."""
    from chronik_perf.e2e.drivers.base import FixedRate, ProducerSpec, ProduceTally
    start = time.monotonic_ns()
    schedule = FixedRate(start, rate=2000.0)
    stamps = [schedule.wait(i) for i in range(20)]
    assert stamps == [start + i * 500_000 for i in range(20)] and time.monotonic_ns() >= stamps[-1]
    spec = ProducerSpec("x", "t", 3, 10, 100, "random", "none", 2, 5, {})
    tally = ProduceTally(spec, _Ctl())
    tally.sample(tally.start + 1000, 4)
    tally.tick(lambda: pytest.fail("sampled again within the sampling period"))
    tally.finish()
    r = tally.result(10, 7, [9, 2, 9], 1, ["e"], batches=3)
    assert (r.pid, r.sent, r.acked, r.failed, r.unknown, r.nbytes, r.batches) == (3, 10, 7, [2, 9], 1, 700, 3)
    assert r.timeline == [(1000, 4), (r.end_ns - r.start_ns, 7)] and r.errors == ["e"]


def _member_that_died(spec, ctl):
    """A group member that fails while the benchmark waits for the group to settle."""
    ctl.emit("joining", worker=spec)
    raise RuntimeError("broker unreachable: SyncGroup answer unreadable")


def test_group_phase_fails_at_once_with_a_dead_members_error():
    """A member that ends while a phase waits for it fails the phase with its own error, not after the 90 s
    settle timeout with 'did not settle'."""
    from chronik_perf.e2e.benchmarks.common import TestFailed
    from chronik_perf.e2e.benchmarks.groups import STABLE_TIMEOUT_S, Assignment
    workers = [ProcessWorker(_member_that_died, 0)]
    t0 = time.monotonic()
    with pytest.raises(TestFailed, match="member 0 ended after a member joined: RuntimeError: broker unreachable"):
        Assignment(3).wait(workers, 0, {0}, "after a member joined")
    assert time.monotonic() - t0 < STABLE_TIMEOUT_S      # it did not wait the settle timeout out


def test_native_worker_names_client_errors_apart_from_a_lost_broker():
    """Only a lost connection or a timeout reads "broker unreachable"; a broker's answer (e.g. an unsupported
    assignor) is named as the client error it is."""
    from chronik_perf.client import ConnectionLostError, errors
    from chronik_perf.e2e.drivers.native import _failed
    assert str(_failed(ConnectionLostError("reset by peer"))) == "broker unreachable: reset by peer"
    assert str(_failed(TimeoutError("no answer"))).startswith("broker unreachable")
    named = str(_failed(errors.error_for(3, "topic gone")))
    assert named.startswith("client error (UnknownTopicOrPartitionError)") and "unreachable" not in named
