"""Benchmark 5: N consumers in one group.

Measures the time from the first subscribe until every partition is assigned, aggregate and
per-consumer throughput while the group drains the topic, then the rebalance time when a member
joins (its subscribe until it holds partitions and all partitions are assigned exactly once) and
when one leaves (its close until its partitions are assigned to the others). All times come from
the members' own CLOCK_MONOTONIC stamps on their assign/revoke callbacks. The replay takes both protocols: the
classic one revokes and assigns whole assignments, KIP-848's (--group-protocol consumer) only what changes hands.
"""

from __future__ import annotations

import time

import numpy as np

from ..drivers.base import WorkerError
from ..verify import Stream, unread_counts, verify
from .common import (RunContext, TestFailed, consumer_spec, create_topic, end_offsets, entry, produce_to, wait_for,
                     wait_ready)

STABLE_TIMEOUT_S = 90.0


class Assignment:
    """The group's assignment as seen from the members' callbacks, replayed in time order."""

    def __init__(self, partitions: int):
        self.partitions = partitions
        self.owned: dict[int, set[int]] = {}
        self.events: list[tuple] = []

    def absorb(self, workers) -> None:
        for w in workers:
            self.events.extend(w.events())
        self.events.sort(key=lambda e: e[1])

    def stable_since(self, t0: int, members: set[int]) -> int | None:
        """Replay events after t0; the time the assignment first covers every partition exactly once,
        with every member holding at least one (when there are enough partitions)."""
        owned = {m: set() for m in members}
        for kind, t, data in self.events:
            w = data["worker"]
            if kind == "assigned":
                owned.setdefault(w, set()).update(data["partitions"])
            elif kind == "revoked":
                owned.setdefault(w, set()).difference_update(data["partitions"])
            if t < t0:
                continue
            live = {m: ps for m, ps in owned.items() if m in members}
            flat = [p for ps in live.values() for p in ps]
            if (len(flat) == self.partitions and set(flat) == set(range(self.partitions))
                    and (len(members) > self.partitions or all(live.get(m) for m in members))):
                self.owned = live
                return t
        return None

    def wait(self, workers, t0: int, members: set[int], phase: str) -> int:
        deadline = time.monotonic() + STABLE_TIMEOUT_S
        while time.monotonic() < deadline:
            self.absorb(workers)
            t = self.stable_since(t0, members)
            if t is not None:
                return t
            _check_members(workers, members, phase)
            time.sleep(0.05)
        raise TestFailed(f"group did not settle within {STABLE_TIMEOUT_S:.0f} s {phase}")


def _check_members(workers, members: set[int], phase: str) -> None:
    """Fail at once, with the member's own error, when a member the phase waits for has ended."""
    for i in sorted(members):
        if workers[i].done():
            try:
                workers[i].result(timeout=1.0)
                reason = "it stopped reading without being asked to"
            except WorkerError as exc:
                reason = str(exc)
            raise TestFailed(f"group member {i} ended {phase}: {reason}")


def _event_time(assignment: Assignment, workers, kind: str, worker: int) -> int:
    deadline = time.monotonic() + STABLE_TIMEOUT_S
    while time.monotonic() < deadline:
        assignment.absorb(workers)
        for k, t, data in assignment.events:
            if k == kind and data["worker"] == worker:
                return t
        time.sleep(0.02)
    raise TestFailed(f"consumer {worker} never reported {kind!r}")


