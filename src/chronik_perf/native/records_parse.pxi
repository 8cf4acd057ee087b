# Record batches, magic v2: parsing, into Record objects or zero-copy numpy columns.
cimport cython
cimport numpy as cnp
from cpython.buffer cimport PyBUF_SIMPLE, PyBuffer_Release, PyObject_GetBuffer
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize, PyBytes_GET_SIZE
from cpython.list cimport PyList_New, PyList_SET_ITEM
from cpython.mem cimport PyMem_Free, PyMem_Malloc
from cpython.ref cimport Py_INCREF
from cpython.unicode cimport PyUnicode_DecodeUTF8
from libc.stdint cimport INT64_MAX, INT64_MIN, int8_t, int16_t, int32_t, int64_t, uint8_t, uint32_t, uint64_t

from chronik_perf.native.includes.batch_layout cimport (ATTR_COMPRESSION_MASK, ATTR_CONTROL, ATTR_TIMESTAMP_TYPE,
                                                        ATTR_TRANSACTIONAL, BATCH_ATTRIBUTES, BATCH_BASE_OFFSET,
                                                        BATCH_BASE_SEQUENCE, BATCH_BASE_TIMESTAMP, BATCH_CRC,
                                                        BATCH_HEADER_SIZE, BATCH_LAST_OFFSET_DELTA, BATCH_LENGTH,
                                                        BATCH_MAGIC, BATCH_MAX_TIMESTAMP, BATCH_PARTITION_LEADER_EPOCH,
                                                        BATCH_PRODUCER_EPOCH, BATCH_PRODUCER_ID, BATCH_RECORD_COUNT,
                                                        LOG_OVERHEAD)
from chronik_perf.native.includes.endian cimport load_be16, load_be32, load_be64
from chronik_perf.native.includes.record_scan cimport LENGTH_MISMATCH, MIN_RECORD_SIZE, OK, RecordView, scan_record
from chronik_perf.native.includes.varint cimport read_varint

import collections.abc

cdef enum:
    N_COLUMNS = 6
    SMALL_ROWS = 4               # columns of up to this many records live inside their Columns object

cdef tuple COLUMN_KEYS = ("offset", "timestamp", "key_start", "key_length", "value_start", "value_length", "data")
cdef dict COLUMN_INDEX = {name: i for i, name in enumerate(COLUMN_KEYS)}

# Texts of record_scan.h's fault codes, by code.
cdef tuple FAULT_TEXT = (
    "", "truncated varint", "varint longer than 10 bytes", "record length out of range",
    "key length out of range", "value length out of range", "header count out of range",
    "header key length out of range", "header value length out of range",
    "record length disagrees with its contents", "offset delta outside the batch's offset range",
    "timestamp delta takes the timestamp outside the 64-bit range",
)
cdef enum:
    BAD_OFFSET_DELTA = 10        # after record_scan.h's codes: an offset delta outside [0, last offset delta]
    BAD_TIMESTAMP_DELTA = 11     # base timestamp + timestamp delta overflows int64


cdef inline bint add_overflows(int64_t a, int64_t b) noexcept nogil:
    """a + b is outside int64 (checked before adding: signed overflow is undefined in C)."""
    return (b > 0 and a > INT64_MAX - b) or (b < 0 and a < INT64_MIN - b)


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
        if add_overflows(ts_base, r.timestamp_delta & ts_mask):
            rc, pos = BAD_TIMESTAMP_DELTA, start
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
            if not log_append and add_overflows(ts_base, r.timestamp_delta):
                self.fault(BAD_TIMESTAMP_DELTA, start, i)
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
        """The records as a Columns mapping: int64 arrays offset, timestamp, key_start, key_length, value_start,
        value_length (length -1 for null) over one block, and `data`, the buffer the starts index: the buffer given
        to parse_batches for an uncompressed batch, else the decompressed records."""
        self.load_records()
        cdef Columns out = Columns.__new__(Columns)
        out.allocate(self.record_count)
        cdef ColumnScan scan
        scan.buf = self._rec
        scan.end = self._rec_len
        scan.n = out._n
        scan.base_offset = self.base_offset
        scan.last_delta = self.last_offset_delta
        scan.log_append = self.attributes & ATTR_TIMESTAMP_TYPE
        scan.ts_base = self.max_timestamp if scan.log_append else self.base_timestamp
        # Uncompressed: starts index the caller's own buffer; compressed: the decompressed copy.
        scan.shift = 0 if self._decompressed is not None else self.position + BATCH_HEADER_SIZE
        scan.out = out._block
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
        out._data = self._held.obj if self._decompressed is None else self._decompressed
        return out


