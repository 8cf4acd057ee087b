"""One run's connection to a Dask cluster: the client, the workers it checked, their clocks, the report relay."""

from __future__ import annotations

import contextlib
import logging
import platform
import threading
import uuid

from .address import ClusterAddress, ClusterError, security
from .clocks import boot_id, measure
from .remote import process_cpu_s, source_fingerprint, worker_facts
from .workers import DaskWorker

CONNECT_TIMEOUT_S = 30.0
WORKERS_TIMEOUT_S = 60.0
HEARTBEAT_TIMEOUT_S = 30.0
RESTART_TIMEOUT_S = 30.0

# Our tasks must not be re-run when their worker dies (a producer run twice writes its messages twice), and the
# driver processes they start need a non-daemonic worker process.
DASK_CONFIG = {"distributed.worker.daemon": False, "distributed.scheduler.allowed-failures": 0}
# What an idle Dask server spends CPU on, turned down: the statistical profiler (samples every thread each 10 ms),
# the event-loop health tick (20 ms), the system monitor (500 ms) and the memory monitor (100 ms, in every worker
# and nanny). Our tasks are pinned, so work stealing has nothing to do. Measured idle on `local:2` (2 workers):
# 7.7 % of a core with Dask's defaults, 1.5 % with these. Applied to the coordinator and a LocalCluster it starts;
# `dask worker` processes started by the user take them from their environment (docs/e2e/cluster.md).
QUIET_CONFIG = {"distributed.worker.profile.enabled": False, "distributed.admin.tick.interval": "1s",
                "distributed.admin.system-monitor.interval": "5s", "distributed.worker.memory.monitor-interval": "1s",
                "distributed.scheduler.work-stealing": False}
WORKER_SETTINGS = tuple(k for k in QUIET_CONFIG if not k.startswith("distributed.scheduler."))

log = logging.getLogger(__name__)


def _set_allowed_failures(value, dask_scheduler=None):
    previous = dask_scheduler.allowed_failures
    dask_scheduler.allowed_failures = value
    return previous


