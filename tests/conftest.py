"""Shared pytest fixtures: live brokers (Kafka, Tansu, librdkafka's mock) and the fail-or-skip rule."""
import os

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
