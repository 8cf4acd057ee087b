# Bounded decompression: how many bytes a compressed payload may turn into, and LZ4/zstd frames walked block by
# block so that their output is known to fit before it is produced. A batch's limit is the smaller of the cap and
# its record count times the per-record ceiling.
import os

import lz4.frame as _lz4

from cpython.buffer cimport PyBUF_READ, PyBUF_SIMPLE, PyBuffer_Release, PyObject_GetBuffer
from cpython.memoryview cimport PyMemoryView_FromMemory
from cpython.object cimport PyObject
from cpython.ref cimport Py_XDECREF
from libc.stdint cimport INT64_MAX, UINT64_MAX, int32_t, int64_t, uint32_t, uint64_t, uint8_t
from libc.string cimport memcpy

from chronik_perf.native.includes.codec_lib cimport cp_lz4, cp_z_stream, cp_zstd_api
from chronik_perf.native.includes.python cimport _PyBytes_Resize

cdef enum:
    DEFAULT_MAX_DECOMPRESSED = 64 << 20      # 64 x Kafka's default message.max.bytes (1 MiB)
    DEFAULT_MAX_RECORD_BYTES = 8 << 20       # 8 x Kafka's default max.request.size (1 MiB)
    DECOMPRESS_STEP = 1 << 20                # output bound of one step when the whole frame's is too high
    ZSTD_BLOCK_MAX = 1 << 17
    LZ4_HEADER_MIN = 7                       # magic, FLG, BD, header checksum
    DEFLATE_MAX_EXPANSION = 1032             # deflate's most output per input byte

cdef int64_t max_decompressed = DEFAULT_MAX_DECOMPRESSED
cdef int64_t record_ceiling = DEFAULT_MAX_RECORD_BYTES


def decompression_limits():
    """The cap on any decompressed payload and the per-record ceiling of a batch's limit, in bytes."""
    return {"max_bytes": max_decompressed, "max_record_bytes": record_ceiling}


def set_decompression_limits(max_bytes=None, max_record_bytes=None):
    """Set the cap and/or the per-record ceiling (None keeps the current value); returns the previous limits."""
    global max_decompressed, record_ceiling
    previous = decompression_limits()
    for value in (max_bytes, max_record_bytes):
        if value is not None and not 0 < value < INT64_MAX:
            raise ValueError(f"a decompression limit must be a positive byte count, got {value!r}")
    if max_bytes is not None:
        max_decompressed = max_bytes
    if max_record_bytes is not None:
        record_ceiling = max_record_bytes
    return previous


set_decompression_limits(int(os.environ.get("CHRONIK_PERF_MAX_DECOMPRESSED_BYTES", DEFAULT_MAX_DECOMPRESSED)),
                         int(os.environ.get("CHRONIK_PERF_MAX_RECORD_BYTES", DEFAULT_MAX_RECORD_BYTES)))


cdef inline int64_t batch_limit(int32_t record_count) noexcept:
    """Most bytes a batch of record_count records may decompress to."""
    if record_count <= 0 or record_ceiling > max_decompressed // record_count:
        return max_decompressed
    return record_count * record_ceiling


cdef int too_large(str codec, int64_t limit) except -1:
    raise CorruptRecordError(
        f"{codec} payload decompresses to more than its limit of {limit} bytes "
        f"(chronik_perf.compression.set_decompression_limits changes the limits)")


cdef bytes gzip_decompress(object data, int64_t limit):
    """A gzip (or zlib) stream inflated straight into one buffer, first of the size its trailer states (a hint
    held to what deflate could expand to and to limit + 1), grown while the stream goes on, never past limit + 1
    bytes: output reaching that is too large."""
    cdef Py_buffer src
    PyObject_GetBuffer(data, &src, PyBUF_SIMPLE)
    cdef const unsigned char* p = <const unsigned char*>src.buf
    cdef Py_ssize_t n = src.len, at
    cdef int64_t room = load_le(p + n - 4, 4) if n >= 18 else 0
    cdef PyObject* out = NULL
    cdef cp_z_stream* z = NULL
    cdef unsigned char* o_end
    cdef int rc
    room = max(64, min(room, <int64_t>n * DEFLATE_MAX_EXPANSION + 64, limit + 1))
    try:
        out = new_output(room)
        z = take_z_stream(True, 0)
        z.next_in = p
        z.next_out = <unsigned char*>output_data(out)
        while True:
            o_end = <unsigned char*>output_data(out) + room
            if room >= CODEC_GIL_RELEASE_BYTES:
                with nogil:
                    rc = z_pump(z, True, p + n, o_end)
            else:
                rc = z_pump(z, True, p + n, o_end)
            if rc == Z_STREAM_END:
                break
            if rc == Z_BUF_ERROR:
                raise CorruptRecordError("truncated gzip stream")
            if rc != Z_OK:
                raise CorruptRecordError(f"corrupt gzip payload: "
                                         f"{z.msg.decode(errors='replace') if z.msg != NULL else f'zlib error {rc}'}")
            if room > limit:
                too_large("gzip", limit)
            at = z.next_out - <unsigned char*>output_data(out)
            room = min(room * 2, limit + 1)
            _PyBytes_Resize(&out, room)
            z.next_out = <unsigned char*>output_data(out) + at
        at = z.next_out - <unsigned char*>output_data(out)
        if at > limit:
            too_large("gzip", limit)
    except BaseException:
        Py_XDECREF(out)
        raise
    finally:
        if z != NULL:
            put_z_stream(z, True, 0)
        PyBuffer_Release(&src)
    return bytes_finish(out, at)


