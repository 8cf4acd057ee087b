"""Record batches for the storage tests, built and read by a peer (kafka-python 3), independent of our core."""
from kafka.record.default_records import DefaultRecordBatchBuilder
from kafka.record.memory_records import MemoryRecords


def build_test_batch(records, compression=0, base_offset=0):
    """A v2 batch of (key, value, timestamp, headers) records."""
    builder = DefaultRecordBatchBuilder(magic=2, compression_type=compression, is_transactional=False,
                                        producer_id=-1, producer_epoch=-1, base_sequence=-1, batch_size=1 << 30)
    for i, (key, value, ts, headers) in enumerate(records):
        builder.append(i, timestamp=ts, key=key, value=value, headers=headers)
    data = bytearray(builder.build())
    data[0:8] = base_offset.to_bytes(8, "big")
    return bytes(data)


def batch_records(data):
    """(offset, timestamp, key, value, headers) of every record in concatenated batches."""
    out = []
    records = MemoryRecords(bytes(data))
    while records.has_next():
        batch = records.next_batch()
        assert batch.validate_crc(), f"bad CRC in batch at offset {batch.base_offset}"
        for rec in batch:
            out.append((rec.offset, rec.timestamp, rec.key, rec.value, list(rec.headers)))
    return out
