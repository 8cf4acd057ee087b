"""LogSegment from several threads at once: appends, reads, recover(), truncate_to() and close() race, and every
GIL-free section (scans, pwritev) must see a mapping and a file descriptor that stay put while it runs."""
import random
import threading

import pytest

from chronik_perf.records import build_batch, parse_batches
from chronik_perf.storage import LogSegment

BATCH = build_batch([bytes(1000)] * 4, timestamps=[1_700_000_000_000] * 4)    # offsets 0..3 relative
INITIAL = 2000                                                               # batches: ~2 MB to scan


def run_threads(*targets):
    """Run each target in its own thread; re-raise the first exception any of them raised."""
    errors = []

    def guarded(fn):
        try:
            fn()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=guarded, args=(fn,)) for fn in targets]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]


def check_read(segment, offset):
    """A read returns whole batches with valid CRCs starting at the batch holding `offset`, or nothing past the end."""
    data = segment.read(offset, 64 << 10)
    if data:
        batches = parse_batches(data)
        assert batches[0].base_offset <= offset <= batches[0].last_offset or batches[0].base_offset > offset


def check_contiguous(segment):
    """Every batch on disk follows the one before, and a fresh recover finds nothing to cut."""
    positions = segment.batch_positions()
    for before, after in zip(positions, positions[1:]):
        assert after[1] == before[2] + 1 and after[0] > before[0]
    assert segment.next_offset == positions[-1][2] + 1
    assert segment.recover() == 0


@pytest.fixture
def segment(tmp_path):
    seg = LogSegment(tmp_path, 0, create=True, index_interval_bytes=8192)
    for _ in range(INITIAL):
        seg.append(BATCH)
    yield seg
    seg.close()


def test_appends_race_recover_and_reads(segment):
    assigned = []
    recovered = threading.Event()

    def appender():
        while not recovered.is_set():
            assigned.append(segment.append(BATCH))

    def recoverer():
        try:
            cuts = [segment.recover() for _ in range(20)]
        finally:
            recovered.set()
        assert cuts == [0] * 20, "recover() cut bytes a concurrent append had written"

    def reader():
        rng = random.Random(1)
        while not recovered.is_set():
            check_read(segment, rng.randrange(segment.next_offset + 8))

    run_threads(appender, recoverer, reader)
    firsts = [first for first, _ in assigned]
    assert firsts == list(range(4 * INITIAL, 4 * (INITIAL + len(assigned)), 4)), "appends got overlapping offsets"
    check_contiguous(segment)


def test_truncation_races_recover_and_reads(segment):
    done = threading.Event()

    def truncater():
        try:
            rng = random.Random(2)
            for _ in range(60):
                segment.truncate_to(segment.next_offset - 4 * rng.randrange(1, 20))
                for _ in range(rng.randrange(1, 20)):
                    segment.append(BATCH)
        finally:
            done.set()

    def recoverer():
        while not done.is_set():
            assert segment.recover() == 0

    def reader():
        rng = random.Random(3)
        while not done.is_set():
            check_read(segment, rng.randrange(segment.next_offset + 8))

    run_threads(truncater, recoverer, reader)
    check_contiguous(segment)


def test_close_waits_for_running_calls(tmp_path):
    seg = LogSegment(tmp_path, 0, create=True)
    for _ in range(INITIAL):
        seg.append(BATCH)
    started = threading.Event()
    outcomes = []

    def worker():
        started.set()
        try:
            while True:
                seg.recover()
                seg.append(BATCH)
        except ValueError as exc:
            outcomes.append(str(exc))

    thread = threading.Thread(target=worker)
    thread.start()
    started.wait()
    seg.close()
    thread.join()
    assert outcomes and "is closed" in outcomes[0]