cdef struct Frame:
    Py_ssize_t pos              # next block header
    Py_ssize_t first_block
    Py_ssize_t end              # end of the frame once its last block is walked, else -1
    Py_ssize_t block_max        # output bound of one compressed block
    bint block_checksums        # lz4: a checksum after each block
    bint content_checksum
    bint plain_lz4              # lz4: independent blocks, no checksums, no dictionary (what Kafka writes)
    int64_t content_size        # declared in the header, else -1


cdef inline uint32_t load_le(const uint8_t* p, int width) noexcept nogil:
    cdef uint32_t v = 0
    cdef int i
    for i in range(width):
        v |= (<uint32_t>p[i]) << (8 * i)
    return v


cdef uint32_t xxh32_short(const uint8_t* p, Py_ssize_t n) noexcept nogil:
    """xxHash32 (seed 0) of fewer than 16 bytes: what an LZ4 frame descriptor's header checksum is taken from."""
    cdef uint32_t h = <uint32_t>374761393u + <uint32_t>n
    cdef Py_ssize_t i = 0
    while i + 4 <= n:
        h += load_le(p + i, 4) * <uint32_t>3266489917u
        h = ((h << 17) | (h >> 15)) * <uint32_t>668265263u
        i += 4
    while i < n:
        h += p[i] * <uint32_t>374761393u
        h = ((h << 11) | (h >> 21)) * <uint32_t>2654435761u
        i += 1
    h ^= h >> 15
    h *= <uint32_t>2246822519u
    h ^= h >> 13
    h *= <uint32_t>3266489917u
    return h ^ (h >> 16)


cdef int lz4_header(Frame* f, const uint8_t* p, Py_ssize_t n) except -1:
    cdef int i
    cdef uint64_t size
    if n < LZ4_HEADER_MIN or load_le(p, 4) != 0x184D2204:
        raise CorruptRecordError("not an LZ4 frame at byte 0")
    if p[4] >> 6 != 1:
        raise CorruptRecordError(f"LZ4 frame version {p[4] >> 6} at byte 4")
    if p[4] & 0x02 or p[5] & 0x8F:       # the frame format's reserved bits, which lz4's own decoder refuses
        raise CorruptRecordError(f"LZ4 frame reserved bit set at byte {4 if p[4] & 0x02 else 5}")
    if not 4 <= (p[5] >> 4) & 7 <= 7:
        raise CorruptRecordError(f"LZ4 block size id {(p[5] >> 4) & 7} at byte 5")
    f.block_max = 1 << (8 + 2 * ((p[5] >> 4) & 7))
    f.block_checksums = p[4] & 0x10
    f.content_checksum = p[4] & 0x04
    f.plain_lz4 = (p[4] & 0x20) and not (p[4] & 0x15)
    f.content_size = -1
    f.pos = 6 + (8 if p[4] & 0x08 else 0) + (4 if p[4] & 0x01 else 0) + 1
    if f.pos > n:
        raise CorruptRecordError("truncated LZ4 frame header at byte 6")
    if p[f.pos - 1] != (xxh32_short(p + 4, f.pos - 5) >> 8) & 0xFF:   # as lz4's decoder and Kafka's check it
        raise CorruptRecordError(f"LZ4 frame header checksum mismatch at byte {f.pos - 1}")
    if p[4] & 0x08:
        size = 0
        for i in range(8):
            size |= (<uint64_t>p[6 + i]) << (8 * i)
        if size > <uint64_t>INT64_MAX:
            raise CorruptRecordError("LZ4 frame content size out of range at byte 6")
        f.content_size = <int64_t>size
    return 0


