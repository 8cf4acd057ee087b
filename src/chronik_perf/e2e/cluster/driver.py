"""A driver whose producers and consumers run as tasks pinned to the workers of a Dask cluster.

It wraps a named driver (confluent, native, java): the benchmarks call it as they call any driver, and each
start_* becomes a task on one Dask worker that runs the named driver's usual worker there. Placement is
round-robin over the workers (over the workers started with `--resources producer=1` for producers and
`consumer=1` for consumers, when there are such). The latency test's producer goes to its consumer's host (one
CLOCK_MONOTONIC), or to another host with --cross-host-latency, where the stamps are corrected by both hosts'
measured clock offsets.
"""

from __future__ import annotations

import itertools
import uuid

from ..drivers.base import ConsumerSpec, Driver, ProducerSpec, Worker
from .remote import driver_facts
from .session import Session
from .workers import ClusterWorker, DaskWorker, Record

AGGREGATION = ("acknowledged messages over the common window; each worker's stamps translated to the "
               "coordinator's CLOCK_MONOTONIC by its measured clock offset")


class ClusterDriver(Driver):
    """The named driver, run on the cluster's workers."""

    def __init__(self, session: Session, name: str, kafka_version: str | None = None):
        self.session, self.name, self.kafka_version = session, name, kafka_version
        first = session.usable()[0]
        self._facts = session.client.submit(driver_facts, name, kafka_version, workers=[first.address],
                                            allow_other_workers=False, pure=False).result()
        self.verifies = self._facts["verifies"]
        self._records: list[Record] = []
        self._live: list[ClusterWorker] = []
        self._cycles: dict[str, itertools.cycle] = {}
        self._gate: str | None = None
        self._latency_consumer: ClusterWorker | None = None

    def describe(self) -> dict:
        return {**self._facts["describe"], "cluster": self.session.describe()}

    def unsupported(self, test: str) -> str | None:
        return self._facts["unsupported"].get(test)

    # ---- placement -----------------------------------------------------------------------------------------
    def _next(self, role: str) -> DaskWorker:
        if role not in self._cycles:
            workers = self.session.usable()
            with_role = [w for w in workers if w.resources.get(role)]
            self._cycles[role] = itertools.cycle(with_role or workers)
        return next(self._cycles[role])

    def _pair_host(self, consumer: DaskWorker) -> DaskWorker:
        """The latency producer's worker: the consumer's own (same clock) or, cross-host, one on another host."""
        if not self.session.cross_host_latency:
            return consumer
        workers = self.session.usable()
        other = [w for w in workers if w.facts["boot_id"] != consumer.facts["boot_id"]]
        return (other or [w for w in workers if w.address != consumer.address] or [consumer])[0]

    def _start(self, record: Record, specs: tuple, gated: bool = False) -> ClusterWorker:
        gate = None
        if gated:
            if self._gate is None or self.session.released(self._gate):  # a new batch of producers to start together
                self._gate = f"chronik-perf-gate-{uuid.uuid4().hex[:12]}"
            gate = self._gate
        w = ClusterWorker(self.session, record, (self.name, self.kafka_version), specs, gated, gate)
        self._records.append(record)
        self._live.append(w)
        return w

    # ---- the Driver interface ------------------------------------------------------------------------------
    def start_producer(self, spec: ProducerSpec, gated: bool = False) -> Worker:
        paired = self._latency_consumer
        if spec.rate and paired is not None:  # the latency test: the producer of the consumer started just before
            self._latency_consumer = None
            record = Record("producer", spec.pid, self._pair_host(paired.record.worker), spec.topic)
            paired.record.peer = record.worker
        else:
            record = Record("producer", spec.pid, self._next("producer"), spec.topic)
        return self._start(record, (spec,), gated)

    def start_consumer(self, spec: ConsumerSpec) -> Worker:
        w = self._start(Record("consumer", spec.worker_id, self._next("consumer"), spec.topic), (spec,))
        if spec.record_latency:
            self._latency_consumer = w
        return w

    def start_latency(self, spec: ProducerSpec, consumer: ConsumerSpec) -> Worker | None:
        if not self._facts["own_latency"]:
            return None
        return self._start(Record("latency", spec.pid, self._next("producer"), spec.topic), (spec, consumer))

    def take_placement(self) -> dict:
        """Where the last test's tasks ran and each worker's and host's rate; starts the next test's placement."""
        records, self._records = self._records, []
        self._live = [w for w in self._live if w.alive()]
        self.session.forget()
        self._cycles.clear()
        self._gate = self._latency_consumer = None
        if not records:
            return {}
        tasks = [r.to_dict() for r in records]
        out = {"tasks": tasks, "per_host": per_host(records), "aggregation": AGGREGATION,
               "clocks_after": self.session.clock_check()}
        fields = {"cluster": out}
        pair = next((r for r in records if r.peer is not None), None)
        if pair is not None:
            out["latency"] = latency_mode(pair)
            if out["latency"]["mode"] == "cross host":
                fields["method"] = out["latency"]["method"]
        if self.session.console is not None:
            where = ", ".join(f"{t['role']} {t['id']} on {t['host']} ({t['worker']})" for t in tasks)
            self.session.console.print(f"[dim]placement: {where}[/dim]")
        return fields

    def shutdown(self) -> None:
        """Stop every task still running (after a failure or Ctrl-C), before the run deletes its topics."""
        for w in self._live:
            if w.alive():
                w.kill()
        self._live = []


def per_host(records: list[Record]) -> dict:
    """Messages and msg/s of each host's producers and consumers over that host's common window."""
    out: dict[str, dict] = {}
    for (host, role), group in itertools.groupby(sorted(records, key=lambda r: (r.worker.host, r.role)),
                                                 key=lambda r: (r.worker.host, r.role)):
        group = [r for r in group if r.window_ns and r.messages is not None]
        if not group:
            continue
        start = min(r.window_ns[0] for r in group)
        end = max(r.window_ns[1] for r in group)
        n = sum(r.messages for r in group)
        seconds = (end - start) / 1e9
        out.setdefault(host, {})[role] = {"messages": n, "seconds": round(seconds, 6),
                                          "throughput_msgs_s": n / seconds if seconds > 0 else None}
    return out


def latency_mode(consumer: Record) -> dict:
    """How the latency test's clocks relate: one host's clock, or two corrected by their offsets."""
    p, c = consumer.peer, consumer.worker
    if p.facts["boot_id"] == c.facts["boot_id"] and p.facts["boot_id"]:
        return {"mode": "same host", "producer_host": p.host, "consumer_host": c.host, "error_bound_ms": 0.0,
                "method": "producer and consumer on one host: one CLOCK_MONOTONIC, no correction"}
    bound = (p.offset.bound_ns + c.offset.bound_ns) / 1e6
    return {"mode": "cross host", "producer_host": p.host, "consumer_host": c.host, "error_bound_ms": bound,
            "method": "consumer arrival minus producer stamp, corrected by both hosts' ping-pong clock offsets"}
