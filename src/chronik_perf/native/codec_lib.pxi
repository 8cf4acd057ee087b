# zlib, libzstd and liblz4 called directly, their contexts reused between calls, and output written straight into the
# bytes object returned. csrc/codec_lib.c resolves zlib and liblz4 at import from the system's shared library or the
# copy inside the lz4 package (zlib: the one Python's zlib module uses; liblz4: the newest version found, the system's
# on a tie). libzstd is compiled into the module from csrc/zstd (1.5.7) with its symbols hidden: the system's 1.5.4
# compresses text 12-19% slower, and the zstandard package's exported copy routes the library's calls to itself
# through the PLT and compiles its match finder slower than its own extension's (up to 6% on a 64 KiB frame).
# zstd frames above 8 KiB decode in the system's libzstd when there is one (zstd_decoder_for): its Huffman decoder
# is zstd's x86-64 assembly, which the single-file build leaves out, 8-11% faster on 64 KiB of text. Benchmark
# results record which library is which.
import importlib.util

from cpython.buffer cimport PyBUF_WRITE
from cpython.bytes cimport PyBytes_FromStringAndSize, PyBytes_GET_SIZE
from cpython.memoryview cimport PyMemoryView_FromMemory
from cpython.object cimport PyObject
from cpython.ref cimport Py_DECREF, Py_XDECREF
from libc.limits cimport UINT_MAX
from libc.stdlib cimport calloc, free, malloc

from chronik_perf.native.includes.codec_lib cimport (cp_bind_zstd, cp_codec_lib_error, cp_load_lz4, cp_load_zlib,
                                                     cp_load_zstd_decoder, cp_lz4, cp_z_stream, cp_zlib, cp_zstd,
                                                     cp_zstd_api, cp_zstd_decoder)
from chronik_perf.native.includes.python cimport _PyBytes_Resize, bytes_alloc, bytes_data

cdef enum:
    CODEC_GIL_RELEASE_BYTES = 65536         # below this a call is shorter than giving up and taking the GIL
    SMALL_OUTPUT = 256                      # bytes_finish copies a result up to this size
    ZSTD_C_COMPRESSION_LEVEL = 100          # ZSTD_c_compressionLevel
    Z_OK = 0
    Z_STREAM_END = 1
    Z_BUF_ERROR = -5
    Z_NO_FLUSH = 0
    Z_FINISH = 4
    Z_DEFLATED = 8
    Z_DEFAULT_STRATEGY = 0
    Z_MEM_LEVEL = 8                         # zlib's default
    GZIP_WINDOW_BITS = 31                   # 15 (32 KiB window) + 16: a gzip wrapper
    GZIP_OR_ZLIB_WINDOW_BITS = 47           # 15 + 32: either wrapper, told by its header


def _codec_candidates(tuple sonames, tuple modules):
    """The system library's names, then the files of the codec package's modules."""
    paths = list(sonames)
    for module in modules:
        try:
            spec = importlib.util.find_spec(module)
        except ImportError:
            spec = None
        if spec is not None and spec.origin:
            paths.append(spec.origin)
    return paths


def _load_codec_library(str name, list paths, loader, version, bint newest):
    """The first of paths whose shared object holds the codec's entry points, or with newest the one of the
    newest version (the first on a tie); loaded by loader(path)."""
    tried, found = [], []
    for path in paths:
        if loader(path) == 0:
            found.append((tuple(int(x) for x in version().split(".")), -len(found), path))
            if not newest:
                break
        else:
            tried.append(cp_codec_lib_error().decode(errors="replace"))
    if not found:
        raise ImportError(f"no {name} library with the functions chronik_perf calls: {'; '.join(tried)}")
    best = max(found)[2]
    loader(best)
    return best


_ZLIB = _codec_candidates(("libz.so.1", "libz.1.dylib"), ("zlib",))
_LZ4 = _codec_candidates(("liblz4.so.1", "liblz4.1.dylib"), ("lz4.block._block", "lz4.frame._frame"))
cp_bind_zstd()


def _zstd_decoder_library():
    """The system's libzstd, loaded as cp_zstd_decoder, else "built in" (cp_zstd_decoder stays the built-in one)."""
    try:
        return _load_codec_library("libzstd", ["libzstd.so.1", "libzstd.1.dylib"],
                                   lambda path: cp_load_zstd_decoder(path.encode()),
                                   lambda: cp_zstd_decoder.versionString().decode(), False)
    except ImportError:
        return "built in"


