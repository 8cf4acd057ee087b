# Kafka's four compression codecs, written the way Kafka's Java producer writes them:
# gzip, snappy in xerial framing (plain snappy blocks are read too), the LZ4 frame format
# (64 KiB independent blocks, no content size), and zstd frames. The codec work itself is
# done by zlib, python-snappy, lz4 and zstandard; this part only frames and guards it.
import zlib

from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize
from libc.stdint cimport int64_t, uint32_t, uint64_t, uint8_t
from libc.string cimport memcpy

from chronik_perf.native.includes.endian cimport load_be32, store_be32
from chronik_perf.native.includes.varint cimport read_uvarint

import lz4.block as _lz4_block
import lz4.frame as _lz4
import snappy as _snappy
import zstandard as _zstd

cdef enum:
    CODEC_NONE = 0
    CODEC_GZIP = 1
    CODEC_SNAPPY = 2
    CODEC_LZ4 = 3
    CODEC_ZSTD = 4
    XERIAL_HEADER_SIZE = 16
    XERIAL_BLOCK_SIZE = 32768
    SNAPPY_MAX_EXPANSION = 22     # a snappy copy op of 3 bytes expands to at most 64 bytes
    LZ4_BLOCK_SIZE = 65536
    LZ4_UNCOMPRESSED = 0x80000000
    LZ4_HC_MIN_LEVEL = 3

CODEC_NAMES = ("none", "gzip", "snappy", "lz4", "zstd")
cdef tuple codec_names = CODEC_NAMES
DEFAULT_LEVELS = {"gzip": 6, "lz4": 0, "zstd": 3}
cdef bytes XERIAL_MAGIC = b"\x82SNAPPY\x00"
cdef bytes XERIAL_HEADER = XERIAL_MAGIC + b"\x00\x00\x00\x01\x00\x00\x00\x01"
# the LZ4 frame header Kafka's producer writes (independent 64 KiB blocks, no checksums, no content size), from
# lz4.frame itself; compress() writes the blocks with lz4.block, which skips the frame API's per-call context
cdef bytes LZ4_FRAME_HEADER = _lz4.compress(b"", block_size=_lz4.BLOCKSIZE_MAX64KB, block_linked=False,
                                            content_checksum=False, store_size=False)[:7]
cdef object _lz4_block_compress = _lz4_block.compress
cdef object _snappy_compress = _snappy.compress
cdef object _zstd_decompressor = _zstd.ZstdDecompressor()
cdef dict _zstd_compressors = {}


cdef int codec_id(object codec) except -1:
    """Codec name (or attribute id 0..4) to its id."""
    cdef int i
    if isinstance(codec, int):
        if 0 <= codec <= 4:
            return codec
    elif isinstance(codec, str):
        for i in range(CODEC_ZSTD + 1):
            if codec is codec_names[i] or codec == codec_names[i]:
                return i
    raise ValueError(f"unknown compression codec {codec!r}; expected one of {', '.join(CODEC_NAMES)}")


cdef bytes snappy_block_decompress(object block, Py_ssize_t where, int64_t* budget, int64_t limit):
    """One snappy block; its declared size is taken from budget first (it is exactly what the block yields)."""
    cdef const uint8_t[::1] v = as_bytes_view(block)
    cdef Py_ssize_t pos = 0
    cdef uint64_t size
    if v.shape[0] == 0 or read_uvarint(&v[0], v.shape[0], &pos, &size) != 0:
        raise CorruptRecordError(f"corrupt snappy block at byte {where}")
    if size > <uint64_t>v.shape[0] * SNAPPY_MAX_EXPANSION + 64:
        raise CorruptRecordError(
            f"snappy block at byte {where} claims {size} bytes from {v.shape[0]}: impossible")
    if size > <uint64_t>budget[0]:
        too_large("snappy", limit)
    budget[0] -= <int64_t>size
    return _snappy.uncompress(block)


cdef bytes xerial_decompress(object data, int64_t limit):
    cdef const uint8_t[::1] v = as_bytes_view(data)
    cdef Py_ssize_t n = v.shape[0], pos = XERIAL_HEADER_SIZE
    cdef uint32_t block_len
    cdef int64_t budget = limit
    cdef list out = []
    mv = memoryview(data)
    while pos < n:
        if pos + 4 > n:
            raise CorruptRecordError(f"truncated xerial snappy block length at byte {pos}")
        block_len = load_be32(&v[pos])
        if block_len > <uint64_t>(n - pos - 4):
            raise CorruptRecordError(
                f"xerial snappy block at byte {pos} claims {block_len} bytes, {n - pos - 4} remain")
        out.append(snappy_block_decompress(mv[pos + 4:pos + 4 + block_len], pos + 4, &budget, limit))
        pos += 4 + block_len
    return b"".join(out)


