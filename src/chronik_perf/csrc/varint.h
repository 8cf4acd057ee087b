/* Kafka varints: unsigned LEB128 (uvarint) and zigzag-signed (varint/varlong), bounds-checked. */
#ifndef CHRONIK_PERF_VARINT_H
#define CHRONIK_PERF_VARINT_H

#include <stddef.h>
#include <stdint.h>
#include <Python.h>  /* Py_ssize_t */

#define CP_ALWAYS_INLINE static inline __attribute__((always_inline))

CP_ALWAYS_INLINE uint64_t cp_zigzag_encode(int64_t n) {
    return ((uint64_t)n << 1) ^ (uint64_t)(n >> 63);
}

CP_ALWAYS_INLINE int64_t cp_zigzag_decode(uint64_t n) {
    return (int64_t)(n >> 1) ^ -(int64_t)(n & 1);
}

CP_ALWAYS_INLINE Py_ssize_t cp_uvarint_size(uint64_t v) {
    if (v < 0x80) return 1; /* the usual sizes, cheaper than counting bits */
    if (v < 0x4000) return 2;
    int bits = 64 - __builtin_clzll(v | 1); /* 7 bits a byte: 1..10 bytes */
    return (bits * 9 + 64) / 64;
}

/* Write v at out (room for 10 bytes needed); return the bytes written. */
CP_ALWAYS_INLINE Py_ssize_t cp_write_uvarint(uint8_t *out, uint64_t v) {
    if (v < 0x80) {
        out[0] = (uint8_t)v;
        return 1;
    }
    if (v < 0x4000) {
        out[0] = (uint8_t)(v | 0x80);
        out[1] = (uint8_t)(v >> 7);
        return 2;
    }
    Py_ssize_t n = 0;
    while (v >= 0x80) {
        out[n++] = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    out[n] = (uint8_t)v;
    return n + 1;
}

/* The general case of cp_read_uvarint, kept out of line so the fast paths stay small. */
static __attribute__((noinline)) int cp_read_uvarint_slow(const uint8_t *buf, Py_ssize_t end, Py_ssize_t *pos,
                                                          uint64_t *out) {
    Py_ssize_t p = *pos;
    uint64_t result = 0;
    for (int shift = 0;; shift += 7) {
        if (p >= end) return -1;
        if (shift > 63) return -2;
        uint8_t b = buf[p++];
        if (shift == 63 && b > 1) return -2;
        result |= (uint64_t)(b & 0x7F) << shift;
        if (b < 0x80) break;
    }
    *pos = p;
    *out = result;
    return 0;
}

/* Read a uvarint at buf[*pos], never at or past end.
 * 0: ok (*pos advanced); -1: truncated; -2: longer than 10 bytes or over 64 bits. */
CP_ALWAYS_INLINE int cp_read_uvarint(const uint8_t *buf, Py_ssize_t end, Py_ssize_t *pos, uint64_t *out) {
    Py_ssize_t p = *pos;
    if (__builtin_expect(p < end, 1)) { /* fast paths: one and two bytes */
        uint8_t b0 = buf[p];
        if (b0 < 0x80) {
            *out = b0;
            *pos = p + 1;
            return 0;
        }
        if (p + 1 < end && buf[p + 1] < 0x80) {
            *out = (uint64_t)(b0 & 0x7F) | ((uint64_t)buf[p + 1] << 7);
            *pos = p + 2;
            return 0;
        }
    }
    return cp_read_uvarint_slow(buf, end, pos, out);
}

CP_ALWAYS_INLINE int cp_read_varint(const uint8_t *buf, Py_ssize_t end, Py_ssize_t *pos, int64_t *out) {
    uint64_t u;
    int rc = cp_read_uvarint(buf, end, pos, &u);
    if (rc == 0) *out = cp_zigzag_decode(u);
    return rc;
}

#endif
