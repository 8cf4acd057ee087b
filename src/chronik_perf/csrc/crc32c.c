/*
 * CRC32C (Castagnoli, reflected polynomial 0x82F63B78).
 *
 * Hardware path: the CPU's CRC32C instruction (SSE4.2 on x86_64, the ARMv8 CRC
 * extension on aarch64), chosen at run time. Long buffers run three independent
 * streams so the instruction's latency is hidden, and the three partial CRCs are
 * joined with "shift by N zero bytes" operators precomputed as GF(2) tables.
 * Portable path: slicing-by-16 tables.
 */
#include "crc32c.h"

#include <stdlib.h>
#include <string.h>

#define POLY 0x82F63B78u
#define LONG_BLOCK 8192
#define SHORT_BLOCK 256

static uint32_t sw_table[16][256];
static uint32_t shift_long[4][256];   /* advance a register over LONG_BLOCK zero bytes */
static uint32_t shift_short[4][256];  /* ... over SHORT_BLOCK zero bytes */
static int initialised = 0;

typedef uint32_t (*crc_fn)(uint32_t, const uint8_t *, size_t);
static crc_fn impl_fn = 0;
static const char *impl_name = "software";

static inline uint64_t load64(const uint8_t *p) {
    uint64_t v;
    memcpy(&v, p, 8);
    return v;
}

/* ---- portable slicing-by-16, then by 8 (little-endian loads; byte loop elsewhere) ---- */

static uint32_t crc_sw(uint32_t crc, const uint8_t *buf, size_t len) {
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    while (len >= 16) {
        uint64_t w = load64(buf) ^ crc, v = load64(buf + 8);
        crc = sw_table[15][w & 0xff] ^ sw_table[14][(w >> 8) & 0xff] ^
              sw_table[13][(w >> 16) & 0xff] ^ sw_table[12][(w >> 24) & 0xff] ^
              sw_table[11][(w >> 32) & 0xff] ^ sw_table[10][(w >> 40) & 0xff] ^
              sw_table[9][(w >> 48) & 0xff] ^ sw_table[8][w >> 56] ^
              sw_table[7][v & 0xff] ^ sw_table[6][(v >> 8) & 0xff] ^
              sw_table[5][(v >> 16) & 0xff] ^ sw_table[4][(v >> 24) & 0xff] ^
              sw_table[3][(v >> 32) & 0xff] ^ sw_table[2][(v >> 40) & 0xff] ^
              sw_table[1][(v >> 48) & 0xff] ^ sw_table[0][v >> 56];
        buf += 16;
        len -= 16;
    }
    while (len >= 8) {
        uint64_t w = load64(buf) ^ crc;
        crc = sw_table[7][w & 0xff] ^ sw_table[6][(w >> 8) & 0xff] ^
              sw_table[5][(w >> 16) & 0xff] ^ sw_table[4][(w >> 24) & 0xff] ^
              sw_table[3][(w >> 32) & 0xff] ^ sw_table[2][(w >> 40) & 0xff] ^
              sw_table[1][(w >> 48) & 0xff] ^ sw_table[0][w >> 56];
        buf += 8;
        len -= 8;
    }
#endif
    while (len--) crc = (crc >> 8) ^ sw_table[0][(crc ^ *buf++) & 0xff];
    return crc;
}

/* ---- GF(2) operators: advance a raw CRC register over n zero bytes ---- */

static uint32_t gf2_apply(const uint32_t mat[32], uint32_t v) {
    uint32_t r = 0;
    for (int i = 0; v; i++, v >>= 1)
        if (v & 1) r ^= mat[i];
    return r;
}

static void gf2_square(uint32_t out[32], const uint32_t mat[32]) {
    for (int i = 0; i < 32; i++) out[i] = gf2_apply(mat, mat[i]);
}

