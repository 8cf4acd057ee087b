"""Shared pytest fixtures: live brokers (Kafka, Tansu, librdkafka's mock) and the fail-or-skip rule."""
import importlib.util
import os
import sys
from pathlib import Path

import pytest

from chronik_perf.brokers import BrokerError, start


def in_ci() -> bool:
    """True when running under CI (CI=true), where a missing broker or tool is a failure, not a skip."""
    return os.environ.get("CI", "").lower() in ("true", "1", "yes")


def fail_or_skip(reason: str) -> None:
    """Stop a test that cannot get what it needs: pytest.fail under CI=true, pytest.skip otherwise."""
    if in_ci():
        pytest.fail(reason, pytrace=False)
    pytest.skip(reason)


def load_script(path: Path):
    """Import a repository script (fuzz/run.py) under a name unique to its folder, so it never shadows another module
    called run (micro's is micro.run) in one pytest process; its folder goes on sys.path for its siblings."""
    path = Path(path).resolve()
    name = f"{path.parent.name}_{path.stem}"
    if name in sys.modules:
        return sys.modules[name]
    if str(path.parent) not in sys.path:
        sys.path.insert(0, str(path.parent))
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def _broker(name: str, **options):
    """Yield a running broker: one already running at its address is reused; only one we started is stopped."""
    try:
        broker = start(name, reuse=True, **options)
    except BrokerError as exc:
        fail_or_skip(f"{name} broker unavailable: {exc}")
    yield broker
    if broker.owned:
        broker.stop()


@pytest.fixture(scope="session")
def kafka_broker():
    """Apache Kafka (KRaft, single node) on 127.0.0.1:9095."""
    yield from _broker("kafka")


@pytest.fixture(scope="session")
def tansu_broker():
    """Tansu (memory storage) on 127.0.0.1:9093."""
    yield from _broker("tansu")


@pytest.fixture(scope="session")
def mock_broker():
    """librdkafka's mock cluster (3 brokers; topics auto-created with 4 partitions, no CreateTopics)."""
    yield from _broker("mock")
