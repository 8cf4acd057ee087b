"""The e2e suite on Dask clusters (--cluster): real local clusters, Kafka on 127.0.0.1:9095, small sizes.

Checks placement, central verification, the fault path (a killed worker), TLS and the refusals; never speed.
"""
import datetime as dt
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time

import numpy as np
import psutil
import pytest
from confluent_kafka.admin import AdminClient
from hdrh.histogram import HdrHistogram
from rich.console import Console

from chronik_perf.client import Cluster
from chronik_perf.e2e import histograms
from chronik_perf.e2e.cluster import ClusterError, Session, TlsFiles, parse
from chronik_perf.e2e.cluster.clocks import Offset, ping_pong
from chronik_perf.e2e.cluster.driver import latency_mode, per_host
from chronik_perf.e2e.cluster.remote import compact
from chronik_perf.e2e.cluster.session import quiet
from chronik_perf.e2e.cluster.workers import ClusterWorker, DaskWorker, Record
from chronik_perf.e2e.config import TESTS as DEFAULT_TESTS
from chronik_perf.e2e.config import build_config
from chronik_perf.e2e.drivers.base import ProducerSpec
from chronik_perf.e2e.drivers.worker_results import ConsumerResult
from chronik_perf.e2e.runner import Target, run_target
from test_e2e_brokers import SMALL, check_delivery, load_results, run_cli

pytest.importorskip("distributed")

DASK = os.path.join(os.path.dirname(sys.executable), "dask")