static void zeros_table(uint32_t table[4][256], size_t nbytes) {
    uint32_t op[32], tmp[32], acc[32];
    /* op = one zero bit */
    op[0] = POLY;
    for (int i = 1; i < 32; i++) op[i] = 1u << (i - 1);
    for (int i = 0; i < 32; i++) acc[i] = 1u << i; /* identity */
    size_t nbits = nbytes * 8;
    while (nbits) {
        if (nbits & 1) {
            for (int i = 0; i < 32; i++) tmp[i] = gf2_apply(op, acc[i]);
            memcpy(acc, tmp, sizeof acc);
        }
        nbits >>= 1;
        if (nbits) {
            gf2_square(tmp, op);
            memcpy(op, tmp, sizeof op);
        }
    }
    for (int k = 0; k < 4; k++)
        for (uint32_t b = 0; b < 256; b++) table[k][b] = gf2_apply(acc, b << (8 * k));
}

static inline uint32_t shift(uint32_t table[4][256], uint32_t crc) {
    return table[0][crc & 0xff] ^ table[1][(crc >> 8) & 0xff] ^
           table[2][(crc >> 16) & 0xff] ^ table[3][crc >> 24];
}

/* ---- hardware paths ---- */

#if defined(__x86_64__) || defined(__i386__)
#include <nmmintrin.h>
#define HW_TARGET __attribute__((target("sse4.2")))
#define HW_U8(c, b) _mm_crc32_u8((c), (b))
#if defined(__x86_64__)
#define HW_U64(c, w) _mm_crc32_u64((c), (w))
typedef uint64_t hw_acc;
#else
#define HW_U64(c, w) _mm_crc32_u32(_mm_crc32_u32((c), (uint32_t)(w)), (uint32_t)((w) >> 32))
typedef uint32_t hw_acc;
#endif
#define HAVE_HW 1
#define HW_NAME "sse4.2"
#elif defined(__aarch64__)
#include <arm_acle.h>
#include <sys/auxv.h>
#ifndef HWCAP_CRC32
#define HWCAP_CRC32 (1 << 7)
#endif
#define HW_TARGET __attribute__((target("+crc")))
#define HW_U8(c, b) __crc32cb((c), (b))
#define HW_U64(c, w) __crc32cd((c), (w))
typedef uint32_t hw_acc;
#define HAVE_HW 1
#define HW_NAME "armv8-crc"
#endif

#ifdef HAVE_HW
HW_TARGET static uint32_t crc_hw(uint32_t crc32, const uint8_t *buf, size_t len) {
    hw_acc crc = crc32;
    while (len && ((uintptr_t)buf & 7)) {
        crc = HW_U8((uint32_t)crc, *buf++);
        len--;
    }
#define THREE_WAY(BLOCK, TABLE)                                      \
    while (len >= 3 * (size_t)(BLOCK)) {                             \
        hw_acc c1 = 0, c2 = 0;                                       \
        const uint8_t *end = buf + (BLOCK);                          \
        do {                                                         \
            crc = HW_U64(crc, load64(buf));                          \
            c1 = HW_U64(c1, load64(buf + (BLOCK)));                  \
            c2 = HW_U64(c2, load64(buf + 2 * (BLOCK)));              \
            buf += 8;                                                \
        } while (buf < end);                                         \
        crc = shift(TABLE, (uint32_t)crc) ^ (uint32_t)c1;            \
        crc = shift(TABLE, (uint32_t)crc) ^ (uint32_t)c2;            \
        buf += 2 * (BLOCK);                                          \
        len -= 3 * (size_t)(BLOCK);                                  \
    }
    THREE_WAY(LONG_BLOCK, shift_long)
    THREE_WAY(SHORT_BLOCK, shift_short)
#undef THREE_WAY
    while (len >= 8) {
        crc = HW_U64(crc, load64(buf));
        buf += 8;
        len -= 8;
    }
    while (len--) crc = HW_U8((uint32_t)crc, *buf++);
    return (uint32_t)crc;
}

#if defined(__x86_64__)
#include <immintrin.h>
#define HAVE_FOLD 1
#define FOLD_TARGET __attribute__((target("avx512f,vpclmulqdq,pclmul,sse4.2")))
#define FOLD_MIN 256
#define PREFETCH_AHEAD 2048

