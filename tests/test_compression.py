"""Codecs: round trips, the framings Kafka's Java producer writes, and corrupt payloads."""
import gzip
import os
import re
import struct
import zlib

import lz4.frame
import numpy as np
import pytest
import snappy
import zstandard
from pathlib import Path
from hypothesis import given, settings, strategies as st

from chronik_perf.compression import CODECS, compress, decompress
from chronik_perf.records import CorruptRecordError

ROOT = Path(__file__).resolve().parent.parent

PAYLOADS = [b"", b"x", os.urandom(1000), b"kafka " * 20000, bytes(200000), os.urandom(100000) + bytes(50000)]


@pytest.mark.parametrize("codec", CODECS)
@pytest.mark.parametrize("payload", PAYLOADS, ids=lambda p: f"{len(p)}B")
def test_round_trip(codec, payload):
    assert decompress(codec, compress(codec, payload)) == payload


@pytest.mark.parametrize("codec,level", [("gzip", 1), ("gzip", 9), ("lz4", 9), ("zstd", 1), ("zstd", 19)])
def test_levels(codec, level):
    data = b"abc" * 10000
    assert decompress(codec, compress(codec, data, level)) == data


def test_gzip_is_a_gzip_stream():
    data = b"hello kafka" * 100
    assert gzip.decompress(compress("gzip", data)) == data


def test_snappy_uses_xerial_framing_with_32k_blocks():
    data = os.urandom(70000)
    out = compress("snappy", data)
    assert out[:16] == b"\x82SNAPPY\x00" + struct.pack(">ii", 1, 1)
    pos, blocks = 16, []
    while pos < len(out):
        (n,) = struct.unpack_from(">i", out, pos)
        blocks.append(snappy.uncompress(out[pos + 4:pos + 4 + n]))
        pos += 4 + n
    assert [len(b) for b in blocks] == [32768, 32768, 70000 - 65536]
    assert b"".join(blocks) == data


def test_snappy_reads_plain_blocks_as_other_clients_send():
    data = b"plain snappy" * 1000
    assert decompress("snappy", snappy.compress(data)) == data


def test_lz4_is_a_frame_with_independent_64k_blocks_and_valid_header_checksum():
    data = os.urandom(200000)
    out = compress("lz4", data)
    assert out[:4] == b"\x04\x22\x4d\x18"
    flg, bd = out[4], out[5]
    assert flg >> 6 == 1 and flg & 0x20, "version 01 with independent blocks"
    assert not flg & 0x08, "no content size, as Kafka writes"
    assert (bd >> 4) & 0x7 == 4, "64 KiB maximum block size"
    assert lz4.frame.decompress(out) == data      # lz4 validates the header checksum


@pytest.mark.parametrize("payload", PAYLOADS + [b"kafka " * 10923 + b"ab"], ids=lambda p: f"{len(p)}B")
@pytest.mark.parametrize("level", [0, 3, 9, -2])
def test_lz4_frame_is_byte_identical_to_lz4_frame_api(payload, level):
    """compress() frames lz4.block's blocks itself: the bytes are exactly lz4.frame's with Kafka's settings,
    incompressible blocks stored raw included."""
    expected = lz4.frame.compress(payload, compression_level=level, block_size=lz4.frame.BLOCKSIZE_MAX64KB,
                                  block_linked=False, content_checksum=False, store_size=False)
    assert compress("lz4", payload, level) == expected


@pytest.mark.parametrize("payload", PAYLOADS, ids=lambda p: f"{len(p)}B")
def test_gzip_and_snappy_bytes_match_the_libraries(payload):
    assert compress("gzip", payload) == zlib.compress(payload, 6, wbits=31)
    blocks = [payload[i:i + 32768] for i in range(0, len(payload), 32768)]
    assert compress("snappy", payload) == b"\x82SNAPPY\x00" + struct.pack(">ii", 1, 1) + b"".join(
        struct.pack(">i", len(snappy.compress(b))) + snappy.compress(b) for b in blocks)


def test_zstd_frame_is_readable_by_zstandard():
    data = b"zstd" * 5000
    assert zstandard.ZstdDecompressor().decompress(compress("zstd", data)) == data


def test_zstd_frame_without_content_size_is_read():
    data = b"streamed" * 5000
    frame = zstandard.ZstdCompressor(write_content_size=False).compress(data)
    assert decompress("zstd", frame) == data


def test_unknown_codec():
    with pytest.raises(ValueError, match="unknown compression codec"):
        compress("brotli", b"")
    with pytest.raises(ValueError):
        decompress(7, b"")


