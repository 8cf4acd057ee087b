# Record batches, magic v2: building, in bulk (build_batch) and record by record (BatchBuilder).
#
# One record inside a batch:
#   length varint | attributes int8 | timestampDelta varlong | offsetDelta varint |
#   keyLength varint (-1: null) | key | valueLength varint (-1: null) | value |
#   headerCount varint | headers: keyLength varint, key (UTF-8), valueLength varint (-1: null), value
cimport cython
cimport numpy as cnp
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize, PyBytes_GET_SIZE
from cpython.mem cimport PyMem_Free, PyMem_Malloc
from cpython.object cimport PyObject
from cpython.ref cimport Py_XDECREF
from cpython.sequence cimport PySequence_Fast_GET_SIZE, PySequence_Fast_ITEMS
from cpython.unicode cimport PyUnicode_AsUTF8AndSize
from libc.stdint cimport int16_t, int32_t, int64_t, uint8_t, uint16_t, uint32_t, uint64_t
from libc.stdlib cimport free, malloc, realloc
from libc.string cimport memcpy

from chronik_perf.native.includes.batch_layout cimport (ATTR_TRANSACTIONAL, BATCH_ATTRIBUTES, BATCH_BASE_OFFSET,
                                                        BATCH_BASE_SEQUENCE, BATCH_BASE_TIMESTAMP, BATCH_CRC,
                                                        BATCH_HEADER_SIZE, BATCH_LAST_OFFSET_DELTA, BATCH_LENGTH,
                                                        BATCH_MAGIC, BATCH_MAX_TIMESTAMP, BATCH_PARTITION_LEADER_EPOCH,
                                                        BATCH_PRODUCER_EPOCH, BATCH_PRODUCER_ID, BATCH_RECORD_COUNT,
                                                        CURRENT_MAGIC, LOG_OVERHEAD)
from chronik_perf.native.includes.crc32c cimport cp_crc32c
from chronik_perf.native.includes.endian cimport store_be16, store_be32, store_be64
from chronik_perf.native.includes.python cimport (PyBytes_Type, PyLong_Type, _PyBytes_Resize, bytes_alloc, bytes_data,
                                                  size_of, type_of)
from chronik_perf.native.includes.varint cimport uvarint_size, write_uvarint, zigzag_encode

import time

import numpy as np

cnp.import_array()

cdef enum:
    # A record takes at most this plus its key, value and encoded headers lengths (each >= -1):
    # length, timestamp and offset varints of 10 bytes, attributes, and 11 + length for each
    # of key and value, 2 + length for the headers (null parts take one byte).
    MAX_RECORD_OVERHEAD = 55


cdef struct Slice:
    const uint8_t* ptr
    Py_ssize_t length            # -1: null


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


def build_batch(values, keys=None, *, timestamps=None, headers=None, int64_t base_offset=0,
                compression="none", compression_level=None, int64_t producer_id=-1,
                int16_t producer_epoch=-1, int32_t base_sequence=-1, bint transactional=False,
                int32_t partition_leader_epoch=-1):
    """Build one record batch (magic v2) from sequences of values, keys, timestamps, headers."""
    cdef int codec = codec_id(compression)
    cdef const int64_t[::1] tarr = None
    if isinstance(timestamps, cnp.ndarray):
        tarr = np.ascontiguousarray(timestamps, dtype=np.int64)
    cdef int64_t now = now_ms() if timestamps is None else 0
    cdef EncodedRecords enc
    result = encode_plain(&enc, values, keys, timestamps, tarr, headers, now)
    if result is None:
        result = encode_held(&enc, values, keys, timestamps, tarr, headers, now)
    cdef Py_ssize_t n = enc.n
    if codec != CODEC_NONE:
        return finish_batch(<const uint8_t*>PyBytes_AS_STRING(result) + BATCH_HEADER_SIZE,
                            enc.used - BATCH_HEADER_SIZE, codec, compression_level, base_offset,
                            partition_leader_epoch, batch_attributes(transactional),
                            <int32_t>(n - 1), enc.base_ts, enc.max_ts, producer_id, producer_epoch,
                            base_sequence, <int32_t>n)
    write_batch_header(<uint8_t*>PyBytes_AS_STRING(result), enc.used, base_offset,
                       partition_leader_epoch, batch_attributes(transactional),
                       <int32_t>(n - 1), enc.base_ts, enc.max_ts, producer_id, producer_epoch,
                       base_sequence, <int32_t>n)
    return result


cdef struct EncodedRecords:
    Py_ssize_t n                 # records
    Py_ssize_t used              # bytes of the batch, header included
    int64_t base_ts
    int64_t max_ts


cdef inline bint plain_sequence(object obj) noexcept:
    return type(obj) is list or type(obj) is tuple


cdef inline bint plain_slice(Slice* s, PyObject* obj) noexcept:
    """A bytes or None item as a slice, without touching its reference count; False for anything else."""
    if type_of(obj) == &PyBytes_Type:
        s.ptr = <const uint8_t*>bytes_data(obj)
        s.length = size_of(obj)
        return True
    if obj == <PyObject*>None:
        s.ptr = NULL
        s.length = -1
        return True
    return False


