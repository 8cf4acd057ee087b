"""One fuzz target per decoder of the core, each with its seed inputs.

A target takes the fuzzer's bytes, hands them to a decoder in a buffer that ends flush against a guard page, and
checks what comes back: a successful decode must re-encode to the input or decode identically from its own
re-encoding, and the only exceptions allowed out are the named errors the API documents. Anything else escaping a
target is a finding. Seeds come from the frames and segment files captured from Apache Kafka
(tests/fixtures/kafka) and from our own encoders.
"""
import atexit
import bisect
import math
import os
import shutil
import struct
import tempfile
import zlib
from pathlib import Path

import numpy as np

from chronik_perf import protocol
from chronik_perf.compression import compress, decompress
from chronik_perf.index import CorruptLogError, OffsetIndex, TimeIndex
from chronik_perf.protocol import ProtocolError
from chronik_perf.protocol_schema import parse_schema
from chronik_perf.records import (CODECS, CorruptRecordError, build_batch, crc32c, decode_uvarint, decode_varint,
                                  encode_uvarint, encode_varint, parse_batches)
from chronik_perf.storage import LogSegment, segment_file_name
from guard import GuardedBuffer

FIXTURES = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "kafka"
_GUARD = GuardedBuffer(1 << 20)


def guarded(data):
    """`data` in a buffer whose last byte is followed by a PROT_NONE page (inputs too big for it go as bytes)."""
    return _GUARD.at_end(data) if len(data) <= _GUARD.capacity else data


def same(a, b):
    """Equality that treats NaN as equal to itself (a float64 field may carry one)."""
    if a == b:  # the common case, compared in C; the walk below only runs for NaNs and what == cannot match
        return True
    if isinstance(a, float) and isinstance(b, float):
        return a == b or (math.isnan(a) and math.isnan(b))
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return isinstance(b, list) and len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    if isinstance(a, memoryview):
        a = bytes(a)
    if isinstance(b, memoryview):
        b = bytes(b)
    return a == b


# ---------------------------------------------------------------- record batches, every codec

def _fix_crcs(data):
    """The batches of `data` with every complete batch's CRC32C recomputed, so mutations reach the records."""
    out = bytearray(data)
    pos = 0
    with memoryview(out) as view:
        while len(out) - pos >= 61:
            length = struct.unpack_from(">i", out, pos + 8)[0]
            end = pos + 12 + length
            if length < 49 or end > len(out):
                break
            struct.pack_into(">I", out, pos + 17, crc32c(view[pos + 21:end]))
            pos = end
    return bytes(out)


def _record_tuples(batch):
    return [(r.offset, r.timestamp, r.key, r.value, r.headers) for r in batch.records()]


def _check_columns(batch, records):
    """columns() must describe the same records as records()."""
    cols = batch.columns()
    data = memoryview(cols["data"])
    assert list(cols["offset"]) == [r[0] for r in records]
    assert list(cols["timestamp"]) == [r[1] for r in records]
    for name, at in (("key", 2), ("value", 3)):
        for start, length, want in zip(cols[name + "_start"], cols[name + "_length"], (r[at] for r in records)):
            assert (None if length < 0 else bytes(data[start:start + length])) == want


def fuzz_records(data):
    """parse_batches + records() + columns(); a batch that parses is rebuilt by build_batch and must read back
    the same records. Byte 0: bit 0 recomputes CRCs, bit 1 skips CRC checks."""
    if not data:
        return
    body = _fix_crcs(data[1:]) if data[0] & 1 else data[1:]
    try:
        batches = parse_batches(guarded(body), verify_crc=not data[0] & 2)
        decoded = [(b, _record_tuples(b)) for b in batches]
    except CorruptRecordError:
        return
    for batch, records in decoded:
        _check_columns(batch, records)
        if not records:
            continue
        rebuilt = build_batch([r[3] for r in records], [r[2] for r in records],
                              timestamps=[r[1] for r in records], headers=[r[4] for r in records],
                              base_offset=batch.base_offset, compression=batch.compression,
                              producer_id=batch.producer_id, producer_epoch=batch.producer_epoch,
                              base_sequence=batch.base_sequence, transactional=batch.is_transactional,
                              partition_leader_epoch=batch.partition_leader_epoch)
        (again,) = parse_batches(rebuilt)
        assert [(r[1], r[2], r[3], r[4]) for r in _record_tuples(again)] == [r[1:] for r in records]


