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

/* Validate and locate the record at buf[*pos]. On success *pos is its end; on a fault,
 * *pos is the position of the bad field and the fault code is returned. */
CP_ALWAYS_INLINE int cp_scan_record(const uint8_t *buf, Py_ssize_t end, Py_ssize_t *pos, cp_record_view *r) {
    int64_t length, n;
    Py_ssize_t p = *pos, start;
    int rc = cp_read_varint(buf, end, &p, &length);
    if (rc) return CP_VARINT_FAULT(rc);
    if (length < CP_MIN_RECORD_SIZE - 1 || length > end - p) return CP_BAD_RECORD_LENGTH;
    end = p + length;
    p += 1; /* attributes: unused in v2 */
#define FIELD(call)            \
    start = p;                 \
    if ((rc = (call)) != 0) {  \
        *pos = start;          \
        return rc;             \
    }
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
    r->headers_start = p;
    FIELD(cp_read_len(buf, end, &p, &r->header_count, 0, CP_BAD_HEADER_COUNT))
    for (int64_t i = 0; i < r->header_count; i++) {
        FIELD(cp_read_len(buf, end, &p, &n, 0, CP_BAD_HEADER_KEY_LENGTH))
        p += n;
        FIELD(cp_read_len(buf, end, &p, &n, 1, CP_BAD_HEADER_VALUE_LENGTH))
        if (n > 0) p += n;
    }
#undef FIELD
    if (p != end) {
        *pos = p;
        return CP_LENGTH_MISMATCH;
    }
    *pos = p;
    return CP_OK;
}

#endif
