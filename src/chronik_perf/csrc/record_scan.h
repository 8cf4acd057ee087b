/* Locating and validating one record of a v2 record batch, without the GIL.
 *
 *   length varint | attributes int8 | timestampDelta varlong | offsetDelta varint |
 *   keyLength varint (-1: null) | key | valueLength varint (-1: null) | value |
 *   headerCount varint | headers: keyLength varint, key, valueLength varint (-1: null), value
 */
#ifndef CHRONIK_PERF_RECORD_SCAN_H
#define CHRONIK_PERF_RECORD_SCAN_H

#include "varint.h"

enum cp_record_fault {
    CP_OK = 0,
    CP_TRUNCATED_VARINT = 1,
    CP_VARINT_TOO_LONG = 2,
    CP_BAD_RECORD_LENGTH = 3,
    CP_BAD_KEY_LENGTH = 4,
    CP_BAD_VALUE_LENGTH = 5,
    CP_BAD_HEADER_COUNT = 6,
    CP_BAD_HEADER_KEY_LENGTH = 7,
    CP_BAD_HEADER_VALUE_LENGTH = 8,
    CP_LENGTH_MISMATCH = 9,
};

#define CP_MIN_RECORD_SIZE 7 /* length, attributes, two deltas, key and value lengths, header count */

typedef struct {
    int64_t timestamp_delta;
    int64_t offset_delta;
    Py_ssize_t key_start, key_length; /* length -1: null */
    Py_ssize_t value_start, value_length;
    Py_ssize_t headers_start; /* at the header count */
    int64_t header_count;
} cp_record_view;

#define CP_VARINT_FAULT(rc) ((rc) == -1 ? CP_TRUNCATED_VARINT : CP_VARINT_TOO_LONG)

/* A varint field: 0 or its fault code. */
CP_ALWAYS_INLINE int cp_read_field(const uint8_t *buf, Py_ssize_t end, Py_ssize_t *pos, int64_t *out) {
    int rc = cp_read_varint(buf, end, pos, out);
    return rc ? CP_VARINT_FAULT(rc) : CP_OK;
}

/* A length (-1: null when nullable) whose bytes must fit before end. */
CP_ALWAYS_INLINE int cp_read_len(const uint8_t *buf, Py_ssize_t end, Py_ssize_t *pos, int64_t *out,
                                 int nullable, int fault) {
    int rc = cp_read_varint(buf, end, pos, out);
    if (rc) return CP_VARINT_FAULT(rc);
    if (*out < -nullable || *out > end - *pos) return fault;
    return CP_OK;
}

/* Read one field starting at p; on a fault, report its start in *pos. */
#define FIELD(call)            \
    start = p;                 \
    if ((rc = (call)) != 0) {  \
        *pos = start;          \
        return rc;             \
    }

/* The headers of a record, from their count at p up to end (the record's end), checked field by
 * field: 0 and *pos = end, or a fault code and *pos at the bad field. */
static __attribute__((noinline)) int cp_scan_headers(const uint8_t *buf, Py_ssize_t end, Py_ssize_t p,
                                                     Py_ssize_t *pos, int64_t *count) {
    int64_t n;
    Py_ssize_t start;
    int rc;
    FIELD(cp_read_len(buf, end, &p, count, 0, CP_BAD_HEADER_COUNT))
    for (int64_t i = 0; i < *count; i++) {
        FIELD(cp_read_len(buf, end, &p, &n, 0, CP_BAD_HEADER_KEY_LENGTH))
        p += n;
        FIELD(cp_read_len(buf, end, &p, &n, 1, CP_BAD_HEADER_VALUE_LENGTH))
        if (n > 0) p += n;
    }
    if (p != end) {
        *pos = p;
        return CP_LENGTH_MISMATCH;
    }
    *pos = p;
    return CP_OK;
}

/* The careful scan: every byte bounds-checked, varints of any width, the exact fault and its
 * position. Kept out of line: the fast path below hands it only what it does not handle. */
static __attribute__((noinline)) int cp_scan_record_careful(const uint8_t *buf, Py_ssize_t end,
                                                            Py_ssize_t *pos, cp_record_view *r) {
    int64_t length, n;
    Py_ssize_t p = *pos, start;
    int rc = cp_read_varint(buf, end, &p, &length);
    if (rc) return CP_VARINT_FAULT(rc);
    if (length < CP_MIN_RECORD_SIZE - 1 || length > end - p) return CP_BAD_RECORD_LENGTH;
    end = p + length;
    p += 1; /* attributes: unused in v2 */
    FIELD(cp_read_field(buf, end, &p, &r->timestamp_delta))
    FIELD(cp_read_field(buf, end, &p, &r->offset_delta))
    FIELD(cp_read_len(buf, end, &p, &n, 1, CP_BAD_KEY_LENGTH))
    r->key_start = p;
    r->key_length = n;
    if (n > 0) p += n;
    FIELD(cp_read_len(buf, end, &p, &n, 1, CP_BAD_VALUE_LENGTH))
    r->value_start = p;
    r->value_length = n;
    if (n > 0) p += n;
#undef FIELD
    r->headers_start = p;
    return cp_scan_headers(buf, end, p, pos, &r->header_count);
}

