"""chronik_perf.protocol_types, the TypedDicts of every message body, is current with protocol_schema (made by
tools/protocol_types.py) and names exactly the keys the codec knows."""
import importlib.util
from pathlib import Path
from types import NoneType, UnionType
from typing import get_args, get_origin

from chronik_perf import protocol, protocol_types
from chronik_perf.protocol_schema import parse_schema

TOOL = Path(__file__).resolve().parents[1] / "tools" / "protocol_types.py"


def load_tool():
    spec = importlib.util.spec_from_file_location("protocol_types_tool", TOOL)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_checked_in_module_is_what_the_schema_gives():
    assert load_tool().main(["--check"]) == 0, "run python tools/protocol_types.py"


def test_every_body_has_a_typeddict_with_the_schema_keys():
    messages = parse_schema()
    assert len(messages) == 38
    for (name, kind), message in messages.items():
        typed = getattr(protocol_types, name + ("" if kind == "data" else kind.capitalize()))
        keys = {f.name for f in message.fields} | ({"_unknown_tagged_fields"} if message.flexible else set())
        assert set(typed.__annotations__) == keys, name
        nested = next((f for f in message.fields if f.type == "[]"), None)
        if nested is not None:
            hint = typed.__annotations__[nested.name]        # list[Element], or list[Element] | None
            array = next(a for a in (get_args(hint) if get_origin(hint) is UnionType else (hint,)) if a is not NoneType)
            element = get_args(array)[0]
            assert {f.name for f in nested.fields} <= set(element.__annotations__), (name, nested.name)


def test_a_decoded_body_fits_its_typeddict():
    body = {"throttle_time_ms": 0, "brokers": [{"node_id": 1, "host": "h", "port": 9092, "rack": None}],
            "cluster_id": "c", "controller_id": 1, "topics": []}
    _, decoded = protocol.decode_response("Metadata", 12, protocol.encode_response("Metadata", 12, 3, body))
    assert set(decoded) <= set(protocol_types.MetadataResponse.__annotations__)
    assert set(decoded["brokers"][0]) <= set(protocol_types.MetadataResponseBrokers.__annotations__)