cdef int zstd_header(Frame* f, const uint8_t* p, Py_ssize_t n) except -1:
    cdef int fcs_flag, dict_flag, fcs_size
    cdef bint single
    if n < 6 or load_le(p, 4) != 0xFD2FB528:
        raise CorruptRecordError("not a zstd frame at byte 0")
    fcs_flag, single, dict_flag = p[4] >> 6, (p[4] >> 5) & 1, p[4] & 3
    if p[4] & 0x08:
        raise CorruptRecordError("zstd frame header reserved bit set at byte 4")
    fcs_size = (1 if single else 0) if fcs_flag == 0 else 1 << fcs_flag
    f.pos = 5 + (0 if single else 1) + (0, 1, 2, 4)[dict_flag]
    f.block_max = ZSTD_BLOCK_MAX
    f.block_checksums = False
    f.content_checksum = p[4] & 0x04
    f.plain_lz4 = False
    f.content_size = -1
    if f.pos + fcs_size > n:
        raise CorruptRecordError("truncated zstd frame header at byte 4")
    if fcs_size == 8:
        f.content_size = <int64_t>(load_le(p + f.pos, 4) | (<uint64_t>load_le(p + f.pos + 4, 4) << 32))
    elif fcs_size:
        f.content_size = load_le(p + f.pos, fcs_size) + (256 if fcs_size == 2 else 0)
    f.pos += fcs_size
    return 0


cdef int walk_blocks(Frame* f, int codec, const uint8_t* p, Py_ssize_t n, uint64_t step,
                     uint64_t* bound) noexcept nogil:
    """Walk blocks from f.pos, adding each one's output bound to bound[0], until the frame ends or (after one
    block at least) bound[0] would pass step. 0, or 1 for a block that does not fit or is malformed."""
    cdef uint32_t h, size
    cdef uint64_t out
    cdef Py_ssize_t pos = f.pos, content
    while f.end < 0:
        if codec == CODEC_LZ4:
            if pos + 4 > n:
                return 1
            h = load_le(p + pos, 4)
            if h == 0:                          # EndMark
                f.end = pos + 4 + (4 if f.content_checksum else 0)
                break
            size = h & 0x7FFFFFFF
            if size > <uint32_t>f.block_max:
                return 1
            out = size if h >> 31 else <uint64_t>f.block_max
            content = 4 + size + (4 if f.block_checksums else 0)
        else:
            if pos + 3 > n:
                return 1
            h = load_le(p + pos, 3)
            size = h >> 3
            if (h >> 1) & 3 == 3 or size > ZSTD_BLOCK_MAX:
                return 1
            out = size if (h >> 1) & 3 != 2 else <uint64_t>f.block_max
            content = 3 + (1 if (h >> 1) & 3 == 1 else size)
        if pos > f.pos and bound[0] + out > step:
            break
        if content > n - pos:
            return 1
        bound[0] += out
        pos += content
        if codec == CODEC_ZSTD and h & 1:       # last block
            f.end = pos + (4 if f.content_checksum else 0)
    f.pos = pos
    if f.end > n:
        return 1
    return 0


cdef Py_ssize_t lz4_blocks_into(const uint8_t* p, Py_ssize_t pos, Py_ssize_t block_max, char* out,
                                Py_ssize_t room) noexcept nogil:
    """Decode the walked blocks of a plain LZ4 frame from pos into out: the bytes written, or -1 when a block is
    malformed or its output passes room."""
    cdef Py_ssize_t at = 0
    cdef uint32_t h, size
    cdef int r
    while True:
        h = load_le(p + pos, 4)
        if h == 0:
            return at
        size = h & 0x7FFFFFFF
        if h >> 31:
            if size > room - at:
                return -1
            memcpy(out + at, p + pos + 4, size)
            r = <int>size
        else:
            r = cp_lz4.decompress_safe(<const char*>p + pos + 4, out + at, <int>size,
                                       <int>min(block_max, room - at))
            if r < 0:
                return -1
        at += r
        pos += 4 + size


cdef bytes frame_decompress(int cid, object data, int64_t limit):
    """An LZ4 or zstd frame: into one buffer when its blocks bound the output within limit, else bounded steps."""
    cdef Py_buffer src
    PyObject_GetBuffer(data, &src, PyBUF_SIMPLE)
    try:
        return frame_decompress_view(cid, data, <const uint8_t*>src.buf, src.len, limit)
    finally:
        PyBuffer_Release(&src)


