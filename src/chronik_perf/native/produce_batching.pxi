# The client's per-message work done in C: Kafka's murmur2 partitioner, splitting a list of values into
# batch-sized runs, and gathering the values bound for one partition. produce_many calls each once per call.
from cpython.bytes cimport PyBytes_FromStringAndSize
from cpython.list cimport PyList_New, PyList_SET_ITEM
from cpython.object cimport PyObject
from cpython.ref cimport Py_INCREF
from cpython.sequence cimport PySequence_Fast, PySequence_Fast_GET_SIZE, PySequence_Fast_ITEMS
from libc.stdint cimport int32_t, int64_t, uint32_t, uint8_t

from chronik_perf.native.includes.batch_layout cimport BATCH_HEADER_SIZE
from chronik_perf.native.includes.varint cimport MAX_VARINT_BYTES, uvarint_size, zigzag_encode

import numpy as np


cdef inline uint32_t murmur2(const uint8_t* data, Py_ssize_t length) noexcept nogil:
    """Kafka's murmur2 (seed 0x9747b28c), as its Java default partitioner computes it."""
    cdef uint32_t m = <uint32_t>0x5bd1e995u, k
    cdef uint32_t h = (<uint32_t>0x9747b28cu) ^ <uint32_t>length
    cdef Py_ssize_t i = 0, n4 = length // 4
    for i in range(n4):
        k = (<uint32_t>data[4 * i] | (<uint32_t>data[4 * i + 1] << 8) | (<uint32_t>data[4 * i + 2] << 16)
             | (<uint32_t>data[4 * i + 3] << 24))
        k *= m
        k ^= k >> 24
        k *= m
        h *= m
        h ^= k
    cdef Py_ssize_t tail = n4 * 4, rest = length & 3
    if rest == 3:
        h ^= <uint32_t>data[tail + 2] << 16
    if rest >= 2:
        h ^= <uint32_t>data[tail + 1] << 8
    if rest >= 1:
        h ^= <uint32_t>data[tail]
        h *= m
    h ^= h >> 13
    h *= m
    h ^= h >> 15
    return h


def murmur2_hash(key):
    """Kafka's murmur2 of a bytes key, as a signed 32-bit int (what Java's Utils.murmur2 returns)."""
    cdef list keepalive = []
    cdef Slice s
    set_slice(&s, key, keepalive)
    if s.length < 0:
        raise TypeError("murmur2 needs a bytes key")
    return <int32_t>murmur2(s.ptr, s.length)


def key_partitions(keys, int num_partitions):
    """Partition of each key as Kafka's default partitioner picks it (murmur2 & 0x7fffffff % n); None -> -1."""
    if num_partitions <= 0:
        raise ValueError("num_partitions must be positive")
    kseq = held_items(keys, "keys must be a sequence")
    cdef Py_ssize_t n = PySequence_Fast_GET_SIZE(kseq), i
    cdef PyObject** items = PySequence_Fast_ITEMS(kseq)
    out = np.empty(n, dtype=np.int32)
    cdef int32_t[::1] parts = out
    cdef list keepalive = []
    cdef Slice s
    for i in range(n):
        set_slice(&s, <object>items[i], keepalive)
        parts[i] = -1 if s.length < 0 else <int32_t>((murmur2(s.ptr, s.length) & 0x7fffffff) % num_partitions)
    return out


cdef inline Py_ssize_t record_bound(Py_ssize_t key_len, Py_ssize_t value_len, Py_ssize_t offset_delta) noexcept nogil:
    """The encoded size of a record without headers (lengths -1: null), exact but for its timestamp delta, which
    is counted at its widest."""
    cdef Py_ssize_t body = (1 + MAX_VARINT_BYTES + uvarint_size(zigzag_encode(offset_delta))
                            + uvarint_size(zigzag_encode(key_len)) + max(key_len, 0)
                            + uvarint_size(zigzag_encode(value_len)) + max(value_len, 0) + 1)
    return uvarint_size(zigzag_encode(body)) + body


def batch_bounds(values, keys=None, Py_ssize_t max_bytes=1048576):
    """End indices splitting ``values`` (and ``keys``) into runs whose record batches (without headers) stay within
    max_bytes.

    Each record's size is counted exactly but for its timestamp delta (taken at its widest, 10 bytes), so a run
    never builds a larger batch and a full one misses max_bytes by at most 9 bytes a record, as a Kafka producer's
    batches fill batch.size; a single record larger than max_bytes gets a run of its own."""
    vseq = held_items(values, "values must be a sequence")
    cdef Py_ssize_t n = PySequence_Fast_GET_SIZE(vseq), i, size, used = BATCH_HEADER_SIZE
    cdef PyObject** vitems = PySequence_Fast_ITEMS(vseq)
    cdef PyObject** kitems = NULL
    if keys is not None:
        kseq = held_items(keys, "keys must be a sequence")
        if PySequence_Fast_GET_SIZE(kseq) != n:
            raise ValueError(f"{PySequence_Fast_GET_SIZE(kseq)} keys for {n} values")
        kitems = PySequence_Fast_ITEMS(kseq)
    cdef list keepalive = []
    cdef list ends = []
    cdef Py_ssize_t count = 0
    cdef Slice v, k
    k.length = -1                            # no keys: null keys
    for i in range(n):
        set_slice(&v, <object>vitems[i], keepalive)
        if kitems != NULL:
            set_slice(&k, <object>kitems[i], keepalive)
        size = record_bound(k.length, v.length, count)
        if count and used + size > max_bytes:
            ends.append(i)
            used = BATCH_HEADER_SIZE
            count = 0
            size = record_bound(k.length, v.length, 0)
        used += size
        count += 1
        if len(keepalive) > 64:
            del keepalive[:]
    if count:
        ends.append(n)
    return ends


def take(seq, indices):
    """[seq[i] for i in indices] in one C loop (indices: int array-like)."""
    fseq = PySequence_Fast(seq, "seq must be a sequence")
    cdef Py_ssize_t n = PySequence_Fast_GET_SIZE(fseq), j, m
    cdef PyObject** items = PySequence_Fast_ITEMS(fseq)
    cdef const int64_t[::1] idx = np.ascontiguousarray(indices, dtype=np.int64)
    m = idx.shape[0]
    cdef list out = PyList_New(m)
    cdef object item
    for j in range(m):
        if not 0 <= idx[j] < n:
            raise IndexError(f"index {idx[j]} out of range for {n} items")
        item = <object>items[idx[j]]
        Py_INCREF(item)
        PyList_SET_ITEM(out, j, item)
    return out


def fixed_slices(data, Py_ssize_t size):
    """Cut a buffer into consecutive bytes objects of ``size`` bytes each (its length must be a multiple)."""
    cdef const uint8_t[::1] view = as_bytes_view(data)
    cdef Py_ssize_t total = view.shape[0], n, i
    if size <= 0 or total % size:
        raise ValueError(f"{total} bytes do not split into records of {size} bytes")
    n = total // size
    cdef list out = PyList_New(n)
    cdef object item
    for i in range(n):
        item = PyBytes_FromStringAndSize(<const char*>&view[0] + i * size, size)
        Py_INCREF(item)
        PyList_SET_ITEM(out, i, item)
    return out
