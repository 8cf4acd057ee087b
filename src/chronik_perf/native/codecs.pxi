# Kafka's four compression codecs, written the way Kafka's Java producer writes them:
# gzip, snappy in xerial framing (plain snappy blocks are read too), the LZ4 frame format
# (64 KiB independent blocks, no content size), and zstd frames. The codec work itself is
# done by zlib, cramjam's snappy (python-snappy's engine), liblz4 and libzstd (codec_lib.pxi); this part only
# frames and guards it, writing each result straight into the bytes object returned.

from cpython.buffer cimport PyBUF_READ, PyBUF_SIMPLE, PyBuffer_Release, PyObject_GetBuffer
from cpython.bytes cimport PyBytes_AS_STRING
from cpython.memoryview cimport PyMemoryView_FromMemory
from cpython.object cimport PyObject
from cpython.ref cimport Py_XDECREF
from libc.stdint cimport int64_t, uint32_t, uint64_t, uint8_t
from libc.string cimport memcmp, memcpy

from chronik_perf.native.includes.codec_lib cimport cp_lz4, cp_z_stream, cp_zlib, cp_zstd
from chronik_perf.native.includes.endian cimport load_be32, store_be32
from chronik_perf.native.includes.varint cimport read_uvarint

import cramjam
import lz4.frame as _lz4
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
    LZ4_DEFAULT_LEVEL = 0
    ZSTD_DEFAULT_LEVEL = 3
    GZIP_DEFAULT_LEVEL = 6

CODEC_NAMES = ("none", "gzip", "snappy", "lz4", "zstd")
cdef tuple codec_names = CODEC_NAMES
DEFAULT_LEVELS = {"gzip": GZIP_DEFAULT_LEVEL, "lz4": LZ4_DEFAULT_LEVEL, "zstd": ZSTD_DEFAULT_LEVEL}
cdef bytes XERIAL_MAGIC = b"\x82SNAPPY\x00"
cdef bytes XERIAL_HEADER = XERIAL_MAGIC + b"\x00\x00\x00\x01\x00\x00\x00\x01"
# the LZ4 frame header Kafka's producer writes (independent 64 KiB blocks, no checksums, no content size), from
# lz4.frame itself; compress() writes the blocks with liblz4's block functions, which skip the frame API's context
cdef bytes LZ4_FRAME_HEADER = _lz4.compress(b"", block_size=_lz4.BLOCKSIZE_MAX64KB, block_linked=False,
                                            content_checksum=False, store_size=False)[:7]
cdef object _snappy_compress_into = cramjam.snappy.compress_raw_into
cdef object _snappy_decompress_into = cramjam.snappy.decompress_raw_into
cdef object _zstd_decompressor = _zstd.ZstdDecompressor()


cdef int codec_id(object codec) except -1:
    """Codec name (or attribute id 0..4) to its id."""
    cdef int i
    if isinstance(codec, int):
        if 0 <= codec <= 4:
            return codec
    elif isinstance(codec, str):
        for i in range(CODEC_ZSTD + 1):        # a literal name is the interned one: no string compared
            if codec is codec_names[i]:
                return i
        for i in range(CODEC_ZSTD + 1):
            if codec == codec_names[i]:
                return i
    raise ValueError(f"unknown compression codec {codec!r}; expected one of {', '.join(CODEC_NAMES)}")


cdef inline object read_view(const void* p, Py_ssize_t n):
    """A read-only memoryview of n bytes at p (inside a buffer the caller holds)."""
    return PyMemoryView_FromMemory(<char*>p, n, PyBUF_READ)


cdef Py_ssize_t snappy_block_size(const uint8_t* p, Py_ssize_t n, Py_ssize_t where, int64_t* budget,
                                  int64_t limit) except -1:
    """The size a snappy block declares (exactly what it yields), checked against what its bytes could hold and
    taken from budget."""
    cdef Py_ssize_t pos = 0
    cdef uint64_t size
    if n == 0 or read_uvarint(p, n, &pos, &size) != 0:
        raise CorruptRecordError(f"corrupt snappy block at byte {where}")
    if size > <uint64_t>n * SNAPPY_MAX_EXPANSION + 64:
        raise CorruptRecordError(f"snappy block at byte {where} claims {size} bytes from {n}: impossible")
    if size > <uint64_t>budget[0]:
        too_large("snappy", limit)
    budget[0] -= <int64_t>size
    return <Py_ssize_t>size


cdef Py_ssize_t xerial_block(const uint8_t* v, Py_ssize_t n, Py_ssize_t pos) except -1:
    """Length of the xerial block whose 4-byte length is at pos, checked against the bytes left."""
    cdef uint32_t block_len
    if pos + 4 > n:
        raise CorruptRecordError(f"truncated xerial snappy block length at byte {pos}")
    block_len = load_be32(&v[pos])
    if block_len > <uint64_t>(n - pos - 4):
        raise CorruptRecordError(f"xerial snappy block at byte {pos} claims {block_len} bytes, {n - pos - 4} remain")
    return block_len


