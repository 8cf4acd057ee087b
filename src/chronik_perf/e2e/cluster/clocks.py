"""Each worker's CLOCK_MONOTONIC against the coordinator's, by ping-pong: the offset and its error bound.

CLOCK_MONOTONIC counts from its kernel's boot, so stamps from two hosts differ by an unknown constant. Workers on
the coordinator's own kernel (same /proc/sys/kernel/random/boot_id) share its clock: offset 0, bound 0. For the
others the coordinator reads the worker's clock ROUNDS times between two of its own readings; the round trip with
the lowest time gives offset = worker reading - midpoint, wrong by at most half that round trip.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

ROUNDS = 7


@dataclass(frozen=True)
class Offset:
    """Worker clock minus coordinator clock (ns), with |error| <= bound_ns."""

    offset_ns: int
    bound_ns: int
    rtt_ns: int | None  # the lowest round trip of the ping-pong (None: same kernel, not measured)
    same_kernel: bool

    def to_dict(self) -> dict:
        return {"offset_ms": self.offset_ns / 1e6, "bound_ms": self.bound_ns / 1e6,
                "rtt_ms": None if self.rtt_ns is None else self.rtt_ns / 1e6, "same_kernel": self.same_kernel}


def boot_id() -> str:
    """This kernel's boot id: equal boot ids mean one CLOCK_MONOTONIC."""
    try:
        with open("/proc/sys/kernel/random/boot_id", encoding="ascii") as fh:
            return fh.read().strip()
    except OSError:
        return ""  # not Linux: never taken for the same kernel


def ping_pong(read_remote, rounds: int = ROUNDS) -> Offset:
    """Estimate the offset of the clock read_remote() returns (ns) from the lowest-RTT of `rounds` round trips."""
    best = None
    for _ in range(max(5, rounds)):
        t0 = time.monotonic_ns()
        remote = read_remote()
        t1 = time.monotonic_ns()
        if best is None or t1 - t0 < best[0]:
            best = (t1 - t0, remote - (t0 + t1) // 2)
    rtt, offset = best
    return Offset(offset, (rtt + 1) // 2, rtt, False)


def measure(client, address: str, worker_boot_id: str, force: bool = False) -> Offset:
    """The offset of the Dask worker at `address`; 0 exactly on the coordinator's kernel unless `force`."""
    if worker_boot_id and worker_boot_id == boot_id() and not force:
        return Offset(0, 0, None, True)
    out = ping_pong(lambda: client.run(time.monotonic_ns, workers=[address])[address])
    return Offset(out.offset_ns, out.bound_ns, out.rtt_ns, worker_boot_id == boot_id() and bool(worker_boot_id))