@pytest.mark.parametrize("codec", ["gzip", "snappy", "lz4", "zstd"])
def test_truncated_payload_is_corrupt(codec):
    good = compress(codec, os.urandom(5000) + bytes(5000))
    for cut in (1, len(good) // 2, len(good) - 1):
        with pytest.raises(CorruptRecordError):
            decompress(codec, good[:cut])


def test_forged_sizes_do_not_allocate():
    huge = b"\xff\xff\xff\xff\x0f"              # snappy preamble: 4 GiB uncompressed
    with pytest.raises(CorruptRecordError, match="impossible"):
        decompress("snappy", huge + b"\x00" * 10)
    xerial = b"\x82SNAPPY\x00" + struct.pack(">ii", 1, 1) + struct.pack(">I", 0x7FFFFFFF) + b"abc"
    with pytest.raises(CorruptRecordError, match="claims"):
        decompress("snappy", xerial)
    # LZ4 frame header claiming a 1 TiB content size
    header = lz4.frame.LZ4FrameCompressor(block_linked=False).begin(source_size=1 << 40)   # a matching checksum
    frame = header + lz4.frame.compress(b"abc", store_size=True, block_linked=False)[len(header):]
    with pytest.raises(CorruptRecordError, match="claims 1099511627776 bytes"):
        decompress("lz4", bytes(frame))


@settings(max_examples=200, deadline=None)
@given(codec=st.sampled_from(["gzip", "snappy", "lz4", "zstd"]), data=st.binary(max_size=300))
def test_garbage_never_crashes(codec, data):
    try:
        decompress(codec, data)
    except CorruptRecordError:
        pass


@pytest.mark.parametrize("block_size", [lz4.frame.BLOCKSIZE_MAX64KB, lz4.frame.BLOCKSIZE_MAX1MB])
@pytest.mark.parametrize("store_size", [False, True])
@pytest.mark.parametrize("checksums", [False, True])
@pytest.mark.parametrize("linked", [False, True])
def test_every_lz4_frame_flavour_is_read(block_size, store_size, checksums, linked):
    """Plain frames (what Kafka writes) are decoded block by block here; checksummed or linked ones by lz4's
    frame decoder, which verifies them."""
    data = os.urandom(70000) + b"kafka " * 30000
    frame = lz4.frame.compress(data, block_size=block_size, store_size=store_size, content_checksum=checksums,
                               block_checksum=checksums, block_linked=linked)
    assert decompress("lz4", frame) == data


def test_lz4_frame_whose_content_size_lies_is_corrupt():
    frame = bytearray(lz4.frame.compress(b"abc" * 1000, store_size=True, block_linked=False))
    for claimed in (2999, 3001):
        frame[6:14] = claimed.to_bytes(8, "little")
        with pytest.raises(CorruptRecordError):
            decompress("lz4", bytes(frame))


def test_zstd_frame_whose_content_size_or_checksum_lies_is_corrupt():
    data = b"zstd frame " * 1000
    frame = bytearray(zstandard.ZstdCompressor(write_checksum=True).compress(data))
    bad_sum = bytearray(frame)
    bad_sum[-1] ^= 0xFF
    with pytest.raises(CorruptRecordError):
        decompress("zstd", bytes(bad_sum))
    assert frame[4] >> 6 == 1                           # a 2-byte content size field after the descriptor
    bad_size = bytearray(frame)
    bad_size[6] ^= 0x01
    with pytest.raises(CorruptRecordError):
        decompress("zstd", bytes(bad_size))


@pytest.mark.parametrize("codec", ["snappy", "lz4", "zstd"])
def test_bit_flips_in_valid_payloads_never_crash(codec):
    good = compress(codec, os.urandom(3000) + b"kafka " * 3000)
    rng = np.random.default_rng(5)
    for _ in range(300):
        bad = bytearray(good)
        for i in rng.integers(0, len(bad), 3):
            bad[i] ^= 1 << int(rng.integers(0, 8))
        try:
            decompress(codec, bytes(bad))
        except CorruptRecordError:
            pass


@pytest.mark.parametrize("codec", CODECS)
def test_any_buffer_is_taken_as_its_bytes(codec):
    data = os.urandom(40000) + bytes(40000)
    packed = compress(codec, data)
    assert compress(codec, np.frombuffer(data, dtype=np.uint16)) == packed
    assert compress(codec, memoryview(b"--" + data)[2:]) == packed
    assert decompress(codec, memoryview(b"--" + packed)[2:]) == data
    assert decompress(codec, bytearray(packed)) == data


def test_codec_libraries_are_named_with_their_versions():
    from chronik_perf.compression import CODEC_LIBRARIES
    assert set(CODEC_LIBRARIES) == {"gzip", "lz4", "zstd", "zstd decoder"}
    for name in ("gzip", "lz4", "zstd decoder"):
        found = CODEC_LIBRARIES[name]
        assert os.path.exists(found["library"]) or found["library"].startswith(("lib", "built in")), found
        assert found["version"].count(".") == 2, found
    header = (ROOT / "src/chronik_perf/csrc/zstd/zstd.h").read_text()
    vendored = ".".join(re.search(rf"#define ZSTD_VERSION_{part} +(\d+)", header).group(1)
                        for part in ("MAJOR", "MINOR", "RELEASE"))
    assert CODEC_LIBRARIES["zstd"] == {"library": "built in", "version": vendored}    # the copy in csrc/zstd
    assert CODEC_LIBRARIES["gzip"]["version"] == zlib.ZLIB_RUNTIME_VERSION      # the zlib Python's module uses


def test_gzip_trailer_size_is_only_a_hint():
    """The output buffer starts at the size the trailer states; a trailer that lies either way is found corrupt
    (zlib checks it) after the stream decoded within its limit."""
    data = b"gzip " * 30000
    good = compress("gzip", data)
    assert decompress("gzip", good) == data
    for claimed in (0, 10, len(data) - 1, len(data) + 1, 0xFFFFFFFF):
        with pytest.raises(CorruptRecordError, match="length check"):
            decompress("gzip", good[:-4] + struct.pack("<I", claimed))
    with pytest.raises(CorruptRecordError, match="limit of 1000 bytes"):
        decompress("gzip", good, 1000)
    assert decompress("gzip", good, len(data)) == data


def test_gzip_levels_out_of_range_are_refused():
    with pytest.raises(ValueError, match="level"):
        compress("gzip", b"x", 12)
    assert gzip.decompress(compress("gzip", b"x" * 100, 1)) == b"x" * 100
