"""Cross-checks against kafka-python 3's schema-driven protocol classes: same bytes, and each reads the other's."""
import importlib
import uuid

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chronik_perf import protocol
from protocol_strategies import MESSAGES, all_versions, body_strategy

kp_modules = [importlib.import_module(f"kafka.protocol.{m}") for m in ("metadata", "producer", "consumer", "admin")]


def kp_class(name):
    for module in kp_modules:
        if hasattr(module, name):
            return getattr(module, name)
    return None


def kp_kind(name, kind):
    return kp_class(name + {"request": "Request", "response": "Response", "data": ""}[kind])


CASES = [(n, k, v) for n, k, v in all_versions(("request", "response", "data"))
         if kp_kind(n, k) is not None and v <= kp_kind(n, k).max_version]


# kafka-python renames the *_authorized_operations fields to authorized_operations and reads them as sets of bit
# numbers (None for Kafka's "not requested" value, bit 31 alone); we keep Kafka's names and int32 values.
NOT_REQUESTED = -(1 << 31)


def is_bitfield(field):
    return type(getattr(field, "_type", None)).__name__ == "type" and field._type.__name__ == "BitField"


def peer_name(cls, name):
    if name not in cls.fields and name.endswith("_authorized_operations"):
        return "authorized_operations"
    return name


def to_kp(cls, d, version=None):
    """Our body dict as a kafka-python data object."""
    kw = {}
    for name, value in d.items():
        name = peer_name(cls, name)
        field = cls.fields[name]
        if value is not None and field.is_struct():
            value = to_kp(field.data_class, value)
        elif value is not None and field.is_struct_array():
            value = [to_kp(field.data_class, item) for item in value]
        elif is_bitfield(field):
            value = None if value == NOT_REQUESTED else {b for b in range(32) if (value >> b) & 1}
        kw[name] = value
    return cls(version=version, **kw) if version is not None else cls(**kw)


def from_kp(cls, d, ours):
    """kafka-python's to_dict() output in our names and values; ``ours`` is the body it should equal."""
    out = {}
    for key in ours:
        name = peer_name(cls, key)
        field, value = cls.fields[name], d[name]
        if value is not None and field.is_struct():
            value = from_kp(field.data_class, value, ours[key])
        elif value is not None and field.is_struct_array():
            value = [from_kp(field.data_class, v, o) for v, o in zip(value, ours[key])]
        elif is_bitfield(field):
            value = NOT_REQUESTED if value is None else sum(1 << b for b in value)
            value = value - (1 << 32) if value >= 1 << 31 else value
        out[key] = value
    return out


def normalize(value):
    """Comparable form: zero UUIDs as None (kafka-python's spelling), buffers as bytes."""
    if isinstance(value, dict):
        return {k: normalize(v) for k, v in value.items()}
    if isinstance(value, list):
        return [normalize(v) for v in value]
    if isinstance(value, uuid.UUID) and value.int == 0:
        return None
    if isinstance(value, (bytearray, memoryview)):
        return bytes(value)
    return value


def kp_encode(name, kind, version, body, correlation_id):
    obj = to_kp(kp_kind(name, kind), body, version)
    if kind == "data":
        return bytes(obj.encode(version=version))
    if kind == "request":
        obj.with_header(correlation_id=correlation_id, client_id="peer")
    else:
        obj.with_header(correlation_id=correlation_id)
    return bytes(obj.encode(header=True, framed=True))


def ours_encode(name, kind, version, body, correlation_id):
    if kind == "data":
        return protocol.encode_payload(name, version, body)
    if kind == "request":
        return protocol.encode_request(name, version, body, correlation_id=correlation_id, client_id="peer")
    return protocol.encode_response(name, version, correlation_id, body)


def ours_decode(name, kind, version, frame):
    if kind == "data":
        return protocol.decode_payload(name, frame)[1]
    if kind == "request":
        header, body = protocol.decode_request(frame)
        assert header["api_version"] == version and header["client_id"] == "peer"
        return body
    return protocol.decode_response(name, version, frame)[1]


def kp_decode(name, kind, version, frame):
    cls = kp_kind(name, kind)
    if kind == "data":
        return cls.decode(frame, version=version).to_dict(json=False)
    return cls.decode(frame, version=version, header=True, framed=True).to_dict(json=False)


@pytest.mark.parametrize("name,kind,version", CASES, ids=[f"{n}{k.title()}-v{v}" for n, k, v in CASES])
@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_same_bytes_and_each_reads_the_other(name, kind, version, data):
    body = data.draw(body_strategy(name, kind, version))
    correlation_id = data.draw(st.integers(-(1 << 31), (1 << 31) - 1))
    ours = ours_encode(name, kind, version, body, correlation_id)
    theirs = kp_encode(name, kind, version, body, correlation_id)
    assert ours == theirs
    assert normalize(ours_decode(name, kind, version, theirs)) == normalize(body)
    if name == "ApiVersions" and kind == "response" and body["error_code"] != 0:
        return  # kafka-python reads every failed ApiVersions response as v0; Kafka does so only for code 35
    theirs_read = from_kp(kp_kind(name, kind), kp_decode(name, kind, version, ours), body)
    assert normalize(theirs_read) == normalize(body)


def test_every_api_has_peer_coverage():
    covered = {n for n, k, v in CASES}
    assert covered >= {name for name, kind in MESSAGES if kind != "data"} - {"ConsumerGroupHeartbeat"}
