# CRC32C in C (csrc/crc32c.c): the CPU instruction when there is one, else a table.
from libc.stdint cimport uint32_t, uint8_t


cdef extern from "crc32c.h":
    void cp_crc32c_init()
    uint32_t cp_crc32c(uint32_t crc, const uint8_t* buf, size_t length) nogil
    uint32_t cp_crc32c_software(uint32_t crc, const uint8_t* buf, size_t length) nogil
    const char* cp_crc32c_impl()
