"""Client parts that need no real broker: partitioner, batch splitting, assignors, error mapping, and a misbehaving
TCP peer (answers ApiVersions properly, then garbage, forged sizes, silence or a closed socket)."""
import socket
import struct
import threading
import time

import pytest
from confluent_kafka import murmur2 as librdkafka_murmur2
from hypothesis import given, settings
from hypothesis import strategies as st
from kafka.partitioner.default import murmur2 as kafka_python_murmur2

from chronik_perf import _core, protocol
from chronik_perf.client import (BrokerUnavailableError, Cluster, ConnectionLostError, RequestTimedOutError, errors,
                                 range_assign, roundrobin_assign)
from chronik_perf.client.connection import Connection
from chronik_perf.protocol import ProtocolError
from chronik_perf.records import build_batch


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=64), st.integers(1, 64))
def test_key_partitions_match_librdkafka_and_kafka_python(key, n):
    assert _core.key_partitions([key], n)[0] == librdkafka_murmur2(key, n)
    assert _core.murmur2_hash(key) & 0x7FFFFFFF == kafka_python_murmur2(key) & 0x7FFFFFFF


def test_key_partitions_null_keys_and_bad_count():
    assert list(_core.key_partitions([None, b"a"], 3)) == [-1, librdkafka_murmur2(b"a", 3)]
    with pytest.raises(ValueError):
        _core.key_partitions([b"a"], 0)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.binary(max_size=3000), min_size=1, max_size=200), st.integers(200, 20000), st.booleans())
def test_batch_bounds_cover_everything_and_respect_max_bytes(values, max_bytes, keyed):
    keys = [v[:10] for v in values] if keyed else None
    ends = _core.batch_bounds(values, keys, max_bytes)
    assert ends[-1] == len(values) and ends == sorted(set(ends))
    start = 0
    for end in ends:
        batch = build_batch(values[start:end], None if keys is None else keys[start:end])
        assert len(batch) <= max_bytes or end - start == 1      # a lone oversized record gets its own run
        if end < len(values):
            # closed because the next record did not fit: full but for the timestamp deltas counted at their widest
            # (10 bytes, 1 here), as a Kafka producer fills batch.size
            more = build_batch(values[start:end + 1], None if keys is None else keys[start:end + 1])
            assert len(more) > max_bytes - 9 * (end + 1 - start), (len(more), max_bytes, end + 1 - start)
        start = end


def test_take_gathers_and_checks_bounds():
    assert _core.take([b"a", b"b", b"c"], [2, 0, 2]) == [b"c", b"a", b"c"]
    with pytest.raises(IndexError):
        _core.take([b"a"], [1])


def test_range_assignor_like_kafka():
    members = {"m1": ["t", "u"], "m2": ["t", "u"], "m3": ["t"]}
    plan = range_assign(members, {"t": 7, "u": 3})
    assert plan["m1"] == {"t": [0, 1, 2], "u": [0, 1]}
    assert plan["m2"] == {"t": [3, 4], "u": [2]}
    assert plan["m3"] == {"t": [5, 6]}


def test_roundrobin_assignor_like_kafka():
    members = {"b": ["t", "u"], "a": ["t", "u"]}
    plan = roundrobin_assign(members, {"t": 3, "u": 2})
    assert plan["a"] == {"t": [0, 2], "u": [1]}
    assert plan["b"] == {"t": [1], "u": [0]}
    only_t = roundrobin_assign({"a": ["t"], "b": ["u"]}, {"t": 2, "u": 2})
    assert only_t == {"a": {"t": [0, 1]}, "b": {"u": [0, 1]}}


def test_error_codes_map_to_named_exceptions():
    exc = errors.error_for(6, "t/0")
    assert isinstance(exc, errors.NotLeaderOrFollowerError) and exc.retriable and exc.code == 6
    assert isinstance(errors.error_for(3), errors.UnknownTopicOrPartitionError)
    assert isinstance(errors.error_for(5), errors.LeaderNotAvailableError)
    assert not errors.error_for(36).retriable
    unknown = errors.error_for(9999)
    assert type(unknown) is errors.BrokerError and unknown.code == 9999
    with pytest.raises(errors.TopicAlreadyExistsError):
        errors.check(36)
    errors.check(0)


