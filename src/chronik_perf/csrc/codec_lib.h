/*
 * Entry points of zlib and liblz4, resolved at run time from a shared object that holds them (the system's library
 * or the copy inside the lz4 package, zlib Python's own; native/codec_lib.pxi picks one), and of libzstd: the copy
 * compiled into the module from csrc/zstd, and for decoding large frames the system's when there is one. Only
 * stable, documented functions are used; zlib's and liblz4's prototypes are restated here because neither the
 * packages nor a bare system ship the headers.
 */
#ifndef CP_CODEC_LIB_H
#define CP_CODEC_LIB_H
#include <stddef.h>

#include "zstd/zstd.h"

/* libzstd's entry points: the built-in copy's (csrc/zstd, symbols hidden) or a shared object's */
typedef struct {
    size_t (*compressBound)(size_t);
    ZSTD_CCtx *(*createCCtx)(void);
    size_t (*freeCCtx)(ZSTD_CCtx *);
    size_t (*CCtx_setParameter)(ZSTD_CCtx *, ZSTD_cParameter, int);
    size_t (*compress2)(ZSTD_CCtx *, void *, size_t, const void *, size_t);
    ZSTD_DCtx *(*createDCtx)(void);
    size_t (*freeDCtx)(ZSTD_DCtx *);
    size_t (*decompressDCtx)(ZSTD_DCtx *, void *, size_t, const void *, size_t);
    unsigned (*isError)(size_t);
    const char *(*getErrorName)(size_t);
    const char *(*versionString)(void);
} cp_zstd_api;

typedef struct {
    int (*compressBound)(int);
    int (*sizeofState)(void);
    int (*compress_fast_extState)(void *, const char *, char *, int, int, int);
    int (*compress_fast_extState_fastReset)(void *, const char *, char *, int, int, int); /* NULL: not exported */
    int (*compress_HC)(const char *, char *, int, int, int);
    int (*decompress_safe)(const char *, char *, int, int);
    const char *(*versionString)(void);
} cp_lz4_api;

/* zlib's stream (z_stream), whose layout zlib keeps stable; inflateInit2_/deflateInit2_ check its size */
typedef struct {
    const unsigned char *next_in;
    unsigned int avail_in;
    unsigned long total_in;
    unsigned char *next_out;
    unsigned int avail_out;
    unsigned long total_out;
    const char *msg;
    void *state;
    void *zalloc;
    void *zfree;
    void *opaque;
    int data_type;
    unsigned long adler;
    unsigned long reserved;
} cp_z_stream;

typedef struct {
    int (*deflateInit2_)(cp_z_stream *, int, int, int, int, int, const char *, int);
    int (*deflate)(cp_z_stream *, int);
    int (*deflateReset)(cp_z_stream *);
    int (*deflateEnd)(cp_z_stream *);
    unsigned long (*deflateBound)(cp_z_stream *, unsigned long);
    int (*inflateInit2_)(cp_z_stream *, int, const char *, int);
    int (*inflate)(cp_z_stream *, int);
    int (*inflateReset)(cp_z_stream *);
    int (*inflateEnd)(cp_z_stream *);
    const char *(*zlibVersion)(void);
} cp_zlib_api;

extern cp_zlib_api cp_zlib;
extern cp_zstd_api cp_zstd;          /* the built-in libzstd */
extern cp_zstd_api cp_zstd_decoder;  /* decoding frames above 8 KiB: the system's libzstd, else the built-in one */
extern cp_lz4_api cp_lz4;

/* Point cp_zstd and cp_zstd_decoder at the built-in libzstd. */
void cp_bind_zstd(void);
/* Resolve every entry point from the shared object at `path`: 0, or -1 when it cannot be loaded or lacks one
 * (cp_codec_lib_error says which). On success the object stays loaded for the life of the process. */
int cp_load_zstd_decoder(const char *path);
int cp_load_lz4(const char *path);
int cp_load_zlib(const char *path);
const char *cp_codec_lib_error(void);

#endif
