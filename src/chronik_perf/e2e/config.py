"""Benchmark configuration: defaults, the --quick profile, workload YAML files and target names."""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from importlib import resources

import yaml

from ..brokers import DEFAULT_PORTS
from ..brokers import NAMES as STARTABLE
from ..records import CODECS as COMPRESSIONS
from .drivers import NAMES as DRIVERS

TESTS = ("producer", "consumer", "latency", "concurrent", "groups")
KEY_PATTERNS = ("none", "sequential", "random")
PAYLOADS = ("random", "zeros", "text")

# Targets the brokers module knows, at its default ports; --start starts "chronik" from the chronik-server binary in
# $CHRONIK_SERVER; librdkafka's mock cluster listens on a port chosen when it starts.
TARGET_ADDRESSES = {name: f"127.0.0.1:{DEFAULT_PORTS[name]}" if name in DEFAULT_PORTS else None for name in STARTABLE}


@dataclass
class BenchConfig:
    """Every option of a run; field names are the long option names with '-' replaced by '_'."""

    tests: list[str] = field(default_factory=lambda: list(TESTS))
    num_messages: int = 200_000
    producer_seconds: float = 0.0  # > 0: producer and concurrent tests run this long, not num_messages (Java counts)
    message_size: int = 1024
    num_partitions: int = 6
    replication_factor: int = 1
    compression: str = "none"
    acks: str = "all"
    batch_size: int | None = None
    linger_ms: float | None = None
    producers: int = 4
    consumers: int = 3
    rate: int = 2000
    duration: float = 20.0
    warmup: float = 3.0
    key_pattern: str = "none"
    payload: str = "random"
    client_config: dict[str, str] = field(default_factory=dict)
    driver: str = "confluent"
    repeat: int = 1
    group_protocol: str = "classic"
    results_dir: str = "results"
    keep_topics: bool = False
    quick: bool = False
    log_level: str = "warning"

    def validate(self) -> None:
        """Raise ValueError naming the first option that is not a number where one is needed, or out of range."""
        for f in dataclasses.fields(self):
            kind, value = _NUMBERS.get(f.type.split(" | ")[0]), getattr(self, f.name)
            if kind and not (value is None and f.type.endswith("None")) and (
                    isinstance(value, bool) or not isinstance(value, kind)):
                raise ValueError(f"invalid --{f.name.replace('_', '-')}: {value!r} (expected a number)")
        unknown = [t for t in self.tests if t not in TESTS]
        if unknown:
            raise ValueError(f"unknown test(s) {unknown}; choose from {', '.join(TESTS)}")
        checks = [
            ("num_messages", self.num_messages >= 1),
            ("producer_seconds", self.producer_seconds >= 0),
            ("message_size", self.message_size >= HEADER_MIN),
            ("batch_size", self.batch_size is None or self.batch_size >= 1),
            ("linger_ms", self.linger_ms is None or self.linger_ms >= 0),
            ("num_partitions", self.num_partitions >= 1),
            ("replication_factor", self.replication_factor >= 1),
            ("producers", self.producers >= 1),
            ("consumers", self.consumers >= 1),
            ("rate", self.rate >= 1),
            ("duration", self.duration > 0),
            ("warmup", 0 <= self.warmup < self.duration),
            ("compression", self.compression in COMPRESSIONS),
            ("acks", self.acks in ("0", "1", "all", "-1")),
            ("key_pattern", self.key_pattern in KEY_PATTERNS),
            ("payload", self.payload in PAYLOADS),
            ("driver", self.driver in DRIVERS),
            ("repeat", self.repeat >= 1),
            ("group_protocol", self.group_protocol in ("classic", "consumer")),
        ]
        for name, ok in checks:
            if not ok:
                raise ValueError(f"invalid --{name.replace('_', '-')}: {getattr(self, name)!r}")

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


# Field types (as written in BenchConfig) whose values must be numbers
_NUMBERS = {"int": int, "float": (int, float)}

# The message header (producer id, sequence, timestamp) needs 20 bytes; see payload.py.
HEADER_MIN = 20

# Quick runs also shorten the group session and poll timeouts: brokers such as Tansu and the mock finish
# a rebalance only when these expire, which with the defaults (45 s, 300 s) dominates the whole run.
QUICK = dict(num_messages=20_000, producer_seconds=3.0, message_size=512, num_partitions=3, producers=2, consumers=2,
             rate=500, duration=5.0, warmup=1.0,
             client_config={"consumer.session.timeout.ms": "6000", "consumer.heartbeat.interval.ms": "500",
                            "consumer.max.poll.interval.ms": "8000"})


def option_names() -> set[str]:
    return {f.name for f in dataclasses.fields(BenchConfig)}


def shipped_workloads() -> dict[str, str]:
    """The workloads installed with the package (e2e/workloads/*.yaml), by name without .yaml."""
    folder = resources.files(__package__) / "workloads"
    return {f.name[:-5]: str(f) for f in folder.iterdir() if f.name.endswith(".yaml")}


def load_workload(path: str) -> dict:
    """Read a workload YAML file, or a shipped one by name: a mapping of option names (dashes or underscores) to
    values."""
    shipped = shipped_workloads()
    if not os.path.exists(path):
        if path not in shipped:
            raise ValueError(f"{path}: no such file, nor a shipped workload ({', '.join(sorted(shipped))})")
        path = shipped[path]
    with open(path, encoding="utf-8") as fh:
        try:
            data = yaml.safe_load(fh) or {}
        except yaml.YAMLError as exc:
            raise ValueError(f"{path}: not valid YAML ({str(exc).splitlines()[0]})") from None
    if not isinstance(data, dict):
        raise ValueError(f"{path}: a workload file must be a mapping of option names to values")
    out = {}
    names = option_names()
    for key, value in data.items():
        name = str(key).replace("-", "_")
        if name in ("X", "x"):
            name = "client_config"
        if name not in names:
            raise ValueError(f"{path}: unknown option {key!r}")
        if name == "tests" and isinstance(value, str):
            value = [t.strip() for t in value.split(",") if t.strip()]
        if name == "tests" and not isinstance(value, list):
            raise ValueError(f"{path}: tests must be a list or a comma-separated string of test names")
        if name == "client_config":
            if not isinstance(value, dict):
                raise ValueError(f"{path}: {key} must be a mapping of client properties to values")
            value = {str(k): str(v) for k, v in dict(value).items()}
        if name == "acks":
            value = str(value)
        out[name] = value
    return out


def build_config(workload: dict, overrides: dict) -> BenchConfig:
    """Defaults, then --quick sizes, then the workload file, then explicit command-line options."""
    values: dict = {}
    if overrides.get("quick") or workload.get("quick"):
        values.update(QUICK)
    client = dict(values.pop("client_config", {}))
    values.update(workload)
    user_client = dict(values.pop("client_config", {}) or {})
    overrides = dict(overrides)
    user_client.update(overrides.pop("client_config", {}) or {})
    values.update(overrides)
    if values.get("group_protocol") == "consumer":
        client = {}  # KIP-848 groups take their timeouts from the broker; librdkafka refuses them client side
    client.update(user_client)
    cfg = BenchConfig(**values, client_config=client)
    cfg.validate()
    return cfg
