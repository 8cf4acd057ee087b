"""The e2e suite against live brokers (librdkafka's mock, Tansu, Kafka), with small sizes.

Checks that results are sane and complete, never how fast anything is.
"""
import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time

import psutil
import pytest
from confluent_kafka.admin import AdminClient

from chronik_perf.brokers import start
from chronik_perf.client import Cluster, KafkaClientError
from chronik_perf.e2e.benchmarks.common import DELETE_WITHIN_S
from chronik_perf.e2e.config import TESTS
from chronik_perf.e2e.drivers.base import END_GRACE_S
from conftest import fail_or_skip

SRC = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "src")
SMALL = ["--quick", "--producer-seconds", "0", "--num-messages", "3000", "--message-size", "200", "--num-partitions", "3", "--producers", "2",
         "--consumers", "2", "--rate", "300", "--duration", "3", "--warmup", "0.5"]
LATENCY_KEYS = ("min", "avg", "p50", "p95", "p99", "p999", "max")
COMMON_KEYS = {"test", "driver", "messages", "bytes", "duration_s", "throughput_msgs_s", "throughput_mb_s",
               "latency_ms", "verification", "errors"}


def run_cli(args, results_dir=None, timeout=600, **popen):
    env = {**os.environ, "PYTHONPATH": SRC + os.pathsep + os.environ.get("PYTHONPATH", "")}
    cmd = [sys.executable, "-m", "chronik_perf.e2e", *args]
    if results_dir is not None:
        cmd += ["--results-dir", str(results_dir)]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env, **popen)


def load_results(results_dir):
    (path,) = [os.path.join(results_dir, d, "results.json") for d in os.listdir(results_dir)
               if os.path.isdir(os.path.join(results_dir, d))]
    with open(path) as fh:
        return json.load(fh), os.path.dirname(path)


@pytest.fixture(scope="module", params=["mock", "tansu", "kafka"])
def suite(request, tmp_path_factory):
    """The whole suite run once per broker through the command line: (broker name, results, run dir, stdout)."""
    broker = request.getfixturevalue(f"{request.param}_broker")
    out = tmp_path_factory.mktemp(f"results-{request.param}")
    proc = run_cli(["--target", request.param, "--bootstrap-servers", broker.bootstrap_servers, *SMALL], out)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    doc, run_dir = load_results(out)
    return request.param, doc, run_dir, proc.stdout


def test_every_benchmark_ran_with_sane_fields(suite):
    name, doc, run_dir, stdout = suite
    assert [r["test"] for r in doc["results"]] == list(TESTS)
    asked = {"producer": 3000, "consumer": 3000, "latency": 900, "concurrent": 3000, "groups": 3000}
    for r in doc["results"]:
        assert not r.get("failed") and not r.get("skipped"), r
        assert COMMON_KEYS <= set(r)
        assert r["messages"] == asked[r["test"]], r["test"]
        assert r["throughput_msgs_s"] > 0 and r["throughput_mb_s"] > 0 and r["duration_s"] > 0
        assert r["bytes"] == r["messages"] * 200
    lat = doc["results"][2]["latency_ms"]
    assert 0 < lat["min"] <= lat["p50"] <= lat["p95"] <= lat["p99"] <= lat["p999"] <= lat["max"]
    assert lat["count"] == 900 - 150  # warm-up messages are verified but not in the histogram
    conc = doc["results"][3]
    assert [p["messages"] for p in conc["per_producer"]] == [1500, 1500] and conc["bottleneck"]
    groups = doc["results"][4]
    assert groups["initial_assignment_ms"] > 0 and groups["rebalance_join_ms"] > 0
    assert groups["rebalance_leave_ms"] > 0 and groups["assignment_balance"] >= 0
    assert sum(p["messages"] for p in groups["per_consumer"]) == 3000
    assert os.path.exists(os.path.join(run_dir, "latency.hdr")) and os.path.exists(os.path.join(run_dir, "summary.md"))
    assert os.path.exists(os.path.join(run_dir, "throughput.png")) and os.path.exists(os.path.join(run_dir, "latency.png"))
    assert "Producer Throughput" in stdout and "E2E Latency" in stdout
    report = os.path.join(run_dir, "report.html")
    assert stdout.rstrip().splitlines()[-1] == f"report: {report}"     # the console ends with the report's path
    with open(report, encoding="utf-8") as fh:
        page = fh.read()
    assert '<table id="comparison-table">' in page and page.count('<img alt=') >= 3 and 'src="http' not in page
    env = doc["environment"]
    assert env["cpu_count"] and env["python"] and env["packages"]["confluent-kafka"] and env["client"]["librdkafka"]
    assert doc["broker"]["name"] == name and doc["config"]["num_messages"] == 3000


