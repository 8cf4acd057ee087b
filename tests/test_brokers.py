"""chronik_perf.brokers: real brokers start, speak Kafka, carry 1000 messages, stop; bad input fails cleanly."""
import json
import os
import re
import shutil
import signal
import socket
import struct
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from chronik_perf.brokers import BrokerError, kafka_java, mock, start, status, stop, tansu
from chronik_perf.brokers._process import Record, free_port, port_in_use, process_start_ticks, spawn, terminate
from chronik_perf.client import Cluster
from conftest import fail_or_skip

SRC = str(Path(__file__).resolve().parents[1] / "src")
N = 1000


def api_versions(bootstrap_servers: str) -> dict[int, tuple[int, int]]:
    """Send ApiVersions v0 on a raw socket; return {api_key: (min, max)} (error code must be 0)."""
    host, port = bootstrap_servers.split(",")[0].rsplit(":", 1)
    client_id = b"chronik-perf-test"
    body = struct.pack(">hhih", 18, 0, 7, len(client_id)) + client_id
    with socket.create_connection((host, int(port)), timeout=10) as s:
        s.sendall(struct.pack(">i", len(body)) + body)
        size = struct.unpack(">i", _read(s, 4))[0]
        resp = _read(s, size)
    correlation, error, count = struct.unpack_from(">ihi", resp)
    assert (correlation, error) == (7, 0)
    return {k: (lo, hi) for k, lo, hi in (struct.unpack_from(">hhh", resp, 10 + 6 * i) for i in range(count))}


def _read(s: socket.socket, n: int) -> bytes:
    buf = b""
    while len(buf) < n:
        chunk = s.recv(n - len(buf))
        assert chunk, "connection closed mid-response"
        buf += chunk
    return buf


def create_topic(broker, partitions: int = 3) -> tuple[str, int]:
    """A new topic on the broker: CreateTopics through our client (which negotiates the version; Chronik 2.10 leaves
    the topic out of its CreateTopics v4 answer, the only version librdkafka's admin client sends), or on the mock
    (which has no CreateTopics) auto-creation."""
    topic = f"t-{uuid.uuid4().hex[:10]}"
    admin = AdminClient({"bootstrap.servers": broker.bootstrap_servers})
    if broker.name == "mock":
        partitions = mock.AUTO_CREATED_PARTITIONS
        admin.list_topics(topic, timeout=10)
    else:
        cluster = Cluster(broker.bootstrap_servers)
        try:
            cluster.create_topics([topic], partitions, 1, timeout=30)
        finally:
            cluster.close()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        meta = admin.list_topics(topic, timeout=10).topics[topic]
        if meta.error is None and len(meta.partitions) == partitions:
            return topic, partitions
        time.sleep(0.2)
    raise AssertionError(f"{topic} did not appear with {partitions} partitions")


def roundtrip(broker) -> None:
    """ApiVersions and Metadata answer; 1000 messages produced to a new topic are all consumed back."""
    apis = api_versions(broker.bootstrap_servers)
    assert {0, 1, 3, 18} <= apis.keys()  # Produce, Fetch, Metadata, ApiVersions
    topic, partitions = create_topic(broker)
    producer = Producer({"bootstrap.servers": broker.bootstrap_servers, "linger.ms": 5})
    sent = {f"m{i}".encode() for i in range(N)}
    for value in sent:
        producer.produce(topic, value=value)
    assert producer.flush(30) == 0
    consumer = Consumer({"bootstrap.servers": broker.bootstrap_servers, "group.id": topic,
                         "enable.auto.commit": False})
    consumer.assign([TopicPartition(topic, p, 0) for p in range(partitions)])
    got = []
    deadline = time.monotonic() + 60
    while len(got) < N and time.monotonic() < deadline:
        for msg in consumer.consume(500, timeout=1):
            assert msg.error() is None, msg.error()
            got.append(msg.value())
    consumer.close()
    assert len(got) == N and set(got) == sent


