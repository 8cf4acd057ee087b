"""Is a Kafka-compatible broker answering at an address? Asked with confluent-kafka (ApiVersions, then Metadata)."""
from __future__ import annotations

import logging

_quiet = logging.getLogger("chronik_perf.brokers.probe")
_quiet.addHandler(logging.NullHandler())
_quiet.propagate = False


def metadata(bootstrap_servers: str, timeout: float = 2.0):
    """The broker's ClusterMetadata (brokers, topics, cluster id), or None when nothing Kafka-like answers."""
    from confluent_kafka import KafkaException
    from confluent_kafka.admin import AdminClient

    admin = AdminClient({"bootstrap.servers": bootstrap_servers, "logger": _quiet,
                         "socket.connection.setup.timeout.ms": max(1000, int(timeout * 1000))})
    try:
        md = admin.list_topics(timeout=timeout)
    except KafkaException:
        return None
    return md if md.brokers else None


def cluster_id(bootstrap_servers: str, timeout: float = 2.0) -> str | None:
    """The cluster id the broker at bootstrap_servers reports, or None when nothing answers.

    Start-up waits compare it with the id we gave our broker, so another broker that grabbed the port first is
    never mistaken for ours."""
    md = metadata(bootstrap_servers, timeout)
    return md.cluster_id if md is not None else None


def answers(bootstrap_servers: str, timeout: float = 2.0) -> bool:
    """True when a broker at bootstrap_servers answers a Metadata request within timeout seconds."""
    return metadata(bootstrap_servers, timeout) is not None