def free_port() -> int:
    """A loopback port the OS reports free, so two runs of this file at once never share a scheduler port."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
DAEMON_OFF = {"DASK_DISTRIBUTED__WORKER__DAEMON": "False"}
# the settings docs/e2e/cluster.md gives for `dask worker` hosts (the suite's QUIET_CONFIG)
QUIET_ENV = {"DASK_DISTRIBUTED__WORKER__PROFILE__ENABLED": "False", "DASK_DISTRIBUTED__ADMIN__TICK__INTERVAL": "1s",
             "DASK_DISTRIBUTED__ADMIN__SYSTEM_MONITOR__INTERVAL": "5s",
             "DASK_DISTRIBUTED__WORKER__MEMORY__MONITOR_INTERVAL": "1s"}
TESTS = list(DEFAULT_TESTS)


# ---- no cluster needed ------------------------------------------------------------------------------------
def test_addresses_and_the_refusal_of_open_schedulers():
    assert parse("local:3").workers == 3
    assert parse("tcp://127.0.0.1:8786").scheme == "tcp" and parse("tcp://localhost:8786").address
    with pytest.raises(ClusterError, match="--insecure-cluster"):
        parse("tcp://192.0.2.7:8786")
    assert parse("tcp://192.0.2.7:8786", insecure=True).address == "tcp://192.0.2.7:8786"
    with pytest.raises(ClusterError, match="--cluster-ca-file"):
        parse("tls://192.0.2.7:8786")
    assert parse("tls://192.0.2.7:8786", tls=TlsFiles("ca", "c", "k")).tls.cert == "c"
    for bad in ("local:0", "local:x", "udp://h:1", "tcp://h", "tcp://:80"):
        with pytest.raises(ClusterError):
            parse(bad)


def test_cli_refuses_plain_tcp_off_loopback(tmp_path):
    proc = run_cli(["--target", "kafka", "--cluster", "tcp://192.0.2.7:8786", "--quick"], tmp_path, timeout=60)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "refusing plain tcp://192.0.2.7:8786" in proc.stderr and "run code on every worker" in proc.stderr
    assert not os.listdir(tmp_path)  # refused before anything ran


def test_ping_pong_finds_a_known_offset_within_its_bound():
    shift = 12_345_678_901
    est = ping_pong(lambda: time.monotonic_ns() + shift)
    assert abs(est.offset_ns - shift) <= est.bound_ns and est.bound_ns == (est.rtt_ns + 1) // 2


def _worker(host, offset_ns=0, bound_ns=0):
    return DaskWorker(f"tcp://{host}:1", host, {}, {"boot_id": host}, Offset(offset_ns, bound_ns, 2 * bound_ns, False))


def test_per_host_rates_use_each_hosts_common_window():
    a, b = _worker("a"), _worker("b")
    records = [Record("producer", 0, a, messages=100, window_ns=(0, 1_000_000_000)),
               Record("producer", 1, a, messages=300, window_ns=(500_000_000, 2_000_000_000)),
               Record("producer", 2, b, messages=50, window_ns=(0, 500_000_000)), Record("consumer", 0, b)]
    out = per_host(records)
    assert out["a"]["producer"] == {"messages": 400, "seconds": 2.0, "throughput_msgs_s": 200.0}
    assert out["b"] == {"producer": {"messages": 50, "seconds": 0.5, "throughput_msgs_s": 100.0}}


def test_cross_host_stamps_and_latency_are_corrected_by_both_offsets():
    """A consumer on a host whose clock is 7 s behind reads messages stamped by a producer whose clock is 5 s ahead:
    the coordinator sees the consumer's stamps on its own clock, and the consumer's histogram, given the producer's
    correction, holds the true latencies."""
    producer, consumer = _worker("p", 5_000_000_000, 300_000), _worker("c", -7_000_000_000, 200_000)
    w = object.__new__(ClusterWorker)
    w.record = Record("consumer", 0, consumer)
    true_send = np.array([1_000_000, 2_000_000], np.int64)
    true_latency = np.array([3_000_000, 4_500_000], np.int64)
    raw = (true_send + true_latency + consumer.offset.offset_ns) - (true_send + producer.offset.offset_ns)
    arrival = true_send + true_latency
    out = w._translate(ConsumerResult(worker=0, received=2, nbytes=0, start_ns=10 + consumer.offset.offset_ns,
                                      last_ns=99 + consumer.offset.offset_ns,
                                      arrival_ns=arrival + consumer.offset.offset_ns))
    assert out.arrival_ns.tolist() == arrival.tolist()
    assert (out.start_ns, out.last_ns) == (10, 99) and w.record.window_ns == (10, 99) and w.record.messages == 2
    corrections = {3: producer.offset.offset_ns - consumer.offset.offset_ns}
    part = histograms.measured(raw, np.array([3, 3]), np.array([7, 8]), 0, corrections)
    hist = HdrHistogram.decode(part["latency_hist"])
    assert part["latency_count"] == 2 and part["latency_negative"] == 0
    assert hist.get_min_value() == hist.get_lowest_equivalent_value(3000)
    assert hist.get_max_value() == hist.get_highest_equivalent_value(4500)
    mode = latency_mode([(consumer, producer)], cross_host=True)
    assert mode["mode"] == "cross host" and mode["error_bound_ms"] == 0.5
    assert latency_mode([(consumer, consumer)], cross_host=False)["error_bound_ms"] == 0.0


def test_a_consumers_histogram_counts_only_its_producers_after_the_warm_up():
    lat = np.array([1_000_000, 2_000_000, 3_000_000, 4_000_000, -5_000, 6_000_000], np.int64)
    pid = np.array([0, 0, 1, 1, 0, 2])
    seq = np.array([0, 5, 5, 6, 7, 9])
    part = histograms.measured(lat, pid, seq, from_seq=5, corrections={0: 0, 1: 1_000_000})
    hist = HdrHistogram.decode(part["latency_hist"])  # pid 2 is another host's; seq 0 is in the warm-up
    assert part["latency_count"] == hist.get_total_count() == 4 and part["latency_negative"] == 1
    assert hist.get_count_at_value(2000) == 1 and hist.get_count_at_value(4000) == 1
    assert hist.get_count_at_value(5000) == 1 and hist.get_count_at_value(1) == 1  # -5 µs clipped to 1 µs
    every = histograms.measured(lat, pid, seq)
    assert every["latency_count"] == 6
    merged = histograms.merge([part["latency_hist"], every["latency_hist"]])
    assert merged.get_total_count() == 10 and merged.get_max_value() == hist.get_highest_equivalent_value(6000)
    sample = histograms.cdf_sample(merged, k=5)
    assert sample == sorted(sample) and sample[0] <= 0.002 and sample[-1] >= 5.99


def test_consumer_ids_cross_the_network_compact():
    r = compact(ConsumerResult(worker=0, received=3, nbytes=1, start_ns=0, pid=np.array([0, 1, 1], np.int64),
                               seq=np.array([5, 70_000, 2], np.int64)))
    assert r.pid.dtype == np.uint8 and r.seq.dtype == np.uint32 and r.received == 3
    assert r.seq.tolist() == [5, 70_000, 2]


# ---- an in-process LocalCluster of 2 processes ------------------------------------------------------------
@pytest.fixture(scope="module")
def local2():
    with Session(parse("local:2")) as session:
        yield session


def _callbacks(dask_worker=None, dask_scheduler=None):
    """{name: interval in ms} of a Dask server's periodic callbacks (run on the workers and the scheduler)."""
    server = dask_worker or dask_scheduler
    return {name: pc.callback_time for name, pc in server.periodic_callbacks.items()}