cdef bytes xerial_compress(object data):
    cdef Py_ssize_t n = len(data), pos = 0
    cdef uint8_t lenbuf[4]
    cdef bytes block, out
    cdef char* p
    if 0 < n <= XERIAL_BLOCK_SIZE:      # one block: header, length and block written into one bytes object
        block = _snappy_compress(data)
        out = PyBytes_FromStringAndSize(NULL, XERIAL_HEADER_SIZE + 4 + len(block))
        p = PyBytes_AS_STRING(out)
        memcpy(p, PyBytes_AS_STRING(XERIAL_HEADER), XERIAL_HEADER_SIZE)
        store_be32(<uint8_t*>p + XERIAL_HEADER_SIZE, <uint32_t>len(block))
        memcpy(p + XERIAL_HEADER_SIZE + 4, PyBytes_AS_STRING(block), len(block))
        return out
    mv = memoryview(data)
    parts = [XERIAL_HEADER]
    while pos < n:
        block = _snappy_compress(mv[pos:pos + XERIAL_BLOCK_SIZE])
        store_be32(lenbuf, <uint32_t>len(block))
        parts.append((<char*>lenbuf)[:4])
        parts.append(block)
        pos += XERIAL_BLOCK_SIZE
    return b"".join(parts)


cdef inline void store_le32(char* p, uint32_t v) noexcept:
    p[0], p[1], p[2], p[3] = <char>(v & 0xFF), <char>((v >> 8) & 0xFF), <char>((v >> 16) & 0xFF), <char>(v >> 24)


cdef bytes lz4_block(object chunk, int level):
    """One LZ4 block as the frame format's encoder makes it at `level` (0-2: fast, acceleration 1)."""
    if 0 <= level < LZ4_HC_MIN_LEVEL:
        return _lz4_block_compress(chunk, store_size=False)        # the fewest keywords: they cost a parse each
    if level < 0:
        return _lz4_block_compress(chunk, mode="fast", acceleration=1 - level, store_size=False)
    return _lz4_block_compress(chunk, mode="high_compression", compression=level, store_size=False)


cdef bytes lz4_frame_compress(object data, int level):
    """An LZ4 frame as Kafka's producer writes it: the fixed header, each 64 KiB block compressed on its own
    (stored raw when that does not make it smaller, as the frame format's encoder does), the end mark."""
    cdef Py_ssize_t n = len(data), pos = 0, size, total = 7 + 4, at = 7, i
    cdef list blocks = [], words = []
    cdef bytes block, out
    cdef char* p
    mv = memoryview(data) if n > LZ4_BLOCK_SIZE else None
    while pos < n:
        chunk = data if mv is None else mv[pos:pos + LZ4_BLOCK_SIZE]
        size = min(n - pos, <Py_ssize_t>LZ4_BLOCK_SIZE)
        block = lz4_block(chunk, level)
        if len(block) >= size:
            words.append(size | LZ4_UNCOMPRESSED)
            block = bytes(chunk)
        else:
            words.append(len(block))
        blocks.append(block)
        total += 4 + len(block)
        pos += LZ4_BLOCK_SIZE
    out = PyBytes_FromStringAndSize(NULL, total)
    p = PyBytes_AS_STRING(out)
    memcpy(p, PyBytes_AS_STRING(LZ4_FRAME_HEADER), 7)
    for i in range(len(blocks)):
        block = blocks[i]
        store_le32(p + at, <uint32_t>words[i])
        memcpy(p + at + 4, PyBytes_AS_STRING(block), len(block))
        at += 4 + len(block)
    store_le32(p + at, 0)                       # end mark
    return out


cpdef bytes compress(object codec, object data, object level=None):
    """Compress `data` with a Kafka codec ("none", "gzip", "snappy", "lz4", "zstd")."""
    cdef int cid = codec_id(codec)
    if cid == CODEC_NONE:
        return bytes(data)
    if cid == CODEC_GZIP:
        return zlib.compress(data, DEFAULT_LEVELS["gzip"] if level is None else level, 31)
    if cid == CODEC_SNAPPY:
        return xerial_compress(data)
    if cid == CODEC_LZ4:
        return lz4_frame_compress(data, DEFAULT_LEVELS["lz4"] if level is None else level)
    level = DEFAULT_LEVELS["zstd"] if level is None else level
    compressor = _zstd_compressors.get(level)
    if compressor is None:
        compressor = _zstd_compressors[level] = _zstd.ZstdCompressor(level=level)
    return compressor.compress(data)


cpdef bytes decompress(object codec, object data, object max_size=None):
    """Decompress a Kafka codec payload to at most max_size bytes (default: the configured cap);
    malformed input, or more output than that, raises CorruptRecordError."""
    cdef int cid = codec_id(codec)
    cdef int64_t limit = max_decompressed if max_size is None else max_size
    if cid == CODEC_NONE:
        return bytes(data)
    try:
        if cid == CODEC_GZIP:
            return gzip_decompress(data, limit)
        if cid == CODEC_SNAPPY:
            if bytes(data[:8]) == XERIAL_MAGIC:
                return xerial_decompress(data, limit)
            return snappy_block_decompress(data, 0, &limit, limit)
        return frame_decompress(cid, data, limit)
    except CorruptRecordError:
        raise
    except Exception as exc:
        raise CorruptRecordError(f"corrupt {CODEC_NAMES[cid]} payload: {exc}") from None