/* Bytes the fast path may need beyond a record's end: it reads varints of up to two bytes
 * without checking each byte, and a field that overruns the record overruns by at most this. */
#define CP_SCAN_SLACK 8

/* A varint of one or two bytes at buf[p] into dst (a uint64_t); longer ones goto bail. */
#define CP_FAST_UVARINT(dst, bail)                              \
    do {                                                        \
        uint64_t b0_ = buf[p];                                  \
        if (b0_ < 0x80) {                                       \
            dst = b0_;                                          \
            p += 1;                                             \
        } else {                                                \
            uint64_t b1_ = buf[p + 1];                          \
            if (__builtin_expect(b1_ >= 0x80, 0)) goto bail;    \
            dst = b0_ - 0x80 + (b1_ << 7);                      \
            p += 2;                                             \
        }                                                       \
    } while (0)

/* A nullable length read as a raw zigzag varint u into start/length: 1 is null (-1), another
 * odd u is negative (a fault), an even one must fit before rec_end; faults goto bail. */
#define CP_FAST_SLICE(start, length, bail)                      \
    do {                                                        \
        CP_FAST_UVARINT(u, bail);                               \
        start = p;                                              \
        if (u == 1) {                                           \
            length = -1;                                        \
        } else {                                                \
            if (__builtin_expect(u & 1, 0)) goto bail;          \
            length = (int64_t)(u >> 1);                         \
            if (__builtin_expect(length > rec_end - p, 0)) goto bail; \
            p += length;                                        \
        }                                                       \
    } while (0)

/* Validate and locate the record at buf[*pos]. On success *pos is its end; on a fault,
 * *pos is the position of the bad field and the fault code is returned.
 *
 * Fast path: varints of one or two bytes, records that end CP_SCAN_SLACK bytes before `end`.
 * Positions only grow, so a field that runs past the record's end leaves p past it, and the
 * record is handed to the careful scan, which also reports every fault: whenever the fast path
 * succeeds, the careful scan would have read the same bytes to the same result. */
CP_ALWAYS_INLINE int cp_scan_record(const uint8_t *buf, Py_ssize_t end, Py_ssize_t *pos, cp_record_view *r) {
    Py_ssize_t p = *pos, rec_end;
    uint64_t u;
    if (__builtin_expect(end - p < CP_SCAN_SLACK, 0)) goto careful;
    CP_FAST_UVARINT(u, careful);
    /* length: even (not negative), at least CP_MIN_RECORD_SIZE - 1, slack left after it */
    if (__builtin_expect((u & 1) || u < 2 * (CP_MIN_RECORD_SIZE - 1), 0)) goto careful;
    rec_end = p + (Py_ssize_t)(u >> 1);
    if (__builtin_expect(rec_end > end - CP_SCAN_SLACK, 0)) goto careful;
    p += 1; /* attributes: unused in v2 */
    CP_FAST_UVARINT(u, careful);
    r->timestamp_delta = cp_zigzag_decode(u);
    CP_FAST_UVARINT(u, careful);
    r->offset_delta = cp_zigzag_decode(u);
    CP_FAST_SLICE(r->key_start, r->key_length, careful);
    CP_FAST_SLICE(r->value_start, r->value_length, careful);
    if (__builtin_expect(p + 1 == rec_end && buf[p] == 0, 1)) { /* no headers */
        r->headers_start = p;
        r->header_count = 0;
        *pos = rec_end;
        return CP_OK;
    }
    /* Out-of-line calls get copies: the caller's position and view stay in registers. */
    Py_ssize_t q = *pos;
    int rc;
    if (p < rec_end) {
        int64_t count;
        r->headers_start = p;
        rc = cp_scan_headers(buf, rec_end, p, &q, &count);
        r->header_count = count;
        *pos = q;
        return rc;
    }
careful:;
    cp_record_view v;
    q = *pos;
    rc = cp_scan_record_careful(buf, end, &q, &v);
    *pos = q;
    r->timestamp_delta = v.timestamp_delta;
    r->offset_delta = v.offset_delta;
    r->key_start = v.key_start;
    r->key_length = v.key_length;
    r->value_start = v.value_start;
    r->value_length = v.value_length;
    r->headers_start = v.headers_start;
    r->header_count = v.header_count;
    return rc;
}

#undef CP_FAST_SLICE
#undef CP_FAST_UVARINT

#endif
