"""What the five benchmarks share: the run context, topics, client settings, waiting, result entries."""

from __future__ import annotations

import contextlib
import threading
import time
import uuid
from dataclasses import dataclass, field

from ...client import Cluster, KafkaClientError
from ...client.consumer import EARLIEST, LATEST
from ..config import BenchConfig
from ..drivers.base import ConsumerSpec, Driver, ProducerSpec, Worker, WorkerError
from ..drivers.worker_results import ProducerResult, WorkerResult
from ..payload import message_key, partition_of, run_length_for, run_partition
from ..verify import Expected, Stream, unread_counts, verify

MIN_WINDOW_S = 1.0  # a throughput window shorter than this is flagged in the results and the table
POLL_S = 0.05  # the benchmark process sleeps this long between looks at its workers
DELETE_WITHIN_S = 15.0  # the longest a run waits for its topics to be deleted, however the broker behaves


class TestFailed(RuntimeError):
    """A benchmark could not complete; the message says why."""


@dataclass
class Filled:
    """A topic holding what a producer wrote and was acknowledged for."""

    topic: str
    partitions: int
    expected: list[Expected]
    written_by: str | None = None  # the driver that wrote it, when it is one fill shared by a driver comparison

    @property
    def acked(self) -> int:
        return sum(e.acked for e in self.expected)


@dataclass
class RunContext:
    cfg: BenchConfig
    bootstrap_servers: str
    driver: Driver
    admin: Cluster  # our own client's connections: topics, leaders and offsets (every driver alike)
    progress: object | None = None  # a rich.progress.Progress while running interactively
    run_id: str = field(default_factory=lambda: uuid.uuid4().hex[:8])
    topics: list[str] = field(default_factory=list)
    filled: Filled | None = None
    shared_fill: Filled | None = None  # a driver comparison's one fill: every driver's consumer test reads it
    histograms: dict[str, str] = field(default_factory=dict)  # test -> encoded HDR histogram
    auto_create_partitions: int | None = None  # brokers without CreateTopics (the mock) auto-create this many
    harness_cpu_s: float = 0.0   # this process's CPU seconds while its workers ran (the harness's own cost)
    harness_wall_s: float = 0.0  # ... and the wall-clock seconds they ran
    handover_cpu_s: float = 0.0  # ... of which receiving the workers' results after they ended (reported apart)
    _watching: int = 0

    @contextlib.contextmanager
    def workers_running(self):
        """Count this process's CPU and wall time inside the block (outermost only) as the harness's cost."""
        self._watching += 1
        cpu, wall = time.process_time(), time.monotonic()
        try:
            yield
        finally:
            self._watching -= 1
            if not self._watching:
                self.harness_cpu_s += time.process_time() - cpu
                self.harness_wall_s += time.monotonic() - wall

    def take_harness(self) -> dict:
        """The harness's cost since the last call: {cpu_s, wall_s, cores, result_handover_cpu_s}, the handover left
        out of cpu_s; resets the count."""
        cpu, wall, handover = self.harness_cpu_s - self.handover_cpu_s, self.harness_wall_s, self.handover_cpu_s
        self.harness_cpu_s = self.harness_wall_s = self.handover_cpu_s = 0.0
        return {"cpu_s": round(cpu, 4), "wall_s": round(wall, 4),
                "cores": round(cpu / wall, 4) if wall > 0 else None, "result_handover_cpu_s": round(handover, 4)}

    def run_length(self) -> int:
        return run_length_for(self.cfg.message_size, self.cfg.batch_size)

    def partition_of(self, partitions: int):
        """partition_of(pid, seq) for messages produced by this run's producers to a topic of `partitions` (with a
        vectorised .many(pids, seqs) for unkeyed messages)."""
        kp, rl = self.cfg.key_pattern, self.run_length()

        def one(pid, seq):
            return partition_of(message_key(kp, pid, seq), pid, seq, partitions, rl)
        if kp == "none":
            one.many = lambda pids, seqs: run_partition(pids, seqs, partitions, rl)
        return one


def create_topic(ctx: RunContext, label: str, partitions: int) -> tuple[str, int]:
    """Create a uniquely named topic and wait until every partition has a leader.

    Returns (name, partitions): on a broker that only auto-creates topics (librdkafka's mock) the topic
    gets the broker's partition count instead of the one asked for."""
    name = f"chronik-perf-{ctx.run_id}-{label}"
    if ctx.auto_create_partitions:  # a Metadata request for it creates it
        return _await_leaders(ctx, name, ctx.auto_create_partitions)
    # Our own client negotiates the CreateTopics version with the broker, where librdkafka's admin client always
    # sends v4 (which Chronik 2.10 answers without the topic, so librdkafka waits until it times out).
    try:
        ctx.admin.create_topics([name], partitions, ctx.cfg.replication_factor, timeout=30)
    except Exception as exc:
        raise TestFailed(f"cannot create topic {name}: {type(exc).__name__}: {exc}") from exc
    ctx.topics.append(name)
    return _await_leaders(ctx, name, partitions)


