# Framing one v2 record batch: the checks every reader of batches makes before trusting a header, in one place.
# parse_batches (wire and file bytes, CorruptRecordError) and the log segments (CorruptLogError) both frame with it.
from libc.stdint cimport INT64_MAX, int32_t, int64_t, uint8_t

from chronik_perf.native.includes.batch_layout cimport (ATTR_COMPRESSION_MASK, BATCH_ATTRIBUTES, BATCH_BASE_OFFSET,
                                                        BATCH_CRC, BATCH_LAST_OFFSET_DELTA, BATCH_LENGTH,
                                                        BATCH_MAGIC, BATCH_MAX_TIMESTAMP, BATCH_MIN_LENGTH,
                                                        BATCH_RECORD_COUNT, CURRENT_MAGIC, LOG_OVERHEAD)
from chronik_perf.native.includes.crc32c cimport cp_crc32c
from chronik_perf.native.includes.endian cimport load_be16, load_be32, load_be64

cdef enum:
    # outcomes of framing one batch, in the order they are checked
    FRAME_OK = 0
    FRAME_SHORT_HEADER = 1       # fewer bytes left than a batch header
    FRAME_BAD_MAGIC = 2
    FRAME_BAD_LENGTH = 3         # a batch length below the header's
    FRAME_TRUNCATED = 4          # the batch runs past the bytes left
    FRAME_BAD_CODEC = 5
    FRAME_BAD_COUNT = 6          # a negative record count
    FRAME_BAD_DELTA = 7          # a negative last offset delta
    FRAME_BAD_BASE = 8           # a negative base offset
    FRAME_OVERFLOW = 9           # base offset + last offset delta + 1 (the next offset) beyond int64
    FRAME_BAD_CRC = 10


cdef struct BatchHead:
    int64_t base_offset
    int64_t last_offset
    int64_t max_timestamp
    Py_ssize_t size              # whole batch, LOG_OVERHEAD included


cdef inline bint frame_is_partial(int rc) noexcept nogil:
    """The bytes end inside the batch (a Fetch response's trailing partial batch, a torn write)."""
    return rc == FRAME_SHORT_HEADER or rc == FRAME_TRUNCATED


cdef int frame_batch(const uint8_t* d, Py_ssize_t end, Py_ssize_t pos, bint check_crc,
                     BatchHead* out) noexcept nogil:
    """Frame the v2 batch at d[pos] (end: bytes in d): a FRAME_* code, and on FRAME_OK its head in out."""
    cdef const uint8_t* p = d + pos
    cdef int64_t length, delta
    if end - pos < LOG_OVERHEAD + BATCH_MIN_LENGTH:
        return FRAME_SHORT_HEADER
    if p[BATCH_MAGIC] != CURRENT_MAGIC:
        return FRAME_BAD_MAGIC
    length = <int32_t>load_be32(p + BATCH_LENGTH)
    if length < BATCH_MIN_LENGTH:
        return FRAME_BAD_LENGTH
    if length > end - pos - LOG_OVERHEAD:
        return FRAME_TRUNCATED
    if (load_be16(p + BATCH_ATTRIBUTES) & ATTR_COMPRESSION_MASK) > CODEC_ZSTD:
        return FRAME_BAD_CODEC
    if <int32_t>load_be32(p + BATCH_RECORD_COUNT) < 0:
        return FRAME_BAD_COUNT
    delta = <int32_t>load_be32(p + BATCH_LAST_OFFSET_DELTA)
    if delta < 0:
        return FRAME_BAD_DELTA
    out.base_offset = <int64_t>load_be64(p + BATCH_BASE_OFFSET)
    if out.base_offset < 0:
        return FRAME_BAD_BASE
    if out.base_offset > INT64_MAX - 1 - delta:
        return FRAME_OVERFLOW
    out.last_offset = out.base_offset + delta
    out.max_timestamp = <int64_t>load_be64(p + BATCH_MAX_TIMESTAMP)
    out.size = <Py_ssize_t>(length + LOG_OVERHEAD)
    if check_crc and not batch_crc_matches(p, out.size):
        return FRAME_BAD_CRC
    return FRAME_OK


cdef inline bint batch_crc_matches(const uint8_t* p, Py_ssize_t size) noexcept nogil:
    """The CRC32C stored in the framed batch at p of size bytes is the one of its bytes after the CRC field."""
    return cp_crc32c(0, p + BATCH_ATTRIBUTES, <size_t>(size - BATCH_ATTRIBUTES)) == load_be32(p + BATCH_CRC)


cdef str frame_problem(int rc, const uint8_t* d, Py_ssize_t end, Py_ssize_t pos):
    """What frame_batch found wrong with the batch at d[pos], naming the byte."""
    cdef const uint8_t* p = d + pos
    if rc == FRAME_SHORT_HEADER:
        return f"truncated batch header at byte {pos}: {end - pos} bytes"
    if rc == FRAME_BAD_MAGIC:
        return f"unsupported magic {p[BATCH_MAGIC]} at byte {pos + BATCH_MAGIC}"
    cdef int64_t length = <int32_t>load_be32(p + BATCH_LENGTH)
    if rc == FRAME_BAD_LENGTH:
        return f"batch length {length} out of range at byte {pos + BATCH_LENGTH}"
    if rc == FRAME_TRUNCATED:
        return f"truncated batch at byte {pos}: needs {length + LOG_OVERHEAD} bytes, {end - pos} remain"
    if rc == FRAME_BAD_CODEC:
        return (f"unknown compression codec {load_be16(p + BATCH_ATTRIBUTES) & ATTR_COMPRESSION_MASK} "
                f"at byte {pos + BATCH_ATTRIBUTES}")
    if rc == FRAME_BAD_COUNT:
        return f"negative record count at byte {pos + BATCH_RECORD_COUNT}"
    cdef int64_t base = <int64_t>load_be64(p + BATCH_BASE_OFFSET)
    cdef int64_t delta = <int32_t>load_be32(p + BATCH_LAST_OFFSET_DELTA)
    if rc == FRAME_BAD_DELTA:
        return f"negative last offset delta {delta} at byte {pos + BATCH_LAST_OFFSET_DELTA}"
    if rc == FRAME_BAD_BASE:
        return f"negative base offset {base} at byte {pos + BATCH_BASE_OFFSET}"
    if rc == FRAME_OVERFLOW:
        return f"base offset {base} plus last offset delta {delta} overflows at byte {pos}"
    return (f"CRC mismatch in batch at byte {pos}: stored {load_be32(p + BATCH_CRC):#010x}, computed "
            f"{cp_crc32c(0, p + BATCH_ATTRIBUTES, <size_t>(length + LOG_OVERHEAD - BATCH_ATTRIBUTES)):#010x}")
