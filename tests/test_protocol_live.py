"""Decode real answers from running brokers (Apache Kafka, Tansu, librdkafka's mock cluster) with our codec.

Uses the session fixtures ``kafka_broker``, ``tansu_broker`` and ``mock_broker`` (tests/conftest.py), each with
``.bootstrap_servers`` ("host:port"). Every request version is negotiated from the broker's ApiVersions answer.
"""
import socket
import struct
import time
import uuid

import pytest
from chronik_perf import protocol
from chronik_perf.records import build_batch, parse_batches

BROKERS = ["kafka_broker", "tansu_broker", "mock_broker"]


class Connection:
    """One blocking socket (to the first bootstrap address) speaking size-prefixed frames."""

    def __init__(self, bootstrap):
        host, port = bootstrap.split(",")[0].rsplit(":", 1)
        self.sock = socket.create_connection((host, int(port)), timeout=30)
        self.correlation_id = 0
        self.versions = None

    def read_frame(self):
        size = struct.unpack(">i", self._read(4))[0]
        return struct.pack(">i", size) + self._read(size)

    def _read(self, n):
        chunks = []
        while n:
            chunk = self.sock.recv(n)
            if not chunk:
                raise ConnectionError("broker closed the connection")
            chunks.append(chunk)
            n -= len(chunk)
        return b"".join(chunks)

    def call(self, api, body, version=None):
        if version is None:
            version = protocol.pick_version(api, self.versions)
        self.correlation_id += 1
        self.sock.sendall(protocol.encode_request(api, version, body, correlation_id=self.correlation_id))
        correlation_id, answer = protocol.decode_response(api, version, self.read_frame())
        assert correlation_id == self.correlation_id
        return version, answer

    def close(self):
        self.sock.close()


@pytest.fixture(params=BROKERS)
def conn(request):
    broker = request.getfixturevalue(request.param)
    c = Connection(broker.bootstrap_servers)
    c.broker_name = request.param
    # v0 first (every broker answers it), then the best version both sides know. Sending v3 blindly is not
    # portable: librdkafka's mock answers an unsupported-version ApiVersions with a body that is neither v0 nor v3.
    _, c.versions = c.call("ApiVersions", {}, version=0)
    _, c.versions = c.call("ApiVersions", {"client_software_name": "chronik-perf", "client_software_version": "0.1"})
    yield c
    c.close()


def retry(fn, ok, attempts=50):
    for _ in range(attempts):
        result = fn()
        if ok(result):
            return result
        time.sleep(0.2)
    return result


def test_api_versions_answer_covers_the_core_apis(conn):
    offered = {entry["api_key"] for entry in conn.versions["api_keys"]}
    assert conn.versions["error_code"] == 0
    for api in ("ApiVersions", "Metadata", "Produce", "Fetch", "ListOffsets", "FindCoordinator"):
        assert protocol.SUPPORTED[api] and protocol.pick_version(api, conn.versions) >= 0
    assert {18, 3, 0, 1, 2, 10} <= offered


def test_create_produce_fetch_list_offsets_find_coordinator(conn):
    topic = f"chronik-proto-{uuid.uuid4().hex[:12]}"
    offers_create = any(entry["api_key"] == 19 for entry in conn.versions["api_keys"])
    if offers_create:
        _, created = conn.call("CreateTopics", {"topics": [{"name": topic, "num_partitions": 1,
                                                            "replication_factor": 1}], "timeout_ms": 30000})
        assert created["topics"][0]["name"] == topic and created["topics"][0]["error_code"] == 0
    else:  # librdkafka's mock has no CreateTopics; it creates topics on a Metadata request instead
        assert conn.broker_name == "mock_broker"

    def metadata():
        return conn.call("Metadata", {"topics": [{"name": topic}],
                                      "allow_auto_topic_creation": not offers_create})[1]
    md = retry(metadata, lambda m: m["topics"] and m["topics"][0]["error_code"] == 0
               and m["topics"][0]["partitions"] and m["topics"][0]["partitions"][0]["leader_id"] >= 0)
    meta_topic = md["topics"][0]
    assert meta_topic["name"] == topic and meta_topic["partitions"][0]["partition_index"] == 0
    assert any(b["node_id"] == meta_topic["partitions"][0]["leader_id"] for b in md["brokers"])
    topic_id = meta_topic.get("topic_id", uuid.UUID(int=0))
    leader = next(b for b in md["brokers"] if b["node_id"] == meta_topic["partitions"][0]["leader_id"])
    data_conn = Connection(f"{leader['host']}:{leader['port']}")
    data_conn.versions = conn.versions
    try:
        produce_fetch_list(data_conn, topic, topic_id)
    finally:
        data_conn.close()

    group = f"chronik-proto-group-{uuid.uuid4().hex[:8]}"
    fc_version, found = conn.call("FindCoordinator", {"key": group, "key_type": 0, "coordinator_keys": [group]})
    coordinator = found["coordinators"][0] if fc_version >= 4 else found
    assert coordinator["error_code"] == 0 and coordinator["port"] > 0 and coordinator["node_id"] >= 0


def produce_fetch_list(conn, topic, topic_id):
    """Produce one batch to partition 0 through its leader, fetch it back, list the end offset."""
    value = uuid.uuid4().bytes * 8
    produce_version = protocol.pick_version("Produce", conn.versions)
    ident = {"topic_id": topic_id} if produce_version >= 13 else {"name": topic}
    _, produced = conn.call("Produce", {"acks": -1, "timeout_ms": 30000, "topic_data": [
        dict(ident, partition_data=[{"index": 0, "records": build_batch([value], [b"key"])}])]})
    part = produced["responses"][0]["partition_responses"][0]
    assert part["error_code"] == 0 and part["index"] == 0 and part["base_offset"] == 0

    fetch_version = protocol.pick_version("Fetch", conn.versions)
    ident = {"topic_id": topic_id} if fetch_version >= 13 else {"topic": topic}
    _, fetched = conn.call("Fetch", {"max_wait_ms": 500, "min_bytes": 1, "max_bytes": 1 << 20, "topics": [
        dict(ident, partitions=[{"partition": 0, "fetch_offset": 0, "partition_max_bytes": 1 << 20}])]})
    assert fetched["error_code"] == 0
    fpart = fetched["responses"][0]["partitions"][0]
    assert fpart["error_code"] == 0 and fpart["high_watermark"] == 1
    assert isinstance(fpart["records"], bytes)
    (batch,) = parse_batches(fpart["records"])
    assert [(r.key, r.value) for r in batch.records()] == [(b"key", value)]

    _, offsets = conn.call("ListOffsets", {"replica_id": -1, "topics": [
        {"name": topic, "partitions": [{"partition_index": 0, "timestamp": -1}]}]})
    opart = offsets["topics"][0]["partitions"][0]
    assert opart["error_code"] == 0 and opart["offset"] == 1
