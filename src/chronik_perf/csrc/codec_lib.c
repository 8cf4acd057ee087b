/* Run-time resolution of zlib, liblz4 and the system's libzstd entry points; the built-in libzstd's (see
 * codec_lib.h). */
#include "codec_lib.h"

#include <dlfcn.h>
#include <stddef.h>
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

/* One entry point: its name, where it goes in an API struct, whether the library must have it. */
typedef struct {
    const char *name;
    size_t offset;
    int required;
} entry;

#define ENTRY(api, field, name, required) {(name), offsetof(api, field), (required)}

static const entry zstd_entries[] = {
    ENTRY(cp_zstd_api, compressBound, "ZSTD_compressBound", 1),
    ENTRY(cp_zstd_api, createCCtx, "ZSTD_createCCtx", 1),
    ENTRY(cp_zstd_api, freeCCtx, "ZSTD_freeCCtx", 1),
    ENTRY(cp_zstd_api, CCtx_setParameter, "ZSTD_CCtx_setParameter", 1),
    ENTRY(cp_zstd_api, compress2, "ZSTD_compress2", 1),
    ENTRY(cp_zstd_api, createDCtx, "ZSTD_createDCtx", 1),
    ENTRY(cp_zstd_api, freeDCtx, "ZSTD_freeDCtx", 1),
    ENTRY(cp_zstd_api, decompressDCtx, "ZSTD_decompressDCtx", 1),
    ENTRY(cp_zstd_api, isError, "ZSTD_isError", 1),
    ENTRY(cp_zstd_api, getErrorName, "ZSTD_getErrorName", 1),
    ENTRY(cp_zstd_api, versionString, "ZSTD_versionString", 1),
};

static const entry lz4_entries[] = {
    ENTRY(cp_lz4_api, compressBound, "LZ4_compressBound", 1),
    ENTRY(cp_lz4_api, sizeofState, "LZ4_sizeofState", 1),
    ENTRY(cp_lz4_api, compress_fast_extState, "LZ4_compress_fast_extState", 1),
    ENTRY(cp_lz4_api, compress_fast_extState_fastReset, "LZ4_compress_fast_extState_fastReset", 0),
    ENTRY(cp_lz4_api, compress_HC, "LZ4_compress_HC", 1),
    ENTRY(cp_lz4_api, decompress_safe, "LZ4_decompress_safe", 1),
    ENTRY(cp_lz4_api, versionString, "LZ4_versionString", 1),
};

static const entry zlib_entries[] = {
    ENTRY(cp_zlib_api, deflateInit2_, "deflateInit2_", 1),
    ENTRY(cp_zlib_api, deflate, "deflate", 1),
    ENTRY(cp_zlib_api, deflateReset, "deflateReset", 1),
    ENTRY(cp_zlib_api, deflateEnd, "deflateEnd", 1),
    ENTRY(cp_zlib_api, deflateBound, "deflateBound", 1),
    ENTRY(cp_zlib_api, inflateInit2_, "inflateInit2_", 1),
    ENTRY(cp_zlib_api, inflate, "inflate", 1),
    ENTRY(cp_zlib_api, inflateReset, "inflateReset", 1),
    ENTRY(cp_zlib_api, inflateEnd, "inflateEnd", 1),
    ENTRY(cp_zlib_api, zlibVersion, "zlibVersion", 1),
};

/* Fill the API struct at out (size bytes) with the entry points of the shared object at path; out is written
 * only when every required one is there. dlsym's void* becomes a function pointer through memcpy, which ISO C
 * allows. */
static int load(const char *path, const entry *entries, size_t count, void *out, size_t size) {
    unsigned char api[256];
    void *h;
    if (size > sizeof api) {
        snprintf(error, sizeof error, "internal error: API struct of %zu bytes", size);
        return -1;
    }
    h = open_lib(path);
    if (!h) return -1;
    memset(api, 0, sizeof api);
    for (size_t i = 0; i < count; i++) {
        void *sym = dlsym(h, entries[i].name);
        if (!sym && entries[i].required) {
            snprintf(error, sizeof error, "%s has no %s", path, entries[i].name);
            dlclose(h);
            return -1;
        }
        memcpy(api + entries[i].offset, &sym, sizeof sym);
    }
    memcpy(out, api, size);
    return 0;
}

#define LOAD(path, entries, out) load((path), (entries), sizeof(entries) / sizeof(entries[0]), &(out), sizeof(out))

void cp_bind_zstd(void) {
    cp_zstd.compressBound = ZSTD_compressBound;
    cp_zstd.createCCtx = ZSTD_createCCtx;
    cp_zstd.freeCCtx = ZSTD_freeCCtx;
    cp_zstd.CCtx_setParameter = ZSTD_CCtx_setParameter;
    cp_zstd.compress2 = ZSTD_compress2;
    cp_zstd.createDCtx = ZSTD_createDCtx;
    cp_zstd.freeDCtx = ZSTD_freeDCtx;
    cp_zstd.decompressDCtx = ZSTD_decompressDCtx;
    cp_zstd.isError = ZSTD_isError;
    cp_zstd.getErrorName = ZSTD_getErrorName;
    cp_zstd.versionString = ZSTD_versionString;
    cp_zstd_decoder = cp_zstd;
}

int cp_load_zstd_decoder(const char *path) { return LOAD(path, zstd_entries, cp_zstd_decoder); }

int cp_load_lz4(const char *path) { return LOAD(path, lz4_entries, cp_lz4); }

int cp_load_zlib(const char *path) { return LOAD(path, zlib_entries, cp_zlib); }
