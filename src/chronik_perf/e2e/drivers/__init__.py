"""Drivers by name: confluent (default), java (Kafka's own perf tools), native (our core's client)."""

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
    raise ValueError(f"unknown driver {name!r}")
