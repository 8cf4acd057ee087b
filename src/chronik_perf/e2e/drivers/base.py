"""The driver interface: how a benchmark starts producers and consumers without knowing the client.

A driver starts *workers* — separate processes — that produce or consume one workload and report
their progress while running and a result (worker_results.ProducerResult / ConsumerResult) when done. Benchmarks only talk to `Worker` and
`Driver`, so a client (librdkafka, Kafka's Java tools, our native core) slots in by implementing
`start_producer` and `start_consumer` (and optionally `start_latency`).
"""

from __future__ import annotations

import multiprocessing as mp
import multiprocessing.connection as mp_connection
import os
import queue
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from .. import histograms
from .worker_results import ConsumerResult, ProducerResult, WorkerResult

SAMPLE_EVERY_NS = 250_000_000  # progress and throughput-timeline sampling period of every worker
SPIN_NS = 60_000  # Linux's timer slack (50 µs) makes a sleep overshoot by about this: the last stretch is waited out
END_GRACE_S = 5.0  # a worker told to end (SIGTERM) has this long, all of them together, before it is killed (SIGKILL)


def wait_until(t_ns: int) -> None:
    """Return at monotonic time t_ns, not before: sleep most of the way, then wait out the last SPIN_NS in a loop (a
    message is never sent early with a later stamp, which would understate its latency)."""
    left = t_ns - time.monotonic_ns()
    if left > SPIN_NS:
        time.sleep((left - SPIN_NS) / 1e9)
    while time.monotonic_ns() < t_ns:
        pass


class FixedRate:
    """The fixed-rate schedule of a latency producer: message seq is due at start_ns + seq / rate (monotonic ns)."""

    def __init__(self, start_ns: int, rate: float):
        self.start, self.interval = start_ns, 1e9 / rate

    def wait(self, seq: int) -> int:
        """Wait until message seq is due (at once when behind: a stall shows in the latency, not in fewer sends);
        return its intended send time, the stamp it carries."""
        intended = self.start + int(seq * self.interval)
        wait_until(intended)
        return intended


@dataclass
class ProducerSpec:
    """One producer's workload."""

    bootstrap_servers: str
    topic: str
    pid: int
    num_messages: int
    message_size: int
    payload: str
    key_pattern: str
    num_partitions: int
    run_length: int
    client_config: dict[str, Any]
    rate: float | None = None  # messages/s on a fixed schedule; None = as fast as acknowledged
    timeout_s: float = 120.0
    duration_s: float | None = None  # stop sending after this long (num_messages is then only a ceiling)


@dataclass
class ConsumerSpec:
    """One consumer's workload: read until every acknowledged id of `owed` arrived, else until `expected` distinct
    ids arrived, else (both None) until stopped; an idle timeout ends a read that cannot complete."""

    bootstrap_servers: str
    topic: str
    client_config: dict[str, Any]
    expected: int | None = None
    group: str | None = None  # subscribe as a member of this group; None = assign all partitions
    group_protocol: str = "classic"
    partitions: list[int] = field(default_factory=list)
    record_latency: bool = False  # return a latency histogram (histograms.measured) of what arrived
    latency_from_seq: int = 0     # ... of the sequences from this one on (the earlier ones are the warm-up)
    latency_corrections: dict[int, int] | None = None  # ... of these producer ids only, each latency plus its
    # correction in ns (a producer on another host's clock); None: every producer, uncorrected
    idle_timeout_s: float = 30.0
    worker_id: int = 0
    owed: list[tuple[int, int, list[int], int]] | None = None  # (producer id, sent, failed seqs, unknown) each


class Control:
    """The worker's side of the channel to the benchmark process."""

    def __init__(self, counter, ready, go, stop, events):
        self._counter, self._ready, self._go, self._stop, self._events = counter, ready, go, stop, events
        self.started = None  # (os.times(), time.monotonic()) when the start signal came, for CPU accounting

    def progress(self, n: int) -> None:
        self._counter.value = n

    def set_ready(self) -> None:
        self._ready.set()

    def wait_go(self, timeout: float = 120.0) -> None:
        """Block until the benchmark starts all workers of a test together (returns at once if not gated)."""
        if not self._go.wait(timeout):
            raise RuntimeError("no start signal from the benchmark process")
        self.started = (os.times(), time.monotonic())

    def should_stop(self) -> bool:
        return self._stop.is_set()

    def emit(self, kind: str, **data) -> None:
        self._events.put((kind, time.monotonic_ns(), data))


