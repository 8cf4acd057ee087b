# Record batches, magic v2: building (bulk and incremental) and parsing (objects and columns).
#
# One record inside a batch:
#   length varint | attributes int8 | timestampDelta varlong | offsetDelta varint |
#   keyLength varint (-1: null) | key | valueLength varint (-1: null) | value |
#   headerCount varint | headers: keyLength varint, key (UTF-8), valueLength varint (-1: null), value
cimport cython
cimport numpy as cnp
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize, PyBytes_GET_SIZE
from cpython.list cimport PyList_New, PyList_SET_ITEM
from cpython.mem cimport PyMem_Free, PyMem_Malloc
from cpython.object cimport PyObject
from cpython.ref cimport Py_INCREF
from cpython.sequence cimport PySequence_Fast, PySequence_Fast_GET_SIZE, PySequence_Fast_ITEMS
from cpython.unicode cimport PyUnicode_AsUTF8AndSize, PyUnicode_DecodeUTF8
from libc.stdint cimport int8_t, int16_t, int32_t, int64_t, uint8_t, uint32_t
from libc.stdlib cimport free, malloc, realloc
from libc.string cimport memcpy

import time

import numpy as np

cnp.import_array()

cdef enum:
    # A record takes at most this plus its key, value and encoded headers lengths (each >= -1):
    # length, timestamp and offset varints of 10 bytes, attributes, and 11 + length for each
    # of key and value, 2 + length for the headers (null parts take one byte).
    MAX_RECORD_OVERHEAD = 55
    N_COLUMNS = 6

cdef tuple COLUMN_NAMES = ("offset", "timestamp", "key_start", "key_length", "value_start",
                           "value_length")


cdef extern from "record_scan.h":
    enum:
        MIN_RECORD_SIZE "CP_MIN_RECORD_SIZE"
        OK "CP_OK"
        LENGTH_MISMATCH "CP_LENGTH_MISMATCH"
    ctypedef struct RecordView "cp_record_view":
        int64_t timestamp_delta
        int64_t offset_delta
        Py_ssize_t key_start
        Py_ssize_t key_length
        Py_ssize_t value_start
        Py_ssize_t value_length
        Py_ssize_t headers_start
        int64_t header_count
    int scan_record "cp_scan_record"(const uint8_t* buf, Py_ssize_t end, Py_ssize_t* pos,
                                     RecordView* r) noexcept nogil

# Texts of record_scan.h's fault codes, by code.
cdef tuple FAULT_TEXT = (
    "", "truncated varint", "varint longer than 10 bytes", "record length out of range",
    "key length out of range", "value length out of range", "header count out of range",
    "header key length out of range", "header value length out of range",
    "record length disagrees with its contents", "offset delta outside the batch's offset range",
)
cdef enum:
    BAD_OFFSET_DELTA = 10        # after record_scan.h's codes: an offset delta outside [0, last offset delta]


cdef struct Slice:
    const uint8_t* ptr
    Py_ssize_t length            # -1: null


# ---------------------------------------------------------------- building

cdef inline int set_slice(Slice* s, object obj, list keepalive) except -1:
    """Pointer and length of a bytes-like value; None gives a null slice."""
    if type(obj) is bytes:
        s.ptr = <const uint8_t*>PyBytes_AS_STRING(obj)
        s.length = PyBytes_GET_SIZE(obj)
    elif obj is None:
        s.ptr = NULL
        s.length = -1
    else:
        set_copied_slice(s, obj, keepalive)
    return 0


cdef int set_copied_slice(Slice* s, object obj, list keepalive) except -1:
    """bytearray, memoryview, numpy...: one copy as bytes, kept alive by keepalive."""
    obj = bytes(memoryview(obj))        # TypeError for anything that is not a buffer
    keepalive.append(obj)
    s.ptr = <const uint8_t*>PyBytes_AS_STRING(obj)
    s.length = PyBytes_GET_SIZE(obj)
    return 0


cdef inline Py_ssize_t slice_size(Slice s) noexcept nogil:
    return 1 if s.length < 0 else uvarint_size(zigzag_encode(s.length)) + s.length


cdef inline uint8_t* write_slice(uint8_t* p, Slice s) noexcept nogil:
    if s.length < 0:
        p[0] = 1                        # zigzag(-1)
        return p + 1
    p += write_uvarint(p, zigzag_encode(s.length))
    if s.length:
        memcpy(p, s.ptr, s.length)
    return p + s.length


cdef tuple held_items(object obj, str what):
    """obj's items as a tuple, which holds a reference to each and which no Python code can change: pointers into
    its items stay valid while the caller's objects run code (a timestamp's __index__, a header list's __iter__)."""
    if type(obj) is tuple:
        return obj
    try:
        return tuple(obj)
    except TypeError:
        raise TypeError(what) from None


