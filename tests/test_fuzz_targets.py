"""The fuzz targets in-process: every seed and every saved finding passes, the seeds reach every api and version,
and the targets' checks fail when a decoder misbehaves (so a fuzz run that passes means something)."""
import os
import signal
import struct
import subprocess
import sys
from pathlib import Path

import pytest

from chronik_perf import protocol
from chronik_perf.protocol import ProtocolError

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "fuzz"))
import targets  # noqa: E402

NAMES = sorted(targets.TARGETS)


@pytest.fixture(autouse=True)
def every_check_on_every_input(monkeypatch):
    """In-process, the segment target's costly checks (one input in 4 in a fuzz run) run on every input."""
    monkeypatch.setattr(targets, "_FULL_EVERY", 1)
REGRESSIONS = [(t, name, data) for t in NAMES for name, data in targets.regression_inputs(t)]


@pytest.mark.parametrize("target", NAMES)
def test_every_seed_passes_its_target(target):
    fuzz, seeds = targets.TARGETS[target]
    inputs = list(seeds())
    assert inputs
    for data in inputs:
        fuzz(data)


def test_protocol_seeds_reach_every_api_version_and_direction():
    reached = {(targets._case(s), s[0] & 1) for s in targets.seeds_protocol()}
    want = {((name, key, v), kind) for name, key in targets.APIS
            for v in range(protocol.SUPPORTED[name][0], protocol.SUPPORTED[name][1] + 1) for kind in (0, 1)}
    assert reached == want


@pytest.mark.parametrize("target,name,data", REGRESSIONS, ids=[f"{t}-{n}" for t, n, _ in REGRESSIONS])
def test_saved_findings_pass(target, name, data):
    targets.TARGETS[target][0](data)


def test_a_null_where_the_schema_forbids_one_is_a_protocol_error():
    """Found by fuzz_protocol: a null array decoded to None, which the encoder then refused to write."""
    frames = {name: data for t, name, data in REGRESSIONS if "null-non-nullable" in name}
    assert len(frames) == 2
    for data in frames.values():
        name, key, version = targets._case(data)
        rest = data[3:]
        with pytest.raises(ProtocolError, match="null for a non-nullable array"):
            if data[0] & 1:
                protocol.decode_response(name, version, struct.pack(">i", len(rest)) + rest)
            else:
                head = struct.pack(">hh", key, version)
                protocol.decode_request(struct.pack(">i", len(rest) + 4) + head + rest)


def test_a_negative_api_key_is_an_unknown_api():
    """Found by the sanitized run: the request table lookup shifted a negative api key left (undefined in C)."""
    head = struct.pack(">hhih", -31488, 0, 1, 0)
    with pytest.raises(ProtocolError, match="unknown api key -31488"):
        protocol.decode_request(struct.pack(">i", len(head)) + head)
    targets.fuzz_protocol(bytes([4, 0, 0]) + head)


def test_the_protocol_target_catches_a_decoder_that_misreads_a_field(monkeypatch):
    seed = next(s for s in targets.seeds_protocol() if s[0] & 1 and targets._case(s)[::2] == ("Metadata", 12))
    real = protocol.decode_response

    def misread(api, version, frame, **kw):
        cid, body = real(api, version, frame, **kw)
        return cid, {**body, "throttle_time_ms": body["throttle_time_ms"] + 1}
    monkeypatch.setattr(protocol, "decode_response", misread)
    with pytest.raises(AssertionError):
        targets.fuzz_protocol(seed)


def test_the_records_target_catches_columns_that_disagree_with_records(monkeypatch):
    seed = next(targets.seeds_records())
    real = targets.parse_batches

    class Skewed:
        def __init__(self, batch):
            self.batch = batch

        def __getattr__(self, name):
            return getattr(self.batch, name)

        def columns(self):
            cols = dict(self.batch.columns())
            cols["offset"] = cols["offset"] + 1
            return cols
    monkeypatch.setattr(targets, "parse_batches", lambda *a, **kw: [Skewed(b) for b in real(*a, **kw)])
    with pytest.raises(AssertionError):
        targets.fuzz_records(seed)


def test_the_index_target_catches_a_wrong_lookup(monkeypatch):
    seed = next(targets.seeds_index())

    class Off(targets.OffsetIndex):
        def lookup(self, offset, /):
            return super().lookup(offset + 1)
    monkeypatch.setattr(targets, "OffsetIndex", Off)
    with pytest.raises(AssertionError):
        targets.fuzz_index(seed)


PROBE = """
import ctypes, sys
import numpy as np
sys.path.insert(0, {fuzz!r})
from guard import GuardedBuffer
g = GuardedBuffer(8192)
view = g.{where}(b"abc")
address = np.frombuffer(view, dtype=np.uint8).__array_interface__["data"][0]
assert ctypes.string_at(address, 3) == b"abc"
print("read", flush=True)
ctypes.string_at(address + {offset}, 1)
print("no fault", flush=True)
"""


@pytest.mark.parametrize("where,offset", [("at_end", 3), ("at_start", -1)])
def test_a_read_one_byte_past_a_guarded_input_faults(where, offset):
    fuzz = str(Path(targets.__file__).parent)
    # a plain Python even inside the sanitized run, where ASan would turn the fault into its own report and abort
    env = {k: v for k, v in os.environ.items()
           if k not in ("LD_PRELOAD", "ASAN_OPTIONS", "UBSAN_OPTIONS", "PYTHONMALLOC", "PYTHONPATH")}
    run = subprocess.run([sys.executable, "-c", PROBE.format(fuzz=fuzz, where=where, offset=offset)],
                         capture_output=True, text=True, timeout=60, env=env)
    assert run.stdout == "read\n" and run.returncode == -signal.SIGSEGV, (run.returncode, run.stdout, run.stderr)


def _segment_log_picking_batch(picked):
    """A 4-batch log (timestamps 0..3, three records each) whose size makes the segment target look up batch
    `picked`'s timestamp."""
    for k in range(1, 64):
        batches = [targets.build_batch([b"x" * (k if i == 0 else 1)] * 3, base_offset=3 * i, timestamps=[i] * 3)
                   for i in range(4)]
        log = b"".join(batches)
        if len(log) % 4 == picked:
            return log
    raise AssertionError("no value size gives that batch")


@pytest.mark.parametrize("picked,wrong", [(0, lambda found: None), (0, lambda found: found + 3),
                                          (2, lambda found: found - 3)],
                         ids=["missed", "a later batch", "an earlier timestamp"])
def test_the_segment_target_catches_a_wrong_timestamp_lookup(monkeypatch, picked, wrong):
    data = targets.segment_input(_segment_log_picking_batch(picked))
    targets.fuzz_segment(data)

    class Off(targets.LogSegment):
        def find_offset_for_timestamp(self, timestamp, starting_offset=0):
            return wrong(super().find_offset_for_timestamp(timestamp, starting_offset))
    monkeypatch.setattr(targets, "LogSegment", Off)
    with pytest.raises(AssertionError):
        targets.fuzz_segment(data)