@cython.final
@cython.no_gc                # holds its block and the batch's buffer: never part of a reference cycle
@cython.freelist(64)
cdef class Columns:
    """A parsed batch's records as columns, a read-only mapping: six int64 arrays (offset, timestamp, key_start,
    key_length, value_start, value_length), each a view of one block of the batch's scan made when asked for,
    and "data", the buffer the starts index."""
    cdef int64_t* _block         # N_COLUMNS columns of _n values, one after the other
    cdef Py_ssize_t _n
    cdef object _data
    cdef int64_t _small[N_COLUMNS * SMALL_ROWS]

    def __dealloc__(self):
        if self._block != self._small:
            PyMem_Free(self._block)

    cdef int allocate(self, Py_ssize_t n) except -1:
        """Room for n records' columns: inside the object for small batches, else one allocation."""
        if n <= SMALL_ROWS:
            self._block = self._small
        else:
            self._block = <int64_t*>PyMem_Malloc(N_COLUMNS * n * sizeof(int64_t))
            if self._block == NULL:
                raise MemoryError()
        self._n = n
        return 0

    cdef object column(self, Py_ssize_t i):
        """Column i as an int64 array over the block, which the array keeps alive."""
        cdef cnp.npy_intp dims[1]
        dims[0] = self._n
        array = cnp.PyArray_SimpleNewFromData(1, dims, cnp.NPY_INT64, self._block + i * self._n)
        cnp.set_array_base(array, self)
        return array

    def __getitem__(self, key):
        index = COLUMN_INDEX.get(key)
        if index is None:
            raise KeyError(key)
        cdef Py_ssize_t i = index
        return self._data if i == N_COLUMNS else self.column(i)

    def __len__(self):
        return N_COLUMNS + 1

    def __iter__(self):
        return iter(COLUMN_KEYS)

    def __contains__(self, key):
        return key in COLUMN_INDEX

    def keys(self):
        """The seven names, columns first and "data" last."""
        return COLUMN_KEYS

    def values(self):
        """The six arrays and the data, in the order of keys()."""
        return [self[name] for name in COLUMN_KEYS]

    def items(self):
        """(name, array) pairs and ("data", buffer) last."""
        return [(name, self[name]) for name in COLUMN_KEYS]

    def get(self, key, default=None):
        """The value under key, else default."""
        return self[key] if key in COLUMN_INDEX else default

    def __repr__(self):
        return f"Columns(records={self._n}, offset={self['offset']!r})"


collections.abc.Mapping.register(Columns)


cdef RecordBatch read_batch_header(HeldBuffer held, Py_ssize_t pos):
    """Wrap the batch at pos, which frame_batch accepted."""
    cdef const uint8_t* p = <const uint8_t*>held.view.buf + pos
    cdef RecordBatch b = RecordBatch.__new__(RecordBatch)
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
    return b


def parse_batches(data, *, bint verify_crc=True):
    """Parse concatenated record batches (v2). A trailing partial batch after complete ones
    is skipped, as Fetch responses end with one; anything malformed raises CorruptRecordError."""
    cdef HeldBuffer held = HeldBuffer(data)
    cdef const uint8_t* view = <const uint8_t*>held.view.buf
    cdef Py_ssize_t n = held.view.len, pos = 0
    cdef BatchHead head
    cdef int rc
    cdef list out = []
    while pos < n:
        rc = frame_batch(view, n, pos, False, &head)
        if rc == FRAME_OK and verify_crc:
            # Small batches keep the GIL: releasing and taking it back costs more than their CRC.
            if head.size >= CRC_GIL_RELEASE_BYTES:
                with nogil:
                    rc = FRAME_OK if batch_crc_matches(view + pos, head.size) else FRAME_BAD_CRC
            elif not batch_crc_matches(view + pos, head.size):
                rc = FRAME_BAD_CRC
        if rc != FRAME_OK:
            if out and frame_is_partial(rc):
                break
            raise CorruptRecordError(frame_problem(rc, view, n, pos))
        out.append(read_batch_header(held, pos))
        pos += head.size
    return out
