"""Drivers by name: confluent (default), java (Kafka's own perf tools), native (our core's client), native-records
(native, its consumers building a Python object per message)."""

from .base import Driver


def get_driver(name: str) -> Driver:
    if name == "confluent":
        from .confluent import ConfluentDriver
        return ConfluentDriver()
    if name == "java":
        from .java import JavaDriver
        return JavaDriver()
    if name == "native":
        from .native import NativeDriver
        return NativeDriver()
    if name == "native-records":
        from .native import NativeRecordsDriver
        return NativeRecordsDriver()
    raise ValueError(f"unknown driver {name!r}")