cdef int set_headers(Slice* out, object headers, list keepalive) except -1:
    """A record's headers encoded (count included) into bytes kept alive by keepalive; no headers gives a null
    slice, written as a zero count. The headers are read once, into str keys and bytes or None values, before
    anything is sized: what the caller's objects do cannot change them between sizing and writing."""
    cdef Py_ssize_t n, size
    cdef Slice s
    if not headers:
        out.ptr = NULL
        out.length = -1
        return 0
    cdef list pairs = []
    for item in headers:
        hkey, hvalue = item
        if not isinstance(hkey, str):
            raise TypeError(f"header key must be str, not {type(hkey).__name__}")
        if hvalue is not None and type(hvalue) is not bytes:
            hvalue = bytes(memoryview(hvalue))        # TypeError for anything that is not a buffer
        pairs.append((hkey, hvalue))
    size = uvarint_size(zigzag_encode(len(pairs)))
    for hkey, hvalue in pairs:
        PyUnicode_AsUTF8AndSize(hkey, &n)
        set_slice(&s, hvalue, keepalive)
        size += uvarint_size(zigzag_encode(n)) + n + slice_size(s)
    encoded = PyBytes_FromStringAndSize(NULL, size)
    keepalive.append(encoded)
    cdef uint8_t* p = <uint8_t*>PyBytes_AS_STRING(encoded)
    out.ptr = p
    out.length = size
    p += write_uvarint(p, zigzag_encode(len(pairs)))
    for hkey, hvalue in pairs:
        s.ptr = <const uint8_t*>PyUnicode_AsUTF8AndSize(hkey, &n)
        s.length = n
        p = write_slice(p, s)
        set_slice(&s, hvalue, keepalive)
        p = write_slice(p, s)
    return 0


cdef struct RecordIn:
    Slice key
    Slice value
    Slice headers                # encoded, count included; null: no headers
    int64_t timestamp


cdef struct RecordLayout:
    uint64_t ts_zigzag           # timestamp delta, zigzag-encoded
    uint64_t offset_zigzag
    Py_ssize_t ts_size           # bytes of its varint
    Py_ssize_t offset_size
    Py_ssize_t body              # bytes after the length varint
    Py_ssize_t size              # bytes of the whole record


cdef inline void lay_out_record(RecordLayout* l, const RecordIn* r, int64_t ts_delta,
                                int64_t offset_delta) noexcept nogil:
    """Sizes of a record's parts, each varint encoded once."""
    l.ts_zigzag = zigzag_encode(ts_delta)
    l.offset_zigzag = zigzag_encode(offset_delta)
    l.ts_size = uvarint_size(l.ts_zigzag)
    l.offset_size = uvarint_size(l.offset_zigzag)
    l.body = (1 + l.ts_size + l.offset_size + slice_size(r.key) + slice_size(r.value)
              + (1 if r.headers.length < 0 else r.headers.length))
    l.size = uvarint_size(zigzag_encode(l.body)) + l.body


cdef inline uint8_t* put_uvarint(uint8_t* p, uint64_t v, Py_ssize_t size) noexcept nogil:
    """Write v, whose varint takes `size` bytes; return the position after it."""
    if size == 1:
        p[0] = <uint8_t>v
    elif size == 2:
        p[0] = <uint8_t>(v | 0x80)
        p[1] = <uint8_t>(v >> 7)
    else:
        write_uvarint(p, v)
    return p + size


cdef inline uint8_t* write_record(uint8_t* p, const RecordIn* r,
                                  const RecordLayout* l) noexcept nogil:
    """Write one record laid out by lay_out_record; return the position after it."""
    p = put_uvarint(p, zigzag_encode(l.body), l.size - l.body)
    p[0] = 0                    # attributes
    p = put_uvarint(p + 1, l.ts_zigzag, l.ts_size)
    p = put_uvarint(p, l.offset_zigzag, l.offset_size)
    p = write_slice(p, r.key)
    p = write_slice(p, r.value)
    if r.headers.length < 0:
        p[0] = 0
        return p + 1
    memcpy(p, r.headers.ptr, r.headers.length)
    return p + r.headers.length


