"""CRC32C over 64 B .. 16 MiB: chronik_perf (hardware-dispatched and portable table) against the `crc32c`
package, aiokafka's Cython checksum and kafka-python's pure-Python one (small sizes only). The portable table
implementation is compared with the table-driven peers only (aiokafka, kafka-python). Floor: a bytes copy of the
same buffer (memcpy: reading the bytes once, and writing them). Bar (issue 1): on 1 MiB, at least 0.9x the `crc32c`
package's speed."""
from functools import partial
from importlib import import_module

from ._suite import Suite, payload, size_label

SIZES = (64, 1024, 64 << 10, 1 << 20, 16 << 20)
# implementation, module, function, largest size measured (kafka-python's table loop runs at a few MB/s)
SOFTWARE_PEERS = "aiokafka,kafka-python"
IMPLEMENTATIONS = (
    ("chronik_perf", "chronik_perf.records", "crc32c", None),
    ("chronik_perf-software", "chronik_perf.records", "crc32c_software", None),
    ("crc32c", "crc32c", "crc32c", None),
    ("aiokafka", "aiokafka.record._crecords", "crc32c_cython", None),
    ("kafka-python", "kafka.record._crc32c", "crc", 1024),
)
BARS = {("chronik_perf", 1 << 20): ("crc32c", 0.9)}  # (implementation, size): (peer, least speedup over it)


def checksum(module, function, size):
    """The setup of one benchmark: the function bound to `size` random bytes."""
    def setup(meta):
        if function == "crc32c_software":
            meta["peers"] = SOFTWARE_PEERS
        return partial(getattr(import_module(module), function), payload("random", size))
    return setup


def copy(size):
    """The floor: a bytes copy of the same buffer."""
    return lambda meta: partial(bytes, bytearray(payload("random", size)))


if __name__ == "__main__":
    suite = Suite("crc")
    for size in SIZES:
        for impl, module, function, largest in IMPLEMENTATIONS:
            if largest is None or size <= largest:
                suite.add("crc32c", size_label(size), impl, checksum(module, function, size), nbytes=size,
                          requires=module.split(".")[0], peer_bar=BARS.get((impl, size)))
        suite.add("crc32c", size_label(size), "floor-memcpy", copy(size), nbytes=size)
    suite.run()