def test_the_local_cluster_runs_without_dask_s_idle_cpu_costs(local2):
    """No statistical profiler in the workers (Dask's default samples every thread each 10 ms), slow event-loop
    ticks and monitors in the workers and the scheduler, no work stealing, and the settings recorded per worker."""
    for addr, callbacks in local2.client.run(_callbacks).items():
        assert "profile" not in callbacks and "profile-cycle" not in callbacks, (addr, callbacks)
        assert callbacks["tick"] >= 1000 and callbacks["monitor"] >= 5000, (addr, callbacks)
        assert callbacks["memory_monitor"] >= 1000, (addr, callbacks)
    on_scheduler = local2.client.run_on_scheduler(_callbacks)
    assert on_scheduler["tick"] >= 1000 and "stealing" not in on_scheduler, on_scheduler
    for w in local2.workers.values():
        assert quiet(w.describe()["dask_config"]), w.describe()


def test_workers_on_dask_s_defaults_are_told_apart():
    defaults = {"distributed.worker.profile.enabled": True, "distributed.admin.tick.interval": "20ms",
                "distributed.admin.system-monitor.interval": "500ms",
                "distributed.worker.memory.monitor-interval": "100ms"}
    assert not quiet(defaults) and not quiet({})
    assert quiet({**defaults, "distributed.worker.profile.enabled": False, "distributed.admin.tick.interval": 1.0,
                  "distributed.admin.system-monitor.interval": "5000ms",
                  "distributed.worker.memory.monitor-interval": "1 s"})


def _config(tmp_path, **kw):
    args = dict(quick=True, producer_seconds=0.0, num_messages=3000, message_size=200, num_partitions=3, producers=2,
                consumers=2, rate=300, duration=2.0, warmup=0.5, results_dir=str(tmp_path))
    args.update(kw)
    return build_config({}, args)


@pytest.mark.parametrize("driver,tests", [("native", ["producer", "concurrent"]), ("java", ["producer"])])
def test_every_driver_runs_on_the_cluster(kafka_broker, local2, tmp_path, driver, tests):
    cfg = _config(tmp_path, driver=driver, tests=tests)
    doc, _ = run_target(Target("kafka", kafka_broker.bootstrap_servers), cfg, Console(quiet=True), cluster=local2)
    workers = {w["address"] for w in doc["environment"]["client"]["cluster"]["workers"]}
    assert len(workers) == 2
    for r in doc["results"]:
        assert not r.get("failed") and r["driver"] == driver and r["throughput_msgs_s"] > 0, r
        placed = r["cluster"]["tasks"]
        assert placed and {t["worker"] for t in placed} <= workers
        v = r["verification"]
        if v and v.get("out_of_order") is not None:
            check_delivery("kafka", r)
        elif v:  # the java tools carry no ids: counted from log end offsets
            assert v["lost"] == 0 and v["duplicated"] == 0, v
    by = {r["test"]: r for r in doc["results"]}
    if "concurrent" in by:  # round-robin: the two producers on the two workers
        assert {t["worker"] for t in by["concurrent"]["cluster"]["tasks"] if t["role"] == "producer"} == workers