cdef void write_batch_header(uint8_t* out, Py_ssize_t total, int64_t base_offset,
                             int32_t partition_leader_epoch, int16_t attributes,
                             int32_t last_offset_delta, int64_t base_timestamp,
                             int64_t max_timestamp, int64_t producer_id, int16_t producer_epoch,
                             int32_t base_sequence, int32_t count) noexcept nogil:
    """Fill the 61-byte header of a complete batch of `total` bytes, CRC last."""
    store_be64(out + BATCH_BASE_OFFSET, <uint64_t>base_offset)
    store_be32(out + BATCH_LENGTH, <uint32_t>(total - LOG_OVERHEAD))
    store_be32(out + BATCH_PARTITION_LEADER_EPOCH, <uint32_t>partition_leader_epoch)
    out[BATCH_MAGIC] = CURRENT_MAGIC
    store_be16(out + BATCH_ATTRIBUTES, <uint16_t>attributes)
    store_be32(out + BATCH_LAST_OFFSET_DELTA, <uint32_t>last_offset_delta)
    store_be64(out + BATCH_BASE_TIMESTAMP, <uint64_t>base_timestamp)
    store_be64(out + BATCH_MAX_TIMESTAMP, <uint64_t>max_timestamp)
    store_be64(out + BATCH_PRODUCER_ID, <uint64_t>producer_id)
    store_be16(out + BATCH_PRODUCER_EPOCH, <uint16_t>producer_epoch)
    store_be32(out + BATCH_BASE_SEQUENCE, <uint32_t>base_sequence)
    store_be32(out + BATCH_RECORD_COUNT, <uint32_t>count)
    store_be32(out + BATCH_CRC, cp_crc32c(0, out + BATCH_ATTRIBUTES, total - BATCH_ATTRIBUTES))


cdef bytes finish_batch(const uint8_t* records, Py_ssize_t records_len, int codec, object level,
                        int64_t base_offset, int32_t partition_leader_epoch, int16_t attributes,
                        int32_t last_offset_delta, int64_t base_timestamp, int64_t max_timestamp,
                        int64_t producer_id, int16_t producer_epoch, int32_t base_sequence,
                        int32_t count):
    """Compress encoded records and put the header in front of them."""
    payload = compress(codec, PyBytes_FromStringAndSize(<const char*>records, records_len), level)
    cdef Py_ssize_t total = BATCH_HEADER_SIZE + len(payload)
    out = PyBytes_FromStringAndSize(NULL, total)
    cdef uint8_t* p = <uint8_t*>PyBytes_AS_STRING(out)
    memcpy(p + BATCH_HEADER_SIZE, PyBytes_AS_STRING(payload), len(payload))
    write_batch_header(p, total, base_offset, partition_leader_epoch, attributes | codec,
                       last_offset_delta, base_timestamp, max_timestamp, producer_id,
                       producer_epoch, base_sequence, count)
    return out


cdef inline int16_t batch_attributes(bint transactional) noexcept:
    return ATTR_TRANSACTIONAL if transactional else 0


cdef inline int64_t now_ms():
    return <int64_t>(time.time() * 1000)


cdef extern from "Python.h":
    dict _PyDict_NewPresized(Py_ssize_t minused)
    PyObject* new_bytes "PyBytes_FromStringAndSize"(const char* data, Py_ssize_t size)
    int _PyBytes_Resize(PyObject** obj, Py_ssize_t size) except -1
    void Py_XDECREF(PyObject* obj)


