"""Drivers by name: confluent (default), java (Kafka's own perf tools), native (our core's client), native-records
(native, its consumers building a Python object per message)."""

from .base import Driver


def get_driver(name: str, kafka_version: str | None = None) -> Driver:
    """The driver called name; the java driver runs the perf tools of Kafka release kafka_version (default pinned)."""
    if name == "confluent":
        from .confluent import ConfluentDriver
        return ConfluentDriver()
    if name == "java":
        from .java import JavaDriver
        return JavaDriver(kafka_version)
    if name == "native":
        from .native import NativeDriver
        return NativeDriver()
    if name == "native-records":
        from .native import NativeRecordsDriver
        return NativeRecordsDriver()
    raise ValueError(f"unknown driver {name!r}")
