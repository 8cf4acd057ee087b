"""Our schema table against Apache Kafka's JSON message definitions (the copies kafka-python 3 ships): every field,
type, version range, nullability, tag and default must agree. No message is skipped except ConsumerGroupHeartbeat,
which kafka-python does not ship."""
import json
import re
from importlib import resources

import pytest

from chronik_perf.protocol_schema import PRIMITIVES, parse_range, parse_schema

OURS = parse_schema()
KAFKA_JSON = resources.files("kafka.protocol.schemas") / "resources"
NOT_SHIPPED = {"ConsumerGroupHeartbeat"}


def kafka_definition(name, kind):
    text = (KAFKA_JSON / f"{name}{'' if kind == 'data' else kind.title()}.json").read_text()
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


CASES = sorted(key for key in OURS if key[0] not in NOT_SHIPPED)


@pytest.mark.parametrize("name,kind", CASES, ids=[f"{n}-{k}" for n, k in CASES])
def test_schema_matches_kafka_definitions(name, kind):
    theirs = kafka_definition(name, kind)
    ours = OURS[name, kind]
    assert ours.api_key == theirs.get("apiKey", -1)
    assert ours.versions == parse_range(theirs["validVersions"])
    assert ours.flexible == parse_range(theirs["flexibleVersions"])
    common = {c["name"]: c["fields"] for c in theirs.get("commonStructs", [])}
    assert ours_fields(ours.fields) == expected_fields(theirs["fields"], common)


def test_every_message_is_checked_or_named():
    assert {n for n, _ in OURS} - {n for n, _ in CASES} == NOT_SHIPPED