def seeds_records():
    values = [b"alpha" * 10, None, b"", b"d" * 300]
    for codec in CODECS:
        yield b"\x00" + build_batch(values, [b"k", None, b"kk", b""], timestamps=[1, 2, 3, 4],
                                    headers=[[("h", b"v")], [], [("x", None)], []], compression=codec)
    for *_, frame in fixture_frames():
        for batch in _batches_in(frame):
            yield b"\x00" + batch


def _batches_in(frame):
    """Record batches found in a captured frame (Produce requests and Fetch responses carry them)."""
    at = frame.find(b"\x02", 0)
    while at >= 16:
        start = at - 16
        length = int.from_bytes(frame[start + 8:start + 12], "big", signed=True)
        if 49 <= length <= len(frame) - start - 12 and crc32c(frame[start + 21:start + 12 + length]) == \
                int.from_bytes(frame[start + 17:start + 21], "big"):
            yield frame[start:start + 12 + length]
        at = frame.find(b"\x02", at + 1)


# ---------------------------------------------------------------- codecs

def fuzz_codecs(data):
    """decompress() of any payload; what decompresses must come back from compress() + decompress()."""
    if not data:
        return
    codec = CODECS[1 + data[0] % 4]
    try:
        out = decompress(codec, guarded(data[1:]))
    except CorruptRecordError:
        return
    assert decompress(codec, compress(codec, out)) == out


def seeds_codecs():
    for i, codec in enumerate(CODECS[1:]):
        yield bytes([i]) + compress(codec, b"kafka " * 50)


# ---------------------------------------------------------------- protocol requests and responses

_SCHEMA = parse_schema()
APIS = sorted({(m.name, m.api_key) for m in _SCHEMA.values() if m.kind == "request"}, key=lambda a: a[1])


def _case(data):
    """(name, api_key, version) chosen by bytes 1-2 from every api and version the schema holds."""
    name, key = APIS[data[1] % len(APIS)]
    low, high = protocol.SUPPORTED[name]
    return name, key, low + data[2] % (high - low + 1)


def fuzz_protocol(data):
    """Every request and response of every version: byte 0 bit 0 picks response, bit 1 zero-copy decoding, bit 2
    raw request headers; bytes 1-2 the api and version; the rest is the frame after its size (and, for requests
    without bit 2, after api key and version). A decoded frame re-encodes to a frame that decodes to the same body."""
    if len(data) < 3:
        return
    name, key, version = _case(data)
    zero_copy = bool(data[0] & 2)
    if data[0] & 1:
        rest = data[3:]
        frame = guarded(struct.pack(">i", len(rest)) + rest)
        try:
            correlation_id, body = protocol.decode_response(name, version, frame, zero_copy=zero_copy)
        except ProtocolError:
            return
        read_at = _response_version_read(name, version, frame)
        again = protocol.encode_response(name, read_at, correlation_id, body)
        got = protocol.decode_response(name, read_at, again)[1]
    else:
        # bit 2 keeps the api key and version the input carries (unknown, negative, out of range) after byte 2
        rest = data[3:] if data[0] & 4 else struct.pack(">hh", key, version) + data[3:]
        frame = guarded(struct.pack(">i", len(rest)) + rest)
        try:
            header, body = protocol.decode_request(frame, zero_copy=zero_copy)
        except ProtocolError:
            return
        key, version = header["api_key"], header["api_version"]
        again = protocol.encode_request(key, version, body, correlation_id=header["correlation_id"],
                                        client_id=header["client_id"])
        got_header, got = protocol.decode_request(again)
        assert got_header == header
    assert same(got, body), (name, version)


def _response_version_read(name, version, frame):
    """The version a response frame was read at: an ApiVersions answer carrying UNSUPPORTED_VERSION (35) is read
    as v0 when it parses as v0, as Kafka's clients read a broker's answer to a version it does not know."""
    if name == "ApiVersions" and version and frame[8:10] == b"\x00\x23":
        try:
            protocol.decode_response(name, 0, frame)
            return 0
        except ProtocolError:
            pass
    return version


def _frame_to_input(kind, key, version, frame):
    """A captured size-prefixed frame as an input of fuzz_protocol, or None when its api or version is not ours."""
    keys = [k for _, k in APIS]
    if key not in keys:
        return None
    name = APIS[keys.index(key)][0]
    low, high = protocol.SUPPORTED[name]
    if not low <= version <= high:
        return None
    return bytes([kind == "response", keys.index(key), version - low]) + frame[8 if kind == "request" else 4:]


