"""A driver whose producers and consumers run as tasks pinned to the workers of a Dask cluster.

It wraps a named driver (confluent, native, java): the benchmarks call it as they call any driver, and each
start_* becomes a task on one Dask worker that runs the named driver's usual worker there. Placement is
round-robin over the workers (over the workers started with `--resources producer=1` for producers and
`consumer=1` for consumers, when there are such). The latency test runs one producer-consumer pair per (consumer)
worker; each pair's producer goes to its consumer's host (one CLOCK_MONOTONIC), or to another host with
--cross-host-latency, where each latency is corrected by both hosts' measured clock offsets. A consumer counts in
its histogram only the producers whose latencies it can measure: those on its own host (all, corrected, with
--cross-host-latency).
"""

from __future__ import annotations

import dataclasses
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
        self._pairs: list[tuple[DaskWorker, DaskWorker]] = []  # the latency test's (consumer, producer) workers
        self._cpu = session.workers_cpu()  # the Dask worker processes' CPU seconds at the last placement

    def describe(self) -> dict:
        return {**self._facts["describe"], "cluster": self.session.describe()}

    def unsupported(self, test: str) -> str | None:
        return self._facts["unsupported"].get(test)

    # ---- placement -----------------------------------------------------------------------------------------
    def _with_role(self, role: str) -> list[DaskWorker]:
        workers = self.session.usable()
        return [w for w in workers if w.resources.get(role)] or workers

    def _next(self, role: str) -> DaskWorker:
        if role not in self._cycles:
            self._cycles[role] = itertools.cycle(self._with_role(role))
        return next(self._cycles[role])

    def _pair_host(self, consumer: DaskWorker, i: int) -> DaskWorker:
        """Pair i's producer worker: the consumer's own (same clock) or, cross-host, one on another host."""
        if not self.session.cross_host_latency:
            return consumer
        workers = self.session.usable()
        other = [w for w in workers if w.facts["boot_id"] != consumer.facts["boot_id"]]
        other = other or [w for w in workers if w.address != consumer.address] or [consumer]
        return other[i % len(other)]

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
    def latency_pairs(self, limit: int) -> int:
        """One latency pair per worker taking consumers, at most `limit`; placed now, started by the benchmark."""
        self._pairs = [(c, self._pair_host(c, i)) for i, c in enumerate(self._with_role("consumer")[:max(1, limit)])]
        return len(self._pairs)

    def _counted(self, consumer: DaskWorker) -> dict[int, int]:
        """The latency producers a consumer measures (its host's; all with --cross-host-latency) and each one's
        correction: producer clock minus consumer clock, as measured (0 on one kernel)."""
        return {pid: p.offset.offset_ns - consumer.offset.offset_ns for pid, (_, p) in enumerate(self._pairs)
                if self.session.cross_host_latency or same_kernel(p, consumer)}

    def start_producer(self, spec: ProducerSpec, gated: bool = False) -> Worker:
        if spec.rate and spec.pid < len(self._pairs):  # a latency producer: on its pair's worker
            record = Record("producer", spec.pid, self._pairs[spec.pid][1], spec.topic)
        else:
            record = Record("producer", spec.pid, self._next("producer"), spec.topic)
        return self._start(record, (spec,), gated)

    def start_consumer(self, spec: ConsumerSpec) -> Worker:
        if spec.record_latency and spec.worker_id < len(self._pairs):
            worker = self._pairs[spec.worker_id][0]
            spec = dataclasses.replace(spec, latency_corrections=self._counted(worker))
        else:
            worker = self._next("consumer")
        return self._start(Record("consumer", spec.worker_id, worker, spec.topic), (spec,))

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
        self._gate = None
        pairs, self._pairs = self._pairs, []
        if not records:
            return {}
        tasks = [r.to_dict() for r in records]
        cpu, self._cpu = self._cpu, self.session.workers_cpu()
        out = {"tasks": tasks, "per_host": per_host(records), "aggregation": AGGREGATION,
               "dask_workers_cpu_s": round(sum(self._cpu[a] - cpu[a] for a in self._cpu if a in cpu), 4),
               "clocks_after": self.session.clock_check()}
        fields = {"cluster": out}
        if pairs:
            out["latency"] = latency_mode(pairs, self.session.cross_host_latency)
            if out["latency"]["mode"] == "cross host":
                fields["method"] = out["latency"]["method"]
        if self.session.console is not None:
            where = ", ".join(f"{t['role']} {t['id']} on {t['host']} ({t['worker']})" for t in tasks)
            self.session.console.print(f"[dim]placement: {where}[/dim]")
        return fields

    def shutdown(self, hurry=None) -> None:
        """Stop every task still running (after a failure or Ctrl-C), before the run deletes its topics (each task's
        own stop path bounds the wait; `hurry` is not used)."""
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


def same_kernel(a: DaskWorker, b: DaskWorker) -> bool:
    """Both workers read one CLOCK_MONOTONIC (equal, known boot ids)."""
    return bool(a.facts["boot_id"]) and a.facts["boot_id"] == b.facts["boot_id"]


def latency_mode(pairs: list[tuple[DaskWorker, DaskWorker]], cross_host: bool) -> dict:
    """How the latency test's clocks relate: each pair on one host's clock, or producers on other hosts corrected
    by the measured offsets (the bound: the largest sum of a consumer's and a counted producer's bounds)."""
    described = [{"consumer_worker": c.address, "consumer_host": c.host, "producer_worker": p.address,
                  "producer_host": p.host} for c, p in pairs]
    if not cross_host or all(same_kernel(c, p) for c, p in pairs):
        return {"mode": "same host", "pairs": described, "error_bound_ms": 0.0,
                "method": "each producer on its consumer's host: one CLOCK_MONOTONIC per pair, no correction"}
    bound = max((c.offset.bound_ns + p.offset.bound_ns for c, _ in pairs for _, p in pairs if not same_kernel(c, p)),
                default=0)
    return {"mode": "cross host", "pairs": described, "error_bound_ms": bound / 1e6,
            "method": "consumer arrival minus producer stamp, corrected by both hosts' ping-pong clock offsets"}