class Worker:
    """A running producer or consumer, seen from the benchmark process."""

    def progress(self) -> int: ...
    def ready(self) -> bool: ...
    def go(self) -> None: ...
    def alive(self) -> bool: ...
    def done(self) -> bool: ...
    def events(self) -> list[tuple]: ...
    def stop(self) -> None: ...
    def kill(self) -> None: ...

    name = "worker"     # how a timeout names it
    poll_s = 0.0        # sleep between done() checks (0: done() waits by itself)
    _outcome = None     # ("ok", WorkerResult) or ("error", message), set by done()

    def result(self, timeout: float) -> WorkerResult:
        """Wait for the worker's result; raises WorkerError if it failed, died or timed out."""
        deadline = time.monotonic() + timeout
        while not self.done():
            if time.monotonic() > deadline:
                self.kill()
                raise WorkerError(f"{self.name} did not finish within {timeout:.0f} s")
            time.sleep(self.poll_s)
        self.reap()
        status, payload = self._outcome
        if status != "ok":
            raise WorkerError(payload)
        return payload

    def reap(self) -> None:
        """Collect the finished worker's process, where there is one to collect."""


_LOCAL: list["LocalWorker"] = []  # the LocalWorkers this process started that may still run


class LocalWorker(Worker):
    """A worker in a process of this host, ended by signals; every one is tracked so that a failure or Ctrl-C can
    end them all (end_local_workers) whatever they and the broker are doing."""

    def _track(self) -> None:
        _LOCAL[:] = [w for w in _LOCAL if w.alive()] + [self]

    def _signal(self, hard: bool) -> None:
        """Send the worker's process SIGTERM, or SIGKILL when hard."""
        raise NotImplementedError

    def _ended(self, timeout: float) -> bool:
        """Wait up to timeout seconds for the process to exit; True once it has."""
        raise NotImplementedError

    def kill(self) -> None:
        end_workers([self])


def end_workers(workers: list[LocalWorker], grace: float = END_GRACE_S, hurry: threading.Event | None = None) -> None:
    """End the workers still running: SIGTERM to all, at most `grace` seconds for all of them together (less once
    `hurry` is set: a second Ctrl-C), then SIGKILL to what is left."""
    running = [w for w in workers if w.alive()]
    for w in running:
        w._signal(hard=False)
    deadline = time.monotonic() + grace
    for w in running:
        while not w._ended(min(0.1, max(0.0, deadline - time.monotonic()))):
            if time.monotonic() >= deadline or (hurry is not None and hurry.is_set()):
                break
    for w in running:
        if w.alive():
            w._signal(hard=True)
    for w in running:
        w._ended(1.0)  # a killed process is gone at once; its exit status is collected here


def end_local_workers(grace: float = END_GRACE_S, hurry: threading.Event | None = None) -> None:
    """End every worker this process started that still runs (see end_workers)."""
    end_workers(list(_LOCAL), grace, hurry)


_CTX = mp.get_context("spawn")  # librdkafka's threads do not survive fork()


def _exit_with_parent() -> None:
    """End this worker process when the process that started it dies (a killed Dask worker leaves no orphan)."""
    parent = mp.parent_process()
    if parent is not None:
        threading.Thread(target=lambda: (mp_connection.wait([parent.sentinel]), os._exit(70)), daemon=True).start()


def _run(fn, spec, ctl, results):
    _exit_with_parent()
    try:
        t0, m0 = os.times(), time.monotonic()
        out = fn(spec, ctl)
        t1, m1 = os.times(), time.monotonic()
        if ctl.started is not None:  # a gated worker counts from its start signal, not from its set-up
            t0, m0 = ctl.started
        out.cpu_s = (t1.user - t0.user) + (t1.system - t0.system)
        out.cpu_window_s = m1 - m0
        results.put(("ok", out))
    except BaseException as exc:  # reported to the parent, which decides what failed
        results.put(("error", f"{type(exc).__name__}: {exc}"))


