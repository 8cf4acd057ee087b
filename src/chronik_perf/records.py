"""Kafka record batches (magic v2), CRC32C and varints, implemented in the native core.

Build: `build_batch(values, keys, ...)` in one call, or `BatchBuilder` record by record.
Parse: `parse_batches(data)` -> `[RecordBatch]`; `RecordBatch.records()` gives `Record` objects,
`RecordBatch.columns()` gives `Columns`, a mapping of numpy int64 columns that index into the batch's bytes
without copying.
Malformed input raises `CorruptRecordError` (a ValueError) naming the byte position.
"""
from ._core import CODEC_NAMES as CODECS  # the codec ids' names, as compression.CODECS
from ._core import (
    BatchBuilder,
    Columns,
    CorruptRecordError,
    Record,
    RecordBatch,
    build_batch,
    crc32c,
    crc32c_implementation,
    crc32c_software,
    decode_uvarint,
    decode_varint,
    encode_uvarint,
    encode_varint,
    parse_batches,
)

__all__ = [
    "BatchBuilder", "CODECS", "Columns", "CorruptRecordError", "Record", "RecordBatch", "build_batch", "crc32c",
    "crc32c_implementation", "crc32c_software", "decode_uvarint", "decode_varint", "encode_uvarint",
    "encode_varint", "parse_batches",
]
