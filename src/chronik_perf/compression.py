"""Kafka's compression codecs as its Java producer writes them.

`compress(codec, data, level=None)` and `decompress(codec, data)` with codec one of
"none", "gzip", "snappy" (xerial framing; plain snappy is read too), "lz4" (LZ4 frame), "zstd".
Corrupt payloads, and payloads that decompress past their limit (`set_decompression_limits`),
raise `chronik_perf.records.CorruptRecordError`. LZ4 and zstd run in libzstd and liblz4 called directly:
`CODEC_LIBRARIES` names the shared objects they were found in (the zstandard and lz4 packages' own, else the
system's).
"""
from ._core import CODEC_LIBRARIES, DEFAULT_LEVELS, compress, decompress, decompression_limits
from ._core import CODEC_NAMES as CODECS
from ._core import set_decompression_limits

__all__ = ["CODECS", "CODEC_LIBRARIES", "DEFAULT_LEVELS", "compress", "decompress", "decompression_limits",
           "set_decompression_limits"]
