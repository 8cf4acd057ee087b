"""The java driver: Kafka's own ProducerPerformance, ConsumerPerformance and EndToEndLatency.

The reference every other driver is judged against. The tools run as separate JVM processes on the
same workload (topic, counts, sizes, acks, compression, batching) and their output is parsed into the
same results (worker_results). They write their own payloads without our (producer id, sequence) header, so
delivery is checked by counting (log end offsets) instead of per message; their producer latency is
acknowledgement latency, kept apart as `ack_latency_ms`; EndToEndLatency sends one message at a time
and waits for it (a closed loop, not a fixed-rate schedule) and reports only avg, p50, p99 and p99.9.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
import threading
import time
import uuid

import psutil

from .base import ConsumerSpec, Driver, LocalWorker, ProducerSpec, Worker, WorkerError
from .worker_results import ConsumerResult, LatencyResult, ProducerResult, WorkerResult

_PROGRESS = re.compile(r"^(\d+) records sent, ")
_FINAL = re.compile(r"^(\d+) records sent, ([\d.]+) records/sec \(([\d.]+) MB/sec\), ([\d.]+) ms avg latency, "
                    r"([\d.]+) ms max latency, (\d+) ms 50th, (\d+) ms 95th, (\d+) ms 99th, (\d+) ms 99.9th")
_E2E_AVG = re.compile(r"Avg latency: ([\d.]+) ms")
_E2E_PCT = re.compile(r"Percentiles: 50th = (\d+), 99th = (\d+), 99.9th = (\d+)")
_METRIC = re.compile(r"^([\w-]+):([\w.-]+):\{([^}]*)\}\s*:\s*(\S+)\s*$")
_EARLY_EXIT = "WARNING: Exiting before consuming"
# --print-metrics figures kept in a producer result (client-wide, from the producer-metrics group)
PRODUCER_METRICS = ("batch-size-avg", "records-per-request-avg", "request-latency-avg", "record-queue-time-avg",
                    "record-size-avg", "outgoing-byte-total", "request-total", "record-send-total")


def parse_producer(stdout: str) -> dict:
    """ProducerPerformance's final summary line -> records, rate and acknowledgement latency (ms)."""
    finals = [m for m in (_FINAL.match(line.strip()) for line in stdout.splitlines()) if m]
    if not finals:
        raise ValueError("no summary line in ProducerPerformance output")
    m = finals[0]  # the whole run; a later 'steady state' line (4.2 with warm-up) covers only a part
    avg, mx, p50, p95, p99, p999 = (float(m.group(i)) for i in range(4, 10))
    return {"records": int(m.group(1)), "records_per_s": float(m.group(2)),
            "ack_latency_ms": {"avg": avg, "p50": p50, "p95": p95, "p99": p99, "p999": p999, "max": mx}}


def parse_metrics(stdout: str, group: str) -> dict:
    """The `group:name:{tags} : value` lines --print-metrics writes -> {name: float} for one metric group."""
    out = {}
    for line in stdout.splitlines():
        m = _METRIC.match(line.strip())
        if m and m.group(1) == group:
            try:
                out[m.group(2)] = float(m.group(4))
            except ValueError:
                continue
    return out


def producer_batching(metrics: dict) -> dict:
    """Records and bytes per request, bytes per batch and an estimate of records per batch from ProducerPerformance's
    --print-metrics figures."""
    requests = metrics.get("request-total") or 0
    sent, records, per_batch = (metrics.get(k) for k in ("outgoing-byte-total", "record-send-total", "batch-size-avg"))
    # batches ~ bytes sent / bytes per batch: request headers (~100 B a request) and metadata requests count as batch
    # bytes, a fraction of a percent with batches of kilobytes
    estimate = records * per_batch / sent if sent and records and per_batch else None
    return {"records_per_request": metrics.get("records-per-request-avg"),
            "bytes_per_request": sent / requests if requests and sent is not None else None,
            "bytes_per_batch": per_batch,
            "records_per_batch": estimate,
            "method": "Java producer metrics (--print-metrics); the client has no records-per-batch figure: it is "
                      "estimated as record-send-total x batch-size-avg / outgoing-byte-total (batch-size-avg "
                      "averages over the client's last 30-60 s)"}


