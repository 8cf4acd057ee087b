"""Byte identity with Kafka's own generated message classes (kafka-clients, the version the package's pom pins),
for every API, version and direction the schema defines, both ways: Kafka reads our random bodies entirely and
writes the same bytes back; Kafka fills messages at random, and we decode and re-encode them to the same bytes."""
import struct

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chronik_perf import protocol
from chronik_perf.brokers import BrokerError, kafka_java
from conftest import fail_or_skip
from kafka_java_peer import KafkaError, KafkaMessagePeer, header_size
from protocol_strategies import MESSAGES, all_versions, body_strategy

CASES = all_versions(("request", "response", "data"))
IDS = [f"{n}{k.title()}-v{v}" for n, k, v in CASES]
CLIENT_ID = "peer"
GENERATED = 6  # messages Kafka fills at random per case


@pytest.fixture(scope="session")
def kafka_classes():
    """One JVM for the whole test run."""
    try:
        jv = kafka_java()
    except BrokerError as exc:
        fail_or_skip(f"Kafka's classes unavailable: {exc}")
    peer = KafkaMessagePeer(jv.java, jv.classpath)
    yield peer
    peer.close()


def ours_frame(name, kind, version, body):
    if kind == "data":
        return protocol.encode_payload(name, version, body)
    if kind == "request":
        return protocol.encode_request(name, version, body, correlation_id=7, client_id=CLIENT_ID)
    return protocol.encode_response(name, version, 7, body)


def ours_reencoded(name, kind, version, body_bytes):
    """Our codec's decode of a bare body, encoded again; returned without its frame header."""
    message = MESSAGES[name, kind]
    skip = header_size(message, version, CLIENT_ID)
    head = ours_frame(name, kind, version, {})[:skip]
    if kind == "data":
        decoded = protocol.decode_payload(name, head + body_bytes)[1]
    else:
        frame = struct.pack(">i", skip - 4 + len(body_bytes)) + head[4:] + body_bytes
        decoded = (protocol.decode_request(frame)[1] if kind == "request"
                   else protocol.decode_response(name, version, frame)[1])
    return ours_frame(name, kind, version, decoded)[skip:]


@pytest.mark.parametrize("name,kind,version", CASES, ids=IDS)
@settings(max_examples=4, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(data=st.data())
def test_kafka_reads_our_bytes_and_writes_them_back(kafka_classes, name, kind, version, data):
    body = ours_frame(name, kind, version, data.draw(body_strategy(name, kind, version)))
    body = body[header_size(MESSAGES[name, kind], version, CLIENT_ID):]
    assert kafka_classes.check(name, kind, version, body) == body


@pytest.mark.parametrize("name,kind,version", CASES, ids=IDS)
def test_we_read_kafkas_bytes_and_write_them_back(kafka_classes, name, kind, version):
    for seed in range(GENERATED):
        theirs = kafka_classes.generate(name, kind, version, seed)
        assert ours_reencoded(name, kind, version, theirs) == theirs, f"seed {seed}"


def test_the_peer_names_what_kafka_refuses(kafka_classes):
    body = ours_frame("Metadata", "request", 12, {"topics": []})[header_size(MESSAGES["Metadata", "request"], 12,
                                                                             CLIENT_ID):]
    with pytest.raises(KafkaError, match="bytes left unread"):
        kafka_classes.check("Metadata", "request", 12, body + b"\0")