def fixture_frames():
    """(kind, api key, version, frame) of every frame captured from Kafka (files <n>-<key>-<version>-<kind>.bin)."""
    folder = FIXTURES / "frames"
    for path in sorted(folder.glob("*.bin")) if folder.is_dir() else []:
        _, key, version, kind = path.stem.split("-")
        yield kind, int(key), int(version), path.read_bytes()


def seeds_protocol():
    for kind, key, version, frame in fixture_frames():
        seed = _frame_to_input(kind, key, version, frame)
        if seed is not None:
            yield seed
    for index, (name, key) in enumerate(APIS):
        low, high = protocol.SUPPORTED[name]
        for version in range(low, high + 1):
            head = bytes([0, index, version - low])
            yield head + protocol.encode_request(name, version, {}, correlation_id=1)[8:]
            yield bytes([1, index, version - low]) + protocol.encode_response(name, version, 1, {})[4:]


# ---------------------------------------------------------------- consumer-protocol payloads

PAYLOADS = sorted(name for (name, kind) in _SCHEMA if kind == "data")


def fuzz_payloads(data):
    """decode_payload of every consumer-protocol payload (byte 0 picks it); what decodes re-encodes at the version
    read and decodes to the same body."""
    if not data:
        return
    name = PAYLOADS[data[0] % len(PAYLOADS)]
    try:
        version, body = protocol.decode_payload(name, guarded(data[1:]))
    except ProtocolError:
        return
    newest = protocol._PAYLOADS[name].max
    again = protocol.encode_payload(name, min(version, newest), body)
    if version <= newest:
        assert again == data[1:] or same(protocol.decode_payload(name, again), (version, body))
    else:
        assert same(protocol.decode_payload(name, again)[1], body)


def seeds_payloads():
    for i, name in enumerate(PAYLOADS):
        low, high = protocol._PAYLOADS[name].min, protocol._PAYLOADS[name].max
        for version in range(low, high + 1):
            yield bytes([i]) + protocol.encode_payload(name, version, {})
    payload_dir = FIXTURES / "payloads"
    for path in sorted(payload_dir.glob("*.bin")) if payload_dir.is_dir() else []:
        yield bytes([PAYLOADS.index(path.stem.split("-")[0])]) + path.read_bytes()


# ---------------------------------------------------------------- offset and time indexes

def _index_reference(keys, values, key):
    """The greatest entry whose key is <= key, by bisection over the (checked strictly increasing) keys."""
    at = bisect.bisect_right(keys, key)
    return (keys[at - 1], values[at - 1]) if at else None


def fuzz_index(data):
    """OffsetIndex (byte 0 even) or TimeIndex (odd) over a buffer; bytes 1-2 the base offset. Entries must
    re-encode to the input's slots, and lookups agree with a bisection of the entries."""
    if len(data) < 3:
        return
    time_index = data[0] & 1
    base = int.from_bytes(data[1:3], "big")
    raw = data[3:]
    try:
        index = (TimeIndex if time_index else OffsetIndex)(guarded(raw), base)
    except CorruptLogError:
        return
    n = len(index)
    entries = [index.entry(i) for i in range(n)]
    if time_index:
        packed = b"".join(struct.pack(">qi", ts, off - base) for ts, off in entries)
        keys, values = [e[0] for e in entries], [e[1] for e in entries]
        empty = (-1, base)
    else:
        packed = b"".join(struct.pack(">ii", off - base, pos) for off, pos in entries)
        keys, values = [e[0] for e in entries], [e[1] for e in entries]
        empty = (base, 0)
    size = 12 if time_index else 8
    assert packed == raw[:n * size] and not any(raw[n * size:])
    assert all(a < b for a, b in zip(keys, keys[1:]))
    arrays = index.arrays()
    assert list(arrays[0]) == keys and list(arrays[1]) == values
    low, high = -(1 << 63), (1 << 63) - 1
    probes = sorted({min(max(k + d, low), high) for k in keys for d in (-1, 0, 1)} | {base - 1, base, 0, -1})
    want = [_index_reference(keys, values, p) or empty for p in probes]
    assert [index.lookup(p) for p in probes] == want
    many = index.lookup_many(np.array(probes, dtype=np.int64))
    assert list(zip(many[0].tolist(), many[1].tolist())) == want
    index.close()


