"""librdkafka's mock cluster (confluent-kafka's `test.mock.num.brokers`), in this process or held by a background one.

What the mock supports (librdkafka 2.16, measured): Produce, Fetch, Metadata, ListOffsets, consumer groups
(subscribe, rebalance, commit, committed offsets); topics are auto-created on first Metadata or Produce with
4 partitions and replication factor min(3, brokers). AdminClient CreateTopics does not work: the mock reports a
controller id that is none of its brokers, so the request times out with "Failed while waiting for controller".
Use auto-created topics (4 partitions) against the mock. Nothing is stored on disk.
"""
from __future__ import annotations

import logging
import subprocess
import sys
from pathlib import Path

from ._process import BrokerError, Record, process_start_ticks, spawn, wait_ready
from .probe import answers

DEFAULT_BROKERS = 3
AUTO_CREATED_PARTITIONS = 4

_quiet = logging.getLogger("chronik_perf.brokers.mock")
_quiet.addHandler(logging.NullHandler())
_quiet.propagate = False


def version() -> str:
    import confluent_kafka

    return f"librdkafka {confluent_kafka.libversion()[0]}"


def in_process(num_brokers: int = DEFAULT_BROKERS):
    """Create a mock cluster inside this process: (the client that owns it, its bootstrap address).

    The cluster lives as long as the returned client object.
    """
    from confluent_kafka import Producer

    owner = Producer({"test.mock.num.brokers": num_brokers, "logger": _quiet})
    brokers = owner.list_topics(timeout=10).brokers.values()
    return owner, ",".join(f"{b.host}:{b.port}" for b in brokers)


def launch(folder: Path, *, timeout: float, num_brokers: int = DEFAULT_BROKERS) -> tuple[Record, subprocess.Popen]:
    """Start a background process holding a mock cluster; wait until its brokers answer."""
    log_file = folder / "mock.log"
    bootstrap_file = folder / "bootstrap"
    bootstrap_file.unlink(missing_ok=True)
    holder = Path(__file__).with_name("_mock_holder.py")
    proc = spawn([sys.executable, str(holder), str(num_brokers), str(bootstrap_file)], log_file, cwd=folder)

    def ready() -> bool:
        return bootstrap_file.exists() and answers(bootstrap_file.read_text())

    wait_ready(proc, ready, timeout, "mock", log_file)
    record = Record("mock", bootstrap_file.read_text(), version(), proc.pid, process_start_ticks(proc.pid),
                    str(log_file))
    return record, proc


def check_brokers(num_brokers: int) -> None:
    if not 1 <= num_brokers <= 64:
        raise BrokerError(f"the mock takes 1 to 64 brokers, not {num_brokers}")

