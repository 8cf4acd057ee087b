"""Kafka log segments on disk: LogSegment.append, read and recover against their floors, the plain operations
underneath (os.write of the same batches, bar 0.9x; os.pread of the same byte ranges, bar 0.9x; the `crc32c`
package over the same bytes, the checksum recover has to compute, bar 0.5x).

Batches are about 16 KiB (15 records of 1000 bytes). append writes 64 of them (1 MiB) per call to an open segment,
rolled to a fresh one every 128 MiB outside the timing (steady state: a fresh segment's first appends cost more).
read takes 1 MiB from a random offset of a 64 MiB segment (the floor is given the position, LogSegment looks it up in
the offset index). recover rescans a 64 MiB segment (framing, CRC, offsets), rebuilds its indexes and closes it (Kafka's
recover trims the indexes at the end, and the close releases the .log's mapping); opening the segment, which maps
the .log, is outside the timing. Its floor is the CRC alone over the same pages: the .log mapped and faulted in
before the timing, as the open leaves it for recover.
Files live in a temporary directory, in the page cache: this measures the code, not the disk.
"""
import mmap
import os

from ._suite import Suite, now, repeat_call, scratch_dir, size_label

BATCH = 16 << 10          # make_batch's target size
APPEND_BATCHES = 64
SEGMENT = 64 << 20
READ = 1 << 20
READS = 64
ROLL = 128 << 20


def make_batch(size):
    """A v2 batch of about `size` bytes: 1 KiB records (built once, not timed)."""
    from chronik_perf.records import build_batch
    count = size // 1040
    value = os.urandom(1000)
    return build_batch([value] * count, [b"key-%05d" % i for i in range(count)],
                       timestamps=[1_700_000_000_000 + i for i in range(count)])


def segment(directory):
    """A segment directory holding SEGMENT bytes of batches; returns (path of its .log, base offsets of batches)."""
    from chronik_perf.storage import LogSegment
    batch = make_batch(BATCH)
    firsts = []
    with LogSegment(directory, 0, create=True, max_bytes=2**31 - 1) as seg:
        for _ in range(SEGMENT // len(batch)):
            firsts.append(seg.append(batch)[0])
    return os.path.join(directory, "00000000000000000000.log"), firsts


class Appender:
    """Appends to one open segment (or plain file) until it holds ROLL bytes, then starts a fresh one; a fresh
    one gets its first chunk outside the timing, so calls measure steady-state appends, not file creation."""

    def __init__(self, impl, batch):
        self.impl, self.batch, self.root, self.count, self.target = impl, batch, scratch_dir("append"), 0, None

    def _roll(self):
        from chronik_perf.storage import LogSegment
        if self.target is not None:
            self.target.close()
            directory = os.path.join(self.root, str(self.count))
            for name in os.listdir(directory):
                os.remove(os.path.join(directory, name))
        self.count += 1
        directory = os.path.join(self.root, str(self.count))
        os.mkdir(directory)
        if self.impl == "chronik_perf":
            self.target = LogSegment(directory, 0, create=True, max_bytes=2**31 - 1)
        else:
            self.target = open(os.path.join(directory, "plain.log"), "wb", buffering=0)
        self.written = 0
        self.chunk()

    def chunk(self):
        write = self.target.append if self.impl == "chronik_perf" else self.target.write
        for _ in range(APPEND_BATCHES):
            write(self.batch)
        self.written += APPEND_BATCHES * len(self.batch)

    def time_func(self, loops):
        total = 0.0
        for _ in range(loops):
            if self.target is None or self.written >= ROLL:
                self._roll()
            t0 = now()
            self.chunk()
            total += now() - t0
        return total


def append(impl):
    def setup(meta):
        batch = make_batch(BATCH)
        meta["throughput_bytes"] = APPEND_BATCHES * len(batch)
        return Appender(impl, batch).time_func
    return setup


def read(impl):
    def setup(meta):
        import numpy as np
        from chronik_perf.storage import LogSegment
        directory = scratch_dir("read")
        log, firsts = segment(directory)
        picks = np.random.default_rng(4).integers(0, len(firsts) - READ // BATCH, READS).tolist()
        if impl == "chronik_perf":
            seg = LogSegment(directory, 0)
            offsets = [firsts[i] for i in picks]
            state = {"i": 0}

            def run():
                state["i"] = (state["i"] + 1) % READS
                return seg.read(offsets[state["i"]], READ)
        else:
            fd = os.open(log, os.O_RDONLY)
            size = os.path.getsize(log) // len(firsts)
            starts = [i * size for i in picks]
            state = {"i": 0}

            def run():
                state["i"] = (state["i"] + 1) % READS
                return os.pread(fd, READ, starts[state["i"]])
        meta["throughput_bytes"] = len(run())
        return run
    return setup


def recover(impl):
    def setup(meta):
        from chronik_perf.storage import LogSegment
        directory = scratch_dir("recover")
        log, _ = segment(directory)
        meta["throughput_bytes"] = os.path.getsize(log)
        if impl == "chronik_perf":
            def time_func(loops):
                total = 0.0
                for _ in range(loops):
                    seg = LogSegment(directory, 0)
                    t0 = now()
                    truncated = seg.recover()
                    seg.close()
                    total += now() - t0
                    if truncated:
                        raise AssertionError("recover truncated a healthy segment")
                return total
            return time_func
        import crc32c
        # the same pages recover reads: the .log's page-cache pages, mapped (and faulted in) before the timing,
        # as LogSegment's open maps them before recover
        with open(log, "rb") as f:
            pages = mmap.mmap(f.fileno(), 0, prot=mmap.PROT_READ, flags=mmap.MAP_SHARED | mmap.MAP_POPULATE)
        return repeat_call(lambda: crc32c.crc32c(pages))
    return setup


if __name__ == "__main__":
    suite = Suite("storage", requires="chronik_perf.storage")
    for impl, bar in (("chronik_perf", None), ("floor-os.write", 0.9)):
        suite.add_timed("append", f"{APPEND_BATCHES}x{size_label(BATCH)}", impl, append(impl), floor_bar=bar)
    for impl, bar in (("chronik_perf", None), ("floor-os.pread", 0.9)):
        suite.add("read", f"{size_label(READ)}-of-{size_label(SEGMENT)}", impl, read(impl), items=1, floor_bar=bar)
    suite.add_timed("recover", size_label(SEGMENT), "chronik_perf", recover("chronik_perf"))
    suite.add_timed("recover", size_label(SEGMENT), "floor-crc32c", recover("crc32c"), requires="crc32c",
                    floor_bar=0.5)
    suite.run()
