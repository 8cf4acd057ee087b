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
        raise ValueError("the native driver (chronik-perf's own client on the Cython core) is not built yet; "
                         "use --driver confluent or --driver java")
    raise ValueError(f"unknown driver {name!r}")
