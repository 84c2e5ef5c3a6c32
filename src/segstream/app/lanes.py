"""Partition lanes: each partition's fetched records wait in its own queue and run as that
partition's transactions, one at a time and in offset order, while the other partitions and
the fetch go on.

Before lanes, the consume loop ran one round at a time: it fetched, ran every fetched
partition's transaction side by side, and fetched again only when the slowest had committed, so
a record waited for the slowest partition's broker round trips (docs/performance.md, run L).
Now the loop only fetches and hands records over; one coroutine per partition (its lane's
runner, in the worker) takes everything queued as its next transaction.

What keeps exactly once and the order of a partition:

- a partition's transactions, ticks included, hold that partition's lock
  (`WorkerLocks.partition`): one at a time, in the order their records were fetched;
- a lane's queue follows the consumer's position: records are queued in fetch order, and
  whatever moves the position (a rewind, a parked control record, a rebalance) discards the
  queued records of that topic-partition at the same time (no await between: records fetched
  from the old position are never run after those from the new one);
- records discarded without a new position being set (a rebalance) leave the position at the
  first of them, so none is skipped;
- a lane holding `SEGSTREAM_MAX_BATCH_RECORDS` records is not fetched for until it drains (the
  consumer keeps what it already fetched for it), so memory stays bounded;
- rebalances and the shutdown hold every partition (`WorkerLocks.exclusive`): they wait for
  the transactions in progress, and no new one starts meanwhile.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

__all__ = ["Lane", "WorkerLocks"]


class WorkerLocks:
    """Per-partition locks and an exclusive hold over all of them (a readers-writer lock
    whose readers are partitions). An exclusive request waiting blocks new partition holds,
    so a rebalance is not starved by a stream of transactions."""

    def __init__(self) -> None:
        self._held: set[int] = set()
        #: Per partition, its holders in waiting order: a partition's hold goes first come,
        #: first served (a lane's runner that just released it must not take it again ahead
        #: of a tick that waited, or the tick, and the slice it claimed, wait for as long as
        #: records keep coming: measured, slices 1.4 s apart instead of 0.45 s).
        self._queues: dict[int, deque[object]] = {}
        self._exclusive = False
        self._exclusive_waiting = 0
        self._waiters: list[asyncio.Future[None]] = []

    @property
    def held(self) -> frozenset[int]:
        """The partitions whose transactions are in progress."""
        return frozenset(self._held)

    @asynccontextmanager
    async def partition(self, partition: int) -> AsyncIterator[None]:
        """Hold `partition`: its transactions take turns, in the order they asked; other
        partitions go on."""
        queue = self._queues.setdefault(partition, deque())
        turn = object()
        queue.append(turn)
        try:
            await self._wait_until(
                lambda: (
                    queue[0] is turn
                    and not self._exclusive
                    and not self._exclusive_waiting
                    and partition not in self._held
                )
            )
        finally:
            queue.remove(turn)
            # Cancelled while waiting: the next in line may go.
            self._wake()
        self._held.add(partition)
        try:
            yield
        finally:
            self._held.discard(partition)
            self._wake()

    @asynccontextmanager
    async def exclusive(self) -> AsyncIterator[None]:
        """Hold every partition: waits for the transactions in progress."""
        self._exclusive_waiting += 1
        try:
            await self._wait_until(lambda: not self._exclusive and not self._held)
        finally:
            self._exclusive_waiting -= 1
            # Cancelled while waiting: the partitions it held back may go on.
            self._wake()
        self._exclusive = True
        try:
            yield
        finally:
            self._exclusive = False
            self._wake()

    async def _wait_until(self, ready: Callable[[], bool]) -> None:
        # Returns as soon as `ready()` holds, with no await after the check: the caller takes
        # the hold in the same step.
        while not ready():
            waiter = asyncio.get_running_loop().create_future()
            self._waiters.append(waiter)
            try:
                await waiter
            finally:
                if waiter in self._waiters:
                    self._waiters.remove(waiter)

    def _wake(self) -> None:
        waiters, self._waiters = self._waiters, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)


class Lane:
    """One partition's fetched records not yet run, as (topic-partition, records) groups in
    fetch order (the groups of one fetch run in a transaction exactly as they came)."""

    def __init__(self, partition: int) -> None:
        self.partition = partition
        self._groups: list[tuple[Any, list[Any]]] = []
        self.records = 0
        #: Set while records wait (the runner sleeps on it otherwise).
        self.waiting = asyncio.Event()
        #: A transaction of its records is in progress.
        self.running = False
        #: Counted as live work waiting by the worker's `LivePriority`.
        self.counted = False
        self.closed = False

    def add(self, tp: Any, messages: list[Any]) -> None:
        """Queue a topic-partition's fetched records."""
        self._groups.append((tp, messages))
        self.records += len(messages)
        self.waiting.set()

    def take(self, limit: int) -> list[tuple[Any, list[Any]]]:
        """The next transaction's records: whole groups, in order, until `limit` records (at
        least one group)."""
        taken: list[tuple[Any, list[Any]]] = []
        count = 0
        while self._groups and (not taken or count + len(self._groups[0][1]) <= limit):
            group = self._groups.pop(0)
            taken.append(group)
            count += len(group[1])
        self.records -= count
        if not self._groups:
            self.waiting.clear()
        return taken

    def discard(self, tp: Any | None = None) -> dict[Any, int]:
        """Drop the queued records of `tp` (all when None); per topic-partition, the offset of
        the first one dropped (where its position must go back to when nothing else sets it)."""
        first: dict[Any, int] = {}
        kept: list[tuple[Any, list[Any]]] = []
        for group_tp, messages in self._groups:
            if tp is None or group_tp == tp:
                if messages:
                    first.setdefault(group_tp, int(messages[0].offset))
                self.records -= len(messages)
            else:
                kept.append((group_tp, messages))
        self._groups = kept
        if not kept:
            self.waiting.clear()
        return first

    @property
    def empty(self) -> bool:
        """No record waits."""
        return not self._groups