def _await_leaders(ctx: RunContext, name: str, partitions: int) -> tuple[str, int]:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            info = ctx.admin.topic(name, wait=max(0.0, deadline - time.monotonic()),
                                   allow_auto_create=bool(ctx.auto_create_partitions))
        except KafkaClientError:
            break
        if len(info.partitions) == partitions:
            return name, partitions
        time.sleep(0.1)
        ctx.admin.refresh_metadata([name])
    raise TestFailed(f"topic {name} has no leader for every partition after 30 s")


def delete_topics(ctx: RunContext, within: float = DELETE_WITHIN_S,
                  hurry: threading.Event | None = None) -> list[str]:
    """Delete every topic this run created, waiting at most `within` seconds (a broker that does not answer, or
    answers slowly, cannot hold the run: the admin connection is then closed under the request), and no longer once
    `hurry` is set (a second Ctrl-C); returns the errors."""
    hurried = hurry.is_set if hurry is not None else (lambda: False)
    if not ctx.topics:
        return []
    if hurried():
        return ["not deleted: interrupted by Ctrl-C"]
    names = list(ctx.topics)
    outcome: list[Exception | None] = []

    def delete():
        try:
            ctx.admin.delete_topics(names, timeout=within)
            outcome.append(None)
        except Exception as exc:  # the broker's refusal, or a broker without DeleteTopics (the mock)
            outcome.append(exc)
    request = threading.Thread(target=delete, name="delete-topics", daemon=True)
    request.start()
    deadline = time.monotonic() + within
    while request.is_alive() and time.monotonic() < deadline and not hurried():
        request.join(min(0.1, max(0.0, deadline - time.monotonic())))
    if not outcome:
        ctx.admin.close()
        return ["not deleted: interrupted by Ctrl-C" if hurried()
                else f"no answer from the broker within {within:.0f} s"]
    if outcome[0] is not None:
        return [f"{type(outcome[0]).__name__}: {outcome[0]}"]
    ctx.topics.clear()
    return []


def _split(config: dict[str, str], role: str) -> dict[str, str]:
    """-X options: 'producer.k=v' / 'consumer.k=v' go to one role, anything else to both."""
    out = {}
    for k, v in config.items():
        head, _, rest = k.partition(".")
        if head in ("producer", "consumer"):
            if head == role:
                out[rest] = v
        else:
            out[k] = v
    return out


def producer_settings(cfg: BenchConfig, latency: bool = False) -> dict:
    """Client settings (Kafka property names, shared by librdkafka and the Java client)."""
    out = {"acks": "all" if cfg.acks == "-1" else cfg.acks, "compression.type": cfg.compression}
    if cfg.batch_size is not None:
        out["batch.size"] = cfg.batch_size
    linger = cfg.linger_ms if cfg.linger_ms is not None else (0 if latency else 5)
    out["linger.ms"] = int(linger) if float(linger).is_integer() else linger  # Java parses linger.ms as a long
    out.update(_split(cfg.client_config, "producer"))
    return out


def consumer_settings(cfg: BenchConfig) -> dict:
    return _split(cfg.client_config, "consumer")


def producer_spec(ctx: RunContext, topic: str, partitions: int, pid: int, n: int,
                  rate: float | None = None, latency: bool = False) -> ProducerSpec:
    cfg = ctx.cfg
    return ProducerSpec(ctx.bootstrap_servers, topic, pid, n, cfg.message_size, cfg.payload, cfg.key_pattern,
                        partitions, ctx.run_length(), producer_settings(cfg, latency), rate,
                        timeout_s=max(120.0, n / 1000))


def consumer_spec(ctx: RunContext, topic: str, partitions: int, expected: int | None, **kw) -> ConsumerSpec:
    return ConsumerSpec(ctx.bootstrap_servers, topic, consumer_settings(ctx.cfg), expected,
                        group_protocol=ctx.cfg.group_protocol, partitions=list(range(partitions)), **kw)


def wait_for(ctx: RunContext, label: str, workers: list[Worker], total: int, timeout: float) -> list[WorkerResult]:
    """Show progress until every worker finished; return their results or raise TestFailed."""
    task = ctx.progress.add_task(label, total=total) if ctx.progress else None
    deadline = time.monotonic() + timeout
    try:
        with ctx.workers_running():
            while not all([w.done() for w in workers]) and time.monotonic() < deadline:
                if task is not None:
                    ctx.progress.update(task, completed=sum(w.progress() for w in workers))
                time.sleep(POLL_S)  # never spin: the workers and the broker share this host's cores
            ctx.handover_cpu_s += sum(getattr(w, "handover_cpu_s", 0.0) for w in workers)
        results = []
        for w in workers:
            try:
                results.append(w.result(timeout=max(1.0, deadline - time.monotonic())))
            except WorkerError as exc:
                for other in workers:
                    other.kill()
                raise TestFailed(str(exc)) from exc
        if task is not None:
            ctx.progress.update(task, completed=sum(w.progress() for w in workers))
        return results
    finally:
        if task is not None:
            ctx.progress.remove_task(task)


