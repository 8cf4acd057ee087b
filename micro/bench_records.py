"""Record batches (magic v2): build (bulk `build_batch` and record-by-record `BatchBuilder`) and parse (Record
objects and numpy columns), chronik_perf against aiokafka's Cython records and kafka-python 3's records.

Parameters are `<records>x<value size>` with 8-byte keys and log-like text values, uncompressed, plus one shape
(100 x 1 KiB) under every codec as `100x1KiB-<codec>` and 100 x 100 B without keys as `100x100B-unkeyed`. Peers
parse as their consumers do by default (check_crcs=True): validate the CRC, then iterate the records; chronik_perf's parse_batches checks the CRC too.
Throughput bytes are those of the uncompressed batch. Floors: for build, a bytes copy of the same keys and values
(`floor-memcpy`: what any builder must at least move), plus, for a compressed batch, the library's compression of
the uncompressed records through chronik_perf.compression; for parse, the CRC alone over the batch (chronik_perf's
CRC32C, the fastest on the machine), plus, for a compressed batch, the library's decompression of its records
through chronik_perf.compression (`floor-crc`).
Bars (issue 1), on 100 x 100 B without keys (`100x100B-unkeyed`, the batch issue 1 set them on): build at least 10x
aiokafka's builder, parse to Record objects at least 2x and to columns at least 5x aiokafka's iteration. Context for them, without a bar: `consume`, a consumer's loop over that
parsed batch reading each record's offset, timestamp, key and value (records() against aiokafka's iteration).
"""
from functools import partial
from importlib import import_module

from chronik_perf.records import CODECS

from ._suite import Suite, payload, size_label

SHAPES = ((100, 10), (100, 100), (100, 1024), (100, 10240), (1, 100), (10, 100), (1000, 100))
CODEC_SHAPE = (100, 1024)
BARS = {("build", "chronik_perf"): 10.0, ("parse", "chronik_perf"): 2.0, ("parse", "chronik_perf-columns"): 5.0}
BAR_SHAPE, BAR_PEER = "100x100B-unkeyed", "aiokafka"
PEER_CODEC_IDS = {"none": 0, "gzip": 1, "snappy": 2, "lz4": 3, "zstd": 4}
PEERS = {"aiokafka": "aiokafka.record._crecords", "kafka-python": "kafka.record.default_records"}
TIMESTAMP = 1_760_000_000_000
RECORDS_START = 61      # v2 batch header size: the (compressed) records follow


def records(count, size, keyed=True):
    """(keys, values, timestamps) of a batch: distinct slices of one text payload (keys None when not keyed)."""
    text = payload("text", count * size, seed=count)
    values = [text[i * size:(i + 1) * size] for i in range(count)]
    keys = [b"key-%04d" % (i % 10000) if keyed else None for i in range(count)]
    return keys, values, [TIMESTAMP + i for i in range(count)]


def batch_bytes(count, size, codec, keyed=True):
    from chronik_perf.records import build_batch
    keys, values, timestamps = records(count, size, keyed)
    return build_batch(values, keys, timestamps=timestamps, compression=codec)


def build(impl, count, size, codec, keyed=True):
    def setup(meta):
        meta["throughput_bytes"] = len(batch_bytes(count, size, "none", keyed))
        keys, values, timestamps = records(count, size, keyed)
        rows = list(zip(range(count), timestamps, keys, values))
        if impl == "chronik_perf":
            from chronik_perf.records import build_batch
            return lambda: build_batch(values, keys, timestamps=timestamps, compression=codec)
        if impl == "chronik_perf-append":
            from chronik_perf.records import BatchBuilder

            def run():
                builder = BatchBuilder(codec, max_bytes=1 << 30)
                append = builder.append
                for _, ts, key, value in rows:
                    append(value, key, ts)
                return builder.build()
            return run
        builder_class = import_module(PEERS[impl]).DefaultRecordBatchBuilder
        codec_id = PEER_CODEC_IDS[codec]

        def run():
            builder = builder_class(2, codec_id, 0, -1, -1, -1, 1 << 30)
            append = builder.append
            for offset, ts, key, value in rows:
                append(offset, ts, key, value, [])
            return builder.build()
        return run
    return setup


