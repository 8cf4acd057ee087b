# Kafka varints: unsigned LEB128 (uvarint) and zigzag-signed (varint/varlong).
from libc.stdint cimport int64_t, uint64_t, uint8_t


cdef enum:
    MAX_VARINT_BYTES = 10


cdef extern from "varint.h":
    # read_*: 0 ok (pos advanced), -1 truncated, -2 longer than 10 bytes; never reads at or past end.
    uint64_t zigzag_encode "cp_zigzag_encode"(int64_t n) noexcept nogil
    int64_t zigzag_decode "cp_zigzag_decode"(uint64_t n) noexcept nogil
    Py_ssize_t uvarint_size "cp_uvarint_size"(uint64_t v) noexcept nogil
    Py_ssize_t write_uvarint "cp_write_uvarint"(uint8_t* out, uint64_t v) noexcept nogil
    int read_uvarint "cp_read_uvarint"(const uint8_t* buf, Py_ssize_t end, Py_ssize_t* pos,
                                       uint64_t* out) noexcept nogil
    int read_varint "cp_read_varint"(const uint8_t* buf, Py_ssize_t end, Py_ssize_t* pos,
                                     int64_t* out) noexcept nogil


cdef str varint_problem(int rc):
    return "truncated varint" if rc == -1 else "varint longer than 10 bytes"


def encode_uvarint(n):
    """Encode an unsigned 64-bit integer as a Kafka unsigned varint."""
    if n < 0 or n > 0xFFFFFFFFFFFFFFFF:
        raise OverflowError(f"uvarint out of range: {n}")
    cdef uint8_t tmp[MAX_VARINT_BYTES]
    cdef Py_ssize_t k = write_uvarint(tmp, <uint64_t>n)
    return (<char*>tmp)[:k]


def encode_varint(n):
    """Encode a signed 64-bit integer as a Kafka zigzag varint (varlong)."""
    if n < -0x8000000000000000 or n > 0x7FFFFFFFFFFFFFFF:
        raise OverflowError(f"varint out of range: {n}")
    cdef uint8_t tmp[MAX_VARINT_BYTES]
    cdef Py_ssize_t k = write_uvarint(tmp, zigzag_encode(<int64_t>n))
    return (<char*>tmp)[:k]


def decode_uvarint(buf, Py_ssize_t pos=0):
    """Decode an unsigned varint at buf[pos]; return (value, next_pos)."""
    cdef const uint8_t[::1] view = as_bytes_view(buf)
    cdef uint64_t v
    cdef Py_ssize_t p = pos
    if pos < 0 or pos > view.shape[0]:
        raise CorruptRecordError(f"position {pos} outside buffer of {view.shape[0]} bytes")
    cdef int rc = read_uvarint(&view[0] if view.shape[0] else NULL, view.shape[0], &p, &v)
    if rc:
        raise CorruptRecordError(f"{varint_problem(rc)} at byte {pos}")
    return v, p


def decode_varint(buf, Py_ssize_t pos=0):
    """Decode a zigzag varint at buf[pos]; return (value, next_pos)."""
    cdef const uint8_t[::1] view = as_bytes_view(buf)
    cdef int64_t v
    cdef Py_ssize_t p = pos
    if pos < 0 or pos > view.shape[0]:
        raise CorruptRecordError(f"position {pos} outside buffer of {view.shape[0]} bytes")
    cdef int rc = read_varint(&view[0] if view.shape[0] else NULL, view.shape[0], &p, &v)
    if rc:
        raise CorruptRecordError(f"{varint_problem(rc)} at byte {pos}")
    return v, p
