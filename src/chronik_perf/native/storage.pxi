# Kafka log segments on disk: <20-digit base offset>.log (record batches back to back) with its .index and
# .timeindex; storage.Log (Python) keeps a partition directory of them. Offsets, index entries and recovery follow
# Kafka's LogSegment: an index entry (last offset of the batch, its position) whenever more than index_interval_bytes
# were appended since the last entry, and the time index tracks (largest timestamp so far, last offset of its batch).
import os

import numpy as np

from cpython.buffer cimport PyBUF_SIMPLE, PyBuffer_Release, PyObject_GetBuffer
from cpython.bytes cimport PyBytes_FromStringAndSize
from cpython.pythread cimport (NOWAIT_LOCK, PyThread_acquire_lock, PyThread_allocate_lock, PyThread_free_lock,
                               PyThread_release_lock, PyThread_type_lock, WAIT_LOCK)
from libc.errno cimport errno
from libc.stdint cimport INT32_MAX, INT64_MIN, int32_t, int64_t, uint64_t, uint8_t
from posix.types cimport off_t
from posix.uio cimport iovec, pwritev

from chronik_perf.native.includes.batch_layout cimport BATCH_HEADER_SIZE, BATCH_LAST_OFFSET_DELTA
from chronik_perf.native.includes.endian cimport load_be32, store_be64

DEFAULT_INDEX_INTERVAL_BYTES = 4096         # Kafka's index.interval.bytes default
DEFAULT_SEGMENT_BYTES = 1073741824          # Kafka's segment.bytes default

cdef enum:
    # outcomes of scanning a segment against its indexes
    SEG_OK = 0
    SEG_FRAME = 1
    SEG_ORDER = 2
    SEG_OFFSET_ENTRY = 3
    SEG_TIME_ENTRY = 4


cdef struct SegmentScan:
    int problem                   # SEG_*
    int frame                     # the FRAME_* code when problem is SEG_FRAME
    Py_ssize_t position           # byte of the offending batch
    Py_ssize_t entry              # slot of the offending index entry
    int64_t next_offset
    int64_t max_timestamp
    int64_t offset_of_max_timestamp


cdef void _scan_segment(const uint8_t* log, Py_ssize_t size, int64_t base_offset, OffsetIndex offsets,
                        TimeIndex times, SegmentScan* out) noexcept nogil:
    """Walk every batch header of a .log. Offset index entries must sit on batch starts, at a batch whose base
    offset is <= the entry's offset; a time index entry (T, O) must name the batch holding O, whose max timestamp
    is T and above every earlier batch's (Kafka's rule). Every entry must be used up by the end of the log."""
    cdef Py_ssize_t pos = 0, oi = 0, ti = 0
    cdef BatchHead head
    cdef int64_t prefix_max = INT64_MIN
    out.problem = SEG_OK
    out.next_offset = base_offset
    out.max_timestamp = NO_TIMESTAMP
    out.offset_of_max_timestamp = base_offset
    while pos < size:
        out.position = pos
        out.frame = frame_batch(log, size, pos, False, &head)
        if out.frame != FRAME_OK:
            out.problem = SEG_FRAME
            return
        if head.base_offset < out.next_offset:
            out.problem = SEG_ORDER
            return
        while oi < offsets.n and _offset_value(offsets.data, oi) <= pos:
            if _offset_value(offsets.data, oi) < pos or base_offset + _offset_key(offsets.data, oi) < head.base_offset:
                out.problem, out.entry = SEG_OFFSET_ENTRY, oi
                return
            oi += 1
        while ti < times.n and base_offset + _time_value(times.data, ti) <= head.last_offset:
            if (base_offset + _time_value(times.data, ti) < head.base_offset
                    or _time_key(times.data, ti) != head.max_timestamp or prefix_max >= head.max_timestamp):
                out.problem, out.entry = SEG_TIME_ENTRY, ti
                return
            ti += 1
        if head.max_timestamp > prefix_max:
            prefix_max = head.max_timestamp
        if head.max_timestamp > out.max_timestamp:
            out.max_timestamp, out.offset_of_max_timestamp = head.max_timestamp, head.last_offset
        out.next_offset = head.last_offset + 1
        pos += head.size
    if oi < offsets.n:
        out.problem, out.entry = SEG_OFFSET_ENTRY, oi
    elif ti < times.n:
        out.problem, out.entry = SEG_TIME_ENTRY, ti


