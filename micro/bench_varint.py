"""Zigzag varints (Kafka's varint/varlong): encode and decode of single values (small, medium, large, max) and of
bulk arrays of 1000 mixed values, chronik_perf against aiokafka's Cython and kafka-python's pure-Python codecs.
Floors: for decode, the bare C loop over the same bytes (`chronik_perf._core.scan_varints`, one call for the
whole buffer); for encode, CPython's own int-to-bytes C loop (`struct.pack` of 8-byte words, one call)."""
from collections import deque
from functools import partial
from importlib import import_module

from ._suite import Suite

VALUES = {"small": 42, "medium": 300_000, "large": 1 << 40, "max": (1 << 63) - 1}
BULK = 1000
# implementation, module, encode(n, write) or encode(n) -> bytes, decode(buf, pos) -> (value, next_pos)
IMPLEMENTATIONS = (
    ("chronik_perf", "chronik_perf.records", "encode_varint", "decode_varint"),
    ("aiokafka", "aiokafka.record._crecords", "encode_varint_cython", "decode_varint_cython"),
    ("kafka-python", "kafka.record.util", "encode_varint", "decode_varint"),
)


def bulk_values():
    classes = list(VALUES.values())
    return [classes[i % len(classes)] - i for i in range(BULK)]


def encode_one(module, enc, dec, value):
    def setup(meta):
        encode = getattr(import_module(module), enc)
        if module.startswith("chronik_perf"):
            return partial(encode, value)
        # peers write byte by byte into a callback: a C-level sink, so their own loop is what is measured
        return partial(encode, value, deque(maxlen=0).append)
    return setup


def decode_one(module, enc, dec, value):
    def setup(meta):
        from chronik_perf.records import encode_varint
        return partial(getattr(import_module(module), dec), encode_varint(value), 0)
    return setup


def encode_bulk(module, enc, dec):
    def setup(meta):
        values = bulk_values()
        encode = getattr(import_module(module), enc)
        if module.startswith("chronik_perf"):
            return lambda: b"".join(map(encode, values))

        def run():
            out = bytearray()
            write = out.append
            for n in values:
                encode(n, write)
            return out
        return run
    return setup


def decode_bulk(module, enc, dec):
    def setup(meta):
        from chronik_perf.records import encode_varint
        buf = b"".join(map(encode_varint, bulk_values()))
        decode = getattr(import_module(module), dec)
        end = len(buf)
        meta["throughput_bytes"] = end

        def run():
            pos = 0
            while pos < end:
                _, pos = decode(buf, pos)
        return run
    return setup


def decode_floor(values):
    def setup(meta):
        from chronik_perf._core import scan_varints
        from chronik_perf.records import encode_varint
        return partial(scan_varints, b"".join(map(encode_varint, values)))
    return setup


def encode_floor(values):
    def setup(meta):
        import struct
        return partial(struct.Struct(f"<{len(values)}q").pack, *values)
    return setup


if __name__ == "__main__":
    suite = Suite("varint")
    for label, value in VALUES.items():
        for impl, *funcs in IMPLEMENTATIONS:
            suite.add("encode", label, impl, encode_one(*funcs, value), items=1, requires=funcs[0].split(".")[0])
            suite.add("decode", label, impl, decode_one(*funcs, value), items=1, requires=funcs[0].split(".")[0])
        suite.add("encode", label, "floor-struct", encode_floor([value]), items=1)
        suite.add("decode", label, "floor-c-loop", decode_floor([value]), items=1)
    for impl, *funcs in IMPLEMENTATIONS:
        suite.add("encode", f"{BULK}xmixed", impl, encode_bulk(*funcs), items=BULK, requires=funcs[0].split(".")[0])
        suite.add("decode", f"{BULK}xmixed", impl, decode_bulk(*funcs), items=BULK, requires=funcs[0].split(".")[0])
    suite.add("encode", f"{BULK}xmixed", "floor-struct", encode_floor(bulk_values()), items=BULK)
    suite.add("decode", f"{BULK}xmixed", "floor-c-loop", decode_floor(bulk_values()), items=BULK)
    suite.run()