def parse_consumer(stdout: str) -> dict:
    """ConsumerPerformance's data line (after its header; warnings and log lines may come between) -> messages,
    bytes and times."""
    lines = [ln.strip() for ln in stdout.splitlines() if ln.strip()]
    header = next((i for i, line in enumerate(lines) if line.startswith("start.time")), None)
    for line in lines[header + 1:] if header is not None else []:
        f = [x.strip() for x in line.split(",")]
        if len(f) >= 10 and f[4].isdigit():
            return {"mb": float(f[2]), "messages": int(f[4]), "rebalance_ms": int(f[6]), "fetch_ms": int(f[7])}
    raise ValueError("no data line in ConsumerPerformance output")


def check_consumed(stdout: str, stderr: str, messages: int, expected: int) -> None:
    """Raise ValueError when ConsumerPerformance stopped before reading `expected` messages (its warning or a
    short count): a run that did not read everything is a failure, not a throughput figure."""
    warning = next((ln.strip() for ln in (stdout + "\n" + stderr).splitlines() if _EARLY_EXIT in ln), None)
    if warning or messages < expected:
        raise ValueError(f"ConsumerPerformance exited early, after {messages} of {expected} messages"
                         + (f" ({warning})" if warning else ""))


def end_to_end_result(stdout: str, messages: int, size: int, started_ns: int, ended_ns: int,
                      errors: list[str]) -> LatencyResult:
    """EndToEndLatency's figures over its own measured loop: the tool's average is the sum of its `messages` round
    trips over their count, so that sum is the window (JVM start-up and connecting stay out of msg/s and are
    reported apart as startup_s)."""
    latency = parse_end_to_end(stdout)
    window_ns = min(int(messages * latency["avg"] * 1e6), ended_ns - started_ns)
    return LatencyResult(messages=messages, nbytes=messages * size, duration_s=window_ns / 1e9, latency_ms=latency,
                         errors=errors, start_ns=ended_ns - window_ns,
                         startup_s=round((ended_ns - started_ns - window_ns) / 1e9, 3),
                         method="EndToEndLatency: one message at a time, each waited for (closed loop); msg/s over "
                                "the sum of its round trips")


def parse_end_to_end(stdout: str) -> dict:
    avg, pct = _E2E_AVG.search(stdout), _E2E_PCT.search(stdout)
    if not avg or not pct:
        raise ValueError("no latency lines in EndToEndLatency output")
    return {"min": None, "avg": float(avg.group(1)), "p50": float(pct.group(1)), "p95": None,
            "p99": float(pct.group(2)), "p999": float(pct.group(3)), "max": None}


# util-linux's setpriv: the kernel kills the JVM (SIGKILL) when the thread that started it ends, so a JVM started by a
# Dask task does not outlive a Dask worker killed mid-run. JavaWorker.go() runs in the thread that then waits for the
# JVM (the benchmark's main thread, or the Dask task's), which outlives the JVM in every other case.
SETPRIV = shutil.which("setpriv")


def dies_with_parent(command: list[str]) -> list[str]:
    """`command` under `setpriv --pdeathsig KILL` where setpriv exists (Linux), else unchanged."""
    return [SETPRIV, "--pdeathsig", "KILL", "--", *command] if SETPRIV else command


CPU_SAMPLE_S = 0.2  # the JVM's CPU time is sampled this often (its start-up is told apart from the window)