# The share of acknowledged messages each broker may lose in these tests. Kafka keeps everything. librdkafka's mock
# keeps every message set of a partition until it holds 5 MiB or 100,000 of them (rdkafka_mock.c: max_size, max_cnt;
# older ones are deleted), far above what these tests write, so nothing. Tansu's memory storage has lost
# acknowledged messages on this machine: 19, 154 and 173 of 3000 in three sessions of 2026-11-30, and 519 and 698 of
# 3000 in long CI sessions before; a quarter bounds all of those.
LOSS_BOUND = {"kafka": 0.0, "mock": 0.0, "tansu": 0.25}
MOCK_RETENTION_BYTES = 5 << 20


def check_delivery(name, r):
    """What verification must show for one result on broker ``name`` (any driver that verifies)."""
    v = r["verification"]
    assert v["out_of_order"] == 0, (r["test"], v)
    if name == "mock":                    # the workload stays inside the mock's retention, so LOSS_BOUND applies
        assert r["bytes"] < MOCK_RETENTION_BYTES, r["bytes"]
    assert v["lost"] <= LOSS_BOUND[name] * v["expected"], (r["test"], v)
    # every message accounted for: read (once or more) or lost, never both or neither
    assert v["received"] - v["duplicated"] + v["lost"] == v["expected"], (r["test"], v)
    if name == "kafka" or r["test"] != "groups":
        # the mock forgets group commits over a rebalance, so its members may read again: reported, not hidden
        assert v["duplicated"] == 0, (r["test"], v)


def test_delivery_verified(suite):
    name, doc, _, _ = suite
    for r in doc["results"]:
        if r["test"] == "producer":
            continue  # the consumer benchmark reads back and verifies what the producer wrote
        assert r["verification"]["expected"] == r["messages"] or r["test"] == "groups"
        check_delivery(name, r)


def test_check_regression_and_compare(suite, tmp_path):
    _, doc, run_dir, _ = suite
    same = run_cli(["check-regression", "--baseline", run_dir, "--current", os.path.join(run_dir, "results.json")])
    assert same.returncode == 0, same.stdout
    halved = json.loads(json.dumps(doc))
    halved["results"][0]["throughput_msgs_s"] /= 2
    slow = tmp_path / "slow.json"
    slow.write_text(json.dumps(halved))
    worse = run_cli(["check-regression", "--baseline", run_dir, "--current", str(slow), "--threshold", "10"])
    assert worse.returncode == 1 and "REGRESSION  producer: throughput" in worse.stdout
    chart = tmp_path / "cmp.png"
    cmp = run_cli(["compare", run_dir, str(slow), "--chart", str(chart)])
    assert cmp.returncode == 0 and "0.50x" in cmp.stdout and chart.exists()
    assert cmp.stdout.rstrip().endswith(f"report: {tmp_path / 'report.html'}") and (tmp_path / "report.html").exists()


