# Kafka varints in C (csrc/varint.h): unsigned LEB128 and zigzag, bounds-checked reads.
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