@pytest.mark.parametrize("fixture", ["kafka_broker", "tansu_broker", "mock_broker"])
def test_fixture_broker_carries_messages(fixture, request):
    broker = request.getfixturevalue(fixture)
    assert broker.name == fixture.split("_")[0] and broker.version
    roundtrip(broker)


def test_kafka_fixture_exposes_its_partition_dirs_with_small_segments(kafka_broker):
    if not kafka_broker.log_dirs:
        pytest.skip("the Kafka at 127.0.0.1:9095 was not started from this state folder: its data dir is unknown")
    topic = f"seg-{uuid.uuid4().hex[:10]}"
    admin = AdminClient({"bootstrap.servers": kafka_broker.bootstrap_servers})
    config = {"internal.segment.bytes": "16384", "index.interval.bytes": "128"}
    admin.create_topics([NewTopic(topic, 1, 1, config=config)])[topic].result(30)
    errors = []
    producer = Producer({"bootstrap.servers": kafka_broker.bootstrap_servers, "batch.size": 4096})
    for _ in range(2000):
        producer.produce(topic, value=os.urandom(100), on_delivery=lambda err, _msg: err and errors.append(err))
        producer.poll(0)
    assert producer.flush(30) == 0 and errors == []
    segments = list((Path(kafka_broker.log_dirs[0]) / f"{topic}-0").glob("*.log"))
    assert len(segments) >= 10 and all(s.stat().st_size <= 16384 for s in segments)