class ProcessWorker(LocalWorker):
    """Runs fn(spec, control) -> WorkerResult in a fresh Python process; gated workers wait for go()."""

    def __init__(self, fn: Callable[[Any, Control], WorkerResult], spec, gated: bool = False):
        self._counter = _CTX.Value("q", 0, lock=False)
        self._ready = _CTX.Event()
        self._go = _CTX.Event()
        if not gated:
            self._go.set()
        self._stop = _CTX.Event()
        self._events = _CTX.Queue()
        self._results = _CTX.Queue()
        ctl = Control(self._counter, self._ready, self._go, self._stop, self._events)
        self._proc = _CTX.Process(target=_run, args=(fn, spec, ctl, self._results), daemon=True)
        self._proc.start()
        self._outcome = None
        self._track()

    def progress(self) -> int:
        return self._counter.value

    def ready(self) -> bool:
        return self._ready.is_set()

    def go(self) -> None:
        self._go.set()

    def alive(self) -> bool:
        return self._proc.is_alive()

    def events(self) -> list[tuple]:
        out = []
        while True:
            try:
                out.append(self._events.get_nowait())
            except queue.Empty:
                return out

    def stop(self) -> None:
        self._stop.set()

    def done(self) -> bool:
        """True once the worker has handed over its result (or died). Reading the result here also
        lets a worker with a large result exit: its queue cannot flush until someone reads it."""
        if self._outcome is None:
            cpu = time.process_time()
            try:
                self._outcome = self._results.get(timeout=0.05)
                self.handover_cpu_s = time.process_time() - cpu  # unpickling the result: after the worker's window
            except queue.Empty:
                if not self._proc.is_alive():
                    try:
                        self._outcome = self._results.get(timeout=1.0)
                    except queue.Empty:
                        self._outcome = ("error", f"worker process died (exit code {self._proc.exitcode})")
        return self._outcome is not None

    def reap(self) -> None:
        self._proc.join(5)

    def _signal(self, hard: bool) -> None:
        if self._proc.exitcode is None:
            self._proc.kill() if hard else self._proc.terminate()

    def _ended(self, timeout: float) -> bool:
        self._proc.join(timeout)
        return self._proc.exitcode is not None


class WorkerError(RuntimeError):
    """A producer or consumer worker failed; the message says why."""


class Driver:
    """Base of all drivers. Subclasses set `name` and implement the start_* methods."""

    name = "base"
    verifies = True  # workers report (producer id, sequence) of what they read
    # What a benchmark does per message with this driver, shown beside its figures in driver comparisons.
    producer_work = {"per_message": "?"}
    consumer_work = {"per_message": "?", "crc_checked": None}

    def describe(self) -> dict:
        """Name and version of the client library this driver uses."""
        raise NotImplementedError

    def unsupported(self, test: str) -> str | None:
        """Why this driver cannot run `test`, or None."""
        return None

    def start_producer(self, spec: ProducerSpec, gated: bool = False) -> Worker:
        """Start a producer; a gated one connects, reports ready, and waits for Worker.go()."""
        raise NotImplementedError

    def start_consumer(self, spec: ConsumerSpec) -> Worker:
        raise NotImplementedError

    def start_latency(self, spec: ProducerSpec, consumer: ConsumerSpec) -> Worker | None:
        """A driver whose tool measures latency on its own returns its worker; None = use producer + consumer."""
        return None

    def latency_pairs(self, limit: int) -> int:
        """How many producer-consumer pairs the latency test runs (at most `limit`): one on a single host."""
        return 1

    def take_placement(self) -> dict:
        """Fields for the finished test's result saying where its workers ran (none: all on this host)."""
        return {}

    def shutdown(self, hurry: threading.Event | None = None) -> None:
        """End every worker still running, after a failure or Ctrl-C: SIGTERM, then SIGKILL after END_GRACE_S or
        once `hurry` is set."""
        end_local_workers(hurry=hurry)