def test_latency_runs_a_pair_on_each_worker_and_merges_their_histograms(kafka_broker, local2, tmp_path):
    """Two pairs, each producer on its consumer's worker, sharing the rate and the partitions: the merged histogram
    holds every measured message of both, and its percentiles lie among the pairs'."""
    cfg = _config(tmp_path, driver="native", tests=["latency"], rate=400, duration=2.0, warmup=0.5,
                  message_size=1000, num_partitions=4)
    doc, run_dir = run_target(Target("kafka", kafka_broker.bootstrap_servers), cfg, Console(quiet=True),
                              cluster=local2)
    (r,) = doc["results"]
    assert not r.get("failed"), r["failed"]
    check_delivery("kafka", r)
    placed = {(t["role"], t["id"]): t["worker"] for t in r["cluster"]["tasks"]}
    assert r["pairs"] == 2 and placed[("consumer", 0)] != placed[("consumer", 1)]
    assert all(placed[("producer", i)] == placed[("consumer", i)] for i in (0, 1)), placed
    assert r["cluster"]["latency"]["mode"] == "same host" and len(r["cluster"]["latency"]["pairs"]) == 2
    parts = r["latency_parts"]
    assert [p["consumer"] for p in parts] == [0, 1] and all(p["count"] > 0 for p in parts), parts
    with open(os.path.join(run_dir, "latency.hdr")) as fh:
        merged = HdrHistogram.decode(fh.read().strip())
    per_pair = 400 // 2 * 2.0 - 400 // 2 * 0.5  # each producer's messages after its warm-up
    assert merged.get_total_count() == sum(p["count"] for p in parts) == r["latency_ms"]["count"] == 2 * per_pair
    lat = r["latency_ms"]
    for q in ("p50", "p99"):
        assert min(p[q] for p in parts) <= lat[q] <= max(p[q] for p in parts), (q, lat, parts)
    assert lat["max"] == max(p["max"] for p in parts)
    # the client processes ran without what Dask's nanny adds to its workers' environment (MALLOC_TRIM_THRESHOLD_)
    assert not any(local2.client.run(_dask_environment).values())


def _dask_environment():
    import dask
    return sorted(set(dask.config.get("distributed.nanny.pre-spawn-environ")) & set(os.environ))