def wait_ready(workers: list[Worker], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not all(w.ready() for w in workers):
        if time.monotonic() > deadline:
            raise TestFailed(f"workers not ready after {timeout:.0f} s")
        dead = [w for w in workers if not w.alive() and not w.ready()]
        if dead:
            try:
                dead[0].result(timeout=2)
            except WorkerError as exc:
                raise TestFailed(str(exc)) from exc
        time.sleep(0.02)


def watermarks(ctx: RunContext, topic: str) -> dict[int, tuple[int, int]]:
    """{partition: (log start offset, end offset)} of a topic, as the broker reports them now."""
    start = ctx.admin.list_offsets(topic, None, EARLIEST)
    end = ctx.admin.list_offsets(topic, None, LATEST)
    return {p: (start[p], end[p]) for p in sorted(end)}


def end_offsets(ctx: RunContext, topic: str) -> dict[int, int]:
    """{partition: end offset}: where a consumer that read everything written so far stands (taken after a read, so
    a broker that is slow to advance its high watermark, as Tansu is, cannot turn unread messages into lost ones)."""
    return {p: hi for p, (_, hi) in watermarks(ctx, topic).items()}


def produce_to(ctx: RunContext, topic: str, partitions: int, label: str) -> Filled:
    """Untimed fill: one producer writes num_messages to the topic."""
    n = ctx.cfg.num_messages
    w = ctx.driver.start_producer(producer_spec(ctx, topic, partitions, 0, n))
    (r,) = wait_for(ctx, label, [w], n, timeout=max(300.0, n / 500))
    return Filled(topic, partitions, [expected_of(r)])


def read_back(ctx: RunContext, topic: str, partitions: int, expected: list[Expected], label: str) -> dict:
    """Untimed: read the whole topic with one consumer and verify it against what was acknowledged."""
    total = sum(e.acked for e in expected)
    spec = consumer_spec(ctx, topic, partitions, total, idle_timeout_s=15.0, worker_id=0, owed=owed(expected))
    (r,) = wait_for(ctx, label, [ctx.driver.start_consumer(spec)], total, timeout=max(120.0, total / 2000))
    out = verify(expected, [Stream(r.partition, r.pid, r.seq)], ctx.partition_of(partitions),
                 unread_counts(end_offsets(ctx, topic), [r.positions]))
    out["method"] = "read back after the test (untimed) until every acknowledged id arrived"
    return out


def owed(expected: list[Expected]) -> list[tuple[int, int, list[int], int]]:
    """What a consumer waits for: (producer id, sent, failed sequences, unknown) of each producer."""
    return [(e.pid, e.sent, sorted(e.failed), e.unknown) for e in expected]


def expected_of(r: ProducerResult) -> Expected:
    """What a consumer is owed of what a producer sent."""
    return Expected(r.pid, r.sent, set(r.failed), r.unknown)


def entry(test: str, ctx: RunContext, messages: int, nbytes: int, duration_s: float, **extra) -> dict:
    """One element of results.json's `results` list."""
    out = {"test": test, "driver": ctx.driver.name, "messages": int(messages), "bytes": int(nbytes),
           "duration_s": round(duration_s, 6),
           "throughput_msgs_s": messages / duration_s if duration_s > 0 else None,
           "throughput_mb_s": nbytes / duration_s / 1e6 if duration_s > 0 else None,
           "latency_ms": None, "verification": None, "errors": []}
    if duration_s < MIN_WINDOW_S:
        out["short_window"] = f"{duration_s:.3f} s window: too short to trust the rate"
    out.update(extra)
    return out


def cpu_figures(r: WorkerResult, messages: int) -> dict:
    """A worker's CPU over its throughput window: seconds, cores kept busy, and messages per core-second (CPU before
    the window, such as a JVM's start-up, apart as startup_cpu_s)."""
    cpu, window = r.cpu_s, r.cpu_window_s
    return {"client_cpu_s": cpu, "client_cpu_window_s": round(window, 4) if window else window,
            "cores_used": round(cpu / window, 3) if cpu is not None and window else None,
            "msgs_per_core_s": messages / cpu if cpu else None, "startup_cpu_s": r.startup_cpu_s}


def timeline_rates(timeline: list[tuple[int, int]]) -> list[list[float]]:
    """[(t_ns, cumulative count)] -> [[t_s, msgs/s in the interval ending at t]]."""
    out = []
    prev_t, prev_n = 0, 0
    for t, n in timeline:
        if t > prev_t:
            out.append([round(t / 1e9, 3), (n - prev_n) / ((t - prev_t) / 1e9)])
            prev_t, prev_n = t, n
    return out