class JavaWorker(LocalWorker):
    """A Kafka tool in a JVM; stdout is read by a thread, parsed by `finish` when the process exits."""

    poll_s = 0.1

    def __init__(self, command: list[str], finish, gated: bool = False, cleanup: str | None = None):
        self._command, self._finish, self._cleanup = command, finish, cleanup
        self.name = command[-1]
        self._proc = None
        self._lines: list[str] = []
        self._sent = 0
        self._outcome = None
        if not gated:
            self.go()

    def go(self) -> None:
        if self._proc is None:
            self.started_ns = time.monotonic_ns()
            self._proc = subprocess.Popen(dies_with_parent(self._command), stdout=subprocess.PIPE,
                                          stderr=subprocess.PIPE, text=True)
            self._stderr: list[str] = []
            self._cpu: list[tuple[int, float]] = []  # (monotonic ns, the JVM's CPU seconds so far)
            self._readers = [threading.Thread(target=self._read, daemon=True),
                             threading.Thread(target=lambda: self._stderr.extend(self._proc.stderr), daemon=True)]
            for t in self._readers:
                t.start()
            threading.Thread(target=self._sample_cpu, daemon=True).start()
            self._track()

    def _read(self) -> None:
        for line in self._proc.stdout:
            self._lines.append(line)
            m = _PROGRESS.match(line)
            if m and not _FINAL.match(line):
                self._sent += int(m.group(1))

    def _sample_cpu(self) -> None:
        """The JVM's CPU seconds, sampled every CPU_SAMPLE_S until it exits."""
        try:
            proc = psutil.Process(self._proc.pid)
            while self._proc.poll() is None:
                t = proc.cpu_times()
                self._cpu.append((time.monotonic_ns(), t.user + t.system))
                time.sleep(CPU_SAMPLE_S)
        except psutil.Error:
            pass  # exited between poll() and cpu_times()

    def cpu_over(self, result: WorkerResult, start_ns: int) -> None:
        """Set the result's CPU figures: the JVM's CPU seconds from monotonic start_ns (the throughput window's
        start) to its last sample, and before it (JVM start-up, connecting) apart."""
        samples = list(self._cpu)
        if not samples:
            return
        before = [c for t, c in samples if t <= start_ns]
        at_start = before[-1] if before else 0.0
        end_t, end_c = samples[-1]
        result.cpu_s, result.startup_cpu_s = round(end_c - at_start, 4), round(at_start, 4)
        result.cpu_window_s = max(0.0, (end_t - start_ns) / 1e9)

    def progress(self) -> int:
        return self._sent

    def ready(self) -> bool:
        return True  # a JVM tool connects on its own; readiness cannot be observed from outside

    def alive(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def events(self) -> list[tuple]:
        return []

    def stop(self) -> None:
        self.kill()

    def done(self) -> bool:
        """True once the JVM exited and its output was parsed; never blocks (callers sleep between looks)."""
        if self._outcome is None and self._proc is not None and self._proc.poll() is not None:
            for t in self._readers:  # the pipes are at EOF: the readers finish their last lines
                t.join(5)
            out, err = "".join(self._lines), "".join(self._stderr)
            ended = self._cpu[-1][0] if self._cpu else time.monotonic_ns()
            if self._proc.returncode != 0:
                self._outcome = ("error", f"{self._command[self._command.index('-cp') + 2].rsplit('.', 1)[-1]} "
                                          f"exited {self._proc.returncode}: {_cause(err or out)}")
            else:
                try:
                    result = self._finish(out, err, self.started_ns, ended)
                    self.cpu_over(result, getattr(result, "start_ns", None) or self.started_ns)
                    self._outcome = ("ok", result)
                except ValueError as exc:
                    self._outcome = ("error", f"{exc}: {out.strip()[-300:]} {err.strip()[-300:]}")
            if self._cleanup:
                os.unlink(self._cleanup)
        return self._outcome is not None

    def _signal(self, hard: bool) -> None:
        if self.alive():
            self._proc.kill() if hard else self._proc.terminate()

    def _ended(self, timeout: float) -> bool:
        try:
            return self._proc is None or self._proc.wait(timeout) is not None
        except subprocess.TimeoutExpired:
            return False


def _cause(text: str) -> str:
    """The most specific exception line of a Java stack trace (the last 'Caused by'), or the text's end."""
    lines = [ln.strip() for ln in text.splitlines()]
    causes = [ln for ln in lines if ln.startswith("Caused by:")]
    if causes:
        return causes[-1][len("Caused by:"):].strip()[:400]
    exceptions = [ln for ln in lines if ("Exception" in ln or "Error" in ln) and not ln.startswith("at ")]
    return (exceptions[0] if exceptions else text.strip()[-400:])[:400]


def _errors(stderr: str) -> list[str]:
    return [ln.strip() for ln in stderr.splitlines() if "ERROR" in ln or "Exception" in ln][:20]


class JavaDriver(Driver):
    """Kafka's perf tools from the jars the brokers module fetches (Java 17)."""

    name = "java"
    verifies = False
    producer_work = {"per_message": "Java send() per message"}
    consumer_work = {"per_message": "Java ConsumerRecord per message", "crc_checked": True}

    def __init__(self, kafka_version: str | None = None):
        from chronik_perf.brokers import kafka_java
        self.java = kafka_java(kafka_version)

    def describe(self) -> dict:
        out = subprocess.run([self.java.java, "-version"], capture_output=True, text=True)
        return {"driver": self.name, "client": "kafka-tools (ProducerPerformance, ConsumerPerformance, "
                "EndToEndLatency)", "version": self.java.version,
                "java": (out.stderr.splitlines() or ["?"])[0]}

    def unsupported(self, test: str) -> str | None:
        if test == "groups":
            return "Kafka's perf tools have no consumer-group rebalance measurement"
        return None

    def _new_flags(self) -> bool:
        major, minor = (int(x) for x in self.java.version.split(".")[:2])
        return (major, minor) >= (4, 2)

    def producer_command(self, spec: ProducerSpec) -> list[str]:
        """The ProducerPerformance command line a producer worker runs for spec."""
        props = {"bootstrap.servers": spec.bootstrap_servers, **spec.client_config}
        args = ["--topic", spec.topic, "--num-records", str(spec.num_messages), "--record-size",
                str(spec.message_size), "--throughput", str(int(spec.rate)) if spec.rate else "-1",
                "--print-metrics", "--producer-props", *[f"{k}={v}" for k, v in props.items()]]
        return self.java.command("org.apache.kafka.tools.ProducerPerformance", *args)

    def start_producer(self, spec: ProducerSpec, gated: bool = False) -> Worker:
        size = spec.message_size

        def finish(out, err, started, ended):
            p = parse_producer(out)
            metrics = parse_metrics(out, "producer-metrics")
            duration_ns = int(p["records"] / p["records_per_s"] * 1e9) if p["records_per_s"] else ended - started
            return ProducerResult(pid=spec.pid, sent=p["records"], acked=p["records"], nbytes=p["records"] * size,
                                  start_ns=ended - duration_ns, end_ns=ended, errors=_errors(err),
                                  ack_latency_ms=p["ack_latency_ms"],
                                  client_metrics={k: metrics[k] for k in PRODUCER_METRICS if k in metrics},
                                  batching=producer_batching(metrics))

        return JavaWorker(self.producer_command(spec), finish, gated)

    def start_consumer(self, spec: ConsumerSpec) -> Worker:
        if spec.expected is None or spec.record_latency:
            raise WorkerError("ConsumerPerformance reads a fixed number of messages and measures no latency")
        fd, props_file = tempfile.mkstemp(prefix="chronik-perf-consumer-", suffix=".properties")
        with os.fdopen(fd, "w") as fh:
            fh.writelines(f"{k}={v}\n" for k, v in spec.client_config.items())
        count_flag = "--num-records" if self._new_flags() else "--messages"
        args = ["--bootstrap-server", spec.bootstrap_servers, "--topic", spec.topic, count_flag, str(spec.expected),
                "--group", spec.group or f"chronik-perf-java-{spec.topic}-{uuid.uuid4().hex[:8]}", "--timeout",
                str(int(spec.idle_timeout_s * 1000)), "--consumer.config", props_file]

        def finish(out, err, started, ended):
            c = parse_consumer(out)
            check_consumed(out, err, c["messages"], spec.expected)
            return ConsumerResult(worker=spec.worker_id, received=c["messages"], nbytes=int(c["mb"] * 1024 * 1024),
                                  start_ns=ended - c["fetch_ms"] * 1_000_000, last_ns=ended, errors=_errors(err),
                                  rebalance_ms=c["rebalance_ms"])

        return JavaWorker(self.java.command("org.apache.kafka.tools.ConsumerPerformance", *args), finish,
                          cleanup=props_file)

    def start_latency(self, spec: ProducerSpec, consumer: ConsumerSpec) -> Worker:
        fd, props_file = tempfile.mkstemp(prefix="chronik-perf-e2e-", suffix=".properties")
        acks = str(spec.client_config.get("acks", "all"))
        with os.fdopen(fd, "w") as fh:
            fh.writelines(f"{k}={v}\n" for k, v in spec.client_config.items() if k != "acks")
        acks_arg = "all" if acks in ("all", "-1") else acks  # the tool refuses acks=0 with a clear message
        if self._new_flags():
            args = ["--bootstrap-server", spec.bootstrap_servers, "--topic", spec.topic, "--num-records",
                    str(spec.num_messages), "--producer-acks", acks_arg, "--record-size", str(spec.message_size),
                    "--command-config", props_file]
        else:
            args = [spec.bootstrap_servers, spec.topic, str(spec.num_messages), acks_arg, str(spec.message_size),
                    props_file]
        n, size = spec.num_messages, spec.message_size

        def finish(out, err, started, ended):
            return end_to_end_result(out, n, size, started, ended, _errors(err))

        return JavaWorker(self.java.command("org.apache.kafka.tools.EndToEndLatency", *args), finish,
                          cleanup=props_file)
