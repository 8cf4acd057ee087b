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
    """Builds the values, keys and partitions of one producer's messages."""

    def __init__(self, pid: int, message_size: int, payload: str, key_pattern: str,
                 num_partitions: int, run_length: int):
        self.pid = pid
        self.body_len = message_size - HEADER.size
        self.pool = filler_pool(payload, self.body_len, seed=pid)
        self.zeros = payload == "zeros"
        self.key_pattern = key_pattern
        self.num_partitions = num_partitions
        self.run_length = max(1, run_length)

    def value(self, seq: int, ts_ns: int) -> bytes:
        head = HEADER.pack(self.pid, seq, ts_ns)
        if self.zeros:
            return head + self.pool
        off = (seq * 7919) % (len(self.pool) - self.body_len + 1)
        return head + self.pool[off: off + self.body_len]

    def key(self, seq: int) -> bytes | None:
        return message_key(self.key_pattern, self.pid, seq)

    def partition(self, seq: int, key: bytes | None) -> int:
        return partition_of(key, self.pid, seq, self.num_partitions, self.run_length)


def message_key(pattern: str, pid: int, seq: int) -> bytes | None:
    if pattern == "none":
        return None
    if pattern == "sequential":
        return b"%d-%d" % (pid, seq)
    return b"%08x" % ((seq * 2654435761 + pid * 40503) & 0xFFFFFFFF)


def partition_of(key: bytes | None, pid: int, seq: int, num_partitions: int, run_length: int) -> int:
    """The partition message (pid, seq) is produced to."""
    if key is None:
        return (seq // run_length + pid) % num_partitions
    return murmur2(key, num_partitions)


def run_length_for(message_size: int, batch_size: int | None) -> int:
    """Messages per partition run for unkeyed messages: one producer batch worth."""
    return max(1, (batch_size or 65536) // message_size)


def parse_headers(values: list[bytes]) -> np.ndarray:
    """Decode the headers of many values at once into a structured array (pid, seq, ts)."""
    if not values:
        return np.empty(0, dtype=HEADER_DTYPE)
    return np.frombuffer(b"".join(values), dtype=HEADER_DTYPE)