class Session:
    """Connects (or starts a LocalCluster), checks every worker and measures its clock; relays task reports."""

    def __init__(self, where: ClusterAddress, cross_host_latency: bool = False,
                 heartbeat_timeout_s: float = HEARTBEAT_TIMEOUT_S, console=None):
        self.where, self.cross_host_latency = where, cross_host_latency
        self.heartbeat_timeout_s = heartbeat_timeout_s
        self.console = console
        self.topic = f"chronik-perf-{uuid.uuid4().hex[:12]}"
        self.client = None
        self.workers: dict[str, DaskWorker] = {}
        self._cluster = None
        self._config = None
        self._allowed_failures = None
        self._listeners: dict[str, object] = {}
        self._released: set[str] = set()
        self._names: list[tuple[str, str]] = []  # ("event" | "variable", name) created on the scheduler
        self._lost: set[str] = set()
        self._lock = threading.Lock()

    # ---- connecting and checking -------------------------------------------------------------------------
    def open(self) -> Session:
        import dask
        from distributed import Client, LocalCluster

        sec = security(self.where.tls, local=self.where.scheme == "local")
        logging.getLogger("distributed").setLevel(max(logging.WARNING, logging.getLogger().level))
        self._config = dask.config.set({**DASK_CONFIG, **QUIET_CONFIG})  # kept: a restarted local worker needs it
        try:
            if self.where.scheme == "local":
                self._cluster = LocalCluster(n_workers=self.where.workers, threads_per_worker=1, processes=True,
                                             host="127.0.0.1", dashboard_address="127.0.0.1:0", scheduler_port=0,
                                             scheduler_kwargs={"dashboard": False},
                                             protocol="tls://" if sec else "tcp://", security=sec)
                self.client = Client(self._cluster, security=sec, timeout=CONNECT_TIMEOUT_S)
            else:
                self.client = Client(self.where.address, security=sec, timeout=CONNECT_TIMEOUT_S)
        except OSError as exc:
            self.close()
            raise ClusterError(f"cannot reach the Dask scheduler at {self.where.address or 'local'}: {exc}") from None
        try:
            self.client.wait_for_workers(max(1, self.where.workers), timeout=WORKERS_TIMEOUT_S)
            self._allowed_failures = self.client.run_on_scheduler(_set_allowed_failures, 0)
            self.client.subscribe_topic(self.topic, self._on_event)
            self.refresh()
        except BaseException as exc:
            self.close()
            if isinstance(exc, (TimeoutError, OSError)):
                raise ClusterError(f"Dask cluster {self.where.address or 'local'}: {exc}") from None
            raise
        return self

    def refresh(self) -> None:
        """Learn the cluster's current workers: check new ones (versions, daemon flag) and measure their clocks."""
        info = self.client.scheduler_info(n_workers=-1)["workers"]
        for gone in set(self.workers) - set(info):
            del self.workers[gone]
        new = [a for a in info if a not in self.workers]
        if not new:
            return
        facts = self.client.run(worker_facts, WORKER_SETTINGS, workers=new)
        check_workers(facts)
        loud = sorted(a for a in new if not quiet(facts[a].get("dask_config") or {}))
        if loud:
            log.warning("Dask worker(s) %s run with Dask's default profiler and monitor intervals, which cost CPU "
                        "on the client hosts: start them with the settings in docs/e2e/cluster.md", ", ".join(loud))
        for addr in new:
            f = facts[addr]
            offset = measure(self.client, addr, f["boot_id"])
            self.workers[addr] = DaskWorker(addr, f["host"], dict(info[addr].get("resources") or {}), f, offset)
        self._lost -= set(self.workers)

    def close(self) -> None:
        """Restore the scheduler's allowed-failures, close the client and any LocalCluster we started."""
        with contextlib.suppress(Exception):
            if self.client is not None and self._allowed_failures is not None:
                self.client.run_on_scheduler(_set_allowed_failures, self._allowed_failures)
        for part in (self.client, self._cluster):
            if part is not None:
                with contextlib.suppress(Exception):
                    part.close()
        self.client = self._cluster = None
        if self._config is not None:
            self._config.__exit__(None, None, None)
            self._config = None

    def __enter__(self) -> Session:
        return self.open()

    def __exit__(self, *exc) -> None:
        self.close()

    def driver(self, name: str, kafka_version: str | None = None):
        """The named driver (confluent, native, java: with the perf tools of kafka_version), run on the workers."""
        from .driver import ClusterDriver
        return ClusterDriver(self, name, kafka_version)

    # ---- what the workers and drivers use ----------------------------------------------------------------
    def usable(self) -> list[DaskWorker]:
        """The workers tasks may be placed on (refreshed after a worker was lost)."""
        if self._lost:
            self.refresh()
        workers = [w for a, w in sorted(self.workers.items()) if a not in self._lost]
        if not workers:
            raise ClusterError("no Dask worker left in the cluster")
        return workers

    def listen(self, key: str, handler) -> None:
        with self._lock:
            self._listeners[key] = handler

    def _on_event(self, event) -> None:
        _, msg = event
        with self._lock:
            handler = self._listeners.get(msg.get("key"))
            if handler is not None and msg.get("finished"):
                del self._listeners[msg["key"]]
        if handler is not None:
            handler(msg)

    def release(self, gate: str | None) -> None:
        """Open a start gate (once: every gated task waiting on it goes at the same moment)."""
        if gate and gate not in self._released:
            from distributed import Event
            self._released.add(gate)
            self._names.append(("event", gate))
            Event(gate, client=self.client).set()

    def released(self, gate: str) -> bool:
        return gate in self._released

    def command(self, key: str, what: str) -> None:
        """Tell one task to 'stop' (finish what it does and return) or to 'kill' its worker process."""
        from distributed import Event, Variable
        self._names += [("variable", f"{key}-command"), ("event", f"{key}-stop")]
        Variable(f"{key}-command", client=self.client).set(what)
        Event(f"{key}-stop", client=self.client).set()

    def forget(self) -> None:
        """Remove the start gates and stop commands of finished tasks from the scheduler."""
        from distributed import Event, Variable
        names, self._names = self._names, []
        for kind, name in names:
            with contextlib.suppress(Exception):
                if kind == "event":
                    Event(name, client=self.client).clear()
                else:
                    Variable(name, client=self.client).delete()

    def worker_lost(self, address: str) -> None:
        self._lost.add(address)

    def hard_stop(self, address: str) -> None:
        """Restart a Dask worker whose task did not stop when told: its processes end with it."""
        log.warning("restarting Dask worker %s: its task did not stop within the grace period", address)
        self._lost.add(address)
        with contextlib.suppress(Exception):
            self.client.restart_workers([address], timeout=RESTART_TIMEOUT_S, raise_for_error=False)

    def describe(self) -> dict:
        """The cluster as results.json records it."""
        hosts = sorted({w.host for w in self.workers.values()})
        return {"address": self.where.address or f"local:{self.where.workers}",
                "tls": self.where.tls is not None,
                "latency_mode": "cross-host" if self.cross_host_latency else "same-host",
                "hosts": hosts, "workers": [w.describe() for _, w in sorted(self.workers.items())],
                "coordinator": {"host": platform.node(), "boot_id": boot_id()}}

    def workers_cpu(self) -> dict[str, float]:
        """Each Dask worker process's own CPU seconds so far (without the processes its tasks started)."""
        live = [a for a in self.workers if a not in self._lost]
        try:
            return self.client.run(process_cpu_s, workers=live) if live else {}
        except Exception:  # a worker that left since: its CPU is not counted
            return {}

    def clock_check(self) -> dict[str, dict]:
        """Each worker's clock offset measured again (after a test: shows drift against the one at start)."""
        out = {}
        for addr, w in sorted(self.workers.items()):
            if addr in self._lost:
                continue
            try:
                out[addr] = measure(self.client, addr, w.facts["boot_id"]).to_dict()
            except Exception as exc:  # a worker that left between the test and this check
                out[addr] = {"error": f"{type(exc).__name__}: {exc}"}
        return out


def quiet(settings: dict) -> bool:
    """True if a worker runs with QUIET_CONFIG's worker settings (intervals compared as durations)."""
    from dask.utils import parse_timedelta

    def norm(v):
        return parse_timedelta(v) if isinstance(v, str) else v
    return all(norm(settings.get(k)) == norm(QUIET_CONFIG[k]) for k in WORKER_SETTINGS)


def check_workers(facts: dict[str, dict]) -> None:
    """Refuse workers that run other chronik_perf sources than this process, or that cannot start processes."""
    import chronik_perf
    own = (chronik_perf.__version__, source_fingerprint())
    differ = {a: f for a, f in facts.items() if (f["chronik_perf"], f["fingerprint"]) != own}
    if differ:
        listed = "; ".join(f"{a}: {f['chronik_perf']} ({f['fingerprint']})" for a, f in sorted(differ.items()))
        raise ClusterError(f"chronik_perf differs across the cluster: this process runs {own[0]} ({own[1]}), "
                           f"{listed}. Install the same chronik-perf on every worker host")
    daemonic = sorted(a for a, f in facts.items() if f["daemonic"])
    if daemonic:
        raise ClusterError(f"Dask worker(s) {', '.join(daemonic)} run as daemonic processes, which cannot start the "
                           "benchmark's worker processes: start them with DASK_DISTRIBUTED__WORKER__DAEMON=False")