cdef bytes frame_decompress_view(int cid, object data, const uint8_t* p, Py_ssize_t n, int64_t limit):
    cdef Py_ssize_t start, room, size
    cdef Frame f
    cdef uint64_t bound = 0
    cdef int64_t total = 0
    cdef str name = CODEC_NAMES[cid]
    if n == 0:
        raise CorruptRecordError(f"empty {name} payload")
    if cid == CODEC_LZ4:
        lz4_header(&f, p, n)
    else:
        zstd_header(&f, p, n)
    f.first_block = f.pos
    f.end = -1
    if walk_blocks(&f, cid, p, n, UINT64_MAX, &bound):
        raise CorruptRecordError(f"truncated or malformed {name} frame: block at byte {f.pos}")
    if f.content_size > <int64_t>bound:
        raise CorruptRecordError(f"{name} frame claims {f.content_size} bytes, its blocks hold at most {bound}")
    if f.content_size > limit:
        too_large(name, limit)
    if bound <= <uint64_t>limit:
        if cid == CODEC_LZ4 and not f.plain_lz4:
            return _lz4.decompress(data)        # checksums to verify, or linked blocks: lz4's frame decoder
        # straight into a buffer of the declared size, else of the blocks' bound (within limit), shrunk after
        room = f.content_size if f.content_size >= 0 else <Py_ssize_t>bound
        return (lz4_frame_into if cid == CODEC_LZ4 else zstd_frame_into)(&f, p, room)
    # Each step feeds blocks whose output bound is DECOMPRESS_STEP at most, and stops once the output passes limit.
    d = _lz4.LZ4FrameDecompressor() if cid == CODEC_LZ4 else _zstd_decompressor.decompressobj()
    mv = PyMemoryView_FromMemory(<char*>p, n, PyBUF_READ)
    parts = []
    f.pos, f.end, start = f.first_block, -1, 0
    while f.end < 0:
        bound = 0
        walk_blocks(&f, cid, p, n, DECOMPRESS_STEP, &bound)
        chunk = mv[start:f.pos if f.end < 0 else f.end]
        # python-lz4 sizes its output buffer by max_length; the step's bound is exact enough for it
        part = d.decompress(chunk, max_length=bound) if cid == CODEC_LZ4 else d.decompress(chunk)
        start = f.pos
        total += len(part)
        if total > limit:
            too_large(name, limit)
        parts.append(part)
    if not d.eof:
        raise CorruptRecordError(f"truncated {name} frame")
    return b"".join(parts)


cdef bytes lz4_frame_into(Frame* f, const uint8_t* p, Py_ssize_t room):
    """A walked plain LZ4 frame decoded into a new bytes object of room bytes, shrunk to its output."""
    cdef PyObject* out = new_output(room)
    cdef char* o = output_data(out)
    cdef Py_ssize_t size
    if room >= CODEC_GIL_RELEASE_BYTES:
        with nogil:
            size = lz4_blocks_into(p, f.first_block, f.block_max, o, room)
    else:
        size = lz4_blocks_into(p, f.first_block, f.block_max, o, room)
    if size < 0 or (f.content_size >= 0 and size != f.content_size):
        Py_XDECREF(out)
        raise CorruptRecordError("corrupt lz4 payload: a block does not decode within its bounds" if size < 0 else
                                 f"corrupt lz4 payload: the frame claims {f.content_size} bytes and holds {size}")
    return bytes_finish(out, size)


cdef bytes zstd_frame_into(Frame* f, const uint8_t* p, Py_ssize_t room):
    """A walked zstd frame decoded (libzstd, one call) into a new bytes object of room bytes, shrunk to its
    output; libzstd checks the declared content size and the checksum."""
    cdef PyObject* out = new_output(room)
    cdef char* o = output_data(out)
    cdef cp_zstd_api* lib = zstd_decoder_for(room)
    cdef void* dctx
    cdef size_t r
    try:
        dctx = take_zstd_dctx(lib)
    except BaseException:
        Py_XDECREF(out)
        raise
    if room >= CODEC_GIL_RELEASE_BYTES:
        with nogil:
            r = lib.decompressDCtx(dctx, o, <size_t>room, p, <size_t>f.end)
    else:
        r = lib.decompressDCtx(dctx, o, <size_t>room, p, <size_t>f.end)
    put_zstd_dctx(lib, dctx)
    if lib.isError(r):
        Py_XDECREF(out)
        raise CorruptRecordError(f"corrupt zstd payload: {lib.getErrorName(r).decode()}")
    return bytes_finish(out, <Py_ssize_t>r)
