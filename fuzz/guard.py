"""Buffers that end (or start) flush against a PROT_NONE page, so a read one byte past a decoder's input faults.

A Python bytes object is followed by its NUL terminator and the allocator's rounding, where a one-byte over-read
finds readable memory even under ASan; a guard page leaves no such slack.
"""
import ctypes
import mmap

PAGE = mmap.PAGESIZE
PROT_NONE = 0
_libc = ctypes.CDLL(None, use_errno=True)
_libc.mprotect.argtypes = (ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int)


class GuardedBuffer:
    """A reusable region of `capacity` bytes with an inaccessible page before and after it."""

    def __init__(self, capacity=1 << 20):
        self.capacity = -(-capacity // PAGE) * PAGE
        self._map = mmap.mmap(-1, self.capacity + 2 * PAGE)
        anchor = ctypes.c_char.from_buffer(self._map)
        base = ctypes.addressof(anchor)
        del anchor  # a live export would keep the map from closing
        for start in (base, base + PAGE + self.capacity):
            if _libc.mprotect(start, PAGE, PROT_NONE) != 0:
                raise OSError(ctypes.get_errno(), "mprotect of the guard page failed")
        self._view = memoryview(self._map)[PAGE:PAGE + self.capacity]

    def at_end(self, data):
        """A read-only view holding `data` whose last byte is the last readable one."""
        n = len(data)
        self._check(n)
        self._view[self.capacity - n:] = data
        return self._view[self.capacity - n:].toreadonly()

    def at_start(self, data):
        """A read-only view holding `data` whose first byte follows the front guard page."""
        n = len(data)
        self._check(n)
        self._view[:n] = data
        return self._view[:n].toreadonly()

    def _check(self, n):
        if n > self.capacity:
            raise ValueError(f"{n} bytes do not fit a guarded buffer of {self.capacity}")

    def close(self):
        """Unmap the region (every view handed out must be released first)."""
        self._view.release()
        self._map.close()
