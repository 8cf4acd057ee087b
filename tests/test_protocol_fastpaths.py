"""The codec's fast paths must not change what it means: decoded structs are split dicts filled in place, encoded
dicts are walked in schema order when they are in it, UUIDs are read from their int slot. Each test compares the
fast path with the slow one it replaces."""
import gc
import uuid

import pytest

from chronik_perf import protocol

METADATA = {
    "throttle_time_ms": 5, "cluster_id": "c", "controller_id": 1,
    "brokers": [{"node_id": 1, "host": "h", "port": 9092, "rack": None}],
    "topics": [{"error_code": 0, "name": "t", "topic_id": uuid.UUID(int=(1 << 127) | 12345), "is_internal": False,
                "partitions": [{"error_code": 0, "partition_index": 0, "leader_id": 1, "leader_epoch": 70000,
                                "replica_nodes": [1], "isr_nodes": [1], "offline_replicas": []}],
                "topic_authorized_operations": -(1 << 31)}],
}


def frame_of(body):
    return protocol.encode_response("Metadata", 12, 1, body)


def test_decoded_dicts_are_independent_and_ordinary():
    frame = frame_of(METADATA)
    _, first = protocol.decode_response("Metadata", 12, frame)
    partition = first["topics"][0]["partitions"][0]
    partition["extra"] = 1  # a new key in one decoded dict...
    del partition["leader_epoch"]
    partition["error_code"] = 99
    _, second = protocol.decode_response("Metadata", 12, frame)
    again = second["topics"][0]["partitions"][0]
    assert "extra" not in again and again["leader_epoch"] == 70000 and again["error_code"] == 0  # ...not in others
    assert list(again) == ["error_code", "partition_index", "leader_id", "leader_epoch", "replica_nodes",
                           "isr_nodes", "offline_replicas"]
    assert again == dict(again) and dict(again.items()) == again and again.copy() == again
    assert protocol.encode_response("Metadata", 12, 1, second) == frame


def test_decoded_body_equals_the_encoded_one():
    _, body = protocol.decode_response("Metadata", 12, frame_of(METADATA))
    expected = dict(METADATA, cluster_authorized_operations=-(1 << 31))
    for key in ("brokers", "topics"):
        assert body[key] == expected[key]
    assert body["throttle_time_ms"] == 5 and body["topics"][0]["topic_id"] == METADATA["topics"][0]["topic_id"]


def test_unknown_tagged_fields_round_trip_through_decoded_dicts():
    body = {"error_code": 0, "api_keys": [{"api_key": 0, "min_version": 0, "max_version": 9}],
            "_unknown_tagged_fields": {99: b"xyz"}}
    frame = protocol.encode_response("ApiVersions", 3, 1, body)
    for _ in range(2):  # the second decode reuses the templates the first one's unknown key went into
        _, decoded = protocol.decode_response("ApiVersions", 3, frame)
        assert decoded["_unknown_tagged_fields"] == {99: b"xyz"}
        assert protocol.encode_response("ApiVersions", 3, 1, decoded) == frame
    _, plain = protocol.decode_response("ApiVersions", 3, protocol.encode_response("ApiVersions", 3, 1, {}))
    assert "_unknown_tagged_fields" not in plain


def test_dicts_in_any_key_order_encode_the_same():
    frame = frame_of(METADATA)
    shuffled = {k: METADATA[k] for k in reversed(list(METADATA))}
    shuffled["topics"] = [{k: t[k] for k in sorted(t)} for t in METADATA["topics"]]
    shuffled["cluster_authorized_operations"] = 7  # a field of v8-10 only: left out of v12 (a typo is refused)
    assert frame_of(shuffled) == frame
    partial = {k: v for k, v in METADATA.items() if k != "throttle_time_ms"}
    assert frame_of(partial) == frame_of(dict(partial, throttle_time_ms=0))


def test_keys_equal_but_not_identical_are_found():
    key = "".join(["throttle_", "time_ms"])  # an uninterned str equal to the field name
    assert key is not "throttle_time_ms"  # noqa: F632
    body = {key: 5, **{k: v for k, v in METADATA.items() if k != "throttle_time_ms"}}
    assert frame_of(body) == frame_of(METADATA)


def test_uuids_by_slot_and_by_value():
    base = METADATA["topics"][0]
    for value in (base["topic_id"], str(base["topic_id"]), uuid.UUID(int=0), None):
        body = dict(METADATA, topics=[dict(base, topic_id=value)])
        _, decoded = protocol.decode_response("Metadata", 12, frame_of(body))
        assert decoded["topics"][0]["topic_id"] == (uuid.UUID(str(value)) if value else uuid.UUID(int=0))

    class Sub(uuid.UUID):
        pass

    sub = Sub(int=base["topic_id"].int)
    assert frame_of(dict(METADATA, topics=[dict(base, topic_id=sub)])) == frame_of(METADATA)


@pytest.mark.parametrize("zero_copy", [False, True])
def test_dicts_holding_tracked_values_are_tracked(zero_copy):
    body = {"throttle_time_ms": 0, "error_code": 0, "session_id": 0, "responses": [{
        "topic": "t", "partitions": [{"partition_index": 0, "records": b"r" * 64}]}]}
    frame = protocol.encode_response("Fetch", 12, 1, body)
    _, decoded = protocol.decode_response("Fetch", 12, frame, zero_copy=zero_copy)
    partition = decoded["responses"][0]["partitions"][0]
    assert gc.is_tracked(partition) == zero_copy  # a memoryview is tracked, so what holds it must be
    assert gc.is_tracked(decoded) == zero_copy
    assert bytes(partition["records"]) == b"r" * 64
    gc.collect()
    assert bytes(partition["records"]) == b"r" * 64


def test_decoding_and_failing_leak_nothing():
    """Values written straight into split dicts, reused ints and half-built bodies of a failed decode are all
    released: memory after many decodes is what it was after the first."""
    import tracemalloc

    frame = frame_of(dict(METADATA, topics=METADATA["topics"] * 50))
    body = frame[4:-7]
    truncated = len(body).to_bytes(4, "big") + body  # a well-formed size prefix, a body cut short

    def churn():
        for _ in range(200):
            protocol.decode_response("Metadata", 12, frame)
            protocol.decode_response("Metadata", 12, frame, zero_copy=True)
            with pytest.raises(protocol.ProtocolError):
                protocol.decode_response("Metadata", 12, truncated)

    churn()  # warm caches and free lists
    tracemalloc.start()
    try:
        before = tracemalloc.take_snapshot()
        churn()
        after = tracemalloc.take_snapshot()
    finally:
        tracemalloc.stop()
    grown = sum(stat.size_diff for stat in after.compare_to(before, "filename"))
    assert grown < 64 * 1024, f"{grown} bytes still held after 600 decodes"