cdef bytes snappy_decompress(object data, int64_t limit):
    """A plain snappy block, or Kafka's xerial framing of them: every block's declared size is checked and
    summed first, then each block is decompressed into its place in the returned bytes."""
    cdef Py_buffer src
    PyObject_GetBuffer(data, &src, PyBUF_SIMPLE)
    cdef const uint8_t* v = <const uint8_t*>src.buf
    cdef Py_ssize_t n = src.len, pos, block_len, size, total = 0, at = 0
    cdef int64_t budget = limit
    cdef bint xerial = n >= 8 and memcmp(v, PyBytes_AS_STRING(XERIAL_MAGIC), 8) == 0
    cdef PyObject* out = NULL
    cdef char* o
    try:
        if xerial:
            pos = XERIAL_HEADER_SIZE
            while pos < n:
                block_len = xerial_block(v, n, pos)
                total += snappy_block_size(v + pos + 4, block_len, pos + 4, &budget, limit)
                pos += 4 + block_len
        else:
            total = snappy_block_size(v, n, 0, &budget, limit)
        out = new_output(total)
        o = output_data(out)
        if not xerial:
            if _snappy_decompress_into(read_view(v, n), writable_view(o, total)) != total:
                raise CorruptRecordError(f"snappy block yields other than the {total} bytes it claims")
        pos, budget = XERIAL_HEADER_SIZE, limit
        while xerial and pos < n:
            block_len = xerial_block(v, n, pos)
            size = snappy_block_size(v + pos + 4, block_len, pos + 4, &budget, limit)
            if _snappy_decompress_into(read_view(v + pos + 4, block_len), writable_view(o + at, size)) != size:
                raise CorruptRecordError(f"snappy block at byte {pos + 4} yields other than the {size} bytes it claims")
            at += size
            pos += 4 + block_len
    except BaseException:
        Py_XDECREF(out)
        raise
    finally:
        PyBuffer_Release(&src)
    return bytes_finish(out, total)