@pytest.fixture
def home(tmp_path, monkeypatch):
    """A private state folder so these tests never touch the brokers the fixtures share."""
    monkeypatch.setenv("CHRONIK_PERF_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


def _start_or_fail_or_skip(name, **options):
    try:
        return start(name, **options)
    except BrokerError as exc:
        fail_or_skip(f"{name} broker unavailable: {exc}")


@pytest.mark.parametrize("name", ["tansu", "kafka"])
def test_start_then_stop_frees_the_port(name, home):
    port = free_port()
    with _start_or_fail_or_skip(name, port=port, fresh=True) as broker:
        assert broker.owned and broker.running and broker.bootstrap_servers == f"127.0.0.1:{port}"
        assert [r["address"] for r in status() if r["name"] == name and r["running"]] == [broker.bootstrap_servers]
        roundtrip(broker)
    assert not port_in_use("127.0.0.1", port)
    assert process_start_ticks(broker.pid) is None
    assert not (home / f"{name}-{port}" / "state.json").exists()


def test_start_never_takes_another_broker_for_its_own(home, tmp_path):
    port = free_port()
    with start("tansu", port=port):
        second = tmp_path / "second"
        second.mkdir()
        with pytest.raises(BrokerError, match="exited during start-up"):
            tansu.launch(second, host="127.0.0.1", port=port, timeout=30)
        assert start("tansu", port=port, reuse=True).bootstrap_servers == f"127.0.0.1:{port}"


def test_mock_in_process_closes_its_ports():
    broker = start("mock", num_brokers=2)
    ports = [int(a.rsplit(":", 1)[1]) for a in broker.bootstrap_servers.split(",")]
    assert len(ports) == 2 and all(port_in_use("127.0.0.1", p) for p in ports)
    roundtrip(broker)
    broker.stop()
    deadline = time.monotonic() + 10
    while any(port_in_use("127.0.0.1", p) for p in ports) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not any(port_in_use("127.0.0.1", p) for p in ports)


def test_mock_background_process_and_its_limits(home):
    broker = start("mock", in_process=False)
    try:
        assert broker.pid and Record.load(home / "mock").bootstrap_servers == broker.bootstrap_servers
        roundtrip(broker)
        admin = AdminClient({"bootstrap.servers": broker.bootstrap_servers})
        future = admin.create_topics([NewTopic("never-created", 2, 1)], request_timeout=3)["never-created"]
        with pytest.raises(KafkaException, match="controller"):
            future.result(30)
        _consumer_group_commits(broker)
    finally:
        broker.stop()
    assert process_start_ticks(broker.pid) is None


def _consumer_group_commits(broker) -> None:
    """The mock runs consumer groups: subscribe, get all 4 partitions assigned, commit, read the commit back."""
    topic, partitions = create_topic(broker)
    producer = Producer({"bootstrap.servers": broker.bootstrap_servers})
    for i in range(100):
        producer.produce(topic, value=b"x", partition=i % partitions)
    assert producer.flush(10) == 0
    consumer = Consumer({"bootstrap.servers": broker.bootstrap_servers, "group.id": "g-" + topic,
                         "auto.offset.reset": "earliest", "enable.auto.commit": False})
    consumer.subscribe([topic])
    got, deadline = 0, time.monotonic() + 30
    while got < 100 and time.monotonic() < deadline:
        got += len([m for m in consumer.consume(100, timeout=1) if m.error() is None])
    assert got == 100 and len(consumer.assignment()) == partitions
    consumer.commit(asynchronous=False)
    committed = consumer.committed(consumer.assignment(), timeout=10)
    consumer.close()
    assert sum(tp.offset for tp in committed) == 100


def cli(*args, env=None, timeout=300):
    """Run `python -m chronik_perf.brokers ARGS`; return (exit code, stdout, stderr)."""
    full_env = {**os.environ, "PYTHONPATH": SRC + os.pathsep + os.environ.get("PYTHONPATH", ""), **(env or {})}
    done = subprocess.run([sys.executable, "-m", "chronik_perf.brokers", *args], capture_output=True, text=True,
                          env=full_env, timeout=timeout)
    return done.returncode, done.stdout, done.stderr


def _one_error_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    return lines[0]


def test_cli_start_status_logs_stop(home):
    port = free_port()
    code, out, err = cli("start", "tansu", "--port", str(port))
    assert code == 0 and out.strip() == f"127.0.0.1:{port}", err
    try:
        code, out, _ = cli("status")
        assert code == 0 and f"127.0.0.1:{port}" in out and "running" in out.splitlines()[1]
        code, out, _ = cli("logs", "tansu")
        assert code == 0 and f"tcp://127.0.0.1:{port}" in out
    finally:
        code, out, _ = cli("stop", "tansu")
    assert code == 0 and "stopped" in out and not port_in_use("127.0.0.1", port)
    code, out, _ = cli("stop", "tansu")
    assert code == 0 and "not running" in out


def test_cli_port_in_use_is_one_line_exit_2(home):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        code, out, err = cli("start", "tansu", "--port", str(port))
    assert code == 2 and out == "" and "already in use" in _one_error_line(err)
    assert not (home / f"tansu-{port}" / "state.json").exists()


def test_cli_kafka_only_option_for_tansu_is_one_line_exit_2(home):
    code, out, err = cli("start", "tansu", "--port", str(free_port()), "--property", "a=b")
    assert code == 2 and out == "" and "tansu does not take --property (kafka only)" in _one_error_line(err)


def test_stale_pid_record_is_detected(home):
    dead = subprocess.Popen(["true"])
    dead.wait()
    folder = home / "tansu-9"
    folder.mkdir(parents=True)
    Record("tansu", "127.0.0.1:9", "v", dead.pid, 1, str(folder / "tansu.log")).save(folder)
    assert [r["running"] for r in status() if r["name"] == "tansu"] == [False]
    assert stop("tansu") == [f"tansu at 127.0.0.1:9 was not running (stale pid {dead.pid} removed)"]
    assert not (folder / "state.json").exists()


def _path_without(*tools: str) -> str:
    """$PATH without the directories that hold any of `tools` (the CLI runs by sys.executable's full path)."""
    keep = [d for d in os.environ["PATH"].split(os.pathsep) if not any(os.path.exists(os.path.join(d, t))
                                                                       for t in tools)]
    return os.pathsep.join(keep)


def test_cli_missing_java_is_one_line_exit_2(home):
    code, out, err = cli("start", "kafka", "--port", str(free_port()),
                         env={"PATH": _path_without("java"), "JAVA_HOME": ""})
    assert code == 2 and out == "" and "Java 17+" in _one_error_line(err)


def test_cli_missing_mvn_with_empty_cache_is_one_line_exit_2(home, tmp_path):
    java = shutil.which("java")
    if java is None:
        fail_or_skip("java is not installed")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "java").symlink_to(os.path.realpath(java))
    path = os.pathsep.join([str(bin_dir), _path_without("mvn", "java")])
    code, out, err = cli("start", "kafka", "--port", str(free_port()), env={"PATH": path, "JAVA_HOME": ""})
    assert code == 2 and out == "" and "mvn" in _one_error_line(err)


