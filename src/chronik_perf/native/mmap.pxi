# Memory-mapped files shared by the index and log parts: open, map, resize, sync, close.
import os

from libc.errno cimport errno
from libc.stdint cimport uint8_t
from posix.fcntl cimport O_CLOEXEC, O_CREAT, O_RDONLY, O_RDWR
from posix.fcntl cimport open as posix_open, posix_fallocate
from posix.mman cimport MAP_FAILED, MAP_POPULATE, MAP_SHARED, MS_SYNC, PROT_READ, PROT_WRITE, mmap, msync, munmap
from posix.stat cimport fstat, struct_stat
from posix.unistd cimport close as posix_close, ftruncate


cdef class MappedFile:
    """A file descriptor plus a shared mapping of its first `length` bytes (no mapping when empty)."""
    cdef int fd
    cdef uint8_t* data
    cdef Py_ssize_t length
    cdef readonly bint writable
    cdef readonly object path

    def __cinit__(self):
        self.fd = -1
        self.data = NULL
        self.length = 0

    def __init__(self, path, bint writable=False, bint create=False):
        self.path = os.fspath(path)
        self.writable = writable
        cdef bytes encoded = os.fsencode(self.path)
        cdef int flags = (O_RDWR if writable else O_RDONLY) | O_CLOEXEC | (O_CREAT if create else 0)
        self.fd = posix_open(encoded, flags, 0o644)
        if self.fd < 0:
            raise OSError(errno, os.strerror(errno), self.path)

    cdef Py_ssize_t file_size(self) except -1:
        cdef struct_stat st
        if self.fd < 0:
            raise ValueError(f"{self.path} is closed")
        if fstat(self.fd, &st) != 0:
            raise OSError(errno, os.strerror(errno), self.path)
        return st.st_size

    cdef int map(self, Py_ssize_t length, bint populate=False) except -1:
        """Map the first `length` bytes (replacing any previous mapping); populate pre-faults every page.
        A writable mapping gets disk blocks for all of it first (posix_fallocate, extending the file as needed):
        a write through it can then never meet a full disk, which would be SIGBUS rather than an error."""
        cdef void* p
        cdef int rc
        self.unmap()
        if length == 0:
            return 0
        if self.writable:
            rc = posix_fallocate(self.fd, 0, length)
            if rc != 0:
                raise OSError(rc, os.strerror(rc), self.path)
        p = mmap(NULL, <size_t>length, PROT_READ | (PROT_WRITE if self.writable else 0), MAP_SHARED | (MAP_POPULATE if populate else 0), self.fd, 0)
        if p == MAP_FAILED:
            raise OSError(errno, os.strerror(errno), self.path)
        self.data = <uint8_t*>p
        self.length = length
        return 0

    cdef void adopt(self, MappedFile other) noexcept:
        """Take over other's mapping (a mapping outlives the descriptor it was made from): reopening a file,
        e.g. for writing, keeps the pages already mapped instead of mapping them again."""
        self.unmap()
        self.data, self.length = other.data, other.length
        other.data, other.length = NULL, 0

    cdef int resize(self, Py_ssize_t length) except -1:
        """Set the file's size (new bytes read as zeros) and map all of it."""
        self.unmap()
        if (length < self.file_size() or not self.writable) and ftruncate(self.fd, length) != 0:
            raise OSError(errno, os.strerror(errno), self.path)
        return self.map(length)                 # a writable file grows by map's allocation

    cdef int sync(self) except -1:
        if self.data != NULL and self.writable and msync(self.data, <size_t>self.length, MS_SYNC) != 0:
            raise OSError(errno, os.strerror(errno), self.path)
        return 0

    cdef void unmap(self) noexcept:
        if self.data != NULL:
            munmap(self.data, <size_t>self.length)
            self.data = NULL
        self.length = 0

    cdef void close(self) noexcept:
        self.unmap()
        if self.fd >= 0:
            posix_close(self.fd)
            self.fd = -1

    def __dealloc__(self):
        self.close()