# where each codec's library was found, and its version: benchmark results record them
CODEC_LIBRARIES = {
    "gzip": {"library": _load_codec_library("zlib", _ZLIB, lambda path: cp_load_zlib(path.encode()),
                                            lambda: cp_zlib.zlibVersion().decode(), False),
             "version": cp_zlib.zlibVersion().decode()},
    "zstd": {"library": "built in", "version": cp_zstd.versionString().decode()},
    "zstd decoder": {"library": _zstd_decoder_library(), "version": cp_zstd_decoder.versionString().decode()},
    "lz4": {"library": _load_codec_library("liblz4", _LZ4, lambda path: cp_load_lz4(path.encode()),
                                           lambda: cp_lz4.versionString().decode(), True),
            "version": cp_lz4.versionString().decode()},
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


cdef void* cached_small_dctx = NULL     # a context of the built-in library (cp_zstd), for small frames
cdef enum:
    ZSTD_SMALL_FRAME = 8192                 # see zstd_decoder_for


cdef inline cp_zstd_api* zstd_decoder_for(Py_ssize_t room) noexcept nogil:
    """The library that decodes a frame of up to room bytes: frames up to ZSTD_SMALL_FRAME bytes go to the built-in
    library (libzstd 1.5.7 sets up a frame ~350 ns faster than the system's 1.5.4, a tenth of a 1 KiB frame),
    larger ones to cp_zstd_decoder (the system's, with zstd's assembly Huffman decoder)."""
    return &cp_zstd if room <= ZSTD_SMALL_FRAME else &cp_zstd_decoder


cdef void* take_zstd_dctx(cp_zstd_api* lib) except NULL:
    """A decompression context of lib: the cached one, else a new one."""
    global cached_dctx, cached_small_dctx
    cdef void* d
    if lib == &cp_zstd_decoder:
        d, cached_dctx = cached_dctx, NULL
    else:
        d, cached_small_dctx = cached_small_dctx, NULL
    if d == NULL:
        d = lib.createDCtx()
        if d == NULL:
            raise MemoryError()
    return d


cdef void put_zstd_dctx(cp_zstd_api* lib, void* d) noexcept:
    global cached_dctx, cached_small_dctx
    if lib == &cp_zstd_decoder and cached_dctx == NULL:
        cached_dctx = d
    elif lib != &cp_zstd_decoder and cached_small_dctx == NULL:
        cached_small_dctx = d
    else:
        lib.freeDCtx(d)


cdef cp_z_stream* cached_deflate = NULL
cdef int cached_deflate_level = 0
cdef cp_z_stream* cached_inflate = NULL


cdef cp_z_stream* take_z_stream(bint inflating, int level) except NULL:
    """A zlib stream ready for a gzip member: the cached one reset (its buffers reused), else a new one."""
    global cached_deflate, cached_inflate
    cdef cp_z_stream* z = cached_inflate if inflating else cached_deflate
    cdef int rc
    if inflating:
        cached_inflate = NULL
    else:
        cached_deflate = NULL
    if z != NULL:
        if inflating and cp_zlib.inflateReset(z) == Z_OK:
            return z
        if not inflating and cached_deflate_level == level and cp_zlib.deflateReset(z) == Z_OK:
            return z
        end_z_stream(z, inflating)
    z = <cp_z_stream*>calloc(1, sizeof(cp_z_stream))       # zalloc, zfree, opaque NULL: zlib's malloc and free
    if z == NULL:
        raise MemoryError()
    if inflating:
        rc = cp_zlib.inflateInit2_(z, GZIP_OR_ZLIB_WINDOW_BITS, cp_zlib.zlibVersion(), sizeof(cp_z_stream))
    else:
        rc = cp_zlib.deflateInit2_(z, level, Z_DEFLATED, GZIP_WINDOW_BITS, Z_MEM_LEVEL, Z_DEFAULT_STRATEGY,
                                   cp_zlib.zlibVersion(), sizeof(cp_z_stream))
    if rc != Z_OK:
        free(z)
        if rc == -2:        # Z_STREAM_ERROR: a parameter out of range
            raise ValueError(f"gzip level {level} is out of range (-1..9)")
        raise MemoryError()
    return z


cdef void end_z_stream(cp_z_stream* z, bint inflating) noexcept:
    if inflating:
        cp_zlib.inflateEnd(z)
    else:
        cp_zlib.deflateEnd(z)
    free(z)


cdef void put_z_stream(cp_z_stream* z, bint inflating, int level) noexcept:
    global cached_deflate, cached_inflate, cached_deflate_level
    if inflating and cached_inflate == NULL:
        cached_inflate = z
    elif not inflating and cached_deflate == NULL:
        cached_deflate, cached_deflate_level = z, level
    else:
        end_z_stream(z, inflating)


cdef int z_pump(cp_z_stream* z, bint inflating, const unsigned char* in_end, unsigned char* out_end) noexcept nogil:
    """Run the stream from its next_in/next_out up to in_end/out_end (fed in pieces of at most 4 GiB - 1):
    Z_STREAM_END once it ends, Z_OK when the output is full first, Z_BUF_ERROR when the input runs out first,
    else zlib's error."""
    cdef int rc
    while True:
        z.avail_in = <unsigned int>min(<size_t>(in_end - z.next_in), <size_t>UINT_MAX)
        z.avail_out = <unsigned int>min(<size_t>(out_end - z.next_out), <size_t>UINT_MAX)
        rc = cp_zlib.inflate(z, Z_NO_FLUSH) if inflating else cp_zlib.deflate(z, Z_FINISH)
        if rc != Z_OK:
            return rc
        if z.next_out == out_end:
            return Z_OK
        if inflating and z.next_in == in_end:
            return Z_BUF_ERROR


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
    (on failure b is freed). A result small enough for Python's small-object allocator is copied into a new bytes
    instead: shrinking a large malloc block in place leaves a small malloc chunk, and once freed, glibc merges such
    chunks back (malloc_consolidate) at the next large allocation, i.e. on every call that compresses to a few
    bytes."""
    cdef object out
    if n <= SMALL_OUTPUT < PyBytes_GET_SIZE(<object>b):
        try:
            return PyBytes_FromStringAndSize(bytes_data(b), n)
        finally:
            Py_XDECREF(b)
    if n != PyBytes_GET_SIZE(<object>b):
        _PyBytes_Resize(&b, n)
    out = <object>b
    Py_DECREF(out)
    return out


cdef object writable_view(char* p, Py_ssize_t n):
    """A writable memoryview of n bytes at p, for a library that writes into a buffer it is given."""
    return PyMemoryView_FromMemory(p, n, PyBUF_WRITE)
