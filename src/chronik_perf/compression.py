"""Kafka's compression codecs as its Java producer writes them.

`compress(codec, data, level=None)` and `decompress(codec, data)` with codec one of
"none", "gzip", "snappy" (xerial framing; plain snappy is read too), "lz4" (LZ4 frame), "zstd".
Corrupt payloads, and payloads that decompress past their limit (`set_decompression_limits`),
raise `chronik_perf.records.CorruptRecordError`. LZ4 and zstd run in liblz4 and libzstd called directly:
`CODEC_LIBRARIES` names the shared objects zlib and liblz4 were found in (liblz4: the lz4 package's own, else the
system's) and the versions; libzstd is compiled into the native module ("built in").
"""
from ._core import CODEC_LIBRARIES, DEFAULT_LEVELS, compress, decompress, decompression_limits
from ._core import CODEC_NAMES as CODECS
from ._core import set_decompression_limits

__all__ = ["CODECS", "CODEC_LIBRARIES", "DEFAULT_LEVELS", "compress", "decompress", "decompression_limits",
           "set_decompression_limits"]
