# Kafka varints: unsigned LEB128 (uvarint) and zigzag-signed (varint/varlong).
from cpython.buffer cimport PyBUF_SIMPLE, PyBuffer_Release, PyObject_GetBuffer
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


cdef uint64_t decode_at(object buf, Py_ssize_t pos, Py_ssize_t* next_pos) except? 0:
    """The uvarint at buf[pos] of any contiguous buffer, read without copying."""
    cdef Py_buffer view
    cdef uint64_t v = 0
    cdef int rc
    PyObject_GetBuffer(buf, &view, PyBUF_SIMPLE)
    try:
        if pos < 0 or pos > view.len:
            raise CorruptRecordError(f"position {pos} outside buffer of {view.len} bytes")
        next_pos[0] = pos
        rc = read_uvarint(<const uint8_t*>view.buf, view.len, next_pos, &v)
        if rc:
            raise CorruptRecordError(f"{varint_problem(rc)} at byte {pos}")
    finally:
        PyBuffer_Release(&view)
    return v


def decode_uvarint(buf, Py_ssize_t pos=0):
    """Decode an unsigned varint at buf[pos]; return (value, next_pos)."""
    cdef Py_ssize_t p
    cdef uint64_t v = decode_at(buf, pos, &p)
    return v, p


def decode_varint(buf, Py_ssize_t pos=0):
    """Decode a zigzag varint at buf[pos]; return (value, next_pos)."""
    cdef Py_ssize_t p
    cdef int64_t v = zigzag_decode(decode_at(buf, pos, &p))
    return v, p
