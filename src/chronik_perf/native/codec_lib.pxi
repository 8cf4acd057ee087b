# libzstd and liblz4 called directly (csrc/codec_lib.c resolves them at import: the newest of the system's shared
# library and the copy inside the zstandard or lz4 package, the system's on a tie), their contexts reused between
# calls, and output written straight into the bytes object returned. Versions differ in speed (libzstd 1.5.4
# compresses text about 15% slower than 1.5.7), so the newest is taken, and benchmark results record which.
import importlib.util

from cpython.buffer cimport PyBUF_WRITE
from cpython.bytes cimport PyBytes_GET_SIZE
from cpython.memoryview cimport PyMemoryView_FromMemory
from cpython.object cimport PyObject
from cpython.ref cimport Py_DECREF
from libc.stdlib cimport free, malloc

from chronik_perf.native.includes.codec_lib cimport (cp_codec_lib_error, cp_load_lz4, cp_load_zstd, cp_lz4,
                                                     cp_zstd)
from chronik_perf.native.includes.python cimport _PyBytes_Resize, bytes_alloc, bytes_data

cdef enum:
    CODEC_GIL_RELEASE_BYTES = 65536         # below this a call is shorter than giving up and taking the GIL
    ZSTD_C_COMPRESSION_LEVEL = 100          # ZSTD_c_compressionLevel


def _load_codec_library(str name, tuple sonames, tuple modules, loader, version):
    """Path of the shared object holding the codec's entry points with the newest version: the system library
    (first on a tie), a module of the codec's Python package."""
    paths, tried, found = list(sonames), [], []
    for module in modules:
        try:
            spec = importlib.util.find_spec(module)
        except ImportError:
            spec = None
        if spec is not None and spec.origin:
            paths.append(spec.origin)
    for path in paths:
        if loader(path) == 0:
            found.append((tuple(int(x) for x in version().split(".")), -len(found), path))
        else:
            tried.append(cp_codec_lib_error().decode(errors="replace"))
    if not found:
        raise ImportError(f"no {name} library with the functions chronik_perf calls: {'; '.join(tried)}")
    best = max(found)[2]
    loader(best)
    return best


def _zstd_version():
    return cp_zstd.versionString().decode()


def _lz4_version():
    return cp_lz4.versionString().decode()


def _zstd_loader(str path):
    return cp_load_zstd(path.encode())


def _lz4_loader(str path):
    return cp_load_lz4(path.encode())


# where each codec's library was found, and its version: benchmark results record them
CODEC_LIBRARIES = {
    "zstd": {"library": _load_codec_library("libzstd", ("libzstd.so.1", "libzstd.1.dylib"),
                                            ("zstandard.backend_c", "zstandard._cffi"), _zstd_loader, _zstd_version),
             "version": _zstd_version()},
    "lz4": {"library": _load_codec_library("liblz4", ("liblz4.so.1", "liblz4.1.dylib"),
                                           ("lz4.block._block", "lz4.frame._frame"), _lz4_loader, _lz4_version),
            "version": _lz4_version()},
}

# One cached context of each kind: a call takes it (under the GIL), uses it with or without the GIL, and puts it
# back unless another call put one back meanwhile. Concurrent calls make their own.
cdef void* cached_cctx = NULL
cdef void* cached_dctx = NULL
cdef void* cached_lz4_state = NULL      # initialised by a first full-reset compression


cdef int cached_cctx_level = 0


cdef void* take_zstd_cctx(int level) except NULL:
    """A compression context set to level: the cached one (its tables reused), else a new one."""
    global cached_cctx
    cdef void* c = cached_cctx
    cdef size_t r
    cached_cctx = NULL
    if c != NULL and cached_cctx_level == level:
        return c
    if c == NULL:
        c = cp_zstd.createCCtx()
        if c == NULL:
            raise MemoryError()
    r = cp_zstd.CCtx_setParameter(c, ZSTD_C_COMPRESSION_LEVEL, level)
    if cp_zstd.isError(r):
        cp_zstd.freeCCtx(c)
        raise ValueError(f"zstd level {level}: {cp_zstd.getErrorName(r).decode()}")
    return c


cdef void put_zstd_cctx(void* c, int level) noexcept:
    global cached_cctx, cached_cctx_level
    if cached_cctx == NULL:
        cached_cctx, cached_cctx_level = c, level
    else:
        cp_zstd.freeCCtx(c)


cdef void* take_zstd_dctx() except NULL:
    global cached_dctx
    cdef void* d = cached_dctx
    cached_dctx = NULL
    if d == NULL:
        d = cp_zstd.createDCtx()
        if d == NULL:
            raise MemoryError()
    return d


cdef void put_zstd_dctx(void* d) noexcept:
    global cached_dctx
    if cached_dctx == NULL:
        cached_dctx = d
    else:
        cp_zstd.freeDCtx(d)


cdef void* take_lz4_state() except NULL:
    """The cached LZ4 compression state, else a new one, initialised (LZ4's full reset) for fast-reset calls."""
    global cached_lz4_state
    cdef void* s = cached_lz4_state
    cdef char scratch[16]
    cached_lz4_state = NULL
    if s == NULL:
        s = malloc(cp_lz4.sizeofState())
        if s == NULL:
            raise MemoryError()
        cp_lz4.compress_fast_extState(s, scratch, scratch, 0, 16, 1)
    return s


cdef void put_lz4_state(void* s) noexcept:
    global cached_lz4_state
    if cached_lz4_state == NULL:
        cached_lz4_state = s
    else:
        free(s)


cdef inline int lz4_fast(void* state, const char* src, char* dst, int n, int room, int acceleration) noexcept nogil:
    """LZ4's fast block compression with an initialised state: its length, or 0 when it needs more than room."""
    if cp_lz4.compress_fast_extState_fastReset != NULL:
        return cp_lz4.compress_fast_extState_fastReset(state, src, dst, n, room, acceleration)
    return cp_lz4.compress_fast_extState(state, src, dst, n, room, acceleration)


cdef inline PyObject* new_output(Py_ssize_t n) except NULL:
    """A bytes object of n bytes to be filled, held by the caller alone until bytes_finish (or Py_XDECREF)."""
    return bytes_alloc(NULL, n)


cdef inline char* output_data(PyObject* b) noexcept:
    return bytes_data(b)


cdef object bytes_finish(PyObject* b, Py_ssize_t n):
    """The first n bytes of b, a bytes object the caller alone holds (its reference is taken over), shrunk in place
    (on failure b is freed)."""
    if n != PyBytes_GET_SIZE(<object>b):
        _PyBytes_Resize(&b, n)
    out = <object>b
    Py_DECREF(out)
    return out


cdef object writable_view(char* p, Py_ssize_t n):
    """A writable memoryview of n bytes at p, for a library that writes into a buffer it is given."""
    return PyMemoryView_FromMemory(p, n, PyBUF_WRITE)
