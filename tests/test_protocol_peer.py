"""Cross-checks against kafka-python 3's schema-driven protocol classes: same bytes, and each reads the other's."""
import uuid

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chronik_perf import protocol
from chronik_perf.kafka_python_peer import from_kp, kp_class, kp_frame, to_kp
from chronik_perf.protocol_schema import in_range
from protocol_strategies import MESSAGES, all_versions, body_strategy, tagged_defaults_as_none


# Every version the schema has, except these newer than kafka-python 3.0.12 (test_protocol_kafka_classes checks them
# against Kafka's own classes): a peer that stops short fails test_peer_covers_every_version and these cases,
# rather than quietly dropping versions from the check.
PEER_STOPS_AT = {("ApiVersions", "request"): 4, ("ApiVersions", "response"): 4}
CASES = [(n, k, v) for n, k, v in all_versions(("request", "response", "data"))
         if kp_class(n, k) is not None and v <= PEER_STOPS_AT.get((n, k), v)]
API_VERSIONS_ERRORS = st.sampled_from([0, 0, 0, 35])     # NONE, or UNSUPPORTED_VERSION (read back as v0)


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
    obj = to_kp(kp_class(name, kind), body, version)
    if kind == "data":
        return bytes(obj.encode(version=version))
    return kp_frame(obj, kind, correlation_id=correlation_id, client_id="peer")


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
    cls = kp_class(name, kind)
    if kind == "data":
        return cls.decode(frame, version=version).to_dict(json=False)
    return cls.decode(frame, version=version, header=True, framed=True).to_dict(json=False)


@pytest.mark.parametrize("name,kind,version", CASES, ids=[f"{n}{k.title()}-v{v}" for n, k, v in CASES])
@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_same_bytes_and_each_reads_the_other(name, kind, version, data):
    body = data.draw(body_strategy(name, kind, version))
    if name == "ApiVersions" and kind == "response":
        body["error_code"] = data.draw(API_VERSIONS_ERRORS)
    message = MESSAGES[name, kind]
    kp_body = tagged_defaults_as_none(message.fields, version, in_range(message.flexible, version), body)
    correlation_id = data.draw(st.integers(-(1 << 31), (1 << 31) - 1))
    ours = ours_encode(name, kind, version, body, correlation_id)
    theirs = kp_encode(name, kind, version, kp_body, correlation_id)
    assert ours == theirs
    got = normalize(ours_decode(name, kind, version, theirs))
    if name == "ApiVersions" and kind == "response" and body["error_code"] == 35:
        # read as v0 when it parses as v0 (Kafka's clients do the same)
        v0 = {"error_code": 35, "api_keys": [{k: e[k] for k in ("api_key", "min_version", "max_version")}
                                             for e in body["api_keys"]]}
        assert got in (normalize(body), v0)
    else:
        assert got == normalize(body)
    if name == "ApiVersions" and kind == "response" and body["error_code"] != 0:
        return  # kafka-python reads every failed ApiVersions response as v0; Kafka does so only for code 35
    theirs_read = from_kp(kp_class(name, kind), kp_decode(name, kind, version, ours), kp_body)
    assert normalize(theirs_read) == normalize(kp_body)


def test_peer_covers_every_version():
    """kafka-python reads and writes every version of every message in our schema (ranges, not a subset), bar the
    listed newer ones; a peer that reaches further must have the list shortened."""
    short = {(n, k): (v, kp_class(n, k).max_version) for n, k, v in CASES if v > kp_class(n, k).max_version}
    assert not short, f"the installed kafka-python stops below our versions: {short}"
    ours = {(n, k): v for n, k, v in all_versions(("request", "response", "data")) if kp_class(n, k) is not None}
    covered = {(n, k): max(v for m, j, v in CASES if (m, j) == (n, k)) for n, k, _ in CASES}
    assert covered == {key: min(v, PEER_STOPS_AT.get(key, v)) for key, v in ours.items()}
    assert all(kp_class(*key).max_version == top for key, top in PEER_STOPS_AT.items())


def test_every_api_has_peer_coverage():
    covered = {n for n, k, v in CASES}
    assert covered >= {name for name, kind in MESSAGES if kind != "data"} - {"ConsumerGroupHeartbeat"}
