"""Brokers that start with one call: Apache Kafka (KRaft, Maven Central jars), Tansu, librdkafka's mock cluster, and
Chronik Stream from a chronik-server binary the user supplies.

    from chronik_perf.brokers import start
    with start("kafka", port=9095, fresh=True) as broker:
        print(broker.bootstrap_servers, broker.version, broker.log_dirs)

Kafka, Tansu and Chronik run as background processes recorded in the state folder ($CHRONIK_PERF_HOME, default
~/.chronik-perf/, one folder per instance: kafka-9095/, tansu-9093/, chronik-9092/, mock/), so the CLI
(`python -m chronik_perf.brokers start|stop|status|logs NAME`) and other processes can find and stop them.
"""
from __future__ import annotations

from pathlib import Path

from . import chronik, kafka, mock, tansu
from ._process import BrokerError, Record, check_port_free, forget, home, port_in_use, start_lock, terminate
from .kafka import KafkaJava, kafka_java
from .probe import answers

__all__ = ["Broker", "BrokerError", "KafkaJava", "NAMES", "kafka_java", "start", "status", "stop", "home"]

NAMES = ("kafka", "tansu", "chronik", "mock")
DEFAULT_PORTS = {"kafka": kafka.DEFAULT_PORT, "tansu": tansu.DEFAULT_PORT, "chronik": chronik.DEFAULT_PORT}
MODULES = {"kafka": kafka, "tansu": tansu, "chronik": chronik}
DEFAULT_TIMEOUT = 120.0


class Broker:
    """A broker: its address, version and data dirs; `stop()` shuts down a process we started (context manager).

    `owned` is true when this call started it; leaving a `with` block stops only an owned broker.
    """

    def __init__(self, name: str, bootstrap_servers: str, version: str = "unknown", log_dirs=(),
                 pid: int | None = None, log_file: str | None = None, owned: bool = False,
                 folder: Path | None = None, proc=None, mock_owner=None):
        self.name = name
        self.bootstrap_servers = bootstrap_servers
        self.version = version
        self.log_dirs = list(log_dirs)
        self.pid = pid
        self.log_file = log_file
        self.owned = owned
        self._folder = folder
        self._proc = proc
        self._mock_owner = mock_owner

    @classmethod
    def _from_record(cls, record: Record, folder: Path, owned: bool, proc=None) -> "Broker":
        return cls(record.name, record.bootstrap_servers, record.version, record.log_dirs, record.pid,
                   record.log_file, owned, folder, proc)

    @property
    def running(self) -> bool:
        """True while the broker is up (for a broker we did not start: while it answers)."""
        if self._mock_owner is not None:
            return True
        if self._folder is not None:
            record = Record.load(self._folder)
            return record is not None and record.pid == self.pid and record.alive()
        return answers(self.bootstrap_servers)

    def stop(self, timeout: float = 30) -> None:
        """Shut the broker down (SIGTERM, then SIGKILL after timeout). A broker we did not start is left alone."""
        if self._mock_owner is not None:
            self._mock_owner = None  # the in-process mock cluster is destroyed with its client
            return
        if self._folder is None:
            return
        record = Record.load(self._folder)
        if record is not None and record.pid == self.pid:
            if record.alive():
                terminate(record.pid, timeout, self._proc)
            forget(self._folder)

    def __enter__(self) -> "Broker":
        return self

    def __exit__(self, *exc) -> None:
        if self.owned:
            self.stop()

    def __repr__(self) -> str:
        return (f"Broker({self.name!r}, {self.bootstrap_servers!r}, version={self.version!r}, "
                f"pid={self.pid}, log_dirs={self.log_dirs})")


def instance_folder(name: str, port: int | None = None) -> Path:
    """The state folder of one instance: <home>/kafka-9095, <home>/tansu-9093, <home>/chronik-9092, <home>/mock."""
    if name == "mock":
        return home() / "mock"
    return home() / f"{name}-{port or DEFAULT_PORTS[name]}"


def _check_name(name: str) -> None:
    if name not in NAMES:
        raise BrokerError(f"unknown broker {name!r}: choose one of {', '.join(NAMES)}")


def running(name: str, port: int | None = None) -> Broker | None:
    """The broker of that name we started and that still runs, or None (a stale record is removed)."""
    _check_name(name)
    folder = instance_folder(name, port)
    record = Record.load(folder)
    if record is None:
        return None
    if not record.alive():
        forget(folder)
        return None
    return Broker._from_record(record, folder, owned=False)