def build_batch(values, keys=None, *, timestamps=None, headers=None, int64_t base_offset=0,
                compression="none", compression_level=None, int64_t producer_id=-1,
                int16_t producer_epoch=-1, int32_t base_sequence=-1, bint transactional=False,
                int32_t partition_leader_epoch=-1):
    """Build one record batch (magic v2) from sequences of values, keys, timestamps, headers."""
    cdef int codec = codec_id(compression)
    vseq = held_items(values, "values must be a sequence")
    cdef Py_ssize_t n = PySequence_Fast_GET_SIZE(vseq), i
    if n == 0:
        raise ValueError("a record batch needs at least one record")
    cdef PyObject** vitems = PySequence_Fast_ITEMS(vseq)
    cdef PyObject** kitems = NULL
    cdef PyObject** titems = NULL
    cdef PyObject** hitems = NULL
    cdef const int64_t[::1] tarr
    cdef bint ts_array = False
    if keys is not None:
        kseq = held_items(keys, "keys must be a sequence")
        if PySequence_Fast_GET_SIZE(kseq) != n:
            raise ValueError(f"{PySequence_Fast_GET_SIZE(kseq)} keys for {n} values")
        kitems = PySequence_Fast_ITEMS(kseq)
    if isinstance(timestamps, cnp.ndarray):
        tarr = np.ascontiguousarray(timestamps, dtype=np.int64)
        if tarr.shape[0] != n:
            raise ValueError(f"{tarr.shape[0]} timestamps for {n} values")
        ts_array = True
    elif timestamps is not None:
        tseq = held_items(timestamps, "timestamps must be a sequence")
        if PySequence_Fast_GET_SIZE(tseq) != n:
            raise ValueError(f"{PySequence_Fast_GET_SIZE(tseq)} timestamps for {n} values")
        titems = PySequence_Fast_ITEMS(tseq)
    if headers is not None:
        hseq = held_items(headers, "headers must be a sequence")
        if PySequence_Fast_GET_SIZE(hseq) != n:
            raise ValueError(f"{PySequence_Fast_GET_SIZE(hseq)} header lists for {n} values")
        hitems = PySequence_Fast_ITEMS(hseq)

    cdef list keepalive = []
    cdef RecordIn* recs = <RecordIn*>PyMem_Malloc(n * sizeof(RecordIn))
    if recs == NULL:
        raise MemoryError()
    cdef int64_t base_ts, max_ts, now
    cdef Py_ssize_t used, bound = BATCH_HEADER_SIZE + n * MAX_RECORD_OVERHEAD
    cdef PyObject* out = NULL
    try:
        # Python objects to C, one field at a time, with a bound on the encoded size;
        # then one pass in C lays out and writes each record.
        for i in range(n):
            set_slice(&recs[i].value, <object>vitems[i], keepalive)
            bound += recs[i].value.length
        if kitems != NULL:
            for i in range(n):
                set_slice(&recs[i].key, <object>kitems[i], keepalive)
                bound += recs[i].key.length
        else:
            for i in range(n):
                recs[i].key.length = -1
        if ts_array:
            for i in range(n):
                recs[i].timestamp = tarr[i]
        elif titems != NULL:
            for i in range(n):
                recs[i].timestamp = <int64_t>(<object>titems[i])
        else:
            now = now_ms()
            for i in range(n):
                recs[i].timestamp = now
        if hitems != NULL:
            for i in range(n):
                set_headers(&recs[i].headers, <object>hitems[i], keepalive)
                bound += recs[i].headers.length
        else:
            for i in range(n):
                recs[i].headers.length = -1
        out = new_bytes(NULL, bound)
        if out == NULL:
            raise MemoryError()
        used = BATCH_HEADER_SIZE + write_records(<uint8_t*>PyBytes_AS_STRING(<object>out)
                                                 + BATCH_HEADER_SIZE, recs, n, &base_ts, &max_ts)
        _PyBytes_Resize(&out, used)
        result = <object>out
    finally:
        PyMem_Free(recs)
        Py_XDECREF(out)
    if codec != CODEC_NONE:
        return finish_batch(<const uint8_t*>PyBytes_AS_STRING(result) + BATCH_HEADER_SIZE,
                            used - BATCH_HEADER_SIZE, codec, compression_level, base_offset,
                            partition_leader_epoch, batch_attributes(transactional),
                            <int32_t>(n - 1), base_ts, max_ts, producer_id, producer_epoch,
                            base_sequence, <int32_t>n)
    write_batch_header(<uint8_t*>PyBytes_AS_STRING(result), used, base_offset,
                       partition_leader_epoch, batch_attributes(transactional),
                       <int32_t>(n - 1), base_ts, max_ts, producer_id, producer_epoch,
                       base_sequence, <int32_t>n)
    return result


cdef Py_ssize_t write_records(uint8_t* out, const RecordIn* recs, Py_ssize_t n, int64_t* base_ts,
                              int64_t* max_ts) noexcept nogil:
    """Write n records at out; return their bytes. The base timestamp is the first record's,
    the max the largest, as Kafka's producers write them."""
    cdef int64_t base = recs[0].timestamp, top = base
    cdef uint8_t* p = out
    cdef Py_ssize_t i
    cdef RecordLayout l
    for i in range(n):
        if recs[i].timestamp > top:
            top = recs[i].timestamp
        lay_out_record(&l, &recs[i], recs[i].timestamp - base, i)
        p = write_record(p, &recs[i], &l)
    base_ts[0] = base
    max_ts[0] = top
    return p - out


