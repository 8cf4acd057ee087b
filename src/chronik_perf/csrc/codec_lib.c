/* Run-time resolution of zlib, libzstd and liblz4 entry points (see codec_lib.h). */
#include "codec_lib.h"

#include <dlfcn.h>
#include <stdio.h>
#include <string.h>

cp_zstd_api cp_zstd;
cp_zstd_api cp_zstd_decoder;
cp_lz4_api cp_lz4;
cp_zlib_api cp_zlib;
static char error[512];

const char *cp_codec_lib_error(void) { return error; }

static void *open_lib(const char *path) {
    void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!h) snprintf(error, sizeof error, "%s", dlerror());
    return h;
}

/* dlsym's void* to a function pointer: through memcpy, which ISO C allows */
#define RESOLVE(h, slot, name, required)                                              \
    do {                                                                              \
        void *sym = dlsym((h), (name));                                               \
        if (!sym && (required)) {                                                     \
            snprintf(error, sizeof error, "%s has no %s", path, (name));              \
            dlclose(h);                                                               \
            return -1;                                                                \
        }                                                                             \
        memcpy(&(slot), &sym, sizeof sym);                                            \
    } while (0)

int cp_load_zstd(const char *path, int decoder) {
    cp_zstd_api api;
    void *h = open_lib(path);
    if (!h) return -1;
    RESOLVE(h, api.compressBound, "ZSTD_compressBound", 1);
    RESOLVE(h, api.createCCtx, "ZSTD_createCCtx", 1);
    RESOLVE(h, api.freeCCtx, "ZSTD_freeCCtx", 1);
    RESOLVE(h, api.CCtx_setParameter, "ZSTD_CCtx_setParameter", 1);
    RESOLVE(h, api.compress2, "ZSTD_compress2", 1);
    RESOLVE(h, api.createDCtx, "ZSTD_createDCtx", 1);
    RESOLVE(h, api.freeDCtx, "ZSTD_freeDCtx", 1);
    RESOLVE(h, api.decompressDCtx, "ZSTD_decompressDCtx", 1);
    RESOLVE(h, api.isError, "ZSTD_isError", 1);
    RESOLVE(h, api.getErrorName, "ZSTD_getErrorName", 1);
    RESOLVE(h, api.versionString, "ZSTD_versionString", 1);
    if (decoder)
        cp_zstd_decoder = api;
    else
        cp_zstd = api;
    return 0;
}

int cp_load_lz4(const char *path) {
    cp_lz4_api api;
    void *h = open_lib(path);
    if (!h) return -1;
    RESOLVE(h, api.compressBound, "LZ4_compressBound", 1);
    RESOLVE(h, api.sizeofState, "LZ4_sizeofState", 1);
    RESOLVE(h, api.compress_fast_extState, "LZ4_compress_fast_extState", 1);
    RESOLVE(h, api.compress_fast_extState_fastReset, "LZ4_compress_fast_extState_fastReset", 0);
    RESOLVE(h, api.compress_HC, "LZ4_compress_HC", 1);
    RESOLVE(h, api.decompress_safe, "LZ4_decompress_safe", 1);
    RESOLVE(h, api.versionString, "LZ4_versionString", 1);
    cp_lz4 = api;
    return 0;
}

int cp_load_zlib(const char *path) {
    cp_zlib_api api;
    void *h = open_lib(path);
    if (!h) return -1;
    RESOLVE(h, api.deflateInit2_, "deflateInit2_", 1);
    RESOLVE(h, api.deflate, "deflate", 1);
    RESOLVE(h, api.deflateReset, "deflateReset", 1);
    RESOLVE(h, api.deflateEnd, "deflateEnd", 1);
    RESOLVE(h, api.deflateBound, "deflateBound", 1);
    RESOLVE(h, api.inflateInit2_, "inflateInit2_", 1);
    RESOLVE(h, api.inflate, "inflate", 1);
    RESOLVE(h, api.inflateReset, "inflateReset", 1);
    RESOLVE(h, api.inflateEnd, "inflateEnd", 1);
    RESOLVE(h, api.zlibVersion, "zlibVersion", 1);
    cp_zlib = api;
    return 0;
}
