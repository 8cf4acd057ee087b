"""What each benchmark message carries, its key, and the partition it is sent to.

Every value starts with a 20-byte big-endian header: producer id (u32), sequence number (u64) and a
CLOCK_MONOTONIC timestamp in nanoseconds (i64) — the intended send time in the latency test, the
moment of the send call elsewhere. Producer and consumer processes on the same host read the same
CLOCK_MONOTONIC, so arrival minus that stamp is a true produce-to-consume latency (it is not
comparable across hosts). The filler after the header is random (incompressible), zeros or text.

Partitions are chosen by us, not the client's partitioner, so the partition of every (producer,
sequence) is known in advance and a lost message can be attributed to its partition: keyed
messages use Kafka's murmur2 (Java's default), unkeyed ones go in runs of messages to one partition
at a time, the way a sticky partitioner fills one batch before moving on.
"""

from __future__ import annotations

import os
import random
import struct

import numpy as np
from confluent_kafka import murmur2

from .. import _core

HEADER = struct.Struct(">IQq")
HEADER_DTYPE = np.dtype([("pid", ">u4"), ("seq", ">u8"), ("ts", ">i8")])
assert HEADER.size == HEADER_DTYPE.itemsize == 20

_POOL_SIZE = 1 << 20
_WORDS = ("kafka stream broker partition offset record batch latency commit replica leader fetch "
          "produce consumer group segment index compaction throughput").split()


def filler_pool(kind: str, size: int, seed: int) -> bytes:
    """A pool to slice message bodies from; slices start at different offsets so bodies differ."""
    if kind == "zeros":
        return bytes(size)
    if kind == "random":
        return os.urandom(_POOL_SIZE + size)
    rng = random.Random(seed)
    text = []
    length = 0
    while length < _POOL_SIZE + size:
        word = rng.choice(_WORDS)
        text.append(word)
        length += len(word) + 1
    return " ".join(text).encode()[: _POOL_SIZE + size]


class MessageFactory:
    """Builds the values, keys and partitions of one producer's messages, one at a time or a run at once."""

    def __init__(self, pid: int, message_size: int, payload: str, key_pattern: str,
                 num_partitions: int, run_length: int):
        self.pid = pid
        self.size = message_size
        self.body_len = message_size - HEADER.size
        self.pool = filler_pool(payload, self.body_len, seed=pid)
        self._pool_array = np.frombuffer(self.pool, dtype=np.uint8)
        self.zeros = payload == "zeros"
        self.key_pattern = key_pattern
        self.num_partitions = num_partitions
        self.run_length = max(1, run_length)

    def _body_offset(self, seq):
        """Where the body of message seq starts in the pool (an int, or an array for an array of seqs)."""
        return (seq * 7919) % (len(self.pool) - self.body_len + 1)

    def value(self, seq: int, ts_ns: int) -> bytes:
        """The value of message seq stamped ts_ns."""
        head = HEADER.pack(self.pid, seq, ts_ns)
        if self.zeros:
            return head + self.pool
        off = self._body_offset(seq)
        return head + self.pool[off: off + self.body_len]

    def values(self, start: int, n: int, ts_ns: int) -> list[bytes]:
        """The values of sequences start..start+n-1, all stamped ts_ns, built at once in numpy (the same bytes as
        value())."""
        buf = np.empty((n, self.size), dtype=np.uint8)
        head = np.empty(n, dtype=HEADER_DTYPE)
        head["pid"] = self.pid
        head["seq"] = np.arange(start, start + n, dtype=np.uint64)
        head["ts"] = ts_ns
        buf[:, :HEADER.size] = head.view(np.uint8).reshape(n, HEADER.size)
        if self.body_len:
            if self.zeros:
                buf[:, HEADER.size:] = 0
            else:
                offs = self._body_offset(np.arange(start, start + n, dtype=np.int64))
                buf[:, HEADER.size:] = self._pool_array[offs[:, None] + np.arange(self.body_len)]
        return _core.fixed_slices(buf, self.size)

    def key(self, seq: int) -> bytes | None:
        return message_key(self.key_pattern, self.pid, seq)

    def keys(self, start: int, n: int) -> list[bytes] | None:
        """The keys of sequences start..start+n-1; None when the messages have no key."""
        if self.key_pattern == "none":
            return None
        return [message_key(self.key_pattern, self.pid, s) for s in range(start, start + n)]

    def partition(self, seq: int, key: bytes | None) -> int:
        return partition_of(key, self.pid, seq, self.num_partitions, self.run_length)

    def partitions(self, start: int, n: int) -> np.ndarray | None:
        """The partitions (int32) of unkeyed sequences start..start+n-1; None for keyed messages, which go where
        murmur2 of their key puts them (the client's default partitioner, as partition_of computes it)."""
        if self.key_pattern != "none":
            return None
        seqs = np.arange(start, start + n, dtype=np.int64)
        return run_partition(self.pid, seqs, self.num_partitions, self.run_length).astype(np.int32)


def message_key(pattern: str, pid: int, seq: int) -> bytes | None:
    if pattern == "none":
        return None
    if pattern == "sequential":
        return b"%d-%d" % (pid, seq)
    return b"%08x" % ((seq * 2654435761 + pid * 40503) & 0xFFFFFFFF)


def partition_of(key: bytes | None, pid: int, seq: int, num_partitions: int, run_length: int) -> int:
    """The partition message (pid, seq) is produced to."""
    if key is None:
        return run_partition(pid, seq, num_partitions, run_length)
    return murmur2(key, num_partitions)


def run_partition(pid, seq, num_partitions: int, run_length: int):
    """The partition of unkeyed message (pid, seq): runs of run_length messages to one partition after another, each
    producer starting at its own; pid and seq may be ints or numpy arrays."""
    return (seq // run_length + pid) % num_partitions


def run_length_for(message_size: int, batch_size: int | None) -> int:
    """Messages per partition run for unkeyed messages: one producer batch worth."""
    return max(1, (batch_size or 65536) // message_size)


def parse_headers(values: list[bytes]) -> np.ndarray:
    """Decode the headers of many values at once into a structured array (pid, seq, ts)."""
    if not values:
        return np.empty(0, dtype=HEADER_DTYPE)
    return np.frombuffer(b"".join(values), dtype=HEADER_DTYPE)