class ConsumeTally:
    """What every consumer worker counts: arrivals, positions, the throughput timeline, the idle timeout, its result.

    It stops when every acknowledged (producer, sequence) id it is owed arrived, else on the count of distinct ids:
    duplicates and strangers never end a read early."""

    def __init__(self, spec: ConsumerSpec, ctl: Control):
        self.spec, self.ctl = spec, ctl
        if ctl.started is None:  # the worker's CPU counts from here: imports and connecting are not the read's
            ctl.started = (os.times(), time.monotonic())
        self.received = self.nbytes = 0
        self.start = time.monotonic_ns()
        self.first = self.last = None
        self.arrivals: list[tuple[int, int]] = []  # (arrival ns, messages in that poll)
        self.timeline: list[tuple[int, int]] = []
        self.positions: dict[int, int] = {}  # partition -> offset after the last message read
        self.counts_ids = spec.owed is not None or spec.expected is not None
        self._ids: set[int] = set()                    # distinct ids so far, when nothing says which are owed
        self._seen = {pid: np.zeros(sent, dtype=bool) for pid, sent, _, _ in spec.owed or ()}
        self._owed_left = sum(sent - len(failed) - unknown for _, sent, failed, unknown in spec.owed or ())
        for pid, _, failed, _ in spec.owed or ():
            self._seen[pid][np.asarray(failed, dtype=np.int64)] = True  # not acknowledged: not waited for
        self.last_activity = time.monotonic()
        self.next_sample = self.start + SAMPLE_EVERY_NS
        self.timed_out = False

    def wanted(self) -> bool:
        """More messages to read (always, when the spec sets no end)."""
        if self.spec.owed is not None:
            return self._owed_left > 0
        return self.spec.expected is None or len(self._ids) < self.spec.expected

    def reached(self, partition: int, next_offset: int) -> None:
        """The consumer read partition up to (not including) next_offset."""
        if next_offset > self.positions.get(partition, -1):
            self.positions[partition] = next_offset

    def ids(self, pid: np.ndarray, seq: np.ndarray) -> None:
        """Note the ids that arrived (only needed when counts_ids)."""
        if self.spec.owed is None:
            if self.counts_ids:
                self._ids.update(((pid.astype(np.int64) << 40) | seq.astype(np.int64)).tolist())
            return
        pid, seq = pid.astype(np.int64), seq.astype(np.int64)
        for q in np.unique(pid).tolist():
            seen = self._seen.get(q)
            if seen is None:
                continue
            s = seq[pid == q]
            s = np.unique(s[s < len(seen)])
            self._owed_left -= int(np.count_nonzero(~seen[s]))
            seen[s] = True

    def record(self, t: int, got: int) -> bool:
        """Count one poll's `got` messages that arrived at monotonic ns `t`; False once idle for too long."""
        if got:
            if self.first is None:
                self.first = t
            self.last = t
            self.received += got
            self.last_activity = time.monotonic()
            self.arrivals.append((t, got))
        elif self.counts_ids and self.wanted() and time.monotonic() - self.last_activity > self.spec.idle_timeout_s:
            self.timed_out = True
            return False
        if t >= self.next_sample:
            self.timeline.append((t - self.start, self.received))
            self.ctl.progress(self.received)
            self.next_sample = t + SAMPLE_EVERY_NS
        return True

    def finish(self) -> None:
        """The last progress report and timeline point."""
        self.ctl.progress(self.received)
        self.timeline.append((time.monotonic_ns() - self.start, self.received))

    def result(self, errors: list[str], partition: np.ndarray, header: np.ndarray) -> ConsumerResult:
        """The worker's result from the benchmark headers (pid, seq, ts) of what arrived."""
        arrival = np.repeat(np.array([a for a, _ in self.arrivals], dtype=np.int64),
                            np.array([n for _, n in self.arrivals], dtype=np.int64))
        if self.timed_out:
            errors = errors + [f"no message for {self.spec.idle_timeout_s:.0f} s; stopped after {self.received} "
                               f"messages (positions {self.positions})"]
        return ConsumerResult(
            worker=self.spec.worker_id, received=self.received, nbytes=self.nbytes, start_ns=self.start,
            first_ns=self.first, last_ns=self.last, timeline=self.timeline, errors=errors, partition=partition,
            pid=header["pid"].astype(np.int64), seq=header["seq"].astype(np.int64), arrival_ns=arrival,
            positions=dict(self.positions),
            **(histograms.measured(arrival - header["ts"].astype(np.int64), header["pid"], header["seq"],
                                   self.spec.latency_from_seq, self.spec.latency_corrections)
               if self.spec.record_latency else {}))


class ProduceTally:
    """What every producer worker counts: its window, the acknowledged-count timeline sampled every SAMPLE_EVERY_NS
    (also reported as progress), and its result."""

    def __init__(self, spec: ProducerSpec, ctl: Control):
        self.spec, self.ctl = spec, ctl
        self.start = time.monotonic_ns()
        self.end: int | None = None
        self.stop_at = self.start + int(spec.duration_s * 1e9) if spec.duration_s else None
        self.timeline: list[tuple[int, int]] = []
        self._next_sample = self.start + SAMPLE_EVERY_NS

    def tick(self, acked: Callable[[], int]) -> None:
        """Sample the acknowledged count when a sampling period has passed (acked() is only called then)."""
        t = time.monotonic_ns()
        if t >= self._next_sample:
            self.sample(t, acked())

    def sample(self, t: int, acked: int) -> None:
        """Note `acked` messages acknowledged at monotonic ns t."""
        self.timeline.append((t - self.start, acked))
        self.ctl.progress(acked)
        self._next_sample = t + SAMPLE_EVERY_NS

    def finish(self) -> None:
        """The window ends now (the producer stopped waiting for acknowledgements)."""
        self.end = time.monotonic_ns()

    def result(self, sent: int, acked: int, failed, unknown: int, errors: list[str], **figures) -> ProducerResult:
        """The worker's result; the last timeline point and progress report are at the end of the window."""
        self.timeline.append((self.end - self.start, acked))
        self.ctl.progress(acked)
        return ProducerResult(pid=self.spec.pid, sent=sent, acked=acked, failed=sorted(set(failed)), unknown=unknown,
                              nbytes=acked * self.spec.message_size, start_ns=self.start, end_ns=self.end,
                              timeline=self.timeline, errors=errors, **figures)