@cython.final
cdef class BatchBuilder:
    """Builds one record batch record by record, refusing records past max_bytes."""
    cdef uint8_t* _buf
    cdef Py_ssize_t _len, _cap
    cdef readonly Py_ssize_t max_bytes
    cdef int _codec
    cdef object _level
    cdef int64_t _base_offset, _producer_id, _base_ts, _max_ts
    cdef int16_t _producer_epoch
    cdef int32_t _base_sequence, _count
    cdef bint _transactional

    def __cinit__(self, compression="none", *, Py_ssize_t max_bytes=1048576, int64_t base_offset=0,
                  int64_t producer_id=-1, int16_t producer_epoch=-1, int32_t base_sequence=-1,
                  bint transactional=False, compression_level=None):
        self._codec = codec_id(compression)
        self._level = compression_level
        self.max_bytes = max_bytes
        self._base_offset = base_offset
        self._producer_id = producer_id
        self._producer_epoch = producer_epoch
        self._base_sequence = base_sequence
        self._transactional = transactional
        self._cap = 4096
        self._buf = <uint8_t*>malloc(self._cap)
        if self._buf == NULL:
            raise MemoryError()
        self._len = BATCH_HEADER_SIZE
        self._count = 0

    def __dealloc__(self):
        free(self._buf)

    def __len__(self):
        return self._count

    @property
    def size_in_bytes(self):
        """Bytes of the batch so far, before compression."""
        return self._len

    def append(self, value, key=None, timestamp=None, headers=None):
        """Add a record; False (nothing added) when it would push the batch past max_bytes."""
        cdef list keepalive = []
        cdef RecordIn r
        set_slice(&r.value, value, keepalive)
        set_slice(&r.key, key, keepalive)
        set_headers(&r.headers, headers, keepalive)
        cdef int64_t ts = now_ms() if timestamp is None else <int64_t>timestamp
        cdef int64_t base_ts = ts if self._count == 0 else self._base_ts
        cdef RecordLayout l
        lay_out_record(&l, &r, ts - base_ts, self._count)
        cdef Py_ssize_t need = l.size
        cdef Py_ssize_t cap
        cdef uint8_t* grown
        if self._count and self._len + need > self.max_bytes:
            return False
        if self._len + need > self._cap:
            cap = max(self._cap * 2, self._len + need)
            grown = <uint8_t*>realloc(self._buf, cap)
            if grown == NULL:
                raise MemoryError()
            self._buf = grown
            self._cap = cap
        write_record(self._buf + self._len, &r, &l)
        self._len += need
        if self._count == 0:
            self._base_ts = self._max_ts = ts
        elif ts > self._max_ts:
            self._max_ts = ts
        self._count += 1
        return True

    def build(self):
        """The finished batch as bytes (compressed when a codec was chosen)."""
        if self._count == 0:
            raise ValueError("a record batch needs at least one record")
        cdef int16_t attrs = batch_attributes(self._transactional)
        if self._codec != CODEC_NONE:
            return finish_batch(self._buf + BATCH_HEADER_SIZE, self._len - BATCH_HEADER_SIZE,
                                self._codec, self._level, self._base_offset, -1, attrs,
                                self._count - 1, self._base_ts, self._max_ts, self._producer_id,
                                self._producer_epoch, self._base_sequence, self._count)
        write_batch_header(self._buf, self._len, self._base_offset, -1, attrs, self._count - 1,
                           self._base_ts, self._max_ts, self._producer_id, self._producer_epoch,
                           self._base_sequence, self._count)
        return PyBytes_FromStringAndSize(<const char*>self._buf, self._len)


# ---------------------------------------------------------------- parsing

@cython.final
@cython.no_gc          # holds bytes and a list of tuples: never part of a reference cycle
@cython.freelist(256)
cdef class Record:
    """One record of a batch: offset, timestamp, key, value, headers [(str, bytes | None)]."""
    cdef readonly int64_t offset
    cdef readonly int64_t timestamp
    cdef readonly object key
    cdef readonly object value
    cdef list _headers                 # None until asked for when the record has none

    def __init__(self, int64_t offset, int64_t timestamp, key, value, list headers=None):
        self.offset = offset
        self.timestamp = timestamp
        self.key = key
        self.value = value
        self._headers = headers

    @property
    def headers(self):
        if self._headers is None:
            self._headers = []
        return self._headers

    def __repr__(self):
        return (f"Record(offset={self.offset}, timestamp={self.timestamp}, key={self.key!r}, "
                f"value={self.value!r}, headers={self.headers!r})")

    def __eq__(self, other):
        if not isinstance(other, Record):
            return NotImplemented
        cdef Record o = other
        return (self.offset == o.offset and self.timestamp == o.timestamp and self.key == o.key
                and self.value == o.value and self.headers == o.headers)


cdef inline object bytes_or_none(const uint8_t* buf, Py_ssize_t start, Py_ssize_t length):
    if length < 0:
        return None
    return PyBytes_FromStringAndSize(<const char*>buf + start, length)


@cython.final
@cython.no_gc
cdef class HeldBuffer:
    """Keeps a Python buffer acquired while batches parsed from it are alive."""
    cdef Py_buffer view
    cdef object obj
    cdef object _bytes_view

    def __cinit__(self, obj):
        PyObject_GetBuffer(obj, &self.view, PyBUF_SIMPLE)
        self.obj = obj

    def __dealloc__(self):
        PyBuffer_Release(&self.view)

    cdef object byte_view(self, Py_ssize_t start, Py_ssize_t end):
        """A memoryview of bytes [start, end) of the buffer, without copying."""
        if self._bytes_view is None:
            m = memoryview(self.obj)
            self._bytes_view = m if m.format == "B" and m.ndim == 1 else m.cast("B")
        return self._bytes_view[start:end]


cdef struct ColumnScan:
    const uint8_t* buf           # in: the records section
    Py_ssize_t end
    Py_ssize_t n                 # in: record count
    int64_t base_offset
    int64_t last_delta           # in: the batch's last offset delta, which every record's delta stays within
    int64_t ts_base
    bint log_append
    Py_ssize_t shift             # in: added to key and value starts
    int64_t* out                 # in: six columns of n, one after the other
    int rc                       # out: fault code (OK) ...
    Py_ssize_t pos               # out: ... at this position (the end of the last record on success)
    Py_ssize_t done              # out: records filled


