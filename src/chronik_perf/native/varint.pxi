# Kafka varints: unsigned LEB128 (uvarint) and zigzag-signed (varint/varlong).
cimport cython
from cpython.buffer cimport PyBUF_SIMPLE, PyBuffer_Release, PyObject_GetBuffer
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_GET_SIZE
from libc.stdint cimport int64_t, uint64_t, uint8_t

from chronik_perf.native.includes.varint cimport (MAX_VARINT_BYTES, read_uvarint, read_varint, write_uvarint,
                                                  zigzag_decode, zigzag_encode)


cdef str varint_problem(int rc):
    return "truncated varint" if rc == -1 else "varint longer than 10 bytes"


@cython.binding(False)    # a plain builtin: the interpreter calls it without a bound-method layer
def encode_uvarint(n):
    """Encode an unsigned 64-bit integer as a Kafka unsigned varint."""
    if n < 0 or n > 0xFFFFFFFFFFFFFFFF:
        raise OverflowError(f"uvarint out of range: {n}")
    cdef uint8_t tmp[MAX_VARINT_BYTES]
    cdef Py_ssize_t k = write_uvarint(tmp, <uint64_t>n)
    return (<char*>tmp)[:k]


@cython.binding(False)
def encode_varint(n):
    """Encode a signed 64-bit integer as a Kafka zigzag varint (varlong)."""
    if n < -0x8000000000000000 or n > 0x7FFFFFFFFFFFFFFF:
        raise OverflowError(f"varint out of range: {n}")
    cdef uint8_t tmp[MAX_VARINT_BYTES]
    cdef Py_ssize_t k = write_uvarint(tmp, zigzag_encode(<int64_t>n))
    return (<char*>tmp)[:k]


cdef uint64_t decode_at(object buf, Py_ssize_t pos, Py_ssize_t* next_pos) except? 0:
    """The uvarint at buf[pos] of any contiguous buffer, read without copying (bytes without a buffer view)."""
    cdef Py_buffer view
    cdef uint64_t v = 0
    if type(buf) is bytes:      # the common case: no buffer acquisition, the bytes object's own storage
        return read_at(<const uint8_t*>PyBytes_AS_STRING(buf), PyBytes_GET_SIZE(buf), pos, next_pos)
    PyObject_GetBuffer(buf, &view, PyBUF_SIMPLE)
    try:
        v = read_at(<const uint8_t*>view.buf, view.len, pos, next_pos)
    finally:
        PyBuffer_Release(&view)
    return v


cdef inline uint64_t read_at(const uint8_t* data, Py_ssize_t size, Py_ssize_t pos, Py_ssize_t* next_pos) except? 0:
    """The uvarint at data[pos], data holding size bytes; CorruptRecordError when outside, truncated or too long."""
    cdef uint64_t v = 0
    cdef int rc
    if pos < 0 or pos > size:
        raise CorruptRecordError(f"position {pos} outside buffer of {size} bytes")
    next_pos[0] = pos
    rc = read_uvarint(data, size, next_pos, &v)
    if rc:
        raise CorruptRecordError(f"{varint_problem(rc)} at byte {pos}")
    return v


@cython.binding(False)
def decode_uvarint(buf, Py_ssize_t pos=0):
    """Decode an unsigned varint at buf[pos]; return (value, next_pos)."""
    cdef Py_ssize_t p
    cdef uint64_t v = decode_at(buf, pos, &p)
    return v, p


@cython.binding(False)
def decode_varint(buf, Py_ssize_t pos=0):
    """Decode a zigzag varint at buf[pos]; return (value, next_pos)."""
    cdef Py_ssize_t p
    cdef int64_t v = zigzag_decode(decode_at(buf, pos, &p))
    return v, p


@cython.binding(False)
def scan_varints(bytes buf not None):
    """(count, xor of the values) of the zigzag varints filling `buf`, by the bare C decode loop: the varint floor."""
    cdef const uint8_t* data = <const uint8_t*>PyBytes_AS_STRING(buf)
    cdef Py_ssize_t pos = 0, end = PyBytes_GET_SIZE(buf), count = 0
    cdef int64_t v, folded = 0
    cdef int rc = 0
    while pos < end:
        rc = read_varint(data, end, &pos, &v)
        if rc:
            raise CorruptRecordError(f"{varint_problem(rc)} at byte {pos}")
        folded ^= v
        count += 1
    return count, folded
