# libzstd and liblz4 entry points, resolved at import by csrc/codec_lib.c from a shared object that holds them.


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
    cp_zstd_api cp_zstd
    cp_lz4_api cp_lz4
    int cp_load_zstd(const char* path)
    int cp_load_lz4(const char* path)
    const char* cp_codec_lib_error()
