# Kafka's sparse segment indexes: .index (offset -> file position) and .timeindex (timestamp -> offset).
#
#   .index      entry = relativeOffset int32 | position int32              (8 bytes, big-endian)
#   .timeindex  entry = timestamp int64      | relativeOffset int32        (12 bytes, big-endian)
#
# Kafka preallocates index files with zeros and trims them when a segment is closed or rolled, so a file may end in
# a zero-filled tail: the entries end at the first all-zero slot after slot 0 (slot 0 may legitimately be zero; a
# file that is entirely zeros holds no entries). Keys strictly increase, so no later valid slot can be all zeros.
import os

import numpy as np

from libc.stdint cimport INT32_MAX, INT64_MIN, int32_t, int64_t, uint32_t, uint64_t, uint8_t
from libc.stdlib cimport free, malloc
from libc.string cimport memset
from posix.mman cimport MADV_RANDOM, madvise

from chronik_perf.native.includes.builtins cimport __builtin_prefetch
from chronik_perf.native.includes.endian cimport load_be32, load_be64, store_be32, store_be64


cdef enum:
    OFFSET_ENTRY_SIZE = 8
    TIME_ENTRY_SIZE = 12
    DEFAULT_MAX_INDEX_SIZE = 10485760     # Kafka's segment.index.bytes default
    NO_TIMESTAMP = -1
    LOOKUP_GROUP = 16                     # lookup_many runs this many searches in lockstep
    SUMMARY_STRIDE = 16                   # single lookups first search a native copy of every 16th key

    # outcomes of scanning an index file's slots
    SCAN_OK = 0
    SCAN_NEGATIVE = 1
    SCAN_NOT_INCREASING = 2
    SCAN_GARBAGE_AFTER_TAIL = 3

    # outcomes of adding an entry
    PUT_ADDED = 1
    PUT_SKIPPED = 0                       # time index: timestamp not above the last one
    PUT_FULL = -1
    PUT_OVERFLOW = -2                     # offset outside [base, base + 2^31 - 1] or position outside int32
    PUT_BACKWARDS = -3                    # offset, position or timestamp below the last entry's


cdef inline bint _slot_is_zero(const uint8_t* p, Py_ssize_t size) noexcept nogil:
    cdef Py_ssize_t i
    for i in range(size):
        if p[i]:
            return False
    return True


cdef inline int64_t _offset_key(const uint8_t* d, Py_ssize_t i) noexcept nogil:
    return <int32_t>load_be32(d + i * OFFSET_ENTRY_SIZE)


cdef inline int64_t _offset_value(const uint8_t* d, Py_ssize_t i) noexcept nogil:
    return <int32_t>load_be32(d + i * OFFSET_ENTRY_SIZE + 4)


cdef inline int64_t _time_key(const uint8_t* d, Py_ssize_t i) noexcept nogil:
    return <int64_t>load_be64(d + i * TIME_ENTRY_SIZE)


cdef inline int64_t _time_value(const uint8_t* d, Py_ssize_t i) noexcept nogil:
    return <int32_t>load_be32(d + i * TIME_ENTRY_SIZE + 8)


cdef int _scan_slots(const uint8_t* d, Py_ssize_t slots, bint time_index,
                     Py_ssize_t* entries, Py_ssize_t* bad) noexcept nogil:
    """Count the entries before the zero tail and check them: keys strictly increase, values never decrease,
    relative offsets and positions are not negative, nothing but zeros follows the tail."""
    cdef Py_ssize_t es = TIME_ENTRY_SIZE if time_index else OFFSET_ENTRY_SIZE
    cdef Py_ssize_t i, n = slots
    cdef int64_t key, value, prev_key = INT64_MIN, prev_value = 0
    if slots == 0:  # an empty buffer's d may be NULL, where even d + 0 is undefined behaviour
        entries[0] = 0
        return SCAN_OK
    for i in range(slots):
        if i > 0 and _slot_is_zero(d + i * es, es):
            n = i
            break
        if time_index:
            key = _time_key(d, i)
            value = _time_value(d, i)
            if value < 0:
                bad[0] = i
                return SCAN_NEGATIVE
        else:
            key = _offset_key(d, i)
            value = _offset_value(d, i)
            if key < 0 or value < 0:
                bad[0] = i
                return SCAN_NEGATIVE
        if i > 0 and (key <= prev_key or value < prev_value):
            bad[0] = i
            return SCAN_NOT_INCREASING
        prev_key = key
        prev_value = value
    if n == 1 and _slot_is_zero(d, es):
        n = 0
    if not _slot_is_zero(d + n * es, (slots - n) * es):
        bad[0] = n
        return SCAN_GARBAGE_AFTER_TAIL
    entries[0] = n
    return SCAN_OK