@pytest.mark.parametrize("driver", ["native", "java"])
def test_a_killed_worker_fails_the_test_by_name_and_the_run_cleans_up(kafka_broker, tmp_path, driver):
    """Kill the Dask worker running the producer mid-test: the test fails naming it, the driver process it started
    (a spawned Python process, or the JVM of Kafka's ProducerPerformance) ends with it, the task is not run again
    elsewhere (no second production), results are written, the topic is deleted, and the run does not wait for the
    lost messages."""
    with Session(parse("local:2"), heartbeat_timeout_s=20) as session:
        cfg = _config(tmp_path, tests=["producer"], num_messages=20_000_000, message_size=100, driver=driver)
        killed = {}

        def kill_when_producing():
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline and not killed:
                for _, msg in session.client.get_events(session.topic):
                    if msg.get("progress", 0) > 0:
                        addr = next(a for a, keys in session.client.processing().items() if keys)
                        pid = session.workers[addr].facts["pid"]
                        children = psutil.Process(pid).children(recursive=True)
                        killed.update(addr=addr, children=children, names=[_name(p) for p in children],
                                      at=time.monotonic())
                        os.kill(pid, signal.SIGKILL)
                        return
                time.sleep(0.1)

        killer = threading.Thread(target=kill_when_producing)
        killer.start()
        doc, run_dir = run_target(Target("kafka", kafka_broker.bootstrap_servers), cfg, Console(quiet=True),
                                  cluster=session)
        ended = time.monotonic()
        killer.join()
    assert killed, "the producer never reported progress"
    (r,) = doc["results"]
    assert killed["addr"] in r["failed"] and "died" in r["failed"], r["failed"]
    assert ended - killed["at"] < 60
    assert r["cluster"]["tasks"][0]["worker"] == killed["addr"] and r["cluster"]["tasks"][0]["error"]
    with open(os.path.join(run_dir, "results.json")) as fh:
        assert json.load(fh)["results"][0]["failed"] == r["failed"]
    if driver == "java":
        assert "java" in killed["names"], killed["names"]  # the producer's JVM was running when the worker died
    _, alive = psutil.wait_procs(killed["children"], timeout=15)
    assert not alive, f"the killed worker's driver process outlived it: {alive}"
    (task,) = r["cluster"]["tasks"]  # allowed-failures 0: the producer was not run again on the other worker
    assert not _processes_naming(task["topic"]), "a process still produces to the test's topic"
    topics = AdminClient({"bootstrap.servers": kafka_broker.bootstrap_servers}).list_topics(timeout=10).topics
    assert task["topic"] not in topics


def test_a_cancelled_task_ends_the_process_it_started(kafka_broker, local2):
    """A task the scheduler releases while it runs (its future cancelled, or the coordinator gone) kills the driver
    process it started instead of producing on."""
    topic = f"chronik-perf-cancel-{os.getpid()}-{time.monotonic_ns()}"
    with Cluster(kafka_broker.bootstrap_servers) as admin:
        admin.create_topics([topic], 1, 1, timeout=30)
    try:
        spec = ProducerSpec(kafka_broker.bootstrap_servers, topic, 0, 20_000_000, 100, "random", "none", 1, 655, {})
        w = local2.driver("native").start_producer(spec)
        deadline = time.monotonic() + 120
        while w.progress() == 0 and not w.future.done():
            assert time.monotonic() < deadline, "the producer never reported progress"
            time.sleep(0.1)
        worker = psutil.Process(w.record.worker.facts["pid"])
        started = [p for p in worker.children(recursive=True) if "spawn_main" in " ".join(_cmdline(p))]
        assert started, "no driver process under the Dask worker"
        w.future.cancel()
        _, alive = psutil.wait_procs(started, timeout=30)
        assert not alive, f"the cancelled task's driver process runs on: {alive}"
    finally:
        AdminClient({"bootstrap.servers": kafka_broker.bootstrap_servers}).delete_topics([topic])


def _cmdline(process):
    try:
        return process.cmdline()
    except psutil.NoSuchProcess:
        return []


def _name(process):
    try:
        return process.name()
    except psutil.NoSuchProcess:
        return None


def _processes_naming(text):
    """Processes of this machine whose command line contains `text` (a JVM tool names its topic there)."""
    found = []
    for p in psutil.process_iter(["cmdline"]):
        if any(text in arg for arg in p.info["cmdline"] or ()):
            found.append(p)
    return found