def test_cli_no_network_with_empty_maven_cache_is_one_line_exit_2(home, tmp_path):
    dead_proxy = " ".join(f"-D{scheme}.proxy{k}={v}" for scheme in ("http", "https")
                          for k, v in (("Host", "127.0.0.1"), ("Port", "9")))
    env = {"MAVEN_OPTS": f"-Dmaven.repo.local={tmp_path / 'empty-m2'} {dead_proxy}"}
    code, out, err = cli("start", "kafka", "--port", str(free_port()), env=env)
    assert code == 2 and out == "" and "no network?" in _one_error_line(err)


def test_cli_startup_timeout_stops_the_broker(home):
    port = free_port()
    code, out, err = cli("start", "kafka", "--port", str(port), "--timeout", "1")
    if "did not answer" not in err:
        fail_or_skip(f"kafka could not be prepared: {err.strip()}")
    assert code == 2 and out == "" and "did not answer within 1 s" in _one_error_line(err)
    assert not port_in_use("127.0.0.1", port)
    assert not (home / f"kafka-{port}" / "state.json").exists()
    assert not any(r["running"] for r in status() if r["name"] == "kafka")


def test_kafka_rejected_property_is_reported(home):
    with pytest.raises(BrokerError, match="log.segment.bytes: Value must be at least 1048576"):
        start("kafka", port=free_port(), properties={"log.segment.bytes": "12"})
    assert not any(r["running"] for r in status() if r["name"] == "kafka")


def test_kafka_exiting_during_startup_is_reported(home):
    port = free_port()
    data = home / f"kafka-{port}" / "data"
    data.mkdir(parents=True)
    (data / "meta.properties").write_text("not a kafka meta.properties\n")
    with pytest.raises(BrokerError, match="exited during start-up"):
        start("kafka", port=port)
    assert not port_in_use("127.0.0.1", port)
    assert not any(r["running"] for r in status() if r["name"] == "kafka")


def test_docker_compose_kafka_matches_the_pinned_version():
    import yaml

    from chronik_perf.brokers.kafka import POM, pinned_version

    compose = yaml.safe_load((POM.parent / "docker-compose.yml").read_text())
    assert compose["services"]["kafka"]["image"] == f"apache/kafka:{pinned_version()}"
    assert compose["services"]["chronik"]["ports"] == ["127.0.0.1:9092:9092"]


def test_concurrent_starts_share_one_broker(home):
    port = free_port()
    script = ("import json, sys; from chronik_perf.brokers import start; "
              f"b = start('tansu', port={port}, reuse=True); print(json.dumps([b.pid, b.owned]))")
    env = {**os.environ, "PYTHONPATH": SRC}
    procs = [subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True, env=env)
             for _ in range(2)]
    results = [json.loads(p.communicate(timeout=60)[0]) for p in procs]
    try:
        assert results[0][0] == results[1][0] and sorted(r[1] for r in results) == [False, True]
    finally:
        stop("tansu", port)
    assert not port_in_use("127.0.0.1", port)


