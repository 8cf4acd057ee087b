"""Record batches for the storage tests: built and read with chronik_perf.records, cross-checked by a peer."""
from kafka.record.memory_records import MemoryRecords

from chronik_perf.records import build_batch, parse_batches


def build_test_batch(records, compression="none", base_offset=0):
    """A v2 batch of (key, value, timestamp, headers) records."""
    keys, values, timestamps, headers = zip(*records)
    return build_batch(list(values), list(keys), timestamps=list(timestamps), headers=list(headers),
                       base_offset=base_offset, compression=compression)


def batch_records(data):
    """(offset, timestamp, key, value, headers) of every record in concatenated batches (CRCs verified)."""
    return [(r.offset, r.timestamp, r.key, r.value, list(r.headers))
            for batch in parse_batches(data) for r in batch.records()]


def peer_records(data):
    """The same, read by kafka-python 3 (an independent reader)."""
    out = []
    records = MemoryRecords(bytes(data))
    while records.has_next():
        batch = records.next_batch()
        assert batch.validate_crc(), f"bad CRC in batch at offset {batch.base_offset}"
        out += [(r.offset, r.timestamp, r.key, r.value, list(r.headers)) for r in batch]
    return out
