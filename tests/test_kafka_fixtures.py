"""Frames, consumer-protocol payloads and a segment captured from Apache Kafka (fuzz/capture_fixtures.py) decode,
re-encode byte for byte, and read the same from a buffer that ends (or starts) at a PROT_NONE guard page."""
import json
import shutil
import struct
import sys
from pathlib import Path

import pytest

from chronik_perf import protocol
from chronik_perf.records import CODECS, parse_batches
from chronik_perf.storage import LogSegment

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "fuzz"))
from guard import GuardedBuffer  # noqa: E402
from targets import APIS, FIXTURES, fixture_frames  # noqa: E402

FRAMES = list(fixture_frames())
NAMES = dict((key, name) for name, key in APIS)
PAYLOADS = sorted((FIXTURES / "payloads").glob("*.bin"))
IDS = [f"{kind}-{NAMES[key]}-v{version}" for kind, key, version, _ in FRAMES]


@pytest.fixture(scope="module")
def guard():
    g = GuardedBuffer(1 << 16)
    yield g


def decode(kind, key, version, frame):
    if kind == "request":
        return protocol.decode_request(frame)
    return protocol.decode_response(NAMES[key], version, frame)


def encode(kind, key, version, decoded):
    if kind == "request":
        header, body = decoded
        return protocol.encode_request(key, version, body, correlation_id=header["correlation_id"],
                                       client_id=header["client_id"])
    return protocol.encode_response(NAMES[key], version, *decoded)


def test_the_capture_covers_every_api_it_names():
    manifest = json.loads((FIXTURES / "MANIFEST.json").read_text())
    assert "Apache Kafka" in manifest["broker"]
    captured = {NAMES[key] for _, key, _, _ in FRAMES}
    assert {"ApiVersions", "Metadata", "Produce", "Fetch", "ListOffsets", "FindCoordinator", "DescribeGroups",
            "ListGroups", "OffsetFetch", "CreateTopics", "DeleteTopics"} <= captured
    for name in ("Metadata", "Fetch", "Produce"):  # lowest and highest version both sides speak
        versions = {v for _, key, v, _ in FRAMES if NAMES[key] == name}
        assert len(versions) >= 2, name


@pytest.mark.parametrize("kind,key,version,frame", FRAMES, ids=IDS)
def test_kafka_frames_round_trip_byte_for_byte(kind, key, version, frame, guard):
    decoded = decode(kind, key, version, frame)
    if kind == "request":
        assert (decoded[0]["api_key"], decoded[0]["api_version"]) == (key, version)
    assert encode(kind, key, version, decoded) == frame
    assert decode(kind, key, version, guard.at_end(frame)) == decoded
    assert decode(kind, key, version, guard.at_start(frame)) == decoded


def test_fetch_answers_carry_librdkafkas_batches_in_every_codec(guard):
    fetches = [(v, f) for kind, key, v, f in FRAMES if kind == "response" and NAMES[key] == "Fetch"]
    assert fetches
    for version, frame in fetches:
        body = protocol.decode_response("Fetch", version, frame)[1]
        (partition,) = body["responses"][0]["partitions"]
        assert partition["error_code"] == 0
        batches = parse_batches(guard.at_end(partition["records"]))
        assert {b.compression for b in batches} == set(CODECS)
        for batch in batches:
            records = batch.records()
            assert len(records) == batch.record_count > 0
            assert [r.offset for r in records] == list(range(batch.base_offset, batch.next_offset))
            assert all(r.value for r in records)


@pytest.mark.parametrize("path", PAYLOADS, ids=[p.stem for p in PAYLOADS])
def test_librdkafkas_group_payloads_round_trip(path, guard):
    name = path.stem.split("-")[0]
    data = path.read_bytes()
    version, body = protocol.decode_payload(name, guard.at_end(data))
    assert protocol.encode_payload(name, version, body) == data
    topics = body.get("topics") or [t["topic"] for t in body.get("assigned_partitions", [])]
    assert topics and all(t.startswith("fixtures-") for t in topics)


def test_kafkas_segment_reads_back_every_batch(tmp_path):
    for path in (FIXTURES / "segment").iterdir():
        shutil.copy(path, tmp_path)
    log = (tmp_path / "00000000000000000000.log").read_bytes()
    with LogSegment(tmp_path, 0) as segment:
        assert segment.damage is None
        assert len(segment.offset_index) >= 5 and len(segment.time_index) >= 3  # the lookups below use them
        positions = segment.batch_positions()
        assert {b.compression for b in parse_batches(log)} == set(CODECS)
        assert len(positions) == len(parse_batches(log))
        for (pos, first, last, _), end in zip(positions, [p for p, *_ in positions[1:]] + [len(log)]):
            assert segment.read(first, 1) == segment.read(last, 1) == log[pos:end]
        offset, position = segment.offset_index.entry(len(segment.offset_index) - 1)
        assert segment.read(offset, 1) == log[position:position + len(segment.read(offset, 1))]
        assert segment.next_offset == positions[-1][2] + 1
    # rebuilt with the topic's index.interval.bytes, the indexes come out as Kafka wrote them, the time index
    # with the entry for the largest timestamp that Kafka too appends when it recovers or rolls a segment
    with LogSegment(tmp_path, 0, index_interval_bytes=1024) as segment:
        assert segment.recover() == 0
        assert segment.next_offset == positions[-1][2] + 1
        final = segment.time_index.last_entry
    for name in ("00000000000000000000.log", "00000000000000000000.index"):
        assert (tmp_path / name).read_bytes() == (FIXTURES / "segment" / name).read_bytes(), name
    times = (tmp_path / "00000000000000000000.timeindex").read_bytes()
    kafka_times = (FIXTURES / "segment" / "00000000000000000000.timeindex").read_bytes()
    assert times == kafka_times + struct.pack(">qi", final[0], final[1])
    assert final[0] == max(b.max_timestamp for b in parse_batches(log))
