# Kafka varints: unsigned LEB128 (uvarint) and zigzag-signed (varint/varlong).
from libc.stdint cimport int64_t, uint64_t, uint8_t


cdef enum:
    MAX_VARINT_BYTES = 10


cdef inline uint64_t zigzag_encode(int64_t n) noexcept nogil:
    return (<uint64_t>n << 1) ^ <uint64_t>(n >> 63)


cdef inline int64_t zigzag_decode(uint64_t n) noexcept nogil:
    return <int64_t>(n >> 1) ^ -<int64_t>(n & 1)


cdef inline Py_ssize_t uvarint_size(uint64_t v) noexcept nogil:
    cdef Py_ssize_t n = 1
    while v >= 0x80:
        v >>= 7
        n += 1
    return n


cdef inline Py_ssize_t write_uvarint(uint8_t* out, uint64_t v) noexcept nogil:
    """Write v at out (room for 10 bytes needed); return bytes written."""
    cdef Py_ssize_t n = 0
    while v >= 0x80:
        out[n] = <uint8_t>(v | 0x80)
        v >>= 7
        n += 1
    out[n] = <uint8_t>v
    return n + 1


cdef inline int read_uvarint(const uint8_t* buf, Py_ssize_t end, Py_ssize_t* pos,
                             uint64_t* out) noexcept nogil:
    """Read a uvarint at buf[pos[0]], never past end. 0 ok, -1 truncated, -2 too long."""
    cdef Py_ssize_t p = pos[0]
    cdef uint64_t result = 0
    cdef int shift = 0
    cdef uint8_t b
    while True:
        if p >= end:
            return -1
        if shift >= 70:
            return -2
        b = buf[p]
        p += 1
        if shift == 63 and b > 1:
            return -2
        result |= <uint64_t>(b & 0x7F) << shift
        if b < 0x80:
            break
        shift += 7
    pos[0] = p
    out[0] = result
    return 0


cdef inline int read_varint(const uint8_t* buf, Py_ssize_t end, Py_ssize_t* pos,
                            int64_t* out) noexcept nogil:
    cdef uint64_t u
    cdef int rc = read_uvarint(buf, end, pos, &u)
    if rc == 0:
        out[0] = zigzag_decode(u)
    return rc


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