def test_stop_kills_a_process_that_ignores_sigterm(tmp_path):
    code = ("import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
            "print('ready', flush=True); time.sleep(60)")
    proc = spawn([sys.executable, "-c", code], tmp_path / "stubborn.log", cwd=tmp_path)
    deadline = time.monotonic() + 10
    while "ready" not in (tmp_path / "stubborn.log").read_text() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert terminate(proc.pid, timeout=0.5, proc=proc) is True
    assert proc.returncode == -signal.SIGKILL


def test_kafka_perf_tools_run_from_the_cached_classpath(kafka_broker):
    cmd = kafka_java().command("org.apache.kafka.tools.ProducerPerformance", "--topic", f"pp-{uuid.uuid4().hex[:8]}",
                               "--num-records", "1000", "--record-size", "100", "--throughput", "-1",
                               "--producer-props", f"bootstrap.servers={kafka_broker.bootstrap_servers}")
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert re.search(r"^1000 records sent, [\d.]+ records/sec", done.stdout, re.M), done.stdout


def test_cli_kafka_version_must_be_a_kafka_4_release(home):
    code, out, err = cli("start", "kafka", "--port", str(free_port()), "--kafka-version", "3.9.0")
    assert code == 2 and out == "" and "runs Kafka 4.x releases" in _one_error_line(err)


def test_another_kafka_release_is_the_package_pom_with_its_version(tmp_path):
    from chronik_perf.brokers.kafka import POM, pinned_version, release_pom

    assert release_pom(None, tmp_path) == POM and release_pom(pinned_version(), tmp_path) == POM
    derived = release_pom("4.1.1", tmp_path)
    assert pinned_version(derived) == "4.1.1" and derived.parent == tmp_path
    assert derived.read_text().replace("4.1.1", pinned_version()) == POM.read_text()
    with pytest.raises(BrokerError, match="runs Kafka 4.x releases"):
        release_pom("4.1", tmp_path)


def test_cli_chronik_without_a_binary_is_one_line_exit_2(home, tmp_path):
    code, out, err = cli("start", "chronik", env={"CHRONIK_SERVER": ""})
    assert code == 2 and out == "" and "--binary PATH" in _one_error_line(err)
    code, out, err = cli("start", "chronik", "--binary", str(tmp_path / "missing"))
    assert code == 2 and out == "" and "not an executable file" in _one_error_line(err)
    code, out, err = cli("start", "tansu", "--binary", str(tmp_path / "missing"))
    assert code == 2 and "tansu does not take --binary (chronik only)" in _one_error_line(err)


@pytest.fixture
def chronik_binary():
    """The chronik-server binary of $CHRONIK_SERVER; tests needing one skip without it (also in CI, where none is
    built: Chronik is on no package index)."""
    path = os.environ.get("CHRONIK_SERVER")
    if not path:
        pytest.skip("no chronik-server binary: set CHRONIK_SERVER=PATH to run the Chronik Stream tests")
    return path


def test_cli_chronik_start_status_logs_stop(home, chronik_binary):
    if port_in_use("127.0.0.1", 9092):
        pytest.fail("port 9092, the only one a single-node chronik-server listens on, is taken")
    code, out, err = cli("start", "chronik", "--binary", chronik_binary, "--fresh")
    assert code == 0 and out.strip() == "127.0.0.1:9092", err
    try:
        code, out, _ = cli("status", "--json")
        row = next(r for r in json.loads(out) if r["name"] == "chronik")
        assert row["running"] and re.fullmatch(r"\d+\.\d+\.\d+\S*", row["version"])
        assert row["data"] == [str(home / "chronik-9092" / "data")]
        broker = start("chronik", reuse=True)
        assert broker.version == row["version"] and not broker.owned
        roundtrip(broker)
        code, out, _ = cli("logs", "chronik", "-n", "400")
        assert code == 0 and "9092" in out
    finally:
        code, out, _ = cli("stop", "chronik")
    assert code == 0 and "stopped" in out and not port_in_use("127.0.0.1", 9092)
