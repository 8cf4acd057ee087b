"""CRC32C and varints: against the crc32c package and Kafka's varint rules."""
import os
import random
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given, strategies as st

import crc32c as crc32c_pkg
from chronik_perf import records
from chronik_perf.records import CorruptRecordError


def test_crc32c_matches_package_on_every_length_up_to_4096():
    rng = random.Random(1)
    data = memoryview(bytes(rng.getrandbits(8) for _ in range(4096 + 64)))
    for n in range(4097):
        chunk = data[n % 64:n % 64 + n]   # a view, not a copy: the start's alignment varies too
        assert records.crc32c(chunk) == crc32c_pkg.crc32c(chunk), n


@pytest.mark.parametrize("size", [1 << 20, 3 * (1 << 20) + 7, 5 * (1 << 20) + 12345])
def test_crc32c_matches_package_on_mebibytes(size):
    data = os.urandom(size)
    assert records.crc32c(data) == crc32c_pkg.crc32c(data)
    assert records.crc32c_software(data) == crc32c_pkg.crc32c(data)


def test_crc32c_without_folding_matches_package():
    """The CRC-instruction path alone (what a CPU without VPCLMULQDQ runs), in a fresh process."""
    script = (
        "import os, random, crc32c\n"
        "from chronik_perf import records\n"
        "rng = random.Random(2)\n"
        "data = bytes(rng.getrandbits(8) for _ in range(70000))\n"
        "for n in list(range(0, 1100, 7)) + [24576, 24583, 70000]:\n"
        "    assert records.crc32c(data[:n]) == crc32c.crc32c(data[:n]), n\n"
        "print(records.crc32c_implementation())\n"
    )
    env = dict(os.environ, CHRONIK_PERF_NO_FOLD_CRC32C="1")
    out = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.strip() in ("sse4.2", "armv8-crc", "software")


def test_crc32c_software_fallback_matches_on_short_lengths():
    data = os.urandom(300)
    for n in range(300):
        assert records.crc32c_software(data[:n]) == crc32c_pkg.crc32c(data[:n])


def test_crc32c_accepts_any_buffer_and_continues():
    data = os.urandom(10000)
    expected = crc32c_pkg.crc32c(data)
    assert records.crc32c(bytearray(data)) == expected
    assert records.crc32c(memoryview(data)) == expected
    assert records.crc32c(np.frombuffer(data, dtype=np.uint16)) == expected
    assert records.crc32c(data[5000:], records.crc32c(data[:5000])) == expected
    assert records.crc32c(b"") == 0
    assert records.crc32c_implementation() in ("sse4.2+vpclmulqdq", "sse4.2", "armv8-crc", "software")


def test_crc32c_rejects_non_contiguous():
    with pytest.raises((ValueError, BufferError, TypeError)):
        records.crc32c(np.arange(100, dtype=np.uint8)[::2])


def kafka_zigzag(n):
    return (n << 1) ^ (n >> 63)


@given(st.integers(min_value=-(1 << 63), max_value=(1 << 63) - 1))
def test_varint_round_trip_and_encoding(n):
    encoded = records.encode_varint(n)
    assert records.decode_varint(encoded) == (n, len(encoded))
    assert records.encode_uvarint(kafka_zigzag(n) & ((1 << 64) - 1)) == encoded


@given(st.integers(min_value=0, max_value=(1 << 64) - 1), st.binary(max_size=4))
def test_uvarint_round_trip_with_prefix(n, prefix):
    encoded = records.encode_uvarint(n)
    assert len(encoded) == max(1, (n.bit_length() + 6) // 7)
    assert records.decode_uvarint(prefix + encoded + b"\xff", len(prefix)) == (n, len(prefix) + len(encoded))


def test_varint_known_bytes():
    assert records.encode_varint(0) == b"\x00"
    assert records.encode_varint(-1) == b"\x01"
    assert records.encode_varint(1) == b"\x02"
    assert records.encode_varint(-64) == b"\x7f"
    assert records.encode_varint(64) == b"\x80\x01"
    assert records.encode_uvarint(300) == b"\xac\x02"
    assert len(records.encode_varint(-(1 << 63))) == 10


@pytest.mark.parametrize("bad", [b"", b"\x80", b"\xff\xff", b"\xff" * 10 + b"\x01", b"\xff" * 9 + b"\x02"])
def test_varint_bad_input(bad):
    with pytest.raises(CorruptRecordError, match="byte 0"):
        records.decode_uvarint(bad)
    with pytest.raises(CorruptRecordError):
        records.decode_varint(bad)


def test_varint_out_of_range():
    with pytest.raises(OverflowError):
        records.encode_varint(1 << 63)
    with pytest.raises(OverflowError):
        records.encode_uvarint(-1)
    with pytest.raises(CorruptRecordError):
        records.decode_varint(b"\x00", 5)
