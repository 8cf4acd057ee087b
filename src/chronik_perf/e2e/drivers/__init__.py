"""Drivers by name: confluent (default), java (Kafka's own perf tools), native (our core's client), native-records
(native, its consumers building a Python object per message)."""

from importlib import import_module

from .base import Driver

# name -> (module, class): each module is imported only when its driver is asked for
_CLASSES = {"confluent": (".confluent", "ConfluentDriver"), "java": (".java", "JavaDriver"),
            "native": (".native", "NativeDriver"), "native-records": (".native", "NativeRecordsDriver")}
NAMES = tuple(_CLASSES)


def get_driver(name: str, kafka_version: str | None = None) -> Driver:
    """The driver called name; the java driver runs the perf tools of Kafka release kafka_version (default pinned)."""
    if name not in _CLASSES:
        raise ValueError(f"unknown driver {name!r}")
    module, cls = _CLASSES[name]
    driver = getattr(import_module(module, __name__), cls)
    return driver(kafka_version) if name == "java" else driver()
