# The C compiler's builtins the core uses (GCC and clang both have them).
from libc.stdint cimport uint32_t, uint64_t


cdef extern from *:
    uint32_t __builtin_bswap32(uint32_t) noexcept nogil
    uint64_t __builtin_bswap64(uint64_t) noexcept nogil
    void __builtin_prefetch(const void*) noexcept nogil