cdef void fill_columns(ColumnScan* s) noexcept nogil:
    """Scan s.n records into the six columns; stop at the first fault."""
    cdef const uint8_t* buf = s.buf
    cdef Py_ssize_t end = s.end, n = s.n, pos = 0, i = 0, shift = s.shift, start
    cdef int64_t base_offset = s.base_offset, ts_base = s.ts_base
    cdef uint64_t last_delta = <uint64_t>s.last_delta
    cdef int64_t ts_mask = 0 if s.log_append else -1     # LogAppendTime: every record at ts_base
    cdef int64_t* row = s.out
    cdef RecordView r
    cdef int rc = OK
    while i < n:
        start = pos
        rc = scan_record(buf, end, &pos, &r)
        if rc:
            break
        if <uint64_t>r.offset_delta > last_delta:
            rc, pos = BAD_OFFSET_DELTA, start
            break
        row[0] = base_offset + r.offset_delta
        row[n] = ts_base + (r.timestamp_delta & ts_mask)
        row[2 * n] = r.key_start + shift
        row[3 * n] = r.key_length
        row[4 * n] = r.value_start + shift
        row[5 * n] = r.value_length
        row += 1
        i += 1
    s.rc = rc
    s.pos = pos
    s.done = i


@cython.final
@cython.no_gc
cdef class RecordBatch:
    """One parsed record batch: every header field, and its records as objects or columns."""
    cdef readonly int64_t base_offset
    cdef readonly int32_t batch_length
    cdef readonly int32_t partition_leader_epoch
    cdef readonly int8_t magic
    cdef readonly uint32_t crc
    cdef readonly int16_t attributes
    cdef readonly int32_t last_offset_delta
    cdef readonly int64_t base_timestamp
    cdef readonly int64_t max_timestamp
    cdef readonly int64_t producer_id
    cdef readonly int16_t producer_epoch
    cdef readonly int32_t base_sequence
    cdef readonly int32_t record_count
    cdef readonly Py_ssize_t position        # byte position of the batch in the parsed buffer
    cdef HeldBuffer _held
    cdef const uint8_t* _rec                 # the records section (input or decompressed copy)
    cdef Py_ssize_t _rec_len
    cdef object _decompressed                # bytes, for compressed batches once read

    @property
    def compression(self):
        """Codec name: none, gzip, snappy, lz4 or zstd."""
        return CODEC_NAMES[self.attributes & ATTR_COMPRESSION_MASK]

    @property
    def timestamp_type(self):
        """0: CreateTime, 1: LogAppendTime."""
        return 1 if self.attributes & ATTR_TIMESTAMP_TYPE else 0

    @property
    def is_transactional(self):
        return bool(self.attributes & ATTR_TRANSACTIONAL)

    @property
    def is_control(self):
        return bool(self.attributes & ATTR_CONTROL)

    @property
    def size_in_bytes(self):
        """Bytes the whole batch takes, log overhead included."""
        return LOG_OVERHEAD + self.batch_length

    @property
    def last_offset(self):
        return self.base_offset + self.last_offset_delta

    @property
    def next_offset(self):
        return self.base_offset + self.last_offset_delta + 1

    def __repr__(self):
        return (f"RecordBatch(base_offset={self.base_offset}, record_count={self.record_count}, "
                f"compression={self.compression!r}, batch_length={self.batch_length})")

    cdef int load_records(self) except -1:
        """Point _rec at the records section, decompressing it the first time."""
        cdef Py_ssize_t start = self.position + BATCH_HEADER_SIZE
        cdef int codec = self.attributes & ATTR_COMPRESSION_MASK
        if self._rec != NULL:
            return 0
        if codec != CODEC_NONE:
            section = self._held.byte_view(start, self.position + LOG_OVERHEAD + self.batch_length)
            self._decompressed = decompress(codec, section, batch_limit(self.record_count))
            self._rec = <const uint8_t*>PyBytes_AS_STRING(self._decompressed)
            self._rec_len = PyBytes_GET_SIZE(self._decompressed)
        else:
            self._rec = <const uint8_t*>self._held.view.buf + start
            self._rec_len = self.position + LOG_OVERHEAD + self.batch_length - start
        if self.record_count > self._rec_len // MIN_RECORD_SIZE:
            raise CorruptRecordError(
                f"record count {self.record_count} cannot fit in {self._rec_len} bytes "
                f"of the batch at byte {self.position}")
        return 0

    cdef fault(self, int rc, Py_ssize_t pos, int64_t index):
        where = (f"byte {self.position + BATCH_HEADER_SIZE + pos}"
                 if self._decompressed is None else
                 f"byte {pos} of the decompressed records of the batch at byte {self.position}")
        if (rc == LENGTH_MISMATCH and index < 0) or pos == self._rec_len:
            raise CorruptRecordError(
                f"record count {self.record_count} disagrees with the data: "
                f"{'data ends before record ' + str(index) if index >= 0 else 'bytes left after the last record'}, {where}")
        raise CorruptRecordError(f"{FAULT_TEXT[rc]} in record {index}: {where}")

    cdef list read_headers(self, const RecordView* r, int64_t index):
        cdef Py_ssize_t hpos = r.headers_start, end = self._rec_len
        cdef const uint8_t* buf = self._rec
        cdef int64_t j, klen, vlen
        cdef list headers = []
        read_varint(buf, end, &hpos, &j)
        for j in range(r.header_count):
            read_varint(buf, end, &hpos, &klen)
            try:
                hkey = PyUnicode_DecodeUTF8(<const char*>buf + hpos, klen, NULL)
            except UnicodeDecodeError:
                raise CorruptRecordError(f"header key is not UTF-8 in record {index}: "
                                         f"byte {hpos} of the records section") from None
            hpos += klen
            read_varint(buf, end, &hpos, &vlen)
            headers.append((hkey, bytes_or_none(buf, hpos, vlen)))
            if vlen > 0:
                hpos += vlen
        return headers

    def records(self):
        """The records as a list of Record objects."""
        self.load_records()
        cdef const uint8_t* buf = self._rec
        cdef Py_ssize_t end = self._rec_len, pos = 0, start
        cdef RecordView r
        cdef int rc
        cdef int64_t i
        cdef bint log_append = self.attributes & ATTR_TIMESTAMP_TYPE
        cdef int64_t ts_base = self.max_timestamp if log_append else self.base_timestamp
        cdef list out = PyList_New(self.record_count)
        cdef Record rec
        for i in range(self.record_count):
            start = pos
            rc = scan_record(buf, end, &pos, &r)
            if rc:
                self.fault(rc, pos, i)
            if <uint64_t>r.offset_delta > <uint64_t>self.last_offset_delta:
                self.fault(BAD_OFFSET_DELTA, start, i)
            rec = Record.__new__(Record)
            rec.offset = self.base_offset + r.offset_delta
            rec.timestamp = ts_base if log_append else ts_base + r.timestamp_delta
            rec.key = bytes_or_none(buf, r.key_start, r.key_length)
            rec.value = bytes_or_none(buf, r.value_start, r.value_length)
            if r.header_count:
                rec._headers = self.read_headers(&r, i)
            Py_INCREF(rec)
            PyList_SET_ITEM(out, i, rec)
        if pos != end:
            self.fault(LENGTH_MISMATCH, pos, -1)
        return out

    def columns(self):
        """Zero-copy columns: int64 arrays offset, timestamp, key_start, key_length,
        value_start, value_length (length -1 for null) and `data`, the buffer the starts index:
        the buffer given to parse_batches for an uncompressed batch, else the decompressed records."""
        self.load_records()
        cdef Py_ssize_t n = self.record_count, i
        cdef cnp.npy_intp dims[2]
        dims[0] = N_COLUMNS
        dims[1] = n
        # One allocation for all six columns; each column is a row view of it.
        block = cnp.PyArray_EMPTY(2, dims, cnp.NPY_INT64, 0)
        cdef ColumnScan scan
        scan.buf = self._rec
        scan.end = self._rec_len
        scan.n = n
        scan.base_offset = self.base_offset
        scan.last_delta = self.last_offset_delta
        scan.log_append = self.attributes & ATTR_TIMESTAMP_TYPE
        scan.ts_base = self.max_timestamp if scan.log_append else self.base_timestamp
        # Uncompressed: starts index the caller's own buffer; compressed: the decompressed copy.
        scan.shift = 0 if self._decompressed is not None else self.position + BATCH_HEADER_SIZE
        scan.out = <int64_t*>cnp.PyArray_DATA(block)
        # Small batches keep the GIL: releasing and taking it back costs more than their scan.
        if scan.end >= CRC_GIL_RELEASE_BYTES:
            with nogil:
                fill_columns(&scan)
        else:
            fill_columns(&scan)
        if scan.rc:
            self.fault(scan.rc, scan.pos, scan.done)
        if scan.pos != scan.end:
            self.fault(LENGTH_MISMATCH, scan.pos, -1)
        cdef dict out = _PyDict_NewPresized(N_COLUMNS + 1)
        dims[0] = n
        for i in range(N_COLUMNS):
            column = cnp.PyArray_SimpleNewFromData(1, dims, cnp.NPY_INT64, scan.out + i * n)
            cnp.set_array_base(column, block)
            out[COLUMN_NAMES[i]] = column
        out["data"] = self._held.obj if self._decompressed is None else self._decompressed
        return out


