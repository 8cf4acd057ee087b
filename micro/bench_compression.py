"""Kafka's codecs through chronik_perf.compression against the raw library calls (zlib, python-snappy, lz4.frame,
zstandard): compress and decompress of text, random and zero payloads, 1 KiB .. 1 MiB, each codec at its default
level and a few other levels. Parameters read `<codec><level>-<payload>-<size>`; the compression ratio
(input/output bytes) is recorded as metadata. The raw library call is the floor (`floor-raw`, bar 0.95x): ours wraps
it, so the gap is Kafka's framing and one call level, shown as the report's time over the floor. chronik_perf's
snappy writes Kafka's xerial framing (32 KiB blocks), the raw call plain snappy; both lz4 sides write the LZ4 frame
Kafka's producer writes (64 KiB independent blocks, no checksums, no content size), byte for byte the same."""
from functools import partial

from ._suite import Suite, payload, size_label

DEFAULT = {"gzip": 6, "snappy": None, "lz4": None, "zstd": 3}      # None: the library's default (lz4: 0)
PAYLOADS = (("text", 1024), ("text", 64 << 10), ("text", 1 << 20), ("random", 64 << 10), ("zeros", 64 << 10))
EXTRA_LEVELS = (("gzip", 1), ("zstd", 1), ("zstd", 9))        # measured on text-64KiB
EXTRA_PAYLOAD = ("text", 64 << 10)


def raw_codec(codec, level):
    """(compress, decompress) with the library's own API and Kafka's container for that codec, each as (function,
    arguments after the data): positional, as ours are, so that neither side pays for parsing keywords. LZ4
    writes the frame Kafka's producer writes, as ours does (64 KiB independent blocks, no checksums, no content
    size): byte for byte the same frame, so that both sides compress and decompress the same blocks."""
    if codec == "gzip":
        import zlib
        return (zlib.compress, (level, 31)), (zlib.decompress, (47,))
    if codec == "snappy":
        import snappy
        return (snappy.compress, ()), (snappy.decompress, ())
    if codec == "lz4":
        import lz4.frame
        # compression_level, block_size, content_checksum, block_linked, store_size
        return (lz4.frame.compress, (level or 0, lz4.frame.BLOCKSIZE_MAX64KB, False, False, False)), \
            (lz4.frame.decompress, ())
    import zstandard
    return (zstandard.ZstdCompressor(level=level).compress, ()), (zstandard.ZstdDecompressor().decompress, ())


def our_codec(codec, level):
    from chronik_perf.compression import compress, decompress
    return (partial(compress, codec), (level,)), (partial(decompress, codec), ())


def case(impl, operation, codec, level, kind, size):
    """Each side's call is one C-level call of its entry point (a partial binding every argument): no Python
    frame in between."""
    def setup(meta):
        data = payload(kind, size)
        (compress, compress_args), (decompress, decompress_args) = \
            (our_codec if impl == "chronik_perf" else raw_codec)(codec, level)
        packed = compress(data, *compress_args)
        if decompress(packed, *decompress_args) != data:
            raise AssertionError(f"{impl} {codec} does not round-trip")
        meta["compression_ratio"] = round(len(data) / len(packed), 3)
        if operation == "compress":
            return partial(compress, data, *compress_args)
        return partial(decompress, packed, *decompress_args)
    return setup


if __name__ == "__main__":
    suite = Suite("compression")
    configs = [(codec, level, kind, size) for kind, size in PAYLOADS for codec, level in DEFAULT.items()]
    configs += [(codec, level, *EXTRA_PAYLOAD) for codec, level in EXTRA_LEVELS]
    for codec, level, kind, size in configs:
        param = f"{codec}{'' if level is None else level}-{kind}-{size_label(size)}"
        for operation in ("compress", "decompress"):
            suite.add(operation, param, "chronik_perf", case("chronik_perf", operation, codec, level, kind, size),
                      nbytes=size)
            suite.add(operation, param, "floor-raw", case("raw", operation, codec, level, kind, size), nbytes=size,
                      requires={"gzip": "zlib", "snappy": "snappy", "lz4": "lz4", "zstd": "zstandard"}[codec],
                      floor_bar=0.95)
    suite.run()