def seeds_index():
    yield b"\x00\x00\x00" + struct.pack(">iiii", 0, 0, 5, 4096)
    yield b"\x01\x00\x00" + struct.pack(">qiqi", 10, 0, 20, 5)
    for path, kind in _fixture_segment_files():
        if kind in ("index", "timeindex"):
            yield bytes([kind == "timeindex"]) + b"\x00\x00" + path.read_bytes()


# ---------------------------------------------------------------- log segments

_SEGMENT_DIR = tempfile.mkdtemp(prefix="chronik-fuzz-segment-", dir="/dev/shm" if os.path.isdir("/dev/shm") else None)
atexit.register(shutil.rmtree, _SEGMENT_DIR, ignore_errors=True)
_SEGMENT_FILES = [os.path.join(_SEGMENT_DIR, segment_file_name(0, suffix)) for suffix in (".log", ".index", ".timeindex")]
_INDEX_ROOM = 1 << 14
_READS = 8
_FULL_EVERY = 4  # inputs per one that gets the costly checks (tests set 1)


def _segment_parts(data):
    """(.log, .index, .timeindex) from an input: two big-endian uint16 index sizes, a flags byte, the indexes, the
    log (the indexes as views of the input, the log as bytes)."""
    oi, ti = struct.unpack_from(">HH", data)
    rest = memoryview(data)[5:]
    return bytes(rest[oi + ti:]), rest[:oi], rest[oi:oi + ti]