class FakeBroker:
    """A TCP peer that answers ApiVersions v0 like a broker, then does ``behaviour`` with the next request."""

    def __init__(self, behaviour):
        self.behaviour = behaviour
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = self.server.getsockname()[1]
        self.conns = []
        threading.Thread(target=self._serve, daemon=True).start()

    def _read_frame(self, conn):
        size = struct.unpack(">i", self._read(conn, 4))[0]
        return struct.pack(">i", size) + self._read(conn, size)

    @staticmethod
    def _read(conn, n):
        data = b""
        while len(data) < n:
            chunk = conn.recv(n - len(data))
            if not chunk:
                raise ConnectionError
            data += chunk
        return data

    def _serve(self):
        try:
            conn, _ = self.server.accept()
            self.conns.append(conn)
            header, _ = protocol.decode_request(self._read_frame(conn))
            conn.sendall(protocol.encode_response("ApiVersions", 0, header["correlation_id"], {"api_keys": [
                {"api_key": 3, "min_version": 0, "max_version": 12}, {"api_key": 18, "min_version": 0,
                                                                      "max_version": 3}]}))
            header, _ = protocol.decode_request(self._read_frame(conn))
            self.behaviour(conn, header["correlation_id"])
        except (ConnectionError, OSError):
            pass

    def close(self):
        for c in self.conns:
            c.close()
        self.server.close()


def _metadata_call(behaviour, timeout=5.0):
    fake = FakeBroker(behaviour)
    conn = Connection("127.0.0.1", fake.port, request_timeout=timeout)
    t0 = time.monotonic()
    try:
        with pytest.raises(Exception) as info:
            conn.call("Metadata", {"topics": None}, timeout=timeout)
        return info.value, time.monotonic() - t0, conn
    finally:
        conn.close()
        fake.close()


def test_garbage_answer_is_a_protocol_error_and_drops_the_connection():
    def garbage(conn, cid):
        conn.sendall(struct.pack(">ii", 7, cid) + b"\xff\xff\xff")
    exc, _, conn = _metadata_call(garbage)
    assert isinstance(exc, ProtocolError) and conn.closed


def test_forged_frame_size_is_refused_without_allocating():
    exc, _, conn = _metadata_call(lambda c, cid: c.sendall(struct.pack(">i", 0x7FFFFFF0) + b"\0" * 16))
    assert isinstance(exc, ProtocolError) and "out of range" in str(exc) and conn.closed


def test_unknown_correlation_id_is_a_protocol_error():
    def wrong_id(conn, cid):
        conn.sendall(protocol.encode_response("Metadata", 12, cid + 100, {"brokers": []}))
    exc, _, _ = _metadata_call(wrong_id)
    assert isinstance(exc, ProtocolError) and "correlation id" in str(exc)


def test_silent_broker_times_out():
    exc, elapsed, conn = _metadata_call(lambda c, cid: time.sleep(10), timeout=1.0)
    assert isinstance(exc, RequestTimedOutError) and elapsed < 4 and conn.closed


def test_broker_closing_the_connection_fails_the_request():
    exc, elapsed, _ = _metadata_call(lambda c, cid: c.shutdown(socket.SHUT_RDWR))
    assert isinstance(exc, ConnectionLostError) and elapsed < 4


def test_unreachable_bootstrap_gives_up_at_the_deadline():
    with socket.create_server(("127.0.0.1", 0)) as s:
        port = s.getsockname()[1]
    t0 = time.monotonic()
    with pytest.raises(BrokerUnavailableError, match="unreachable for 1.5 s"):
        Cluster(f"127.0.0.1:{port}", reconnect_deadline=1.5, connect_timeout=0.5)
    assert 1.5 <= time.monotonic() - t0 < 6
