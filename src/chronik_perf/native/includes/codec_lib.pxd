# zlib and liblz4 entry points, resolved at import by csrc/codec_lib.c from a shared object that holds them; libzstd's,
# compiled into the module.


cdef extern from "codec_lib.h":
    ctypedef struct cp_zstd_api:
        size_t (*compressBound)(size_t) noexcept nogil
        void* (*createCCtx)() noexcept nogil
        size_t (*freeCCtx)(void*) noexcept nogil
        size_t (*CCtx_setParameter)(void*, int, int) noexcept nogil
        size_t (*compress2)(void*, void*, size_t, const void*, size_t) noexcept nogil
        void* (*createDCtx)() noexcept nogil
        size_t (*freeDCtx)(void*) noexcept nogil
        size_t (*decompressDCtx)(void*, void*, size_t, const void*, size_t) noexcept nogil
        unsigned (*isError)(size_t) noexcept nogil
        const char* (*getErrorName)(size_t) noexcept nogil
        const char* (*versionString)() noexcept nogil
    ctypedef struct cp_lz4_api:
        int (*compressBound)(int) noexcept nogil
        int (*sizeofState)() noexcept nogil
        int (*compress_fast_extState)(void*, const char*, char*, int, int, int) noexcept nogil
        int (*compress_fast_extState_fastReset)(void*, const char*, char*, int, int, int) noexcept nogil
        int (*compress_HC)(const char*, char*, int, int, int) noexcept nogil
        int (*decompress_safe)(const char*, char*, int, int) noexcept nogil
        const char* (*versionString)() noexcept nogil
    ctypedef struct cp_z_stream:
        const unsigned char* next_in
        unsigned int avail_in
        unsigned long total_in
        unsigned char* next_out
        unsigned int avail_out
        unsigned long total_out
        const char* msg
    ctypedef struct cp_zlib_api:
        int (*deflateInit2_)(cp_z_stream*, int, int, int, int, int, const char*, int) noexcept nogil
        int (*deflate)(cp_z_stream*, int) noexcept nogil
        int (*deflateReset)(cp_z_stream*) noexcept nogil
        int (*deflateEnd)(cp_z_stream*) noexcept nogil
        unsigned long (*deflateBound)(cp_z_stream*, unsigned long) noexcept nogil
        int (*inflateInit2_)(cp_z_stream*, int, const char*, int) noexcept nogil
        int (*inflate)(cp_z_stream*, int) noexcept nogil
        int (*inflateReset)(cp_z_stream*) noexcept nogil
        int (*inflateEnd)(cp_z_stream*) noexcept nogil
        const char* (*zlibVersion)() noexcept nogil
    cp_zlib_api cp_zlib
    int cp_load_zlib(const char* path)
    cp_zstd_api cp_zstd             # the built-in libzstd
    cp_zstd_api cp_zstd_decoder     # frames above 8 KiB: the system's libzstd, else the built-in one
    void cp_bind_zstd()
    int cp_load_zstd_decoder(const char* path)
    cp_lz4_api cp_lz4
    int cp_load_lz4(const char* path)
    const char* cp_codec_lib_error()
