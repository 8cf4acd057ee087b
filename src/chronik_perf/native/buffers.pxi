# Turning any Python buffer into a contiguous byte view.
from libc.stdint cimport uint8_t


cdef const uint8_t[::1] as_bytes_view(object obj):
    """A contiguous unsigned-byte view of bytes, bytearray, memoryview or a numpy array."""
    if isinstance(obj, (bytes, bytearray)):
        return obj
    m = memoryview(obj)
    if not m.c_contiguous:
        raise ValueError("buffer must be C-contiguous")
    if m.format != "B" or m.ndim != 1:
        m = m.cast("B")
    return m
