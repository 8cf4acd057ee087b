"""A broker that lies: forged Fetch answers (offsets that wrap or never advance) and forged size prefixes must end
in a named error, never in a loop without progress or an allocation sized by the broker."""
import socket
import struct
import threading
import tracemalloc

import pytest

from chronik_perf import _core, protocol
from chronik_perf.client import Consumer
from chronik_perf.client.connection import Connection
from chronik_perf.client.errors import ConnectionLostError
from chronik_perf.protocol import ProtocolError
from chronik_perf.records import CorruptRecordError, build_batch, crc32c, parse_batches

TOPIC = "forged"
VERSIONS = {"ApiVersions": (0, 3), "Metadata": (0, 12), "Fetch": (4, 12)}


def forge(batch, *, base_offset=None, last_offset_delta=None):
    """A copy of a v2 batch with header fields replaced (the CRC covers last_offset_delta: recomputed)."""
    out = bytearray(batch)
    if base_offset is not None:
        struct.pack_into(">q", out, 0, base_offset)
    if last_offset_delta is not None:
        struct.pack_into(">i", out, 23, last_offset_delta)
    struct.pack_into(">I", out, 17, crc32c(bytes(out[21:])))
    return bytes(out)


class ScriptedBroker:
    """One-partition broker on 127.0.0.1 that answers ApiVersions and Metadata truthfully and every Fetch with
    ``records``; counts the Fetch requests it gets."""

    def __init__(self, records):
        self.records = records
        self.fetches = 0
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = self.server.getsockname()[1]
        self.conns = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                conn, _ = self.server.accept()
            except OSError:
                return
            self.conns.append(conn)
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn):
        try:
            with conn.makefile("rb") as stream:
                while True:
                    head = stream.read(4)
                    if len(head) < 4:
                        return
                    header, body = protocol.decode_request(head + stream.read(struct.unpack(">i", head)[0]))
                    api = {18: "ApiVersions", 3: "Metadata", 1: "Fetch"}[header["api_key"]]
                    answer = getattr(self, api.lower())(body)
                    conn.sendall(protocol.encode_response(api, header["api_version"], header["correlation_id"],
                                                          answer))
        except OSError:
            pass

    def apiversions(self, body):
        keys = {"ApiVersions": 18, "Metadata": 3, "Fetch": 1}
        return {"error_code": 0, "api_keys": [{"api_key": keys[a], "min_version": lo, "max_version": hi}
                                              for a, (lo, hi) in VERSIONS.items()]}

    def metadata(self, body):
        return {"brokers": [{"node_id": 1, "host": "127.0.0.1", "port": self.port, "rack": None}],
                "cluster_id": "forged", "controller_id": 1,
                "topics": [{"error_code": 0, "name": TOPIC, "is_internal": False, "partitions": [
                    {"error_code": 0, "partition_index": 0, "leader_id": 1, "leader_epoch": 0, "replica_nodes": [1],
                     "isr_nodes": [1], "offline_replicas": []}]}]}

    def fetch(self, body):
        self.fetches += 1
        return {"error_code": 0, "session_id": 0, "responses": [{"topic": TOPIC, "partitions": [{
            "partition_index": 0, "error_code": 0, "high_watermark": 1000, "last_stable_offset": 1000,
            "log_start_offset": 0, "aborted_transactions": None, "preferred_read_replica": -1,
            "records": self.records}]}]}

    def close(self):
        self.server.close()
        for conn in self.conns:
            conn.close()


def consume_forged(records, start, polls=5):
    """Poll a consumer of the forged partition from ``start``; returns (positions seen, Fetch requests sent)."""
    broker = ScriptedBroker(records)
    consumer = Consumer(f"127.0.0.1:{broker.port}", max_wait_ms=10, request_timeout=5.0, reconnect_deadline=5.0)
    try:
        consumer.assign(TOPIC, [0], start)
        seen = []
        for _ in range(polls):
            consumer.poll(timeout=2.0)
            seen.append(consumer.positions[TOPIC, 0])
        return seen, broker.fetches
    finally:
        consumer.close()
        broker.close()


GOOD = build_batch([b"a", b"b", b"c"], base_offset=10)


def test_a_good_answer_advances():
    seen, _ = consume_forged(GOOD, 10, polls=1)
    assert seen == [13]


def test_negative_last_offset_delta_is_refused_not_refetched_forever():
    with pytest.raises(CorruptRecordError, match="negative last offset delta -1"):
        consume_forged(forge(GOOD, last_offset_delta=-1), 10)


def test_batches_ending_before_the_fetch_offset_are_a_protocol_error():
    with pytest.raises(ProtocolError, match="at offset 20: its batches end at offset 12, before it"):
        consume_forged(GOOD, 20)


def test_offsets_that_would_wrap_are_refused():
    near_end = (1 << 63) - 3           # last offset INT64_MAX: the next one would wrap
    with pytest.raises(CorruptRecordError, match="overflows"):
        parse_batches(forge(GOOD, base_offset=near_end))
    assert parse_batches(forge(GOOD, base_offset=near_end - 1))[0].next_offset == (1 << 63) - 1


@pytest.mark.parametrize("read", ["records", "columns"])
def test_record_offset_delta_outside_the_batch_is_refused(read):
    # three records, but the header says the batch spans offsets 10..11: record 2's delta is outside
    with pytest.raises(CorruptRecordError, match="offset delta outside the batch's offset range in record 2"):
        getattr(parse_batches(forge(GOOD, last_offset_delta=1))[0], read)()


def test_negative_lengths_are_refused_at_the_boundary():
    program = protocol._program("response", "ApiVersions", 0)
    frame = protocol.encode_response("ApiVersions", 0, 1, {"api_keys": []})
    with pytest.raises(ProtocolError, match="negative length -4096"):
        _core.decode_struct_bytes(program, frame, -4096)
    with pytest.raises(ProtocolError, match="truncated"):
        _core.decode_struct_bytes(program, frame, len(frame) + 1)


def test_forged_size_prefix_allocates_only_what_arrives():
    """A 400 MiB size prefix followed by 64 KiB and a closed socket: memory follows the bytes sent."""
    server = socket.create_server(("127.0.0.1", 0))

    def lie():
        conn, _ = server.accept()
        with conn:
            head = conn.recv(4)
            header, _ = protocol.decode_request(head + conn.recv(struct.unpack(">i", head)[0], socket.MSG_WAITALL))
            conn.sendall(protocol.encode_response("ApiVersions", 0, header["correlation_id"], {"api_keys": [
                {"api_key": 18, "min_version": 0, "max_version": 3}, {"api_key": 3, "min_version": 0,
                                                                      "max_version": 12}]}))
            head = conn.recv(4)
            conn.recv(struct.unpack(">i", head)[0], socket.MSG_WAITALL)
            conn.sendall(struct.pack(">ii", 400 << 20, 2) + bytes(64 << 10))

    threading.Thread(target=lie, daemon=True).start()
    conn = Connection("127.0.0.1", server.getsockname()[1], request_timeout=10.0)
    tracemalloc.start()
    try:
        with pytest.raises(ConnectionLostError):
            conn.call("Metadata", {"topics": None})
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
        conn.close()
        server.close()
    assert peak < 8 << 20, f"a forged 400 MiB size prefix cost {peak} bytes"
