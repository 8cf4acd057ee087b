# Big-endian loads and stores on raw byte pointers (callers check bounds first).
from libc.stdint cimport uint16_t, uint32_t, uint64_t, uint8_t
from libc.string cimport memcpy

from .builtins cimport __builtin_bswap32, __builtin_bswap64


cdef inline uint16_t load_be16(const uint8_t* p) noexcept nogil:
    return (<uint16_t>p[0] << 8) | p[1]


cdef inline uint32_t load_be32(const uint8_t* p) noexcept nogil:
    cdef uint32_t v
    memcpy(&v, p, 4)
    return __builtin_bswap32(v)


cdef inline uint64_t load_be64(const uint8_t* p) noexcept nogil:
    cdef uint64_t v
    memcpy(&v, p, 8)
    return __builtin_bswap64(v)


cdef inline void store_be16(uint8_t* p, uint16_t v) noexcept nogil:
    p[0] = <uint8_t>(v >> 8)
    p[1] = <uint8_t>v


cdef inline void store_be32(uint8_t* p, uint32_t v) noexcept nogil:
    v = __builtin_bswap32(v)
    memcpy(p, &v, 4)


cdef inline void store_be64(uint8_t* p, uint64_t v) noexcept nogil:
    v = __builtin_bswap64(v)
    memcpy(p, &v, 8)