cdef RecordBatch read_batch_header(HeldBuffer held, Py_ssize_t pos, bint verify_crc):
    """Validate the header of the complete batch at pos and wrap it."""
    cdef const uint8_t* p = <const uint8_t*>held.view.buf + pos
    cdef RecordBatch b = RecordBatch.__new__(RecordBatch)
    cdef uint32_t actual
    b._held = held
    b.position = pos
    b.base_offset = <int64_t>load_be64(p + BATCH_BASE_OFFSET)
    b.batch_length = <int32_t>load_be32(p + BATCH_LENGTH)
    b.partition_leader_epoch = <int32_t>load_be32(p + BATCH_PARTITION_LEADER_EPOCH)
    b.magic = <int8_t>p[BATCH_MAGIC]
    b.crc = load_be32(p + BATCH_CRC)
    b.attributes = <int16_t>load_be16(p + BATCH_ATTRIBUTES)
    b.last_offset_delta = <int32_t>load_be32(p + BATCH_LAST_OFFSET_DELTA)
    b.base_timestamp = <int64_t>load_be64(p + BATCH_BASE_TIMESTAMP)
    b.max_timestamp = <int64_t>load_be64(p + BATCH_MAX_TIMESTAMP)
    b.producer_id = <int64_t>load_be64(p + BATCH_PRODUCER_ID)
    b.producer_epoch = <int16_t>load_be16(p + BATCH_PRODUCER_EPOCH)
    b.base_sequence = <int32_t>load_be32(p + BATCH_BASE_SEQUENCE)
    b.record_count = <int32_t>load_be32(p + BATCH_RECORD_COUNT)
    if (b.attributes & ATTR_COMPRESSION_MASK) > CODEC_ZSTD:
        raise CorruptRecordError(f"unknown compression codec {b.attributes & ATTR_COMPRESSION_MASK} "
                                 f"at byte {pos + BATCH_ATTRIBUTES}")
    if b.record_count < 0:
        raise CorruptRecordError(f"negative record count at byte {pos + BATCH_RECORD_COUNT}")
    if b.last_offset_delta < 0:
        raise CorruptRecordError(f"negative last offset delta {b.last_offset_delta} at byte "
                                 f"{pos + BATCH_LAST_OFFSET_DELTA}")
    if b.base_offset > INT64_MAX - 1 - b.last_offset_delta:      # the next offset must be an int64 too
        raise CorruptRecordError(f"base offset {b.base_offset} plus last offset delta {b.last_offset_delta} "
                                 f"overflows at byte {pos}")
    if verify_crc:
        if b.batch_length >= CRC_GIL_RELEASE_BYTES:
            with nogil:
                actual = cp_crc32c(0, p + BATCH_ATTRIBUTES, b.batch_length + LOG_OVERHEAD - BATCH_ATTRIBUTES)
        else:
            actual = cp_crc32c(0, p + BATCH_ATTRIBUTES, b.batch_length + LOG_OVERHEAD - BATCH_ATTRIBUTES)
        if actual != b.crc:
            raise CorruptRecordError(
                f"CRC mismatch in batch at byte {pos}: stored {b.crc:#010x}, computed {actual:#010x}")
    return b