def parse(impl, count, size, codec, keyed=True):
    def setup(meta):
        meta["throughput_bytes"] = len(batch_bytes(count, size, "none", keyed))
        data = batch_bytes(count, size, codec, keyed)
        if impl.startswith("chronik_perf"):
            from chronik_perf.records import parse_batches
            if impl == "chronik_perf-columns":
                return lambda: [batch.columns() for batch in parse_batches(data)]
            return lambda: [batch.records() for batch in parse_batches(data)]
        batch_class = import_module(PEERS[impl]).DefaultRecordBatch

        def run():
            batch = batch_class(data)
            if not batch.validate_crc():
                raise ValueError("CRC mismatch")
            return list(batch)
        return run
    return setup


def consume(impl, count, size, keyed=True):
    def setup(meta):
        data = batch_bytes(count, size, "none", keyed)
        meta["throughput_bytes"] = len(data)
        if impl == "chronik_perf":
            from chronik_perf.records import parse_batches

            def run():
                for r in parse_batches(data)[0].records():
                    r.offset, r.timestamp, r.key, r.value
            return run
        batch_class = import_module(PEERS[impl]).DefaultRecordBatch

        def run():
            for r in batch_class(data):
                r.offset, r.timestamp, r.key, r.value
        return run
    return setup


def build_floor(count, size, codec, keyed=True):
    def setup(meta):
        uncompressed = batch_bytes(count, size, "none", keyed)
        meta["throughput_bytes"] = len(uncompressed)
        keys, values, _ = records(count, size, keyed)
        pieces = [k for k in keys if k is not None] + values
        if codec == "none":
            return partial(b"".join, pieces)
        from chronik_perf.compression import compress
        plain = uncompressed[RECORDS_START:]

        def run():
            b"".join(pieces)
            return compress(codec, plain)
        return run
    return setup


def parse_floor(count, size, codec, keyed=True):
    def setup(meta):
        from chronik_perf.compression import decompress
        from chronik_perf.records import crc32c
        meta["throughput_bytes"] = len(batch_bytes(count, size, "none", keyed))
        data = batch_bytes(count, size, codec, keyed)
        if codec == "none":
            return partial(crc32c, data)
        packed = data[RECORDS_START:]

        def run():
            crc32c(data)
            return decompress(codec, packed)
        return run
    return setup


def bar(operation, param, impl):
    """The (peer, least speedup) bar of a benchmark, or None."""
    least = BARS.get((operation, impl)) if param == BAR_SHAPE else None
    return (BAR_PEER, least) if least else None


if __name__ == "__main__":
    suite = Suite("records")
    shapes = [(count, size, "none", True) for count, size in SHAPES] + [(100, 100, "none", False)]
    shapes += [(*CODEC_SHAPE, codec, True) for codec in CODECS if codec != "none"]
    for count, size, codec, keyed in shapes:
        param = (f"{count}x{size_label(size)}" + ("" if codec == "none" else f"-{codec}")
                 + ("" if keyed else "-unkeyed"))
        for impl in ("chronik_perf", "chronik_perf-append", "aiokafka", "kafka-python"):
            suite.add("build", param, impl, build(impl, count, size, codec, keyed), items=count,
                      requires=PEERS.get(impl, "chronik_perf").split(".")[0], peer_bar=bar("build", param, impl))
        suite.add("build", param, "floor-memcpy", build_floor(count, size, codec, keyed), items=count)
        for impl in ("chronik_perf", "chronik_perf-columns", "aiokafka", "kafka-python"):
            suite.add("parse", param, impl, parse(impl, count, size, codec, keyed), items=count,
                      requires=PEERS.get(impl, "chronik_perf").split(".")[0], peer_bar=bar("parse", param, impl))
        suite.add("parse", param, "floor-crc", parse_floor(count, size, codec, keyed), items=count)
        if param == BAR_SHAPE:
            for impl in ("chronik_perf", BAR_PEER):
                suite.add("consume", param, impl, consume(impl, count, size, keyed), items=count,
                          requires=PEERS.get(impl, "chronik_perf").split(".")[0])
    suite.run()
