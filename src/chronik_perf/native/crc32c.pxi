# CRC32C over any buffer; the C side picks the CPU instruction at run time.
from cpython.buffer cimport PyObject_GetBuffer, PyBuffer_Release, PyBUF_SIMPLE
cimport cython
from libc.stdint cimport uint32_t, uint8_t

from chronik_perf.native.includes.crc32c cimport cp_crc32c, cp_crc32c_impl, cp_crc32c_init, cp_crc32c_software


cp_crc32c_init()

cdef enum:
    CRC_GIL_RELEASE_BYTES = 65536


cdef uint32_t _crc_buffer(object data, uint32_t value, bint software) except? 0xFFFFFFFF:
    cdef Py_buffer view
    cdef uint32_t crc
    PyObject_GetBuffer(data, &view, PyBUF_SIMPLE)
    try:
        if view.len >= CRC_GIL_RELEASE_BYTES:
            with nogil:
                crc = (cp_crc32c_software if software else cp_crc32c)(
                    value, <const uint8_t*>view.buf, <size_t>view.len)
        elif software:
            crc = cp_crc32c_software(value, <const uint8_t*>view.buf, <size_t>view.len)
        else:
            crc = cp_crc32c(value, <const uint8_t*>view.buf, <size_t>view.len)
    finally:
        PyBuffer_Release(&view)
    return crc


@cython.binding(False)    # a plain builtin: the interpreter's fastest call
def crc32c(data, value=0):
    """CRC32C of any contiguous buffer, continuing from `value` (a previous result)."""
    return _crc_buffer(data, <uint32_t>value, False)


def crc32c_software(data, value=0):
    """CRC32C with the portable table implementation (for tests and comparisons)."""
    return _crc_buffer(data, <uint32_t>value, True)


def crc32c_implementation():
    """Name of the CRC32C implementation chosen for this CPU."""
    return cp_crc32c_impl().decode()