def test_repeat_keeps_every_run_and_gates_on_the_spread(tansu_broker, tmp_path):
    proc = run_cli(["--target", "tansu", "--bootstrap-servers", tansu_broker.bootstrap_servers, *SMALL,
                    "--tests", "producer,consumer,latency", "--repeat", "3", "--duration", "2"], tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    doc, run_dir = load_results(tmp_path)
    for r in doc["results"]:
        assert len(r["repeats"]) == 3 and 1 <= r["median_run"] <= 3, r["test"]
        assert r["repeats"][r["median_run"] - 1]["throughput_msgs_s"] == r["throughput_msgs_s"]
        tp = r["spread"]["throughput_msgs_s"]
        assert tp["min"] <= r["throughput_msgs_s"] <= tp["max"]
        assert f"{r['test']}: median of 3 runs" in proc.stdout
    assert "p99_ms" in doc["results"][2]["spread"] and os.path.exists(os.path.join(run_dir, "latency.hdr"))
    assert all(f["lost"] is not None for f in doc["results"][1]["repeats"])  # every consumer run was verified
    assert doc["config"]["repeat"] == 3
    same = run_cli(["check-regression", "--baseline", run_dir, "--current", run_dir])
    assert same.returncode == 0, same.stdout


def test_java_driver_same_schema(kafka_broker, tmp_path):
    proc = run_cli(["--target", "kafka", "--bootstrap-servers", kafka_broker.bootstrap_servers, "--driver", "java",
                    *SMALL], tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    doc, _ = load_results(tmp_path)
    by = {r["test"]: r for r in doc["results"]}
    assert by["groups"]["skipped"]
    for test in ("producer", "consumer", "latency", "concurrent"):
        r = by[test]
        assert COMMON_KEYS <= set(r) and r["driver"] == "java" and r["throughput_msgs_s"] > 0, r
    assert by["producer"]["messages"] == by["consumer"]["messages"] == 3000
    v = by["concurrent"]["verification"]  # the tools carry no ids: counted from log end offsets, claiming no loss
    assert (v["expected"], v["in_log"], v["difference"], v["count_only"]) == (3000, 3000, 0, True)
    assert v["lost"] is None and v["duplicated"] is None
    lat = by["latency"]["latency_ms"]
    assert lat["p50"] <= lat["p99"] <= lat["p999"] and lat["avg"] > 0
    # EndToEndLatency's msg/s covers its own loop of round trips; the JVM's start-up is reported apart
    assert by["latency"]["throughput_msgs_s"] == pytest.approx(1000 / lat["avg"], rel=1e-3)
    assert by["latency"]["startup_s"] > 0 and by["latency"]["startup_cpu_s"] > 0
    assert doc["environment"]["client"]["driver"] == "java"
    for test in ("producer", "consumer", "latency", "concurrent"):
        # the suite's own process sleeps while the JVMs run: a small fraction of a core, never a spinning one
        harness = by[test]["harness"]
        assert harness["wall_s"] > 0.5 and harness["cores"] < 0.05, (test, harness)
    prod = by["producer"]
    assert prod["batching"]["records_per_request"] > 1 and prod["batching"]["bytes_per_request"] > 200 * 1
    assert {"batch-size-avg", "request-latency-avg", "record-queue-time-avg"} <= set(prod["client_metrics"])
    assert prod["startup_cpu_s"] > 0 and prod["cores_used"] > 0  # JVM start-up apart from the window


def test_driver_comparison_with_start_reuses_the_running_kafka(kafka_broker, tmp_path):
    """The documented comparison command, `--target kafka --start --drivers native,confluent,java`: with Kafka
    already running it uses that broker (same process before and after, its version in every result), every
    consumer reads the one shared fill, and each row of the comparison carries cores used, records per batch (Java's
    estimated from its metrics) and whether the work per message is the same as the first driver's."""
    from chronik_perf.brokers import running
    from chronik_perf.e2e.report import WORK_HEADERS, work_rows
    before = running("kafka")
    proc = run_cli(["--target", "kafka", "--start", "--drivers", "native,confluent,java", "--tests",
                    "producer,consumer", "--num-messages", "20000", "--message-size", "100", "--num-partitions", "2",
                    "--acks", "1", "--batch-size", "16384", "--producer-seconds", "2"], tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"using the already running kafka {kafka_broker.version or ''}" in proc.stdout
    assert "Driver comparison: CPU, batching and the work per message" in proc.stdout
    after = running("kafka")
    assert (after and after.pid) == (before and before.pid)  # reused, never restarted (None: not ours, still none)
    docs = [json.load(open(tmp_path / d / "results.json")) for d in sorted(os.listdir(tmp_path))
            if (tmp_path / d).is_dir()]
    assert [doc["results"][0]["driver"] for doc in docs] == ["native", "confluent", "java"]
    assert {doc["broker"]["version"] for doc in docs} == {kafka_broker.version}
    fills = {r["work"]["fill"] for doc in docs for r in doc["results"] if r["test"] == "consumer"}
    assert len(fills) == 1 and all(r["messages"] == 20000 for doc in docs for r in doc["results"]
                                   if r["test"] == "consumer" or r["driver"] == "java"), fills
    rows = [dict(zip(WORK_HEADERS, cells)) for cells in work_rows(docs)]
    assert [(r["Driver"], r["Test"].split()[0]) for r in rows] == [
        ("native", "Producer"), ("confluent", "Producer"), ("java", "Producer"),
        ("native", "Consumer"), ("confluent", "Consumer"), ("java", "Consumer")]
    assert all(r["Cores used"] != "N/A" and r["Runs"] == "1" for r in rows), rows
    assert all(float(r["Records/batch"].replace(",", "")) > 1 for r in rows[:3]), rows
    assert rows[0]["Same work as first"] == "(reference)" and rows[2]["Same work as first"].startswith("no: per message")


def test_java_consumer_that_reads_too_little_is_a_failure(kafka_broker):
    from chronik_perf.e2e.drivers.base import ConsumerSpec, WorkerError
    from chronik_perf.e2e.drivers.java import JavaDriver
    topic = f"h12-empty-{os.urandom(4).hex()}"
    spec = ConsumerSpec(kafka_broker.bootstrap_servers, topic, {}, expected=50, idle_timeout_s=3.0)
    worker = JavaDriver().start_consumer(spec)
    with pytest.raises(WorkerError, match="exited early, after 0 of 50"):
        worker.result(timeout=120)


def test_unreachable_broker_is_a_clear_error_within_10s(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # nothing listens here once closed
    t0 = time.monotonic()
    proc = run_cli(["--bootstrap-servers", f"127.0.0.1:{port}", "--quick"], tmp_path, timeout=60)
    assert proc.returncode == 2
    assert "unreachable" in proc.stdout
    assert time.monotonic() - t0 < 10 + 5  # 10 s for the broker, a few for starting Python


def wait_until_written(bootstrap, suffix, proc, timeout=120):
    """Wait until a topic whose name ends in ``suffix`` holds a message (the benchmark writing it has started)."""
    deadline = time.monotonic() + timeout
    with Cluster(bootstrap) as cluster:
        while True:
            assert proc.poll() is None and time.monotonic() < deadline, "the run ended or never reached the topic"
            names = [t["name"] for t in cluster.refresh_metadata()["topics"] if t["name"].endswith(suffix)]
            try:
                if any(any(cluster.list_offsets(n, None).values()) for n in names):
                    return
            except KafkaClientError:             # a topic still being created (or deleted): look again
                pass
            time.sleep(0.1)


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _own_tansu(**kw):
    try:
        return start("tansu", port=_free_port(), **kw)
    except Exception as exc:  # same rule as the shared fixtures
        fail_or_skip(f"tansu unavailable: {exc}")


def start_run(bootstrap, results_dir, tests, *args):
    """The command line in the background on `tests` with a 60 s latency test, in its own process group with Ctrl-C
    delivered (as a terminal runs it: a test suite started as a background job of a shell inherits SIGINT ignored,
    and so would the run), its output unbuffered (it survives a kill)."""
    env = {**os.environ, "PYTHONPATH": SRC, "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen([sys.executable, "-m", "chronik_perf.e2e", "--bootstrap-servers", bootstrap, "--tests",
                             tests, "--rate", "200", "--duration", "60", "--results-dir", str(results_dir), *args],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env,
                            start_new_session=True, preexec_fn=_sigint_delivered)


def _sigint_delivered():
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def test_broker_dying_mid_run_fails_that_test_and_skips_the_rest(tmp_path):
    broker = _own_tansu()
    try:
        proc = start_run(broker.bootstrap_servers, tmp_path, "latency,producer,groups", "--warmup", "1")
        wait_until_written(broker.bootstrap_servers, "-latency", proc)   # inside the latency test
        broker.stop()
        out, _ = proc.communicate(timeout=180)
    finally:
        broker.stop()
    assert proc.returncode == 1, out
    doc, _ = load_results(tmp_path)
    latency, producer, groups = doc["results"]
    assert "unreachable" in latency["failed"] or "died" in latency["failed"] or "within" in latency["failed"]
    assert "broker unreachable" in producer["skipped"] and "broker unreachable" in groups["skipped"]
    assert doc["status"] == "broker lost"


def _first_topic(results_dir):
    """The topic of the first finished test of the run writing into results_dir (None before it finished)."""
    try:
        doc, _ = load_results(results_dir)
    except (ValueError, OSError):                # no run directory or no results.json yet
        return None
    return doc["results"][0]["topic"] if doc["results"] else None


def test_ctrl_c_writes_partial_results_and_deletes_topics(tansu_broker, tmp_path):
    proc = start_run(tansu_broker.bootstrap_servers, tmp_path, "producer,latency,groups", "--target", "tansu",
                     "--num-messages", "2000")
    deadline = time.monotonic() + 60
    while (topic := _first_topic(tmp_path)) is None:
        assert time.monotonic() < deadline and proc.poll() is None
        time.sleep(0.2)
    wait_until_written(tansu_broker.bootstrap_servers, f"{topic.rsplit('-', 1)[0]}-latency", proc)  # in latency now
    os.killpg(proc.pid, signal.SIGINT)  # what a terminal's Ctrl-C does
    try:
        out, _ = proc.communicate(timeout=60)  # until every process holding its output ended
    except subprocess.TimeoutExpired:
        left = _group(proc.pid)
        os.killpg(proc.pid, signal.SIGKILL)
        pytest.fail(f"no exit within 60 s of Ctrl-C (exit status {proc.poll()}; still running: {left}); its output: "
                    f"{proc.communicate()[0][-3000:]}")
    assert proc.returncode == 130, out
    doc, _ = load_results(tmp_path)
    assert doc["status"] == "interrupted"
    assert doc["results"][0]["test"] == "producer" and doc["results"][0]["messages"] == 2000
    run_topics = {doc["results"][0]["topic"]}
    names = set(AdminClient({"bootstrap.servers": tansu_broker.bootstrap_servers}).list_topics(timeout=10).topics)
    assert not run_topics & names
    assert not any(n.startswith(doc["results"][0]["topic"].rsplit("-", 1)[0]) for n in names)


def _group(pgid):
    """The processes still in process group pgid: (pid, command line)."""
    out = []
    for p in psutil.process_iter(["pid", "cmdline"]):
        try:
            if os.getpgid(p.info["pid"]) == pgid:
                out.append((p.info["pid"], " ".join(p.info["cmdline"] or [])[:200]))
        except OSError:
            pass
    return out


class OutputLines:
    """The lines a process prints, read by a thread as they come."""

    def __init__(self, proc):
        self.proc, self.lines, self.changed = proc, [], threading.Condition()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.proc.stdout:
            with self.changed:
                self.lines.append(line)
                self.changed.notify_all()
        with self.changed:
            self.lines.append(None)  # end of output
            self.changed.notify_all()

    def wait_for(self, text, timeout=120):
        """Block until a line containing `text` was printed; fails if the output ends first."""
        with self.changed:
            assert self.changed.wait_for(lambda: any(text in (ln or "") for ln in self.lines) or None in self.lines,
                                         timeout), self.text()
            assert any(text in (ln or "") for ln in self.lines), self.text()

    def text(self):
        return "".join(ln for ln in list(self.lines) if ln)


def _interrupt_with_the_broker_hung(tmp_path, second_ctrl_c):
    """A latency run on a Tansu of its own, Ctrl-C (to the run's process only, so the run must end its workers
    itself) while the broker process is stopped: connections open, nothing answered. Returns (seconds from the
    first Ctrl-C to the exit, the output, the run's worker processes)."""
    broker = _own_tansu()
    try:
        proc = start_run(broker.bootstrap_servers, tmp_path, "latency")
        output = OutputLines(proc)
        wait_until_written(broker.bootstrap_servers, "-latency", proc)
        workers = psutil.Process(proc.pid).children(recursive=True)
        os.kill(broker.pid, signal.SIGSTOP)
        try:
            t0 = time.monotonic()
            os.kill(proc.pid, signal.SIGINT)
            if second_ctrl_c:
                output.wait_for("results: ")  # written; the topics' deletion is waiting for the broker
                os.kill(proc.pid, signal.SIGINT)
            try:
                proc.wait(timeout=180)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                pytest.fail(f"no exit within 180 s of Ctrl-C; its output: {output.text()[-3000:]}")
            elapsed = time.monotonic() - t0
        finally:
            os.kill(broker.pid, signal.SIGCONT)
    finally:
        broker.stop()
    output.wait_for("interrupted")
    assert proc.returncode == 130, output.text()
    doc, _ = load_results(tmp_path)
    assert doc["status"] == "interrupted"
    return elapsed, output.text(), workers


def test_ctrl_c_with_the_broker_hung_ends_by_its_deadlines(tmp_path):
    """Nothing after a Ctrl-C waits for the broker longer than the deletion deadline: the run ends its workers, writes
    its results and gives up on its topics (a hung broker once held a run 66 s: Metadata and ApiVersions each waited
    their 30 s request timeout under a 15 s deletion)."""
    elapsed, out, workers = _interrupt_with_the_broker_hung(tmp_path, second_ctrl_c=False)
    assert elapsed < DELETE_WITHIN_S + END_GRACE_S + 20, out  # the deadlines plus starting and stopping Python
    assert "could not delete topics" in out and f"no answer from the broker within {DELETE_WITHIN_S:.0f} s" in out
    assert len(workers) >= 2 and not psutil.wait_procs(workers, timeout=30)[1]  # the producer and consumer ended


def test_second_ctrl_c_skips_the_topic_deletion_not_the_results(tmp_path):
    _, out, workers = _interrupt_with_the_broker_hung(tmp_path, second_ctrl_c=True)
    assert "not deleted: interrupted by Ctrl-C" in out
    assert not psutil.wait_procs(workers, timeout=30)[1]


class ProduceDelayProxy:
    """A TCP proxy in front of a broker that holds every Produce request `delay` seconds on its way in (order kept,
    everything else passed at once), so each message reaches the broker exactly `delay` later: a known latency."""

    def __init__(self, upstream_port: int, delay: float = 0.0):
        self.upstream_port, self.delay = upstream_port, delay
        self.held: list[float] = []  # how long each delayed Produce request was actually held (s)
        self.port = _free_port()
        self.loop = asyncio.new_event_loop()
        ready = threading.Event()
        threading.Thread(target=self._run, args=(ready,), daemon=True).start()
        assert ready.wait(10)

    def _run(self, ready):
        asyncio.set_event_loop(self.loop)
        self.server = self.loop.run_until_complete(asyncio.start_server(self._client, "127.0.0.1", self.port))
        ready.set()
        self.loop.run_forever()

    async def _client(self, reader, writer):
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.upstream_port)
        except OSError:
            writer.close()
            return
        await asyncio.gather(self._requests(reader, up_writer), self._answers(up_reader, writer),
                             return_exceptions=True)

    async def _requests(self, reader, writer):
        """Frame by frame (4-byte size, then api_key first): Produce (api key 0) waits `delay`, order is kept."""
        queue = asyncio.Queue()

        async def send():
            while True:
                arrived, due, frame = await queue.get()
                if frame is None:
                    writer.close()
                    return
                await asyncio.sleep(max(0.0, due - self.loop.time()))
                writer.write(frame)
                if due > arrived:
                    self.held.append(self.loop.time() - arrived)
                await writer.drain()

        sender = asyncio.ensure_future(send())
        last_due = 0.0
        try:
            while True:
                head = await reader.readexactly(4)
                body = await reader.readexactly(int.from_bytes(head, "big"))
                hold = self.delay if body[:2] == b"\x00\x00" else 0.0
                now = self.loop.time()
                last_due = max(last_due, now + hold)
                await queue.put((now, last_due, head + body))
        except (asyncio.IncompleteReadError, ConnectionError):
            await queue.put((0.0, 0.0, None))
        await sender

    async def _answers(self, reader, writer):
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
        writer.close()

    def close(self):
        self.loop.call_soon_threadsafe(self.server.close)
        self.loop.call_soon_threadsafe(self.loop.stop)


# -X settings that make each driver's consumer poll the broker often, as Kafka's long poll would (Tansu answers a
# fetch only when its wait expires)
LATENCY_FETCH = {"native": ["-X", "consumer.fetch.max.wait.ms=5"], "confluent": ["-X", "consumer.fetch.wait.max.ms=5"]}


def _latency_p50(bootstrap, driver, tmp_path):
    proc = run_cli(["--bootstrap-servers", bootstrap, "--tests", "latency", "--driver", driver, "--rate", "20",
                    "--duration", "6", "--warmup", "1", "--num-partitions", "1", *LATENCY_FETCH[driver]], tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    doc, _ = load_results(tmp_path)
    return doc["results"][0]["latency_ms"]["p50"]


def test_latency_through_a_delaying_proxy_rises_by_the_delay(tmp_path):
    """The drivers with a fixed-rate latency test, same broker run: p50 behind a 100 ms Produce delay is baseline +
    100 ms within 5% (a stamp taken early, a polling thread or a skipped wait would show here). Java's EndToEndLatency
    is left out: it seeks to the end with ListOffsets, which Tansu 0.6 answers wrongly, so it never finds its
    message; it would need a Kafka of its own behind the proxy."""
    delay = 0.100
    tansu_port = _free_port()
    proxy = ProduceDelayProxy(tansu_port)
    try:
        try:
            broker = start("tansu", port=tansu_port, advertised_host="127.0.0.1", advertised_port=proxy.port)
        except Exception as exc:
            fail_or_skip(f"tansu behind the proxy did not start: {exc}")
        bootstrap = f"127.0.0.1:{proxy.port}"
        try:
            for driver in LATENCY_FETCH:
                proxy.delay = 0.0
                base = _latency_p50(bootstrap, driver, tmp_path / f"{driver}-direct")
                proxy.delay, proxy.held = delay, []
                slow = _latency_p50(bootstrap, driver, tmp_path / f"{driver}-delayed")
                added = sorted(proxy.held)[len(proxy.held) // 2] * 1000  # the delay as the proxy's sleeps kept it
                assert delay * 1000 <= added < delay * 1000 + 5, added
                want = base + added
                print(f"{driver}: p50 {base:.3f} ms direct, {slow:.3f} ms with {added:.2f} ms added")
                assert abs(slow - want) <= 0.05 * want, (driver, base, slow)
        finally:
            broker.stop()
    finally:
        proxy.close()