cdef inline Py_ssize_t _floor_slot(const uint8_t* d, Py_ssize_t n, int64_t key, bint time_index) noexcept nogil:
    """Greatest slot whose key is <= key, or -1 (branch-free binary search over the sorted entries)."""
    cdef Py_ssize_t base = 0, length = n, half
    if n == 0:
        return -1
    while length > 1:
        half = length >> 1
        if (_time_key(d, base + half) if time_index else _offset_key(d, base + half)) <= key:
            base += half
        length -= half
    if (_time_key(d, base) if time_index else _offset_key(d, base)) <= key:
        return base
    return -1


cdef inline Py_ssize_t _floor_native(const int64_t* keys, Py_ssize_t n, int64_t key) noexcept nogil:
    """_floor_slot over a native int64 array; both keys the next step may read are prefetched, so the cache
    misses of consecutive steps overlap."""
    cdef Py_ssize_t base = 0, length = n, half
    if n == 0:
        return -1
    while length > 1:
        half = length >> 1
        __builtin_prefetch(keys + base + (length - half) // 2)
        __builtin_prefetch(keys + base + half + (length - half) // 2)
        if keys[base + half] <= key:
            base += half
        length -= half
    return base if keys[base] <= key else -1


cdef class _Index:
    """Shared machinery of OffsetIndex and TimeIndex: the mapping, the entry count, truncation and trimming."""
    cdef MappedFile file
    cdef object buffer
    cdef uint8_t* data
    cdef Py_ssize_t n
    cdef Py_ssize_t max_slots
    cdef readonly int64_t base_offset
    cdef readonly bint writable
    cdef bint closed
    cdef bint time_index
    cdef Py_ssize_t entry_size
    cdef int64_t* summary                 # key of entry i * SUMMARY_STRIDE, built on the first lookup
    cdef int users                        # calls reading the mapping without the GIL; close() waits for none

    def __init__(self, source, int64_t base_offset, *, bint writable=False,
                 Py_ssize_t max_index_size=DEFAULT_MAX_INDEX_SIZE):
        cdef const uint8_t[::1] view
        cdef Py_ssize_t size, bad = 0, entries = 0
        cdef int rc
        if base_offset < 0:
            raise ValueError(f"base_offset must not be negative, got {base_offset}")
        self.base_offset = base_offset
        self.writable = writable
        if isinstance(source, (str, os.PathLike)):
            self.file = MappedFile(source, writable, writable)
            size = self.file.file_size()
            self.file.map(size)
            self.data = self.file.data
        else:
            if writable:
                raise ValueError("a buffer source is read-only; open a path to write")
            view = as_bytes_view(source)
            self.buffer = view
            size = view.shape[0]
            self.data = <uint8_t*>&view[0] if size else NULL
        if size % self.entry_size:
            raise CorruptLogError(f"{self._name()}: {size} bytes is not a multiple of the "
                                  f"{self.entry_size}-byte entry size")
        with nogil:
            rc = _scan_slots(self.data, size // self.entry_size, self.time_index, &entries, &bad)
        if rc != SCAN_OK:
            problem = {SCAN_NEGATIVE: "a negative relative offset or position",
                       SCAN_NOT_INCREASING: "an entry not above the one before it",
                       SCAN_GARBAGE_AFTER_TAIL: "non-zero bytes after the zero-filled tail"}[rc]
            raise CorruptLogError(f"{self._name()}: slot {bad} holds {problem}")
        self.n = entries
        self.max_slots = size // self.entry_size
        if writable and max_index_size // self.entry_size > self.max_slots:
            self.file.resize(max_index_size - max_index_size % self.entry_size)
            # the preallocated tail is a hole: without this, each page fault of an append reads ahead, allocating
            # and zeroing pages far past the entries written (most of recover's index cost)
            madvise(self.file.data, <size_t>self.file.length, MADV_RANDOM)
            self.data = self.file.data
            self.max_slots = max_index_size // self.entry_size

    cdef str _name(self):
        return self.file.path if self.file is not None else f"{type(self).__name__} buffer"

    cdef int _check_open(self, bint writing) except -1:
        if self.closed:
            raise ValueError(f"{self._name()} is closed")
        if writing and not self.writable:
            raise ValueError(f"{self._name()} is read-only")
        return 0

    cdef int _raise_put(self, int rc, str entry) except -1:
        """Turn a PUT_* outcome into the result (1 added, 0 skipped) or a ValueError naming the broken rule."""
        if rc >= 0:
            return rc
        problem = {PUT_FULL: f"the index is full ({self.n} entries)",
                   PUT_OVERFLOW: f"its offset is not within 2^31 - 1 above base offset {self.base_offset} "
                                 f"or its position is outside int32",
                   PUT_BACKWARDS: "it is below the last entry (entries must increase)"}[rc]
        raise ValueError(f"cannot append {entry} to {self._name()}: {problem}")

    cdef int _truncate_entries(self, Py_ssize_t entries) except -1:
        """Keep the first `entries` entries; zero the rest so the file's zero-tail rule stays true."""
        if entries < self.n:
            memset(self.data + entries * self.entry_size, 0, (self.n - entries) * self.entry_size)
            self.n = entries
        return 0

    @property
    def entries(self):
        """Number of entries (before the zero-filled tail)."""
        return self.n

    def __len__(self):
        return self.n

    @property
    def max_entries(self):
        """Slots the file has room for."""
        return self.max_slots

    @property
    def path(self):
        """File path, or None for a buffer source."""
        return self.file.path if self.file is not None else None

    cdef inline int64_t _key(self, Py_ssize_t i) noexcept nogil:
        return _time_key(self.data, i) if self.time_index else _offset_key(self.data, i)

    cdef inline void _note_key(self, Py_ssize_t i, int64_t key) noexcept nogil:
        """Keep the summary current when entry i is written."""
        if self.summary != NULL and i % SUMMARY_STRIDE == 0:
            self.summary[i // SUMMARY_STRIDE] = key

    cdef int _ensure_summary(self) except -1:
        """Build the summary on first use; appends keep it current afterwards."""
        cdef Py_ssize_t i
        if self.summary == NULL:
            self.summary = <int64_t*>malloc(((self.max_slots + SUMMARY_STRIDE - 1) // SUMMARY_STRIDE + 1)
                                            * sizeof(int64_t))
            if self.summary == NULL:
                raise MemoryError()
            for i in range(0, self.n, SUMMARY_STRIDE):
                self.summary[i // SUMMARY_STRIDE] = self._key(i)
        return 0

    cdef Py_ssize_t _floor_key(self, int64_t key) except -2:
        """Greatest slot whose key is <= key, or -1: a search of the summary (small, native, cache-resident),
        then of one block of SUMMARY_STRIDE entries."""
        cdef Py_ssize_t i, block
        self._ensure_summary()
        block = _floor_native(self.summary, (self.n + SUMMARY_STRIDE - 1) // SUMMARY_STRIDE, key)
        if block < 0:
            return -1
        i = block * SUMMARY_STRIDE
        return i + _floor_slot(self.data + i * self.entry_size, min(<Py_ssize_t>SUMMARY_STRIDE, self.n - i), key,
                               self.time_index)

    cdef void _floor_many(self, const int64_t* keys, Py_ssize_t m, int64_t* slots) noexcept nogil:
        """_floor_key for many keys (summary built): LOOKUP_GROUP searches walk the summary in lockstep, then
        their blocks are prefetched together and searched, so the cache misses of a group overlap."""
        cdef Py_ssize_t g = 0, j, k, length, half, i
        cdef Py_ssize_t blocks = (self.n + SUMMARY_STRIDE - 1) // SUMMARY_STRIDE
        cdef Py_ssize_t base[LOOKUP_GROUP]
        if blocks == 0:  # no entries, and data may be NULL: nothing to prefetch
            for j in range(m):
                slots[j] = -1
            return
        while g < m:
            k = min(<Py_ssize_t>LOOKUP_GROUP, m - g)
            for j in range(k):
                base[j] = 0
            length = blocks
            while length > 1:
                half = length >> 1
                for j in range(k):
                    if self.summary[base[j] + half] <= keys[g + j]:
                        base[j] += half
                length -= half
            for j in range(k):
                __builtin_prefetch(self.data + base[j] * SUMMARY_STRIDE * self.entry_size)
                __builtin_prefetch(self.data + base[j] * SUMMARY_STRIDE * self.entry_size + 64)
            for j in range(k):
                if blocks == 0 or self.summary[base[j]] > keys[g + j]:
                    slots[g + j] = -1
                else:
                    i = base[j] * SUMMARY_STRIDE
                    slots[g + j] = i + _floor_slot(self.data + i * self.entry_size,
                                                   min(<Py_ssize_t>SUMMARY_STRIDE, self.n - i), keys[g + j],
                                                   self.time_index)
            g += k

    def __dealloc__(self):
        free(self.summary)

    def flush(self):
        """Write dirty pages of a writable index to disk (msync)."""
        self._check_open(False)
        if self.file is not None:
            self.file.sync()

    def close(self):
        """Trim a writable index's file to its entries (as Kafka does on close) and release the mapping."""
        if self.closed:
            return
        if self.users:
            raise ValueError(f"{self._name()} is being read by another thread; close it when that call returns")
        self.closed = True
        if self.file is not None:
            if self.writable:
                self.file.resize(self.n * self.entry_size)
            self.file.close()
        self.buffer = None
        self.data = NULL

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


cdef class OffsetIndex(_Index):
    """Kafka's offset index (.index): sorted (offset, file position) entries relative to `base_offset`.

    `source` is a path (memory-mapped; read-only unless writable=True, which creates the file and preallocates
    `max_index_size` zero bytes like Kafka) or any buffer (read-only).
    """

    def __cinit__(self, *args, **kwargs):
        self.entry_size = OFFSET_ENTRY_SIZE
        self.time_index = False

    cdef inline Py_ssize_t _floor(self, int64_t offset) except -2:
        if offset < self.base_offset:
            return -1
        return self._floor_key(offset - self.base_offset)

    def entry(self, Py_ssize_t i):
        """The i-th entry as (offset, position)."""
        self._check_open(False)
        if i < 0 or i >= self.n:
            raise IndexError(f"entry {i} of {self.n}")
        return self.base_offset + _offset_key(self.data, i), _offset_value(self.data, i)

    @property
    def last_offset(self):
        """Offset of the last entry (base_offset when empty)."""
        self._check_open(False)
        return self.base_offset + _offset_key(self.data, self.n - 1) if self.n else self.base_offset

    @property
    def is_full(self):
        """No slot left (Kafka then rolls the segment)."""
        return self.n >= self.max_slots

    def lookup(self, int64_t offset, /):
        """(offset, position) of the greatest entry <= offset; (base_offset, 0) when there is none."""
        self._check_open(False)
        cdef Py_ssize_t slot = self._floor(offset)
        if slot < 0:
            return self.base_offset, 0
        return self.base_offset + _offset_key(self.data, slot), _offset_value(self.data, slot)

    def lookup_many(self, targets):
        """lookup() for an int64 array of offsets, in C without the GIL: (offsets, positions) int64 arrays."""
        self._check_open(False)
        self._ensure_summary()
        cdef const int64_t[::1] t = np.ascontiguousarray(targets, dtype=np.int64)
        cdef Py_ssize_t m = t.shape[0], j, slot
        out_offsets = np.empty(m, dtype=np.int64)
        out_positions = np.empty(m, dtype=np.int64)
        cdef int64_t[::1] offs = out_offsets, poss = out_positions
        cdef int64_t base = self.base_offset
        if m == 0:
            return out_offsets, out_positions
        self.users += 1
        try:
            with nogil:
                for j in range(m):      # relative keys, clamped below the base
                    offs[j] = t[j] - base if t[j] >= base else -1
                self._floor_many(&offs[0], m, &poss[0])
                for j in range(m):
                    slot = poss[j]
                    if slot < 0:
                        offs[j] = base
                        poss[j] = 0
                    else:
                        offs[j] = base + _offset_key(self.data, slot)
                        poss[j] = _offset_value(self.data, slot)
        finally:
            self.users -= 1
        return out_offsets, out_positions

    def arrays(self):
        """All entries as (offsets, positions) int64 arrays."""
        self._check_open(False)
        raw = np.frombuffer((<char*>self.data)[:self.n * OFFSET_ENTRY_SIZE] if self.n else b"", dtype=">i4")
        return raw[0::2].astype(np.int64) + self.base_offset, raw[1::2].astype(np.int64)

    def append(self, int64_t offset, int64_t position):
        """Add an entry; offsets must strictly increase and positions must not decrease (Kafka's rule)."""
        self._append(offset, position)

    cdef int _put(self, int64_t offset, int64_t position) noexcept nogil:
        cdef int64_t rel = offset - self.base_offset
        if rel < 0 or rel > INT32_MAX or position < 0 or position > INT32_MAX:
            return PUT_OVERFLOW
        if self.n >= self.max_slots:
            return PUT_FULL
        if self.n and (rel <= _offset_key(self.data, self.n - 1) or position < _offset_value(self.data, self.n - 1)):
            return PUT_BACKWARDS
        store_be32(self.data + self.n * OFFSET_ENTRY_SIZE, <uint32_t>rel)
        store_be32(self.data + self.n * OFFSET_ENTRY_SIZE + 4, <uint32_t>position)
        self._note_key(self.n, rel)
        self.n += 1
        return PUT_ADDED

    cdef int _append(self, int64_t offset, int64_t position) except -1:
        self._check_open(True)
        return self._raise_put(self._put(offset, position), f"entry ({offset}, {position})")

    def truncate_to(self, int64_t offset):
        """Remove every entry whose offset is >= offset."""
        self._check_open(True)
        cdef Py_ssize_t slot = self._floor(offset)
        if slot >= 0 and self.base_offset + _offset_key(self.data, slot) == offset:
            self._truncate_entries(slot)
        else:
            self._truncate_entries(slot + 1)


cdef class TimeIndex(_Index):
    """Kafka's time index (.timeindex): (timestamp, offset) entries with strictly increasing timestamps.

    An entry (T, O) says the largest timestamp among the records up to offset O is T. `source` as for OffsetIndex.
    """

    def __cinit__(self, *args, **kwargs):
        self.entry_size = TIME_ENTRY_SIZE
        self.time_index = True

    def entry(self, Py_ssize_t i):
        """The i-th entry as (timestamp, offset)."""
        self._check_open(False)
        if i < 0 or i >= self.n:
            raise IndexError(f"entry {i} of {self.n}")
        return _time_key(self.data, i), self.base_offset + _time_value(self.data, i)

    @property
    def last_entry(self):
        """(timestamp, offset) of the last entry; (-1, base_offset) when empty."""
        self._check_open(False)
        if self.n == 0:
            return NO_TIMESTAMP, self.base_offset
        return _time_key(self.data, self.n - 1), self.base_offset + _time_value(self.data, self.n - 1)

    @property
    def is_full(self):
        """Full one slot early: Kafka keeps the last slot for the entry written when the segment rolls."""
        return self.n >= self.max_slots - 1

    def lookup(self, int64_t timestamp, /):
        """(timestamp, offset) of the greatest entry whose timestamp is <= timestamp; (-1, base_offset) if none."""
        self._check_open(False)
        cdef Py_ssize_t slot = self._floor_key(timestamp)
        if slot < 0:
            return NO_TIMESTAMP, self.base_offset
        return _time_key(self.data, slot), self.base_offset + _time_value(self.data, slot)

    def lookup_many(self, targets):
        """lookup() for an int64 array of timestamps, in C without the GIL: (timestamps, offsets) int64 arrays."""
        self._check_open(False)
        self._ensure_summary()
        cdef const int64_t[::1] t = np.ascontiguousarray(targets, dtype=np.int64)
        cdef Py_ssize_t m = t.shape[0], j, slot
        out_timestamps = np.empty(m, dtype=np.int64)
        out_offsets = np.empty(m, dtype=np.int64)
        cdef int64_t[::1] tss = out_timestamps, offs = out_offsets
        cdef int64_t base = self.base_offset
        if m == 0:
            return out_timestamps, out_offsets
        self.users += 1
        try:
            with nogil:
                self._floor_many(&t[0], m, &offs[0])
                for j in range(m):
                    slot = offs[j]
                    if slot < 0:
                        tss[j] = NO_TIMESTAMP
                        offs[j] = base
                    else:
                        tss[j] = _time_key(self.data, slot)
                        offs[j] = base + _time_value(self.data, slot)
        finally:
            self.users -= 1
        return out_timestamps, out_offsets

    def arrays(self):
        """All entries as (timestamps, offsets) int64 arrays."""
        self._check_open(False)
        raw = np.frombuffer((<char*>self.data)[:self.n * TIME_ENTRY_SIZE] if self.n else b"",
                            dtype=np.dtype([("ts", ">i8"), ("rel", ">i4")]))
        return raw["ts"].astype(np.int64), raw["rel"].astype(np.int64) + self.base_offset

    def append(self, int64_t timestamp, int64_t offset, *, bint final=False):
        """Kafka's maybeAppend: add (timestamp, offset) if timestamp is above the last one; return whether added.

        Offsets and timestamps going backwards are errors. final=True may use the slot kept for the roll entry.
        """
        return self._append(timestamp, offset, final)

    cdef int _put(self, int64_t timestamp, int64_t offset, bint final) noexcept nogil:
        cdef int64_t rel = offset - self.base_offset
        cdef int64_t last_ts = _time_key(self.data, self.n - 1) if self.n else NO_TIMESTAMP
        if rel < 0 or rel > INT32_MAX:
            return PUT_OVERFLOW
        if self.n >= self.max_slots - (0 if final else 1):
            return PUT_FULL
        if self.n and (rel < _time_value(self.data, self.n - 1) or timestamp < last_ts):
            return PUT_BACKWARDS
        if timestamp <= last_ts:
            return PUT_SKIPPED
        store_be64(self.data + self.n * TIME_ENTRY_SIZE, <uint64_t>timestamp)
        store_be32(self.data + self.n * TIME_ENTRY_SIZE + 8, <uint32_t>rel)
        self._note_key(self.n, timestamp)
        self.n += 1
        return PUT_ADDED

    cdef int _append(self, int64_t timestamp, int64_t offset, bint final) except -1:
        self._check_open(True)
        return self._raise_put(self._put(timestamp, offset, final), f"entry ({timestamp}, {offset})")

    def truncate_to(self, int64_t offset):
        """Remove every entry whose offset is >= offset."""
        self._check_open(True)
        cdef Py_ssize_t lo = 0, hi = self.n, mid
        while lo < hi:           # first entry with offset >= offset (offsets never decrease)
            mid = (lo + hi) >> 1
            if self.base_offset + _time_value(self.data, mid) < offset:
                lo = mid + 1
            else:
                hi = mid
        self._truncate_entries(lo)