cdef bytes xerial_compress(object data):
    """Kafka's xerial framing: the header, then per 32 KiB block its length and its plain snappy block,
    compressed straight into the returned bytes."""
    cdef Py_buffer src
    PyObject_GetBuffer(data, &src, PyBUF_SIMPLE)
    cdef const char* s = <const char*>src.buf
    cdef Py_ssize_t n = src.len, pos = 0, size, at = XERIAL_HEADER_SIZE, written
    cdef Py_ssize_t cap = XERIAL_HEADER_SIZE + (n // XERIAL_BLOCK_SIZE + 1) * (4 + 32) + n + n // 6  # snappy's bound
    cdef PyObject* out = NULL
    cdef char* o
    try:
        out = new_output(cap)
        o = output_data(out)
        memcpy(o, PyBytes_AS_STRING(XERIAL_HEADER), XERIAL_HEADER_SIZE)
        while pos < n:
            size = min(n - pos, <Py_ssize_t>XERIAL_BLOCK_SIZE)
            written = _snappy_compress_into(read_view(s + pos, size), writable_view(o + at + 4, cap - at - 4))
            store_be32(<uint8_t*>o + at, <uint32_t>written)
            at += 4 + written
            pos += size
    except BaseException:
        Py_XDECREF(out)
        raise
    finally:
        PyBuffer_Release(&src)
    return bytes_finish(out, at)


cdef inline void store_le32(char* p, uint32_t v) noexcept nogil:
    p[0], p[1], p[2], p[3] = <char>(v & 0xFF), <char>((v >> 8) & 0xFF), <char>((v >> 16) & 0xFF), <char>(v >> 24)


cdef Py_ssize_t lz4_frame_blocks(void* state, int level, const char* s, Py_ssize_t n, char* p) noexcept nogil:
    """After the frame header at p: each 64 KiB block compressed on its own at `level` (0-2: fast, acceleration
    1; below 0: faster; 3 and up: HC), stored raw when that does not make it smaller, as the frame format's
    encoder does, then the end mark. Returns the frame's length; state was initialised by a call before (or
    fresh_lz4_state)."""
    cdef Py_ssize_t pos = 0, at = 7, size
    cdef int w
    while pos < n:
        size = min(n - pos, <Py_ssize_t>LZ4_BLOCK_SIZE)
        # room for size - 1 bytes: 0 back when the block does not get smaller
        if level >= LZ4_HC_MIN_LEVEL:
            w = cp_lz4.compress_HC(s + pos, p + at + 4, <int>size, <int>size - 1, level)
        else:
            w = lz4_fast(state, s + pos, p + at + 4, <int>size, <int>size - 1, 1 if level >= 0 else 1 - level)
        if w <= 0:
            store_le32(p + at, <uint32_t>size | LZ4_UNCOMPRESSED)
            memcpy(p + at + 4, s + pos, size)
            w = <int>size
        else:
            store_le32(p + at, <uint32_t>w)
        at += 4 + w
        pos += size
    store_le32(p + at, 0)                       # end mark
    return at + 4


cdef bytes lz4_frame_compress(object data, int level):
    """An LZ4 frame as Kafka's producer writes it, compressed straight into the returned bytes."""
    cdef Py_buffer src
    PyObject_GetBuffer(data, &src, PyBUF_SIMPLE)
    cdef Py_ssize_t n = src.len, size = 0
    cdef PyObject* out = NULL
    cdef void* state = NULL
    cdef char* o
    try:
        out = new_output(n + 11 + 4 * (n // LZ4_BLOCK_SIZE + 1))     # raw blocks at worst: header, lengths, end
        o = output_data(out)
        memcpy(o, PyBytes_AS_STRING(LZ4_FRAME_HEADER), 7)
        state = take_lz4_state()
        if n >= CODEC_GIL_RELEASE_BYTES:
            with nogil:
                size = lz4_frame_blocks(state, level, <const char*>src.buf, n, o)
        else:
            size = lz4_frame_blocks(state, level, <const char*>src.buf, n, o)
        put_lz4_state(state)
    except BaseException:
        Py_XDECREF(out)
        raise
    finally:
        PyBuffer_Release(&src)
    return bytes_finish(out, size)


cdef bytes gzip_compress(object data, int level):
    """A gzip member (zlib's deflate, its stream reused), compressed straight into the returned bytes."""
    cdef Py_buffer src
    PyObject_GetBuffer(data, &src, PyBUF_SIMPLE)
    cdef cp_z_stream* z = NULL
    cdef PyObject* out = NULL
    cdef unsigned char* o
    cdef Py_ssize_t cap
    cdef int rc
    try:
        z = take_z_stream(False, level)
        cap = <Py_ssize_t>cp_zlib.deflateBound(z, <unsigned long>src.len)
        out = new_output(cap)
        o = <unsigned char*>output_data(out)
        z.next_in = <const unsigned char*>src.buf
        z.next_out = o
        if src.len >= CODEC_GIL_RELEASE_BYTES:
            with nogil:
                rc = z_pump(z, False, <const unsigned char*>src.buf + src.len, o + cap)
        else:
            rc = z_pump(z, False, <const unsigned char*>src.buf + src.len, o + cap)
        if rc != Z_STREAM_END:
            raise ValueError(f"gzip compression failed: zlib error {rc}")
        cap = z.next_out - o
    except BaseException:
        Py_XDECREF(out)
        raise
    finally:
        if z != NULL:
            put_z_stream(z, False, level)
        PyBuffer_Release(&src)
    return bytes_finish(out, cap)


cdef bytes zstd_compress(object data, int level):
    """A zstd frame (content size declared, no checksum), compressed straight into the returned bytes."""
    cdef Py_buffer src
    PyObject_GetBuffer(data, &src, PyBUF_SIMPLE)
    cdef size_t cap = cp_zstd.compressBound(<size_t>src.len), r = 0
    cdef PyObject* out = NULL
    cdef void* cctx
    cdef char* o
    try:
        out = new_output(<Py_ssize_t>cap)
        o = output_data(out)
        cctx = take_zstd_cctx(level)
        if src.len >= CODEC_GIL_RELEASE_BYTES:
            with nogil:
                r = cp_zstd.compress2(cctx, o, cap, src.buf, <size_t>src.len)
        else:
            r = cp_zstd.compress2(cctx, o, cap, src.buf, <size_t>src.len)
        put_zstd_cctx(cctx, level)
        if cp_zstd.isError(r):
            raise ValueError(f"zstd compression failed: {cp_zstd.getErrorName(r).decode()}")
    except BaseException:
        Py_XDECREF(out)
        raise
    finally:
        PyBuffer_Release(&src)
    return bytes_finish(out, <Py_ssize_t>r)


cpdef bytes compress(object codec, object data, object level=None):
    """Compress `data` with a Kafka codec ("none", "gzip", "snappy", "lz4", "zstd")."""
    cdef int cid = codec_id(codec)
    if cid == CODEC_NONE:
        return bytes(data)
    if cid == CODEC_GZIP:
        return gzip_compress(data, GZIP_DEFAULT_LEVEL if level is None else level)
    if cid == CODEC_SNAPPY:
        return xerial_compress(data)
    if cid == CODEC_LZ4:
        return lz4_frame_compress(data, LZ4_DEFAULT_LEVEL if level is None else level)
    return zstd_compress(data, ZSTD_DEFAULT_LEVEL if level is None else level)


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
            return snappy_decompress(data, limit)
        return frame_decompress(cid, data, limit)
    except CorruptRecordError:
        raise
    except Exception as exc:
        raise CorruptRecordError(f"corrupt {CODEC_NAMES[cid]} payload: {exc}") from None