# ---- `dask scheduler` and `dask worker` as separate processes, as on many hosts ----------------------------
class DaskProcesses:
    """`dask scheduler` / `dask worker` subprocesses on 127.0.0.1, each logging to a file; stopped together."""

    def __init__(self, folder, scheme="tcp", port=None, tls_args=()):
        port = port or free_port()
        self.folder, self.tls_args = folder, list(tls_args)
        self.address = f"{scheme}://127.0.0.1:{port}"
        self.procs = {}
        self.start("scheduler", ["scheduler", "--host", "127.0.0.1", "--port", str(port), "--no-dashboard",
                                 *(["--protocol", "tls"] if scheme == "tls" else []), *self.tls_args])

    def start(self, name, args, env=None):
        log = open(self.folder / f"{name}.log", "w")
        self.procs[name] = subprocess.Popen([DASK, *args], env={**os.environ, **DAEMON_OFF, **QUIET_ENV, **(env or {})},
                                            stdout=log, stderr=subprocess.STDOUT)

    def workers(self, name, n, preload=()):
        self.start(name, ["worker", self.address, "--nworkers", str(n), "--nthreads", "1", "--host", "127.0.0.1",
                          "--no-dashboard", *self.tls_args, *[a for p in preload for a in ("--preload", p)]])

    def wait_for_workers(self, n, security=None, timeout=120):
        """Until the scheduler counts n workers; fails at once, with its log, if a dask process exited."""
        from distributed import Client
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for name, p in self.procs.items():
                if p.poll() is not None:
                    pytest.fail(f"dask {name} exited {p.returncode}: "
                                f"{(self.folder / f'{name}.log').read_text()[-2000:]}")
            try:
                with Client(self.address, security=security, timeout=5) as client:
                    client.wait_for_workers(n, timeout=max(1.0, deadline - time.monotonic()))
                    return
            except (OSError, TimeoutError):
                continue
        pytest.fail(f"{n} Dask workers did not join {self.address} within {timeout} s")

    def stop(self, name=None):
        for key in ([name] if name else list(reversed(self.procs))):
            p = self.procs.pop(key)
            p.terminate()
            try:
                p.wait(30)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()


@pytest.fixture(scope="module")
def tcp_cluster(tmp_path_factory):
    dask = DaskProcesses(tmp_path_factory.mktemp("dask-tcp"))
    try:
        dask.workers("workers", 2)
        dask.wait_for_workers(2)
        yield dask
    finally:
        dask.stop()