/* Carry-less multiply folding (AVX-512 VPCLMULQDQ), 256 bytes per step.
 *
 * Reflected domain: a 16-byte lane read little-endian holds bit i as the coefficient of
 * x^(127-i), so lane = l(x)*x^64 + h(x) (l the low quadword). A carry-less product of two
 * reflected quadwords is x*a*b as a reflected 128-bit lane. Moving a lane D bits further,
 * lane*x^D = l*x^(D+64) + h*x^D, is therefore clmul(l, x^(D+63) mod P) ^ clmul(h, x^(D-1) mod P):
 * congruent mod P, and of degree < 96, so it fits a lane. The register value is xored into the
 * first four bytes; the folded 16 bytes then give the register with two CRC instructions from 0,
 * and the tail (under 64 bytes) goes through crc_hw. */
static uint64_t fold_k[2][2];    /* {x^(D+63), x^(D-1)} mod P for D = 2048 and 512 (whole vectors) */
static uint64_t fold_k128[3][2]; /* ... and D = 384, 256, 128 (the lanes of the last vector) */

static uint64_t xpow_mod(unsigned n) {
    uint32_t v = 0x80000000u; /* x^0, reflected */
    while (n--) v = (v & 1) ? (v >> 1) ^ POLY : v >> 1;
    return (uint64_t)v << 32; /* as a reflected quadword: degree d at bit 63-d */
}

static void fold_pair(uint64_t out[2], unsigned d) {
    out[0] = xpow_mod(d + 63);
    out[1] = xpow_mod(d - 1);
}

FOLD_TARGET static inline __m512i fold512(__m512i a, __m512i k, __m512i next) {
    return _mm512_ternarylogic_epi64(_mm512_clmulepi64_epi128(a, k, 0x00),
                                     _mm512_clmulepi64_epi128(a, k, 0x11), next, 0x96);
}

FOLD_TARGET static inline __m512i bcast_k(const uint64_t k[2]) {
    return _mm512_broadcast_i32x4(_mm_set_epi64x((long long)k[1], (long long)k[0]));
}

FOLD_TARGET static inline __m128i fold128(__m128i a, const uint64_t k[2], __m128i next) {
    __m128i kv = _mm_set_epi64x((long long)k[1], (long long)k[0]);
    return _mm_xor_si128(_mm_xor_si128(_mm_clmulepi64_si128(a, kv, 0x00), _mm_clmulepi64_si128(a, kv, 0x11)), next);
}

