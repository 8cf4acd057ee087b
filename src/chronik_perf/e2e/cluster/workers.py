"""The coordinator's side of a task on a Dask worker: a `Worker` like the local ones, plus where it ran."""

from __future__ import annotations

import dataclasses
import threading
import time
import uuid
from dataclasses import dataclass, field

import numpy as np

from ..drivers.base import Worker
from ..drivers.worker_results import WorkerResult
from .clocks import Offset
from .remote import run_role

# absolute CLOCK_MONOTONIC stamps in worker results (arrival_ns: one per message read)
STAMPS = ("start_ns", "end_ns", "first_ns", "last_ns", "arrival_ns")
START_TIMEOUT_S = 300.0   # a task's first report (the worker may import the driver or fetch Kafka's jars first)
KILL_GRACE_S = 10.0       # a killed task that has not ended by then gets its Dask worker restarted


@dataclass
class DaskWorker:
    """One Dask worker as the coordinator knows it."""

    address: str
    host: str
    resources: dict
    facts: dict
    offset: Offset

    def describe(self) -> dict:
        return {"address": self.address, "host": self.host, "pid": self.facts.get("pid"),
                "resources": self.resources, "clock": self.offset.to_dict(),
                "dask_config": self.facts.get("dask_config")}


@dataclass
class Record:
    """Where one task ran and what it did, for the results' placement and per-host rates."""

    role: str
    id: int
    worker: DaskWorker
    topic: str = ""
    messages: int | None = None
    window_ns: tuple[int, int] | None = None
    error: str | None = None

    def to_dict(self) -> dict:
        out = {"role": self.role, "id": self.id, "worker": self.worker.address, "host": self.worker.host,
               "topic": self.topic, "messages": self.messages}
        if self.window_ns:
            seconds = (self.window_ns[1] - self.window_ns[0]) / 1e9
            out["seconds"] = round(seconds, 6)
            out["throughput_msgs_s"] = self.messages / seconds if seconds > 0 and self.messages else None
        if self.error:
            out["error"] = self.error
        return out


@dataclass
class Relay:
    """What the task last reported (written by the Dask client's event thread, read by the benchmark)."""

    progress: int = 0
    ready: bool = False
    heard: float | None = None
    events: list = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    wake: threading.Event = field(default_factory=threading.Event)


class ClusterWorker(Worker):
    """A producer or consumer running as a task pinned to one Dask worker."""

    def __init__(self, session, record: Record, driver: tuple[str, str | None], specs: tuple, gated: bool = False,
                 gate: str | None = None):
        self.session, self.record = session, record
        w = record.worker
        self.name = f"{record.role} {record.id} on Dask worker {w.address} ({w.host})"
        self.key = f"chronik-perf-{record.role}-{uuid.uuid4().hex[:12]}"
        self._gate = gate
        self._relay = Relay()
        self._started = time.monotonic()
        self._outcome = None
        session.listen(self.key, self._on_report)
        self.future = session.client.submit(run_role, driver, record.role, specs, gated, gate, self.key,
                                            session.topic, key=self.key, workers=[w.address],
                                            allow_other_workers=False, pure=False)
        self.future.add_done_callback(lambda _: self._relay.wake.set())

    def _on_report(self, msg: dict) -> None:
        r = self._relay
        off = self.record.worker.offset.offset_ns
        with r.lock:
            r.progress, r.ready, r.heard = msg["progress"], msg["ready"], time.monotonic()
            r.events.extend((kind, t - off, data) for kind, t, data in msg["events"])
        r.wake.set()

    def progress(self) -> int:
        return self._relay.progress

    def ready(self) -> bool:
        return self._relay.ready

    def go(self) -> None:
        self.session.release(self._gate)

    def alive(self) -> bool:
        return self._outcome is None and not self.future.done()

    def events(self) -> list[tuple]:
        with self._relay.lock:
            out, self._relay.events = self._relay.events, []
        return out

    def stop(self) -> None:
        self.session.command(self.key, "stop")

    def done(self) -> bool:
        """True once the task returned, failed, or its Dask worker died or fell silent."""
        if self._outcome is None:
            if self.future.done():
                self._finish()
            elif (silence := self._silence()) is not None:
                self._fail(silence, lost=True)
                self.kill()
            else:
                self._relay.wake.wait(0.05)
                self._relay.wake.clear()
        return self._outcome is not None

    def _silence(self) -> str | None:
        heard, now = self._relay.heard, time.monotonic()
        if heard is None and now - self._started > START_TIMEOUT_S:
            return f"{self.name} did not start within {START_TIMEOUT_S:.0f} s"
        limit = self.session.heartbeat_timeout_s
        if heard is not None and now - heard > limit:
            return f"{self.name} sent no report for {limit:.0f} s: the Dask worker hung or lost its connection"
        return None

    def _finish(self) -> None:
        f = self.future
        if f.status == "finished":
            try:
                result = f.result()
            except Exception as exc:  # the result could not be fetched from the worker
                self._fail(f"{self.name}: result lost: {type(exc).__name__}: {exc}")
                return
            self._outcome = ("ok", self._translate(result))
            return
        exc = f.exception() if f.status == "error" else None
        if type(exc).__name__ == "KilledWorker":
            self._fail(f"{self.name}: the Dask worker died while running it", lost=True)
        elif exc is not None:
            self._fail(f"{self.name}: {type(exc).__name__}: {exc}")
        else:
            self._fail(f"{self.name}: task {f.status}")

    def _fail(self, why: str, lost: bool = False) -> None:
        self._outcome = ("error", why)
        self.record.error = why
        if lost:
            self.session.worker_lost(self.record.worker.address)

    def _translate(self, r: WorkerResult) -> WorkerResult:
        """Stamps into the coordinator's CLOCK_MONOTONIC (latencies arrive corrected: latency_corrections)."""
        off = self.record.worker.offset.offset_ns
        moved = {}
        for k in STAMPS:
            v = getattr(r, k, None)
            if isinstance(v, np.ndarray):
                moved[k] = v.astype(np.int64) - off
            elif v is not None:
                moved[k] = int(v) - off
        out = dataclasses.replace(r, **moved)
        messages = next((getattr(out, k) for k in ("acked", "received", "messages")
                         if getattr(out, k, None) is not None), None)
        self.record.messages = int(messages) if messages is not None else None
        start, end = getattr(out, "start_ns", None), getattr(out, "end_ns", None) or getattr(out, "last_ns", None)
        if start is not None and end is not None:
            self.record.window_ns = (start, end)
        return out

    def kill(self) -> None:
        """Stop the task; restart its Dask worker (the hard stop) if the task has not ended within KILL_GRACE_S."""
        if self.future.done():
            return
        self.session.command(self.key, "kill")
        deadline = time.monotonic() + KILL_GRACE_S
        while not self.future.done() and time.monotonic() < deadline:
            self._relay.wake.wait(0.1)
            self._relay.wake.clear()
        if not self.future.done():
            self.session.hard_stop(self.record.worker.address)
            self.future.cancel()
        if self._outcome is None:
            self._fail(f"{self.name}: stopped")