def _spread(n, k):
    """Up to k indices of range(n), evenly spread, the first and the last included."""
    return range(n) if n <= k else sorted({i * (n - 1) // (k - 1) for i in range(k)})


def fuzz_segment(data):
    """Open a LogSegment over the input's .log/.index/.timeindex (byte 4: bit 0 recomputes batch CRCs first), list
    its batches and recover() it: recover() leaves a prefix of the log whose batches hold, in next offset too.
    One input in 4 (by a CRC-32 of the input, so a rerun checks the same) also reads back exactly the batches' bytes
    (every batch of a segment of up to 8, an even spread of 8 in a longer one), looks up a timestamp, and reopens
    the files recover() rewrote, with the same next offset. The three files (in /dev/shm where there is one) are
    rewritten for every input."""
    if len(data) < 5:
        return
    log, oi, ti = _segment_parts(data)
    if data[4] & 1:
        log = _fix_crcs(log)
    for path, content in zip(_SEGMENT_FILES, (log, oi, ti)):
        _write_file(path, content)
    _check_segment(log, 0, full=zlib.crc32(data) % _FULL_EVERY == 0, scan_all=not oi and not ti)


def _write_file(path, content):
    """Replace the file's content (os-level calls: Python's buffered file objects cost more than the write)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        view = memoryview(content)
        while view:
            view = view[os.write(fd, view):]
    finally:
        os.close(fd)


def _check_segment(log, base, full=True, scan_all=False):
    segment = LogSegment(_SEGMENT_DIR, base, max_index_size=_INDEX_ROOM)
    try:
        if segment.damage is None:
            positions = segment.batch_positions()
            ends = [p for p, *_ in positions[1:]] + [len(log)]
            assert [p for p, *_ in positions[:1]] in ([], [0])
            assert all(p < e for (p, *_), e in zip(positions, ends))
            if full:
                _check_reads(segment, log, positions, ends, scan_all)
        try:
            segment.recover()
        except CorruptLogError:
            return
        next_offset = segment.next_offset
        if full:
            kept = segment.read(base, 1 << 30) if segment.size else b""
            assert log.startswith(kept)
            batches = parse_batches(kept) if kept else []
            assert next_offset == (batches[-1].next_offset if batches else base)
        else:
            assert segment.size <= len(log) and next_offset >= base
    finally:
        segment.close()
    if not full:
        return
    again = LogSegment(_SEGMENT_DIR, base, max_index_size=_INDEX_ROOM)
    try:
        assert again.damage is None, again.damage
        assert again.next_offset == next_offset
    finally:
        again.close()


def _check_reads(segment, log, positions, ends, scan_all):
    """Reads of a sound segment return exactly a batch's bytes; one timestamp lookup (it decodes records) in the batch
    the log's size picks: an offset it finds holds a record at or after the timestamp, and when the lookup scans from
    the first batch (`scan_all`: no index files), a record of that batch that qualifies is never missed."""
    for i in _spread(len(positions), _READS):
        (pos, first, last, _), end = positions[i], ends[i]
        assert segment.read(first, 1) == log[pos:end]
        assert segment.read(last, 1) == log[pos:end]
    if not positions:
        return
    i = len(log) % len(positions)
    (pos, first, last, max_ts), end = positions[i], ends[i]
    try:
        found = segment.find_offset_for_timestamp(max_ts)
        picked = [r.offset for r in parse_batches(log[pos:end])[0].records() if r.timestamp >= max_ts]
    except CorruptRecordError:
        return
    if found is not None:
        holder = parse_batches(segment.read(found, 1))[0]
        assert any(r.offset == found and r.timestamp >= max_ts for r in holder.records()), (found, max_ts)
    if scan_all and picked:
        assert found is not None and found <= picked[0], (found, picked[0])


def _fixture_segment_files():
    """(path, "log" | "index" | "timeindex") of the captured segment files."""
    folder = FIXTURES / "segment"
    for path in sorted(folder.iterdir()) if folder.is_dir() else []:
        yield path, path.suffix[1:]


def segment_input(log, oi=b"", ti=b"", fix_crcs=False):
    """The fuzz_segment input holding these three files."""
    return struct.pack(">HH", len(oi), len(ti)) + bytes([fix_crcs]) + oi + ti + log


def seeds_segment():
    batches = [build_batch([b"v%d" % i] * 3, base_offset=3 * i, timestamps=[i, i, i]) for i in range(4)]
    yield segment_input(b"".join(batches))
    yield segment_input(b"".join(batches), struct.pack(">ii", 6, len(batches[0]) * 2),
                        struct.pack(">qi", 2, 8))
    files = {kind: path.read_bytes() for path, kind in _fixture_segment_files()}
    if files:
        yield segment_input(files["log"][:60000], files.get("index", b"")[:8], files.get("timeindex", b"")[:12])


# ---------------------------------------------------------------- varints

def fuzz_varint(data):
    """decode_uvarint / decode_varint at every position: values re-encode to the bytes read (or, for an encoding
    longer than needed, to a shorter one of the same value), and the zigzag reading agrees."""
    view = guarded(data)
    pos = 0
    while pos < len(data):
        try:
            value, end = decode_uvarint(view, pos)
        except CorruptRecordError:
            assert _bad_varint(data, pos)
            return
        signed, end2 = decode_varint(view, pos)
        assert end2 == end and signed == ((value >> 1) ^ -(value & 1))
        raw = data[pos:end]
        again = encode_uvarint(value)
        assert again == raw or (len(again) < len(raw) and raw[-1] == 0)
        assert decode_uvarint(again) == (value, len(again))
        assert decode_varint(encode_varint(signed)) == (signed, len(again))
        pos = end


def _bad_varint(data, pos):
    """True when data[pos:] holds no valid uvarint: it runs out, goes past 10 bytes, or past 64 bits."""
    for i in range(pos, min(len(data), pos + 10)):
        if data[i] < 0x80:
            return i - pos == 9 and data[i] > 1
    return True


def seeds_varint():
    yield b"".join(encode_varint(v) for v in (0, -1, 1, 63, -64, 64, 1 << 31, -(1 << 63), (1 << 63) - 1))
    yield b"".join(encode_uvarint(v) for v in (0, 127, 128, 16383, 16384, (1 << 64) - 1))


REGRESSIONS = Path(__file__).resolve().parent / "regressions"


def regression_inputs(target):
    """(file name, input) of every input that once made `target` fail. Protocol findings are stored as frames,
    <request|response>-<api>-<version>-<what>.bin, so they keep their meaning when apis are added."""
    folder = REGRESSIONS / target
    for path in sorted(folder.iterdir()) if folder.is_dir() else []:
        data = path.read_bytes()
        if target == "protocol":
            kind, api, version = path.stem.split("-")[:3]
            data = _frame_to_input(kind, dict((n, k) for n, k in APIS)[api], int(version), data)
        yield path.name, data


TARGETS = {
    "records": (fuzz_records, seeds_records),
    "codecs": (fuzz_codecs, seeds_codecs),
    "protocol": (fuzz_protocol, seeds_protocol),
    "payloads": (fuzz_payloads, seeds_payloads),
    "index": (fuzz_index, seeds_index),
    "segment": (fuzz_segment, seeds_segment),
    "varint": (fuzz_varint, seeds_varint),
}
"""name -> (the target, a function yielding its seed inputs)."""
