"""Shared machinery of the micro/bench_<group>.py scripts: one pyperf.Runner per script, benchmarks named
`group/operation/parameter/implementation`, set-up kept out of the timing, throughput and environment metadata.

Implementations named `chronik_perf...` are ours, `floor-...` the physical floor of the same work (the fastest
thing the machine does for it: a memcpy, the CRC alone, os.write, marshal, a bare C loop), any other a peer.

A script (a module of the `micro` package, run as `python -m micro.bench_<group>` from the repository root)
registers its benchmarks on a `Suite` and calls `Suite.run()`; every pyperf option still works (`-o`, `--fast`,
`--rigorous`, `-p`, `--affinity`, `--append`, ...). Extra options: `--select REGEX` keeps the
benchmarks whose name matches, `--list` prints the names and exits, `--list-bars` the bars the selected benchmarks
carry (an issue's least speedup over a peer, or a floor's least ratio), `--check` sets up every selected benchmark
and times one call of it (no pyperf, no timing: a broken benchmark fails fast), `--clock cpu|wall` chooses what
is timed (default cpu: on a machine shared with other jobs, wall time measures the neighbours as much as the code).
"""
import argparse
import atexit
import os
import importlib.metadata
import importlib.util
import json
import re
import shutil
import subprocess
import sys
import tempfile
import time
from itertools import repeat
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
FLOOR = "floor-"

# numpy's OpenBLAS threads spin while idle, and their CPU time would count in every benchmark's (--clock cpu)
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import pyperf  # noqa: E402

# What a benchmark's time is: "cpu" (user + system CPU time of the measuring process, time.process_time) leaves out
# the time the process waits while other jobs run on the same cores; "wall" (time.perf_counter) is pyperf's usual.
CLOCKS = {"cpu": time.process_time, "wall": time.perf_counter}
_clock = CLOCKS["cpu"]


def now():
    """The current reading of the clock chosen with --clock, for time functions that time parts of a call."""
    return _clock()


PACKAGES = ("numpy", "cython", "aiokafka", "kafka-python", "crc32c", "zstandard", "lz4", "python-snappy", "pyperf")