FOLD_TARGET static uint32_t crc_fold(uint32_t crc, const uint8_t *buf, size_t len) {
    if (len < FOLD_MIN) return crc_hw(crc, buf, len);
    /* align the vector loads to cache lines: an unaligned 64-byte load touches two lines */
    size_t head = (64 - ((uintptr_t)buf & 63)) & 63;
    if (head) {
        crc = crc_hw(crc, buf, head);
        buf += head;
        len -= head;
        if (len < FOLD_MIN) return crc_hw(crc, buf, len);
    }
    __m512i x0 = _mm512_load_si512((const void *)buf);
    __m512i x1 = _mm512_load_si512((const void *)(buf + 64));
    __m512i x2 = _mm512_load_si512((const void *)(buf + 128));
    __m512i x3 = _mm512_load_si512((const void *)(buf + 192));
    x0 = _mm512_xor_si512(x0, _mm512_zextsi128_si512(_mm_cvtsi32_si128((int)crc)));
    buf += 256;
    len -= 256;
    __m512i k = bcast_k(fold_k[0]);
    while (len >= 256) {
        /* the hardware prefetchers stop at page boundaries; in a mapped file each 4 KiB page may lie anywhere,
         * so ask ahead for the lines a few iterations on (a prefetch never faults, past the end included) */
        _mm_prefetch((const char *)buf + PREFETCH_AHEAD, _MM_HINT_T0);
        _mm_prefetch((const char *)buf + PREFETCH_AHEAD + 64, _MM_HINT_T0);
        _mm_prefetch((const char *)buf + PREFETCH_AHEAD + 128, _MM_HINT_T0);
        _mm_prefetch((const char *)buf + PREFETCH_AHEAD + 192, _MM_HINT_T0);
        x0 = fold512(x0, k, _mm512_load_si512((const void *)buf));
        x1 = fold512(x1, k, _mm512_load_si512((const void *)(buf + 64)));
        x2 = fold512(x2, k, _mm512_load_si512((const void *)(buf + 128)));
        x3 = fold512(x3, k, _mm512_load_si512((const void *)(buf + 192)));
        buf += 256;
        len -= 256;
    }
    k = bcast_k(fold_k[1]);
    x0 = fold512(x0, k, x1);
    x0 = fold512(x0, k, x2);
    x0 = fold512(x0, k, x3);
    while (len >= 64) {
        x0 = fold512(x0, k, _mm512_load_si512((const void *)buf));
        buf += 64;
        len -= 64;
    }
    __m128i a = _mm512_extracti32x4_epi32(x0, 3);
    a = fold128(_mm512_extracti32x4_epi32(x0, 0), fold_k128[0], a);
    a = fold128(_mm512_extracti32x4_epi32(x0, 1), fold_k128[1], a);
    a = fold128(_mm512_extracti32x4_epi32(x0, 2), fold_k128[2], a);
    uint64_t r = _mm_crc32_u64(0, (uint64_t)_mm_cvtsi128_si64(a));
    r = _mm_crc32_u64(r, (uint64_t)_mm_extract_epi64(a, 1));
    _mm256_zeroupper(); /* clean upper state: legacy SSE code after this must not pay for it */
    return crc_hw((uint32_t)r, buf, len);
}

static int cpu_has_fold(void) {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("vpclmulqdq") &&
           __builtin_cpu_supports("pclmul");
}
#endif

static int cpu_has_hw(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_cpu_init();
    return __builtin_cpu_supports("sse4.2");
#else
    return (getauxval(AT_HWCAP) & HWCAP_CRC32) != 0;
#endif
}
#endif

void cp_crc32c_init(void) {
    if (initialised) return;
    for (uint32_t n = 0; n < 256; n++) {
        uint32_t c = n;
        for (int k = 0; k < 8; k++) c = (c & 1) ? (c >> 1) ^ POLY : c >> 1;
        sw_table[0][n] = c;
    }
    for (uint32_t n = 0; n < 256; n++)
        for (int k = 1; k < 16; k++)
            sw_table[k][n] = (sw_table[k - 1][n] >> 8) ^ sw_table[0][sw_table[k - 1][n] & 0xff];
    zeros_table(shift_long, LONG_BLOCK);
    zeros_table(shift_short, SHORT_BLOCK);
    impl_fn = crc_sw;
    impl_name = "software";
#ifdef HAVE_HW
    if (cpu_has_hw() && !getenv("CHRONIK_PERF_SOFTWARE_CRC32C")) {
        impl_fn = crc_hw;
        impl_name = HW_NAME;
#ifdef HAVE_FOLD
        if (cpu_has_fold() && !getenv("CHRONIK_PERF_NO_FOLD_CRC32C")) {
            fold_pair(fold_k[0], 2048);
            fold_pair(fold_k[1], 512);
            fold_pair(fold_k128[0], 384);
            fold_pair(fold_k128[1], 256);
            fold_pair(fold_k128[2], 128);
            impl_fn = crc_fold;
            impl_name = "sse4.2+vpclmulqdq";
        }
#endif
    }
#endif
    initialised = 1;
}

uint32_t cp_crc32c(uint32_t crc, const uint8_t *buf, size_t len) {
    return ~impl_fn(~crc, buf, len);
}

const char *cp_crc32c_impl(void) { return impl_name; }

uint32_t cp_crc32c_software(uint32_t crc, const uint8_t *buf, size_t len) {
    return ~crc_sw(~crc, buf, len);
}
