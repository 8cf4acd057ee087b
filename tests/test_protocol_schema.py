"""Our schema table against Apache Kafka's JSON message definitions, read from the kafka-clients jar of the version
the package's pom pins: every field, type, version range, nullability, tag and default must agree, for every
message (the versions Kafka defines are the versions we speak)."""
import json
import os
import re
import zipfile
from pathlib import Path

import pytest

from chronik_perf.brokers import BrokerError, kafka_java
from chronik_perf.protocol_schema import PRIMITIVES, parse_range, parse_schema
from conftest import fail_or_skip

OURS = parse_schema()
CASES = sorted(OURS)


@pytest.fixture(scope="module")
def kafka_clients():
    """The kafka-clients jar the pom resolves to."""
    try:
        classpath = kafka_java().classpath
    except BrokerError as exc:
        fail_or_skip(f"Kafka's jars unavailable: {exc}")
    jar = next(j for j in classpath.split(os.pathsep) if Path(j).name.startswith("kafka-clients-"))
    with zipfile.ZipFile(jar) as z:
        yield z


def kafka_definition(jar, name, kind):
    text = jar.read(f"common/message/{name}{'' if kind == 'data' else kind.title()}.json").decode()
    return json.loads(re.sub(r"^\s*//.*$", "", text, flags=re.M))


def snake(name):
    name = re.sub(r"([A-Z]+)([A-Z][a-z])", r"\1_\2", name)
    return re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", name).lower()


def expected_fields(fields, common):
    out = []
    for f in fields:
        ftype = f["type"]
        base = ftype[2:] if ftype.startswith("[]") else ftype
        sub = ()
        if base not in PRIMITIVES:
            sub = expected_fields(f.get("fields") or common[base], common)
            ftype = "[]" if ftype.startswith("[]") else "{}"
        default = f.get("default")
        out.append((snake(f["name"]), ftype, parse_range(f["versions"]),
                    parse_range(f["nullableVersions"]) if "nullableVersions" in f else None,
                    f.get("tag", -1), parse_range(f.get("taggedVersions", f["versions"])) if "tag" in f else None,
                    None if default is None else str(default).lower() if isinstance(default, bool) else str(default),
                    sub))
    return tuple(out)


def ours_fields(fields):
    return tuple((f.name, f.type, f.versions, f.nullable, f.tag, f.tagged, f.default, ours_fields(f.fields))
                 for f in fields)


@pytest.mark.parametrize("name,kind", CASES, ids=[f"{n}-{k}" for n, k in CASES])
def test_schema_matches_kafka_definitions(kafka_clients, name, kind):
    theirs = kafka_definition(kafka_clients, name, kind)
    ours = OURS[name, kind]
    assert ours.api_key == theirs.get("apiKey", -1)
    assert ours.versions == parse_range(theirs["validVersions"])
    assert ours.flexible == parse_range(theirs["flexibleVersions"])
    common = {c["name"]: c["fields"] for c in theirs.get("commonStructs", [])}
    assert ours_fields(ours.fields) == expected_fields(theirs["fields"], common)