def segment_file_name(int64_t base_offset, str suffix):
    """Kafka's file name for a segment file: the base offset as 20 zero-padded digits plus the suffix."""
    return f"{base_offset:020d}{suffix}"


cdef class LogSegment:
    """One Kafka log segment: <base>.log, <base>.index and <base>.timeindex in `directory`.

    An existing segment opens read-only and becomes writable on the first append or recover(); create=True makes
    new empty files. max_bytes bounds the .log size (a batch always fits an empty segment).
    """
    cdef readonly object directory
    cdef readonly int64_t base_offset
    cdef readonly Py_ssize_t index_interval_bytes
    cdef readonly Py_ssize_t max_bytes
    cdef readonly OffsetIndex offset_index
    cdef readonly TimeIndex time_index
    cdef MappedFile log
    cdef Py_ssize_t log_size
    cdef int64_t next_offset_
    cdef Py_ssize_t bytes_since_index_entry
    cdef int64_t max_ts
    cdef int64_t offset_of_max_ts
    cdef bint writable
    cdef bint closed
    cdef Py_ssize_t max_index_size
    cdef readonly object damage
    # One public call at a time: its GIL-free sections (scans, pwritev) keep the mapping and the descriptor they
    # started with, since nothing that unmaps, remaps or closes them can run meanwhile.
    cdef PyThread_type_lock lock

    def __cinit__(self, *args, **kwargs):
        self.lock = PyThread_allocate_lock()
        if self.lock == NULL:
            raise MemoryError()

    def __dealloc__(self):
        if self.lock != NULL:
            PyThread_free_lock(self.lock)

    cdef int _lock(self) except -1:
        """Take the segment's lock, waiting for it without the GIL."""
        if not PyThread_acquire_lock(self.lock, NOWAIT_LOCK):
            with nogil:
                PyThread_acquire_lock(self.lock, WAIT_LOCK)
        return 0

    def __init__(self, directory, int64_t base_offset, *, Py_ssize_t index_interval_bytes=DEFAULT_INDEX_INTERVAL_BYTES,
                 Py_ssize_t max_bytes=DEFAULT_SEGMENT_BYTES, bint create=False,
                 Py_ssize_t max_index_size=DEFAULT_MAX_INDEX_SIZE):
        if base_offset < 0:
            raise ValueError(f"base_offset must not be negative, got {base_offset}")
        if not 0 < max_bytes <= INT32_MAX:
            raise ValueError(f"max_bytes must be in 1..2^31-1 (index positions are int32), got {max_bytes}")
        self.directory = os.fspath(directory)
        self.base_offset = base_offset
        self.index_interval_bytes = index_interval_bytes
        self.max_bytes = max_bytes
        self.max_index_size = max_index_size
        if create:
            if os.path.exists(self.log_path) and os.path.getsize(self.log_path):
                raise FileExistsError(f"{self.log_path} already holds data")
            for path in (self.offset_index_path, self.time_index_path):
                if os.path.exists(path):
                    os.remove(path)
            self.log = MappedFile(self.log_path, True, True)
            self.writable = True
            self.offset_index = OffsetIndex(self.offset_index_path, base_offset, writable=True,
                                            max_index_size=max_index_size)
            self.time_index = TimeIndex(self.time_index_path, base_offset, writable=True,
                                        max_index_size=max_index_size)
        else:
            self.log = MappedFile(self.log_path)
        self.log_size = self.log.file_size()
        if self.log_size > INT32_MAX:
            raise CorruptLogError(f"{self.log_path}: {self.log_size} bytes exceeds int32 positions")
        try:
            if not create:
                self.offset_index = self._open_index(OffsetIndex, self.offset_index_path)
                self.time_index = self._open_index(TimeIndex, self.time_index_path)
            self._load_state()
        except CorruptLogError as exc:
            # like Kafka, a damaged segment still opens: reads refuse until recover() repairs it
            self.damage = str(exc)
            self.offset_index, self.time_index = OffsetIndex(b"", base_offset), TimeIndex(b"", base_offset)

    cdef _open_index(self, cls, str path):
        """An existing index file, or an empty in-memory one when it is missing (lookups then scan the log)."""
        return cls(path if os.path.exists(path) else b"", self.base_offset)

    cdef int _load_state(self) except -1:
        """Next offset and largest timestamp from a scan of every batch header, checking on the way that each
        index entry tells the truth about the .log (so a lookup can never send a read to the wrong place)."""
        cdef SegmentScan scan
        self._map_log()
        self._enter()
        try:
            with nogil:
                _scan_segment(self.log.data, self.log_size, self.base_offset, self.offset_index, self.time_index,
                              &scan)
        finally:
            self._leave()
        if scan.problem == SEG_FRAME:
            raise CorruptLogError(
                f"{self.log_path}: {frame_problem(scan.frame, self.log.data, self.log_size, scan.position)}")
        if scan.problem == SEG_ORDER:
            raise CorruptLogError(f"{self.log_path}: batch at byte {scan.position} has a base offset below the "
                                  f"offsets before it")
        if scan.problem == SEG_OFFSET_ENTRY:
            raise CorruptLogError(f"{self.offset_index_path}: entry {scan.entry} does not point at a batch holding "
                                  f"an offset at or below its own")
        if scan.problem == SEG_TIME_ENTRY:
            raise CorruptLogError(f"{self.time_index_path}: entry {scan.entry} is not the largest timestamp so far "
                                  f"of the batch holding its offset")
        self.next_offset_ = scan.next_offset
        self.max_ts, self.offset_of_max_ts = scan.max_timestamp, scan.offset_of_max_timestamp
        self.bytes_since_index_entry = 0
        return 0

    cdef void _enter(self) noexcept:
        """Mark the index mappings in use by a scan that releases the GIL (the segment's lock covers the .log)."""
        self.offset_index.users += 1
        self.time_index.users += 1

    cdef void _leave(self) noexcept:
        self.offset_index.users -= 1
        self.time_index.users -= 1

    cdef int _map_log(self) except -1:
        if self.log.length != self.log_size:
            self.log.map(self.log_size)
        return 0

    cdef bint _batch_at(self, Py_ssize_t pos, BatchHead* head) except -1:
        """Frame the batch at byte pos of the mapped .log into head: the one walk every reader of the .log makes.
        False at the end of the log; CorruptLogError when the batch there is damaged."""
        cdef int rc
        if pos >= self.log_size:
            return False
        rc = frame_batch(self.log.data, self.log_size, pos, False, head)
        if rc != FRAME_OK:
            raise CorruptLogError(f"{self.log_path}: {frame_problem(rc, self.log.data, self.log_size, pos)}")
        return True

    cdef int _check_open(self, bint repairing=False) except -1:
        if self.closed:
            raise ValueError(f"{self.log_path} is closed")
        if self.damage is not None and not repairing:
            raise CorruptLogError(f"{self.damage}; recover() repairs the segment")
        return 0

    cdef int _make_writable(self, bint reset_indexes=False) except -1:
        """Reopen a read-only segment's files for writing, indexes preallocated (Kafka's active segment);
        reset_indexes empties the index files first (recovery rebuilds them)."""
        if self.writable:
            return 0
        log = MappedFile(self.log_path, True)
        if reset_indexes:
            for path in (self.offset_index_path, self.time_index_path):
                if os.path.exists(path):
                    os.truncate(path, 0)
        offset_index = OffsetIndex(self.offset_index_path, self.base_offset, writable=True,
                                   max_index_size=self.max_index_size)
        time_index = TimeIndex(self.time_index_path, self.base_offset, writable=True,
                               max_index_size=self.max_index_size)
        if not reset_indexes and (offset_index.n != self.offset_index.n or time_index.n != self.time_index.n):
            raise CorruptLogError(f"{self.log_path}: index files changed while the segment was open")
        log.adopt(self.log)             # the pages mapped so far stay mapped (it is the same file)
        self.log.close()
        self.offset_index.close()
        self.time_index.close()
        self.log, self.offset_index, self.time_index = log, offset_index, time_index
        self.writable = True
        return 0

    @property
    def log_path(self):
        """Path of the .log file."""
        return os.path.join(self.directory, segment_file_name(self.base_offset, ".log"))

    @property
    def offset_index_path(self):
        """Path of the .index file."""
        return os.path.join(self.directory, segment_file_name(self.base_offset, ".index"))

    @property
    def time_index_path(self):
        """Path of the .timeindex file."""
        return os.path.join(self.directory, segment_file_name(self.base_offset, ".timeindex"))

    @property
    def size(self):
        """Bytes in the .log file."""
        return self.log_size

    @property
    def next_offset(self):
        """The offset the next appended record gets."""
        return self.next_offset_

    @property
    def max_timestamp(self):
        """Largest batch max timestamp seen so far (-1 when none)."""
        return self.max_ts

    cdef int _note_batch(self, Py_ssize_t position, Py_ssize_t size, int64_t last_offset,
                         int64_t max_timestamp) noexcept nogil:
        """Kafka's per-batch index rule, shared by append and recover; returns a PUT_* error or 0."""
        cdef int rc
        if max_timestamp > self.max_ts:
            self.max_ts = max_timestamp
            self.offset_of_max_ts = last_offset
        if self.bytes_since_index_entry > self.index_interval_bytes:
            rc = self.offset_index._put(last_offset, position)
            if rc < 0:
                return rc
            rc = self.time_index._put(self.max_ts, self.offset_of_max_ts, False)
            if rc < 0:
                return rc
            self.bytes_since_index_entry = 0
        self.bytes_since_index_entry += size
        return 0

    cdef int _raise_index(self, int rc, int64_t offset) except -1:
        if rc == PUT_FULL:
            raise ValueError(f"{self.log_path}: an index is full at offset {offset}; roll a new segment")
        if rc < 0:
            raise CorruptLogError(f"{self.log_path}: index entry for offset {offset} breaks the index rules")
        return 0

    def can_append(self, batch):
        """Whether this batch fits (max_bytes, index room, int32 relative offsets); if not, roll a new segment."""
        cdef const uint8_t[::1] view = as_bytes_view(batch)
        cdef int64_t delta = 0
        if view.shape[0] >= BATCH_HEADER_SIZE:
            delta = max(<int32_t>load_be32(&view[0] + BATCH_LAST_OFFSET_DELTA), 0)
        return self._fits(view.shape[0], delta)

    cdef bint _fits(self, Py_ssize_t size, int64_t last_offset_delta):
        if self.log_size and self.log_size + size > self.max_bytes:
            return False
        if self.writable and (self.offset_index.is_full or self.time_index.is_full):
            return False
        return self.next_offset_ + last_offset_delta - self.base_offset <= INT32_MAX

    def append(self, batch):
        """Append one v2 record batch, assigning its offsets; return (first_offset, last_offset).

        Only the base offset field is rewritten (it is outside the CRC-covered bytes).
        """
        self._lock()
        try:
            return self._append(batch)
        finally:
            PyThread_release_lock(self.lock)

    cdef _append(self, batch):
        self._check_open()
        cdef Py_buffer held
        PyObject_GetBuffer(batch, &held, PyBUF_SIMPLE)
        try:
            return self._append_bytes(<const uint8_t*>held.buf, held.len)
        finally:
            PyBuffer_Release(&held)

    cdef _append_bytes(self, const uint8_t* data, Py_ssize_t n):
        cdef Py_ssize_t written = 0, position = self.log_size
        cdef BatchHead head
        cdef int rc
        cdef uint8_t base_field[8]
        cdef iovec iov[2]
        cdef ssize_t w
        if n == 0:
            raise CorruptRecordError("empty batch")
        if n >= CRC_GIL_RELEASE_BYTES:     # a shorter CRC takes less time than giving up and taking the GIL
            with nogil:
                rc = frame_batch(data, n, 0, True, &head)
        else:
            rc = frame_batch(data, n, 0, True, &head)
        if rc != FRAME_OK:
            raise CorruptRecordError(f"cannot append: {frame_problem(rc, data, n, 0)}")
        if head.size != n:
            raise CorruptRecordError(f"cannot append: buffer holds {n} bytes but the batch is {head.size}")
        if not self._fits(n, head.last_offset - head.base_offset):
            raise ValueError(f"{self.log_path}: batch of {n} bytes does not fit this segment; roll a new one")
        self._make_writable()
        cdef int64_t first = self.next_offset_
        cdef int64_t last = first + (head.last_offset - head.base_offset)
        store_be64(base_field, <uint64_t>first)
        with nogil:
            while written < n:
                if written < 8:
                    iov[0].iov_base = base_field + written
                    iov[0].iov_len = 8 - written
                    iov[1].iov_base = <void*>(data + 8)
                    iov[1].iov_len = n - 8
                    w = pwritev(self.log.fd, iov, 2, <off_t>(position + written))
                else:
                    iov[0].iov_base = <void*>(data + written)
                    iov[0].iov_len = n - written
                    w = pwritev(self.log.fd, iov, 1, <off_t>(position + written))
                if w <= 0:
                    break
                written += w
        if written < n:
            raise OSError(errno, os.strerror(errno), self.log_path)
        self.log_size += n
        self.next_offset_ = last + 1
        self._raise_index(self._note_batch(position, n, last, head.max_timestamp), last)
        return first, last

    cdef Py_ssize_t _position_for(self, int64_t offset) except -1:
        """Position of the first batch whose last offset is >= offset (Kafka's translateOffset), or the log size.
        The index entry it starts from was checked against the .log when the segment was opened."""
        cdef Py_ssize_t pos = self.offset_index.lookup(offset)[1]
        cdef BatchHead head
        self._map_log()
        while self._batch_at(pos, &head):
            if head.last_offset >= offset:
                return pos
            pos += head.size
        return self.log_size

    def read(self, int64_t offset, Py_ssize_t max_bytes=1048576):
        """Whole batches from the one holding `offset`: at least one batch, more while they fit in max_bytes.

        Returns b"" when no batch holds an offset >= `offset`.
        """
        self._lock()
        try:
            return self._read(offset, max_bytes)
        finally:
            PyThread_release_lock(self.lock)

    cdef _read(self, int64_t offset, Py_ssize_t max_bytes):
        self._check_open()
        cdef Py_ssize_t start = self._position_for(offset), end
        cdef BatchHead head
        end = start
        while self._batch_at(end, &head):
            if end > start and end + head.size - start > max_bytes:
                break
            end += head.size
        return PyBytes_FromStringAndSize(<char*>self.log.data + start, end - start) if end > start else b""

    def batch_positions(self):
        """(position, base_offset, last_offset, max_timestamp) of every batch, by a linear scan of the .log."""
        self._lock()
        try:
            return self._batch_positions()
        finally:
            PyThread_release_lock(self.lock)

    cdef _batch_positions(self):
        self._check_open()
        self._map_log()
        cdef Py_ssize_t pos = 0
        cdef BatchHead head
        out = []
        while self._batch_at(pos, &head):
            out.append((pos, head.base_offset, head.last_offset, head.max_timestamp))
            pos += head.size
        return out

    def find_offset_for_timestamp(self, int64_t timestamp, int64_t starting_offset=0):
        """Offset of the first record with timestamp >= `timestamp` (and offset >= starting_offset), else None."""
        self._lock()
        try:
            return self._find_offset_for_timestamp(timestamp, starting_offset)
        finally:
            PyThread_release_lock(self.lock)

    cdef _find_offset_for_timestamp(self, int64_t timestamp, int64_t starting_offset):
        self._check_open()
        cdef Py_ssize_t pos
        cdef BatchHead head
        indexed_offset = self.time_index.lookup(timestamp)[1]
        pos = self._position_for(max(indexed_offset, starting_offset))
        while self._batch_at(pos, &head):
            if head.max_timestamp >= timestamp and head.last_offset >= starting_offset:
                found = _first_record_at_or_after(
                    PyBytes_FromStringAndSize(<char*>self.log.data + pos, head.size), timestamp, starting_offset)
                if found is not None:
                    return found
            pos += head.size
        return None

    def recover(self):
        """Rescan the .log: check every batch's framing, CRC and offsets, truncate from the first bad byte,
        rebuild both indexes (Kafka's LogSegment.recover). Returns the number of bytes truncated."""
        self._lock()
        try:
            return self._recover()
        finally:
            PyThread_release_lock(self.lock)

    cdef _recover(self):
        self._check_open(True)
        self._make_writable(True)
        self.damage = None
        self.log_size = self.log.file_size()
        if self.log.length != self.log_size:
            self.log.map(self.log_size, True)   # the whole file is read: fault it in at once
        self.offset_index._truncate_entries(0)
        self.time_index._truncate_entries(0)
        self.max_ts, self.offset_of_max_ts = NO_TIMESTAMP, self.base_offset
        self.bytes_since_index_entry = 0
        cdef Py_ssize_t pos = 0, size = self.log_size
        cdef int64_t next_offset = self.base_offset
        cdef BatchHead head
        cdef int rc = 0
        cdef const uint8_t* data = self.log.data
        self._enter()
        try:
            with nogil:
                while pos < size:
                    if frame_batch(data, size, pos, True, &head) != FRAME_OK:
                        break
                    if head.base_offset < next_offset or head.last_offset - self.base_offset > INT32_MAX:
                        break
                    rc = self._note_batch(pos, head.size, head.last_offset, head.max_timestamp)
                    if rc < 0:
                        break
                    next_offset = head.last_offset + 1
                    pos += head.size
        finally:
            self._leave()
        self._raise_index(rc, next_offset)
        if pos < size:
            self.log.resize(pos)
        self.log_size = pos
        self.next_offset_ = next_offset
        if self.max_ts >= 0:
            self._raise_index(self.time_index._put(self.max_ts, self.offset_of_max_ts, True), self.offset_of_max_ts)
        return size - pos

    def truncate_to(self, int64_t offset):
        """Drop every batch from the one holding `offset` on (Kafka truncates whole batches); return bytes cut."""
        self._lock()
        try:
            return self._truncate_to(offset)
        finally:
            PyThread_release_lock(self.lock)

    cdef _truncate_to(self, int64_t offset):
        self._check_open()
        self._make_writable()
        cdef Py_ssize_t pos = self._position_for(offset)
        cdef Py_ssize_t cut = self.log_size - pos
        self.offset_index.truncate_to(offset)
        self.time_index.truncate_to(offset)
        self.log.unmap()
        self.log.resize(pos)
        self.log_size = pos
        self._load_state()
        return cut

    def flush(self):
        """fsync the .log and msync both indexes."""
        self._lock()
        try:
            return self._flush()
        finally:
            PyThread_release_lock(self.lock)

    cdef _flush(self):
        self._check_open()
        if self.writable:
            os.fsync(self.log.fd)
        self.offset_index.flush()
        self.time_index.flush()

    def close(self):
        """Add the final time index entry and trim the indexes (if written to), then release the files; this is
        also what Kafka does to a segment that stops being the active one."""
        self._lock()
        try:
            return self._close()
        finally:
            PyThread_release_lock(self.lock)

    cdef _close(self):
        if self.closed:
            return
        if self.writable and self.max_ts >= 0 and self.damage is None:
            self.time_index._put(self.max_ts, self.offset_of_max_ts, True)
        self.offset_index.close()
        self.time_index.close()
        self.log.close()
        self.closed = True

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __repr__(self):
        return (f"LogSegment({self.directory!r}, base_offset={self.base_offset}, size={self.log_size}, "
                f"next_offset={self.next_offset_})")


cdef object _first_record_at_or_after(bytes batch, int64_t timestamp, int64_t starting_offset):
    """Offset of the first record of one batch with timestamp >= timestamp and offset >= starting_offset."""
    columns = parse_batches(batch)[0].columns()
    hits = np.flatnonzero((columns["timestamp"] >= timestamp) & (columns["offset"] >= starting_offset))
    return int(columns["offset"][hits[0]]) if len(hits) else None
