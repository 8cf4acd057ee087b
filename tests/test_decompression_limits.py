"""Decompression bombs: a compressed batch yields at most its limit, with peak memory bounded by it."""
import struct
import tracemalloc

import lz4.frame
import pytest
import snappy
import zlib
import zstandard

from chronik_perf.compression import compress, decompress, decompression_limits, set_decompression_limits
from chronik_perf.records import CorruptRecordError, build_batch, crc32c, parse_batches

MIB = 1 << 20
CAP = 4 * MIB
BOMB = 256 * MIB            # what each bomb expands to: 64 x the cap used here
ATTRIBUTES, RECORDS = 21, 61


def _zeros_stream(compressor, total, head=b"", chunk=8 * MIB):
    zeros = bytes(chunk)
    return head + b"".join(compressor.compress(zeros) for _ in range(total // chunk)) + compressor.flush()


def bomb(codec, size=BOMB):
    """A payload of `codec` that decompresses to `size` zero bytes, built without holding them."""
    if codec == "gzip":
        return _zeros_stream(zlib.compressobj(1, zlib.DEFLATED, 31), size)
    if codec == "zstd":
        return _zeros_stream(zstandard.ZstdCompressor(level=1).compressobj(), size)
    if codec == "lz4":
        compressor = lz4.frame.LZ4FrameCompressor(block_size=lz4.frame.BLOCKSIZE_MAX64KB)
        return _zeros_stream(compressor, size, compressor.begin())
    block = snappy.compress(bytes(32768))      # xerial: 32 KiB blocks, each declaring its size
    return b"\x82SNAPPY\x00" + struct.pack(">ii", 1, 1) + (struct.pack(">I", len(block)) + block) * (size // 32768)


def batch_with_payload(codec, payload, record_count=1):
    """A record batch whose records section is `payload` (record count and CRC made valid)."""
    head = bytearray(build_batch([b"x"], compression=codec)[:RECORDS])
    struct.pack_into(">i", head, 8, RECORDS - 12 + len(payload))
    struct.pack_into(">i", head, 57, record_count)
    body = bytes(head) + payload
    return body[:17] + struct.pack(">I", crc32c(body[ATTRIBUTES:])) + body[ATTRIBUTES:]


@pytest.fixture
def limits():
    """Restore the process-wide limits after a test changes them."""
    previous = decompression_limits()
    yield
    set_decompression_limits(**previous)


@pytest.fixture(scope="module", params=["gzip", "snappy", "lz4", "zstd"])
def bomb_batch(request):
    codec = request.param
    size = BOMB if codec != "snappy" else 64 * MIB    # snappy expands 21x at most: its bomb is larger on the wire
    return codec, batch_with_payload(codec, bomb(codec, size))


def test_bomb_batch_stops_at_the_cap_with_bounded_memory(bomb_batch, limits):
    codec, data = bomb_batch
    set_decompression_limits(max_bytes=CAP)
    batch = parse_batches(data)[0]
    tracemalloc.start()
    try:
        with pytest.raises(CorruptRecordError, match=rf"{codec} payload decompresses to more than its limit of {CAP} "):
            batch.records()
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak <= 2 * CAP, f"{codec} bomb peaked at {peak} bytes, limit {CAP}"


def test_limit_is_record_count_times_per_record_ceiling(limits):
    set_decompression_limits(max_bytes=64 * MIB, max_record_bytes=MIB)
    payload = compress("zstd", bytes(3 * MIB))
    with pytest.raises(CorruptRecordError, match=f"limit of {2 * MIB} bytes"):
        parse_batches(batch_with_payload("zstd", payload, record_count=2))[0].columns()
    # three records may hold 3 MiB: the payload decompresses, and its zeros fail as records instead
    with pytest.raises(CorruptRecordError) as info:
        parse_batches(batch_with_payload("zstd", payload, record_count=3))[0].columns()
    assert "in record 0" in str(info.value)


@pytest.mark.parametrize("codec", ["gzip", "snappy", "lz4", "zstd"])
def test_decompress_takes_an_explicit_limit(codec):
    data = bytes(100000)
    packed = compress(codec, data)
    assert decompress(codec, packed, len(data)) == data
    with pytest.raises(CorruptRecordError, match=f"limit of {len(data) - 1} bytes"):
        decompress(codec, packed, len(data) - 1)


@pytest.mark.parametrize("codec", ["lz4", "zstd"])
def test_output_within_limit_passes_the_stepwise_path(codec):
    # 4 MiB LZ4 blocks and compressed zstd blocks bound their output above the limit: decoded in steps, it fits
    data = bytes(range(256)) * 8192 + bytes(MIB)
    packed = (lz4.frame.compress(data, block_size=lz4.frame.BLOCKSIZE_MAX4MB) if codec == "lz4"
              else zstandard.ZstdCompressor(write_content_size=False).compress(data))
    assert decompress(codec, packed, len(data)) == data


def test_declared_content_size_above_the_limit_is_refused_before_decoding():
    frame = lz4.frame.compress(bytes(MIB), store_size=True)
    with pytest.raises(CorruptRecordError, match="limit of 1000 bytes"):
        decompress("lz4", frame, 1000)


def test_limits_are_validated(limits):
    with pytest.raises(ValueError, match="positive byte count"):
        set_decompression_limits(max_bytes=0)
    set_decompression_limits(max_record_bytes=5)
    assert decompression_limits()["max_record_bytes"] == 5
