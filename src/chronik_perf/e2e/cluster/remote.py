"""What runs on a Dask worker: one producer, consumer or latency tool of a benchmark, relayed to the coordinator.

The task starts the driver's usual worker (a spawned process, or a JVM for the java driver), secedes from the Dask
worker's thread pool so that a worker with one thread can hold several of them, and then, every TICK_S, sends its
progress, readiness and the worker's events to the coordinator as a Dask worker event. The coordinator's commands
arrive through distributed Events: a shared start gate (all gated producers go together) and a per-task stop;
a Variable says whether a stop means "finish" (a group member leaving) or "kill".
"""

from __future__ import annotations

import dataclasses
import hashlib
import multiprocessing
import os
import platform
import socket
import time

import numpy as np

import chronik_perf

from ..drivers.worker_results import ConsumerResult, WorkerResult
from .clocks import boot_id

TICK_S = 0.25


def worker_facts(settings: tuple[str, ...] = ()) -> dict:
    """What the coordinator checks and records about a Dask worker process (run there by client.run), with the
    values of the named Dask settings."""
    import dask
    import distributed
    return {"dask_config": {k: dask.config.get(k, None) for k in settings},
            "host": socket.gethostname(), "boot_id": boot_id(), "pid": os.getpid(),
            "daemonic": multiprocessing.current_process().daemon, "cpu_count": os.cpu_count(),
            "python": platform.python_version(), "dask": dask.__version__, "distributed": distributed.__version__,
            "chronik_perf": chronik_perf.__version__, "fingerprint": source_fingerprint()}


def process_cpu_s() -> float:
    """This process's own CPU seconds (a Dask worker's relaying; its children, the drivers' processes, excluded)."""
    t = os.times()
    return t.user + t.system


def source_fingerprint() -> str:
    """A digest of the installed chronik_perf sources (.py, .pyx, .pxi, .pxd): equal versions built from different
    checkouts differ here."""
    root = os.path.dirname(os.path.abspath(chronik_perf.__file__))
    digest = hashlib.sha256()
    for folder, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if d != "__pycache__")
        for name in sorted(files):
            if name.endswith((".py", ".pyx", ".pxi", ".pxd")):
                path = os.path.join(folder, name)
                digest.update(os.path.relpath(path, root).encode())
                with open(path, "rb") as fh:
                    digest.update(fh.read())
    return digest.hexdigest()[:12]


def driver_facts(name: str, kafka_version: str | None = None) -> dict:
    """The driver's description, its unsupported tests and whether it measures latency with its own tool."""
    from ..config import TESTS
    from ..drivers import get_driver
    from ..drivers.base import Driver
    driver = get_driver(name, kafka_version)
    return {"describe": driver.describe(), "verifies": driver.verifies,
            "unsupported": {t: driver.unsupported(t) for t in TESTS},
            "own_latency": type(driver).start_latency is not Driver.start_latency}


def compact(result: WorkerResult) -> WorkerResult:
    """Shrink a consumer's id arrays before they cross the network (the verifier widens them again)."""
    if not isinstance(result, ConsumerResult):
        return result
    shrunk = {}
    for key in ("pid", "seq"):
        arr = getattr(result, key)
        if arr.size and arr.min() >= 0:
            shrunk[key] = arr.astype(np.min_scalar_type(int(arr.max())), copy=False)
    return dataclasses.replace(result, **shrunk)


def plain_environment() -> None:
    """Drop what Dask's nanny adds to its worker processes' environment (distributed.nanny.pre-spawn-environ, such as
    MALLOC_TRIM_THRESHOLD_=65536 and OMP_NUM_THREADS=1), so the client processes a task starts run in the
    environment they have without Dask (glibc reads its malloc settings when a process starts; this process keeps
    them)."""
    import dask
    for name in dask.config.get("distributed.nanny.pre-spawn-environ", None) or {}:
        os.environ.pop(name, None)


def abandoned(dask_worker, key: str) -> str | None:
    """Why a running task must end now (its process tree killed), or None: the Dask worker is closing, or the
    scheduler released the task (the coordinator cancelled it or disconnected)."""
    from distributed.core import Status
    if dask_worker.status not in (Status.running, Status.paused):
        return f"the Dask worker is {dask_worker.status.name}"
    task = dask_worker.state.tasks.get(key)
    if task is None or task.state == "cancelled":
        return "the scheduler cancelled the task (the coordinator cancelled it or left)"
    return None


def run_role(driver: tuple[str, str | None], role: str, specs: tuple, gated: bool, gate: str | None, key: str,
             topic: str) -> WorkerResult:
    """Run one worker of a benchmark on this Dask worker with driver (name, Kafka version for java) until it
    finishes; return its result."""
    from distributed import Event, Variable, get_worker, secede

    from ..drivers import get_driver
    from ..drivers.base import WorkerError

    dask_worker = get_worker()
    plain_environment()
    client = get_driver(*driver)
    if role == "producer":
        w = client.start_producer(specs[0], gated=gated)
    elif role == "consumer":
        w = client.start_consumer(specs[0])
    else:
        w = client.start_latency(*specs)
    secede()
    stop, command = Event(f"{key}-stop"), Variable(f"{key}-command")
    start_gate = Event(gate) if gated and gate else None
    stopping = False
    try:
        while True:
            finished = w.done()
            dask_worker.log_event(topic, {"key": key, "progress": int(w.progress()), "ready": bool(w.ready()),
                                          "events": [list(e) for e in w.events()], "finished": finished})
            if finished:
                break
            why = abandoned(dask_worker, key)
            if why:
                raise WorkerError(f"{role} stopped on Dask worker {dask_worker.address}: {why}")
            if start_gate is not None and w.ready():
                if start_gate.wait(TICK_S):
                    w.go()
                    start_gate = None
                    continue
                if not stop.is_set():
                    continue
            elif stopping:
                time.sleep(TICK_S)  # a finishing worker: report each tick until it is done
                continue
            elif not stop.wait(TICK_S):
                continue
            stopping = True
            if command.get(timeout=5) == "kill":
                w.kill()
                raise WorkerError("stopped by the coordinator")
            w.stop()
        return compact(w.result(timeout=10))
    except BaseException:
        w.kill()
        raise