cdef Py_ssize_t fill_plain(RecordIn* recs, Py_ssize_t n, PyObject** vitems, PyObject** kitems,
                           PyObject** titems, const int64_t* tvalues, int64_t now) except -2:
    """Fill recs from borrowed items when every value and key is bytes or None and every timestamp an int: the
    bound on the encoded batch's size, else -1. Runs no Python code (an int beyond int64 raises OverflowError)."""
    cdef Py_ssize_t i, bound = BATCH_HEADER_SIZE + n * MAX_RECORD_OVERHEAD
    cdef PyObject* t
    for i in range(n):
        if not plain_slice(&recs[i].value, vitems[i]):
            return -1
        bound += recs[i].value.length
        if kitems == NULL:
            recs[i].key.length = -1
        elif plain_slice(&recs[i].key, kitems[i]):
            bound += recs[i].key.length
        else:
            return -1
        if titems != NULL:
            t = titems[i]
            if type_of(t) != &PyLong_Type:
                return -1
            recs[i].timestamp = <int64_t><object>t
        else:
            recs[i].timestamp = tvalues[i] if tvalues != NULL else now
        recs[i].headers.length = -1
    return bound


cdef object encode_plain(EncodedRecords* enc, object values, object keys, object timestamps,
                         const int64_t[::1] tarr, object headers, int64_t now):
    """The records written after room for the header, straight from the caller's lists, when no Python code can
    run between reading their items and writing them (lists or tuples of bytes or None, int timestamps, no
    headers): nothing can change the lists or free an item meanwhile. None when the batch needs encode_held."""
    if headers is not None or not plain_sequence(values):
        return None
    cdef Py_ssize_t n = PySequence_Fast_GET_SIZE(values)
    if n == 0 or (keys is not None and (not plain_sequence(keys) or PySequence_Fast_GET_SIZE(keys) != n)):
        return None
    if tarr is not None:
        if tarr.shape[0] != n:
            return None
    elif timestamps is not None and (not plain_sequence(timestamps) or PySequence_Fast_GET_SIZE(timestamps) != n):
        return None
    cdef RecordIn* recs = <RecordIn*>PyMem_Malloc(n * sizeof(RecordIn))
    if recs == NULL:
        raise MemoryError()
    cdef Py_ssize_t bound
    try:
        bound = fill_plain(recs, n, PySequence_Fast_ITEMS(values),
                           PySequence_Fast_ITEMS(keys) if keys is not None else NULL,
                           PySequence_Fast_ITEMS(timestamps) if tarr is None and timestamps is not None else NULL,
                           &tarr[0] if tarr is not None else NULL, now)
        return records_bytes(enc, recs, n, bound) if bound >= 0 else None
    finally:
        PyMem_Free(recs)


cdef object records_bytes(EncodedRecords* enc, const RecordIn* recs, Py_ssize_t n, Py_ssize_t bound):
    """n records written into new bytes after room for the header (bound: at least their size), shrunk to fit."""
    cdef PyObject* out = bytes_alloc(NULL, bound)
    enc.n = n
    enc.used = BATCH_HEADER_SIZE + write_records(<uint8_t*>bytes_data(out) + BATCH_HEADER_SIZE, recs, n,
                                                 &enc.base_ts, &enc.max_ts)
    _PyBytes_Resize(&out, enc.used)          # on failure it frees the bytes
    result = <object>out
    Py_XDECREF(out)
    return result


cdef object encode_held(EncodedRecords* enc, object values, object keys, object timestamps,
                        const int64_t[::1] tarr, object headers, int64_t now):
    """The records written after room for the header, from any sequences and buffers: their items held in tuples
    (and non-bytes values copied) before any pointer into them is taken, since converting a timestamp or reading
    headers runs the caller's code."""
    vseq = held_items(values, "values must be a sequence")
    cdef Py_ssize_t n = PySequence_Fast_GET_SIZE(vseq), i
    if n == 0:
        raise ValueError("a record batch needs at least one record")
    cdef PyObject** vitems = PySequence_Fast_ITEMS(vseq)
    cdef PyObject** kitems = NULL
    cdef PyObject** titems = NULL
    cdef PyObject** hitems = NULL
    if keys is not None:
        kseq = held_items(keys, "keys must be a sequence")
        if PySequence_Fast_GET_SIZE(kseq) != n:
            raise ValueError(f"{PySequence_Fast_GET_SIZE(kseq)} keys for {n} values")
        kitems = PySequence_Fast_ITEMS(kseq)
    if tarr is not None:
        if tarr.shape[0] != n:
            raise ValueError(f"{tarr.shape[0]} timestamps for {n} values")
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
    cdef Py_ssize_t bound = BATCH_HEADER_SIZE + n * MAX_RECORD_OVERHEAD
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
        if tarr is not None:
            for i in range(n):
                recs[i].timestamp = tarr[i]
        elif titems != NULL:
            for i in range(n):
                recs[i].timestamp = <int64_t>(<object>titems[i])
        else:
            for i in range(n):
                recs[i].timestamp = now
        if hitems != NULL:
            for i in range(n):
                set_headers(&recs[i].headers, <object>hitems[i], keepalive)
                bound += recs[i].headers.length
        else:
            for i in range(n):
                recs[i].headers.length = -1
        return records_bytes(enc, recs, n, bound)
    finally:
        PyMem_Free(recs)


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