def environment():
    """Metadata describing the build under test: chronik_perf's version, path and git commit, peer versions."""
    import chronik_perf
    from chronik_perf.compression import CODEC_LIBRARIES
    from chronik_perf.records import crc32c_implementation

    meta = {"chronik_perf_version": chronik_perf.__version__,
            "chronik_perf_path": str(Path(chronik_perf.__file__).parent),
            "crc32c_implementation": crc32c_implementation(),
            "codec_libraries": "; ".join(f"{name} {lib['version']} ({lib['library']})"
                                         for name, lib in CODEC_LIBRARIES.items())}
    try:
        head = subprocess.run(["git", "-C", str(REPO), "rev-parse", "HEAD"], capture_output=True, text=True,
                              check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(REPO), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, check=True).stdout.strip()
        meta["chronik_perf_git"] = head + ("-dirty" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        pass
    for name in PACKAGES:
        try:
            meta[f"version_{name}"] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            pass
    return meta


def repeat_call(func):
    """A pyperf time function calling func() `loops` times."""
    clock = _clock

    def time_func(loops):
        t0 = clock()
        for _ in repeat(None, loops):
            func()
        return clock() - t0
    return time_func


def size_label(n):
    """64 -> '64B', 1024 -> '1KiB', 1048576 -> '1MiB'."""
    for unit, scale in (("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= scale and n % scale == 0:
            return f"{n // scale}{unit}"
    return f"{n}B"


def count_label(n):
    """1000 -> '1K', 1000000 -> '1M', 100 -> '100'."""
    for unit, scale in (("M", 1_000_000), ("K", 1000)):
        if n >= scale and n % scale == 0:
            return f"{n // scale}{unit}"
    return str(n)


def scratch_dir(prefix):
    """A temporary directory removed when the process exits."""
    path = tempfile.mkdtemp(prefix=f"chronik-micro-{prefix}-")
    atexit.register(shutil.rmtree, path, True)
    return path


class Suite:
    """The benchmarks of one group, registered with `add`/`add_timed` and run by `run()`."""

    def __init__(self, group, requires=None):
        """`requires`: a module of chronik_perf the whole group needs; without it the group has no benchmarks."""
        self.group = group
        self._cases = []
        self.missing = requires if requires and importlib.util.find_spec(requires) is None else None

    def add(self, operation, parameter, implementation, setup, *, nbytes=None, items=None, requires=None,
            floor_bar=None, peer_bar=None):
        """Register a benchmark timing repeated calls of the callable returned by `setup(meta)`.

        `setup` runs once per worker process, outside the timing; it may add metadata to `meta` (e.g. the exact
        bytes per call when known only after building the input). `nbytes`/`items`: bytes and items processed
        per call, recorded as `throughput_bytes`/`throughput_items`. `requires`: a module the benchmark needs;
        when it is missing the benchmark is left out. `floor_bar`, on a floor: the least speed of ours against
        it that the report accepts (e.g. 0.9: within 10% of os.write), recorded as metadata `floor_bar`.
        `peer_bar`, on ours: (peer, least speedup over that peer), an issue's bar the report checks (exit status 1
        when missed), recorded as metadata `bar_peer` and `peer_bar`.
        """
        self.add_timed(operation, parameter, implementation, lambda meta: repeat_call(setup(meta)),
                       nbytes=nbytes, items=items, requires=requires, floor_bar=floor_bar, peer_bar=peer_bar)

    def add_timed(self, operation, parameter, implementation, setup, *, nbytes=None, items=None, requires=None,
                  floor_bar=None, peer_bar=None):
        """Like `add`, but `setup(meta)` returns a pyperf time function `f(loops) -> seconds` itself, for
        operations that need fresh state per call prepared outside the timing."""
        if self.missing or (requires and importlib.util.find_spec(requires) is None):
            return
        name = f"{self.group}/{operation}/{parameter}/{implementation}"
        if name.count("/") != 3:
            raise ValueError(f"benchmark name must be group/operation/parameter/implementation: {name!r}")
        meta = {}
        if nbytes is not None:
            meta["throughput_bytes"] = int(nbytes)
        if items is not None:
            meta["throughput_items"] = int(items)
        if floor_bar is not None:
            if not implementation.startswith(FLOOR):
                raise ValueError(f"floor_bar on {name!r}, which is not a floor")
            meta["floor_bar"] = float(floor_bar)
        if peer_bar is not None:
            if implementation.startswith(FLOOR):
                raise ValueError(f"peer_bar on {name!r}, a floor")
            meta["bar_peer"], meta["peer_bar"] = peer_bar[0], float(peer_bar[1])
        self._cases.append((name, setup, meta))

    def run(self):
        """Parse the command line and run the selected benchmarks with pyperf."""
        runner = pyperf.Runner(add_cmdline_args=_forward_args, program_args=_program_args())
        runner.argparser.add_argument("--select", metavar="REGEX", help="run only benchmarks whose name matches")
        runner.argparser.add_argument("--list", action="store_true", help="print the benchmark names and exit")
        runner.argparser.add_argument("--list-bars", action="store_true", help="print the benchmarks' bars and exit")
        runner.argparser.add_argument("--check", action="store_true",
                                      help="set up every benchmark and run one call of it, without timing")
        runner.argparser.add_argument("--clock", choices=CLOCKS, default="cpu",
                                      help="cpu: CPU time of the measuring process (default); wall: elapsed time")
        runner.argparser.add_argument("--environment", help=argparse.SUPPRESS)
        args = runner.parse_args()
        global _clock
        _clock = CLOCKS[args.clock]
        if self.missing and not args.worker:
            print(f"[{self.group}] skipped: {self.missing} is not in this build", flush=True)
        cases = [c for c in self._cases if not args.select or re.search(args.select, c[0])]
        if args.list:
            if cases:
                print("\n".join(name for name, _, _ in cases))
            return
        if args.list_bars:
            for name, _, meta in cases:
                if "peer_bar" in meta:
                    print(f"{name}: speedup over {meta['bar_peer']} at least {meta['peer_bar']:g}x")
                if "floor_bar" in meta:
                    print(f"{name}: ours at least {meta['floor_bar']:g}x its speed")
            return
        if args.check:
            check(cases)
            return
        if not args.worker:
            args.environment = json.dumps(environment())
        runner.metadata.update(json.loads(args.environment), clock=args.clock)
        for index, (name, setup, meta) in enumerate(cases):
            meta = dict(meta)
            if not args.worker:
                print(f"[{self.group} {index + 1}/{len(cases)}] {name}", flush=True)
            # Set up only where the benchmark runs: in this worker's task, or here with --in-process.
            runs_here = args.in_process or (args.worker and args.worker_task == index)
            runner.bench_time_func(name, setup(meta) if runs_here else None, metadata=meta)


def check(cases):
    """Set up each benchmark and run its time function for one loop; print one line per benchmark checked."""
    for name, setup, meta in cases:
        elapsed = setup(dict(meta))(1)
        if not elapsed >= 0:
            raise AssertionError(f"{name}: time function returned {elapsed!r}")
        print(f"checked {name}", flush=True)


def _program_args():
    """How pyperf starts this script's worker processes: as the module it was run as (`-m micro.bench_crc`)."""
    spec = getattr(sys.modules["__main__"], "__spec__", None)
    return ("-m", spec.name) if spec is not None else None


def _forward_args(cmd, args):
    """Pass our options on to pyperf's worker processes."""
    if args.select:
        cmd.extend(("--select", args.select))
    cmd.extend(("--clock", args.clock, "--environment", args.environment))


def payload(kind, size, seed=0):
    """Deterministic test data: 'random' (incompressible), 'text' (log-like lines), 'zeros'."""
    if kind == "zeros":
        return bytes(size)
    import numpy as np
    rng = np.random.default_rng(seed)
    if kind == "random":
        return rng.integers(0, 256, size, dtype=np.uint8).tobytes()
    if kind == "text":
        words = [b"GET", b"POST", b"/api/v1/orders", b"/api/v1/users", b"200", b"404", b"user_id=", b"latency_ms=",
                 b"INFO", b"WARN", b"request", b"completed", b"in", b"region=eu-west-1", b"trace="]
        lines = size // 64 + 1
        picks = rng.integers(0, len(words), (lines, 8)).tolist()
        stamps = rng.integers(1_700_000_000_000, 1_800_000_000_000, lines).tolist()
        ids = rng.integers(0, 1 << 31, lines).tolist()
        text = b"".join(b"%d %s %d\n" % (stamps[i], b" ".join(words[w] for w in picks[i]), ids[i])
                        for i in range(lines))
        while len(text) < size:
            text += text
        return text[:size]
    raise ValueError(f"unknown payload kind {kind!r}")

