# cython: language_level=3
"""chronik_perf._core: the native core. One included part per concept."""

include "_errors.pxi"
include "_buffers.pxi"
include "_bytes.pxi"
include "_batch_layout.pxi"
include "_varint.pxi"
include "_crc32c.pxi"
include "_codecs.pxi"
include "_records.pxi"
include "_protocol.pxi"
include "_client.pxi"