def run_groups(ctx: RunContext) -> dict:
    cfg = ctx.cfg
    n = cfg.consumers
    # so the member that joins later gets a partition too
    topic, partitions = create_topic(ctx, "groups", max(cfg.num_partitions, n + 1))
    filled = produce_to(ctx, topic, partitions, "groups: filling topic")
    group = f"chronik-perf-{ctx.run_id}-group"

    def member(i):
        return ctx.driver.start_consumer(consumer_spec(ctx, topic, partitions, None, group=group, worker_id=i))

    workers = [member(i) for i in range(n)]
    state = Assignment(partitions)
    with ctx.workers_running():
        try:
            wait_ready(workers)
            first_join = min(_event_time(state, workers, "joining", i) for i in range(n))
            assigned_at = state.wait(workers, first_join, set(range(n)), "after the first join")
            counts = [len(state.owned.get(i, ())) for i in range(n)]
            _drain(ctx, workers, filled.acked)

            joiner = member(n)
            workers.append(joiner)
            t_join = _event_time(state, workers, "joining", n)
            joined_at = state.wait(workers, t_join, set(range(n + 1)), "after a member joined")

            workers[0].stop()
            t_leave = _event_time(state, workers, "closing", 0)
            left_at = state.wait(workers, t_leave, set(range(1, n + 1)), "after a member left")
        except BaseException:
            for w in workers:
                w.kill()
            raise
    for w in workers:
        w.stop()
    results = wait_for(ctx, "groups: closing", workers, filled.acked, timeout=60)
    verification = verify(filled.expected, [Stream(r.partition, r.pid, r.seq) for r in results],
                          ctx.partition_of(partitions),
                          unread_counts(end_offsets(ctx, topic), [r.positions for r in results]))
    per, start, end = first_arrivals(results, filled.expected)
    # the drain: from the moment every partition was assigned (or the first arrival, if earlier) to the first
    # arrival of the last acknowledged id
    duration = (end - min(start, assigned_at)) / 1e9 if start is not None else 0.0
    drained = verification["distinct"]  # re-deliveries after a rebalance are duplicates, not throughput
    return entry("groups", ctx, drained, drained * cfg.message_size, duration,
                 read_in_total=sum(r.received for r in results), consumers=n, partitions=partitions,
                 group_protocol=cfg.group_protocol, drain_method="all partitions assigned to the first arrival of "
                 "the last acknowledged id, from the members' own CLOCK_MONOTONIC stamps",
                 initial_assignment_ms=(assigned_at - first_join) / 1e6,
                 rebalance_join_ms=(joined_at - t_join) / 1e6, rebalance_leave_ms=(left_at - t_leave) / 1e6,
                 assignment_balance=max(counts) - min(counts), partitions_per_member=counts,
                 per_consumer=per, verification=verification, errors=[e for r in results for e in r.errors],
                 topic=topic)


def first_arrivals(results: list[dict], expected) -> tuple[list[dict], int | None, int | None]:
    """Per member, the acknowledged ids it delivered first (before any other member) and its rate over them; and the
    group's drain window: the first arrival of any id to the first arrival of the last acknowledged one."""
    ids, stamps, member = [], [], []
    for i, r in enumerate(results):
        ids.append((np.asarray(r.pid, dtype=np.int64) << 40) | np.asarray(r.seq, dtype=np.int64))
        stamps.append(np.asarray(r.arrival_ns, dtype=np.int64))
        member.append(np.full(len(r.seq), i, dtype=np.int64))
    ids, stamps, member = (np.concatenate(a) if a else np.empty(0, np.int64) for a in (ids, stamps, member))
    owed = np.zeros(len(ids), dtype=bool)
    for e in expected:
        seq = ids & ((1 << 40) - 1)
        mine = ((ids >> 40) == e.pid) & (seq < e.sent)
        if e.failed:
            mine &= ~np.isin(seq, list(e.failed))
        owed |= mine
    ids, stamps, member = ids[owed], stamps[owed], member[owed]
    order = np.lexsort((stamps, ids))            # by id, earliest arrival first
    first = np.ones(len(order), dtype=bool)
    first[1:] = ids[order][1:] != ids[order][:-1]
    stamps, member = stamps[order][first], member[order][first]
    per = []
    for i, r in enumerate(results):
        mine = stamps[member == i]
        d = (mine.max() - mine.min()) / 1e9 if len(mine) > 1 else 0.0
        per.append({"consumer": r.worker, "messages": int(len(mine)),
                    "throughput_msgs_s": len(mine) / d if d > 0 else None})
    if not len(stamps):
        return per, None, None
    return per, int(stamps.min()), int(stamps.max())


def _drain(ctx: RunContext, workers, total: int) -> None:
    """Wait until the members together read `total` messages (the drain's timing comes from their own stamps)."""
    task = ctx.progress.add_task("groups: consuming", total=total) if ctx.progress else None
    deadline = time.monotonic() + max(120.0, total / 1000)
    last, last_change = -1, time.monotonic()
    try:
        while True:
            done = sum(w.progress() for w in workers)
            if task is not None:
                ctx.progress.update(task, completed=done)
            if done >= total:
                return
            if done != last:
                last, last_change = done, time.monotonic()
            if time.monotonic() > deadline or time.monotonic() - last_change > 30:
                raise TestFailed(f"group consumed {done} of {total} messages and stalled")
            if not all(w.alive() for w in workers):
                raise TestFailed("a group member died while consuming")
            time.sleep(0.1)
    finally:
        if task is not None:
            ctx.progress.remove_task(task)