def start(name: str, *, port: int | None = None, host: str = "127.0.0.1", reuse: bool = False,
          timeout: float = DEFAULT_TIMEOUT, fresh: bool = False, in_process: bool = True,
          num_brokers: int = mock.DEFAULT_BROKERS, **options) -> Broker:
    """Start broker `name` ("kafka", "tansu", "chronik" or "mock") and return it once it answers Metadata.

    port: listening port (kafka 9095, tansu 9093, chronik 9092 only; the mock picks random ports). reuse: return a
    broker already running there (ours, or any Kafka-compatible one answering at host:port) instead of failing; it
    is not owned. fresh: wipe Kafka's or Chronik's data dir first. Kafka also takes version ("4.1.1"; default the
    pinned release), properties={...} (server.properties overrides), advertised_host, advertised_port, heap
    ("512m"), jvm_options; Tansu takes advertised_host/advertised_port; Chronik takes binary_path (default
    $CHRONIK_SERVER) and advertised_host/advertised_port.
    mock: in_process=True keeps the mock cluster in this process (num_brokers, default 3); False starts it in a
    background process recorded in the state folder.
    Raises BrokerError with a one-line cause; nothing is left running after a failed start.
    """
    _check_name(name)
    if name == "mock":
        return _start_mock(reuse, timeout, in_process, num_brokers)
    port = port or DEFAULT_PORTS[name]
    folder = instance_folder(name, port)
    with start_lock(folder):  # a second process starting the same instance waits, then finds it running
        existing = running(name, port)
        if existing is not None:
            wanted = options.get("version")
            if wanted and existing.version != wanted:
                raise BrokerError(f"{name} {existing.version} is already running at {existing.bootstrap_servers}, "
                                  f"not {wanted}: stop it first or start {wanted} on another --port")
            if reuse:
                return existing
            raise BrokerError(f"{name} is already running at {existing.bootstrap_servers} (pid {existing.pid}): "
                              f"use it, or stop it with `python -m chronik_perf.brokers stop {name}`")
        bootstrap = f"{host}:{port}"
        if reuse and port_in_use(host, port) and answers(bootstrap):
            return Broker(name, bootstrap, "external")
        check_port_free(host, port, name)
        if name != "tansu":
            options["fresh"] = fresh  # Tansu keeps nothing on disk: each of its starts is fresh
        try:
            record, proc = MODULES[name].launch(folder, host=host, port=port, timeout=timeout, **options)
        except BrokerError:
            if reuse and answers(bootstrap):  # another process's broker took the port while ours started
                return Broker(name, bootstrap, "external")
            raise
        record.save(folder)
    return Broker._from_record(record, folder, owned=True, proc=proc)


def _start_mock(reuse: bool, timeout: float, in_process: bool, num_brokers: int) -> Broker:
    mock.check_brokers(num_brokers)
    existing = running("mock")
    if existing is not None and reuse:
        return existing
    if in_process:
        owner, bootstrap = mock.in_process(num_brokers)
        return Broker("mock", bootstrap, mock.version(), owned=True, mock_owner=owner)
    if existing is not None:
        raise BrokerError(f"the mock is already running at {existing.bootstrap_servers} (pid {existing.pid}): "
                          "use it, or stop it with `python -m chronik_perf.brokers stop mock`")
    folder = instance_folder("mock")
    with start_lock(folder):
        record, proc = mock.launch(folder, timeout=timeout, num_brokers=num_brokers)
        record.save(folder)
    return Broker._from_record(record, folder, owned=True, proc=proc)


def _instances(name: str | None = None) -> list[Path]:
    """State folders of recorded instances, optionally only those of one broker name."""
    if not home().is_dir():
        return []
    return sorted(f for f in home().iterdir()
                  if (f / "state.json").exists() and (name is None or f.name.split("-")[0] == name))


def stop(name: str, port: int | None = None, timeout: float = 30) -> list[str]:
    """Stop the instances of `name` we started (only the one on `port` if given); one message per instance."""
    _check_name(name)
    folders = [instance_folder(name, port)] if port else _instances(name)
    messages = []
    for folder in folders:
        record = Record.load(folder)
        if record is None:
            continue
        if not record.alive():
            forget(folder)
            messages.append(f"{name} at {record.bootstrap_servers} was not running (stale pid {record.pid} removed)")
            continue
        killed = terminate(record.pid, timeout)
        forget(folder)
        how = "killed after not stopping within {:g} s".format(timeout) if killed else "stopped"
        messages.append(f"{name} at {record.bootstrap_servers} (pid {record.pid}) {how}")
    return messages or [f"{name} is not running"]


def status() -> list[dict]:
    """One entry per broker name and recorded instance: running, address, pid, version, data dirs, log."""
    rows = []
    for name in NAMES:
        folders = _instances(name)
        for folder in folders:
            record = Record.load(folder)
            if record is None:
                continue
            rows.append({"name": name, "running": record.alive(), "address": record.bootstrap_servers,
                         "pid": record.pid, "version": record.version, "data": record.log_dirs,
                         "log": record.log_file})
        if not folders:
            rows.append({"name": name, "running": False, "address": None, "pid": None, "version": None,
                         "data": [], "log": None})
    return rows


def log_file(name: str, port: int | None = None) -> Path:
    """The log of broker `name` (of the instance on `port`, else of the most recently started instance)."""
    _check_name(name)
    if port:
        candidates = [instance_folder(name, port)]
    else:
        folders = [instance_folder("mock")] if name == "mock" else list(home().glob(f"{name}-*"))
        candidates = sorted((f for f in folders if f.is_dir()),
                            key=lambda f: max((p.stat().st_mtime for p in f.glob("*.log")), default=0))
    for folder in reversed(candidates):
        logs = sorted(folder.glob("*.log"))
        if logs:
            return logs[0]
    raise BrokerError(f"no log for {name} yet: start it first (`python -m chronik_perf.brokers start {name}`)")