def _schema(value):
    """The shape of a results document: keys of every mapping, recursively; lists by their first element, and
    mappings keyed by partition number by their first value (which partitions a run wrote to is data)."""
    if isinstance(value, dict) and value and all(str(k).isdigit() for k in value):
        return {"<partition>": _schema(next(iter(value.values())))}
    if isinstance(value, dict):
        return {k: _schema(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_schema(value[0])] if value and isinstance(value[0], (dict, list)) else []
    return None


def _same_shape(a, b):
    """Equal schemas, except for flags and notes (bool or str values) that a figure sets in only one of them, such
    as short_window for a window under a second."""
    flags = {k for k in set(a) ^ set(b) if isinstance(a.get(k, b.get(k)), (bool, str))}
    return ({k: _schema(v) for k, v in a.items() if k not in flags}
            == {k: _schema(v) for k, v in b.items() if k not in flags})


def test_cli_on_dask_processes_matches_the_local_schema(kafka_broker, tcp_cluster, tmp_path):
    address = tcp_cluster.address
    args = ["--target", "kafka", "--bootstrap-servers", kafka_broker.bootstrap_servers, *SMALL, "--num-messages",
            "2000", "--duration", "1", "--warmup", "0.2"]
    on_cluster = run_cli([*args, "--cluster", address], tmp_path / "cluster")
    assert on_cluster.returncode == 0, on_cluster.stdout + on_cluster.stderr
    local = run_cli(args, tmp_path / "local")
    assert local.returncode == 0, local.stdout + local.stderr
    doc, run_dir = load_results(tmp_path / "cluster")
    ref, _ = load_results(tmp_path / "local")
    assert os.path.exists(os.path.join(run_dir, "hosts.png"))  # the per-host rates chart
    assert [r["test"] for r in doc["results"]] == TESTS
    extras = []
    for r, lr in zip(doc["results"], ref["results"]):
        extra = r.pop("cluster")
        extras.append(extra)
        assert _same_shape(r, lr), r["test"]
        assert extra["tasks"] and extra["per_host"], r["test"]
        if r["test"] != "producer":
            check_delivery("kafka", r)
            assert r["verification"]["lost"] == 0 and r["verification"]["duplicated"] == 0
    assert extras[2]["latency"]["mode"] == "same host"
    cluster = doc["environment"]["client"].pop("cluster")
    assert _schema(doc["environment"]) == _schema(ref["environment"])
    assert cluster["address"] == address and len(cluster["workers"]) == 2 and not cluster["tls"]
    assert all(quiet(w["dask_config"]) for w in cluster["workers"]), cluster["workers"]
    assert "placement: producer 0 on" in on_cluster.stdout and "Dask cluster tcp://127.0.0.1" in on_cluster.stdout


def test_a_worker_with_other_sources_is_refused_by_name(tcp_cluster, tmp_path):
    preload = tmp_path / "other_version.py"
    preload.write_text("import chronik_perf\nchronik_perf.__version__ = '9.9.9-other'\n")
    tcp_cluster.workers("odd", 1, preload=[str(preload)])
    try:
        tcp_cluster.wait_for_workers(3)
        with pytest.raises(ClusterError, match="chronik_perf differs across the cluster") as refused:
            Session(parse(tcp_cluster.address)).open()
    finally:
        tcp_cluster.stop("odd")
    assert "9.9.9-other" in str(refused.value) and "0.1.0" in str(refused.value)


# ---- TLS with mutual authentication --------------------------------------------------------------------------
def _certificates(folder):
    """A CA and one certificate it signed for 127.0.0.1 (server and client use), as PEM files."""
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    now = dt.datetime.now(dt.timezone.utc)

    def build(subject, issuer, key, sign_key, ca):
        b = (x509.CertificateBuilder().subject_name(subject).issuer_name(issuer).public_key(key.public_key())
             .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(minutes=5))
             .not_valid_after(now + dt.timedelta(days=1))
             .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
        if not ca:
            b = (b.add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
                                                              x509.DNSName("localhost")]), critical=False)
                 .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH,
                                                       ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False))
        return b.sign(sign_key, hashes.SHA256())

    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "chronik-perf test CA")])
    ca = build(ca_name, ca_name, ca_key, ca_key, True)
    cert = build(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]), ca_name, key, ca_key, False)
    paths = TlsFiles(str(folder / "ca.pem"), str(folder / "cert.pem"), str(folder / "key.pem"))
    with open(paths.ca_file, "wb") as fh:
        fh.write(ca.public_bytes(serialization.Encoding.PEM))
    with open(paths.cert, "wb") as fh:
        fh.write(cert.public_bytes(serialization.Encoding.PEM))
    with open(paths.key, "wb") as fh:
        fh.write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                   serialization.NoEncryption()))
    return paths


def test_suite_over_mutual_tls(kafka_broker, tmp_path):
    """`dask scheduler` and `dask worker` with the --tls-* options of docs/e2e/cluster.md, and the suite connecting
    with its own certificate."""
    tls = _certificates(tmp_path)
    tls_args = ["--tls-ca-file", tls.ca_file, "--tls-cert", tls.cert, "--tls-key", tls.key]
    dask = DaskProcesses(tmp_path, "tls", tls_args=tls_args)
    try:
        dask.workers("workers", 1)
        with Session(parse(dask.address, tls=tls)) as session:
            doc, _ = run_target(Target("kafka", kafka_broker.bootstrap_servers), _config(tmp_path, tests=["consumer"]),
                                Console(quiet=True), cluster=session)
    finally:
        dask.stop()
    assert doc["environment"]["client"]["cluster"]["tls"] is True
    (consumer,) = doc["results"]  # fills a topic, then reads it back: a producer and a consumer task
    assert consumer["messages"] == 3000 and consumer["verification"]["lost"] == 0
    assert [t["role"] for t in consumer["cluster"]["tasks"]] == ["producer", "consumer"]
    assert all(t["worker"].startswith("tls://") for t in consumer["cluster"]["tasks"])
