"""Kafka's compression codecs as its Java producer writes them.

`compress(codec, data, level=None)` and `decompress(codec, data)` with codec one of
"none", "gzip", "snappy" (xerial framing; plain snappy is read too), "lz4" (LZ4 frame), "zstd".
Corrupt payloads, and payloads that decompress past their limit (`set_decompression_limits`),
raise `chronik_perf.records.CorruptRecordError`.
"""
from ._core import CODEC_NAMES as CODECS
from ._core import DEFAULT_LEVELS, compress, decompress, decompression_limits, set_decompression_limits

__all__ = ["CODECS", "DEFAULT_LEVELS", "compress", "decompress", "decompression_limits", "set_decompression_limits"]