def parse_batches(data, *, bint verify_crc=True):
    """Parse concatenated record batches (v2). A trailing partial batch after complete ones
    is skipped, as Fetch responses end with one; anything malformed raises CorruptRecordError."""
    cdef HeldBuffer held = HeldBuffer(data)
    cdef const uint8_t* view = <const uint8_t*>held.view.buf
    cdef Py_ssize_t n = held.view.len, pos = 0
    cdef int64_t length
    cdef list out = []
    while pos < n:
        if n - pos < LOG_OVERHEAD + BATCH_MIN_LENGTH:
            if out:
                break
            raise CorruptRecordError(f"truncated batch header at byte {pos}: {n - pos} bytes")
        length = <int32_t>load_be32(view + pos + BATCH_LENGTH)
        if view[pos + BATCH_MAGIC] != CURRENT_MAGIC:
            raise CorruptRecordError(
                f"unsupported magic {view[pos + BATCH_MAGIC]} at byte {pos + BATCH_MAGIC}")
        if length < BATCH_MIN_LENGTH:
            raise CorruptRecordError(f"batch length {length} out of range at byte {pos + BATCH_LENGTH}")
        if length > n - pos - LOG_OVERHEAD:
            if out:
                break
            raise CorruptRecordError(
                f"truncated batch at byte {pos}: needs {length + LOG_OVERHEAD} bytes, {n - pos} remain")
        out.append(read_batch_header(held, pos, verify_crc))
        pos += LOG_OVERHEAD + length
    return out
