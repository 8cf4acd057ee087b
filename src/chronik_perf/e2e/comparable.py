"""Whether results measured the same thing: their workload, driver, target and machine, compared before any figure.

A difference in the work (message size, partitions, acks, driver, ...) refuses the comparison unless the user allows
that key; a difference that leaves the work alone but can move the figures (the machine, the software versions) is
a warning. ``check-regression`` also refuses a different target or CPU; ``compare`` lets either the target or the
driver vary (that is what it compares), not both.
"""

from __future__ import annotations

from dataclasses import dataclass, field

# BenchConfig fields that change the work each test does (the tests list, repeat, paths and logging do not)
WORKLOAD = ("message_size", "num_messages", "num_partitions", "replication_factor", "acks", "compression",
            "batch_size", "linger_ms", "producers", "consumers", "rate", "duration", "warmup", "key_pattern",
            "payload", "group_protocol", "client_config")
MACHINE = ("cpu_model", "cpu_count")
# Every key --allow-different accepts
ALLOWABLE = ("driver", "target", *WORKLOAD, *MACHINE)


@dataclass(frozen=True)
class Difference:
    """One key whose value differs between the first result and another."""

    key: str
    before: object
    after: object
    where: str = ""

    def __str__(self) -> str:
        before, after = self.before, self.after
        if self.key == "client_config":
            keys = sorted(k for k in {*before, *after} if before.get(k) != after.get(k))
            before, after = ({k: side.get(k, "unset") for k in keys} for side in (self.before, self.after))
        text = f"{self.key} {_show(before)} -> {_show(after)}"
        return f"{text} ({self.where})" if self.where else text


@dataclass
class Verdict:
    """What a comparison found: differences that refuse it, differences the user allowed, and warnings."""

    refused: list[Difference] = field(default_factory=list)
    allowed: list[Difference] = field(default_factory=list)
    warnings: list[Difference] = field(default_factory=list)

    def refusal(self) -> str | None:
        """The one line that refuses the comparison, or None when it may go ahead."""
        if not self.refused:
            return None
        keys = ",".join(dict.fromkeys(d.key for d in self.refused))
        return (f"not comparable: {'; '.join(map(str, self.refused))} "
                f"(--allow-different {keys} compares them anyway)")

    def despite(self) -> str | None:
        """The line naming what the user allowed to differ, or None."""
        return f"compared despite: {'; '.join(map(str, self.allowed))}" if self.allowed else None


def _show(value) -> str:
    if value is None:
        return "unset"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}={v}" for k, v in sorted(value.items())) + "}"
    return str(value)


def _config(doc: dict, key: str):
    value = doc.get("config", {}).get(key)
    return dict(value or {}) if key == "client_config" else value


def _env(doc: dict) -> dict:
    """The facts of a result that can move its figures without changing its work, by warning key."""
    env = doc.get("environment") or {}
    client = env.get("client") or {}
    git = env.get("git") or {}
    commit = git.get("commit")
    return {
        "cpu_model": env.get("cpu_model"), "cpu_count": env.get("cpu_count"), "memory_gib": env.get("memory_gib"),
        "python": env.get("python"),
        "chronik_perf": (commit[:12] + (" (dirty)" if git.get("dirty") else "")) if commit
        else (env.get("packages") or {}).get("chronik-perf"),
        "broker_version": (doc.get("broker") or {}).get("version"),
        "client_version": client.get("version"), "librdkafka": client.get("librdkafka"), "java": client.get("java"),
    }


def differences(first: dict, other: dict, where: str = "") -> list[Difference]:
    """Every difference between two results: driver, target, workload, machine and software."""
    out = [Difference(key, _config(first, key), _config(other, key), where)
           for key in ("driver", *WORKLOAD) if _config(first, key) != _config(other, key)]
    if first.get("target") != other.get("target"):
        out.append(Difference("target", first.get("target"), other.get("target"), where))
    a, b = _env(first), _env(other)
    out += [Difference(key, a[key], b[key], where) for key in a if a[key] != b[key]]
    return out


def judge(docs: list[dict], errors: set[str], allowed: set[str], names: list[str] | None = None) -> Verdict:
    """Compare every result with the first: differences in ``errors`` refuse unless ``allowed``; those in the
    workload always do; the machine and software are warnings. A different driver makes client versions
    expected, a different target broker versions."""
    verdict = Verdict()
    for i, doc in enumerate(docs[1:], 1):
        where = names[i] if names and len(docs) > 2 else ""
        found = differences(docs[0], doc, where)
        keys = {d.key for d in found}
        for d in found:
            if d.key in ("client_version", "librdkafka", "java") and "driver" in keys:
                continue
            if d.key == "broker_version" and "target" in keys:
                continue
            if d.key in errors or d.key in WORKLOAD:
                (verdict.allowed if d.key in allowed else verdict.refused).append(d)
            elif d.key not in ("driver", "target"):
                verdict.warnings.append(d)
    return verdict


def for_regression(baseline: dict, current: dict, allowed: set[str]) -> Verdict:
    """check-regression's rule: workload, driver, target and CPU must match."""
    return judge([baseline, current], {"driver", "target", *MACHINE}, allowed)


def for_comparison(docs: list[dict], allowed: set[str], names: list[str] | None = None) -> Verdict:
    """compare's rule: the same workload; the target or the driver may vary, not both."""
    varies = {d.key for doc in docs[1:] for d in differences(docs[0], doc) if d.key in ("driver", "target")}
    return judge(docs, varies if len(varies) == 2 else set(), allowed, names)


def header(docs: list[dict]) -> str:
    """The line above a side-by-side table: the workload every run shares, and the driver or target they share."""
    first = docs[0]
    shared = [k for k in WORKLOAD if all(_config(d, k) == _config(first, k) for d in docs)]
    line = "same workload: " + ", ".join(f"{k} {_show(_config(first, k))}" for k in shared)
    if len(shared) < len(WORKLOAD):
        line += " (differs: " + ", ".join(k for k in WORKLOAD if k not in shared) + ")"
    for key, value in (("driver", lambda d: _config(d, "driver")), ("target", lambda d: d.get("target"))):
        values = list(dict.fromkeys(value(d) for d in docs))
        line += f"; same {key}: {values[0]}" if len(values) == 1 else f"; {key}s: {', '.join(map(str, values))}"
    return line


def parse_allowed(text: str) -> set[str]:
    """--allow-different KEY[,KEY]: the keys, each one of ALLOWABLE (ValueError naming the unknown ones)."""
    keys = {k.strip() for k in text.split(",") if k.strip()}
    unknown = sorted(keys - set(ALLOWABLE))
    if unknown or not keys:
        raise ValueError(f"unknown key(s) {', '.join(unknown) or '(none)'}; known: {', '.join(ALLOWABLE)}")
    return keys
