"""A body's key that no version of its struct has is refused with a ProtocolError naming the key and the struct,
instead of the field's default going out on the wire; keys of other versions of the struct are accepted (and left
out, as before)."""
import uuid

import pytest

from chronik_perf import protocol
from chronik_perf.protocol import ProtocolError

METADATA = {"topics": [{"topic_id": uuid.UUID(int=0), "name": "t"}], "allow_auto_topic_creation": False,
            "include_topic_authorized_operations": False}


def test_a_misspelt_top_level_key_is_refused():
    body = dict(METADATA, allow_auto_topic_creaton=True)
    with pytest.raises(ProtocolError, match=r"Metadata v12: unknown key 'allow_auto_topic_creaton' in Metadata "
                                            r"request: no version of it has that field"):
        protocol.encode_request("Metadata", 12, body)


def test_a_misspelt_nested_key_is_refused_naming_the_field_and_struct():
    body = dict(METADATA, topics=[{"topic_id": uuid.UUID(int=0), "nme": "t"}])
    with pytest.raises(ProtocolError, match=r"Metadata v12: field topics: unknown key 'nme' in Metadata request "
                                            r"topics\[\]"):
        protocol.encode_request("Metadata", 12, body)
    response = {"responses": [{"name": "t", "partition_responses": [
        {"index": 0, "error_code": 0, "base_offset": 0, "current_leader": {"leader_id": 1, "leader_epohc": 2}}]}]}
    with pytest.raises(ProtocolError, match=r"unknown key 'leader_epohc' in Produce response responses\[\] "
                                            r"partition_responses\[\] current_leader"):
        protocol.encode_response("Produce", 10, 1, response)


def test_a_misspelt_payload_key_is_refused():
    with pytest.raises(ProtocolError, match="unknown key 'topic' in ConsumerProtocolSubscription"):
        protocol.encode_payload("ConsumerProtocolSubscription", 1, {"topic": ["t"]})


def test_keys_of_other_versions_are_accepted_and_left_out():
    # the client's DeleteTopics body carries both spellings: topic_names (v0-5) and topics (v6+)
    both = {"topic_names": ["a"], "topics": [{"name": "a"}], "timeout_ms": 1000}
    for version in range(1, 7):
        spelling = "topics" if version >= 6 else "topic_names"
        only = {k: v for k, v in both.items() if k in ("timeout_ms", spelling)}
        assert protocol.encode_request("DeleteTopics", version, both) == protocol.encode_request(
            "DeleteTopics", version, only)
    assert protocol.encode_request("Metadata", 12, dict(METADATA, include_cluster_authorized_operations=True)) == \
        protocol.encode_request("Metadata", 12, METADATA)


def test_the_check_costs_nothing_when_every_key_is_a_field():
    frame = protocol.encode_request("Metadata", 12, METADATA)
    reordered = {k: METADATA[k] for k in reversed(list(METADATA))}
    assert protocol.encode_request("Metadata", 12, reordered) == frame
    assert protocol.encode_request("Metadata", 12, {}) == protocol.encode_request(
        "Metadata", 12, {"topics": [], "allow_auto_topic_creation": True, "include_topic_authorized_operations": False})


def test_decoded_bodies_with_unknown_tagged_fields_encode_again():
    body = {"error_code": 0, "api_keys": [], "_unknown_tagged_fields": {99: b"xyz"}}
    frame = protocol.encode_response("ApiVersions", 3, 1, body)
    _, decoded = protocol.decode_response("ApiVersions", 3, frame)
    assert protocol.encode_response("ApiVersions", 3, 1, decoded) == frame
    # a non-flexible version has no tagged fields, yet the key of kept ones is no typo
    assert protocol.encode_response("ApiVersions", 2, 1, decoded) == protocol.encode_response(
        "ApiVersions", 2, 1, {"error_code": 0, "api_keys": []})


def test_a_key_that_is_not_a_string_is_refused():
    with pytest.raises(ProtocolError, match="unknown key 7 in Metadata request"):
        protocol.encode_request("Metadata", 12, dict(METADATA, **{}) | {7: "x"})
