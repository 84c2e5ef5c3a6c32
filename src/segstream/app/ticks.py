"""The tick scheduler: every `SEGSTREAM_TICK_INTERVAL_S`, each owned partition with a due timer
runs a transaction with no records (timers fire at their instants), as does one whose input
positions wait for the consumer group's offsets past `SEGSTREAM_GROUP_OFFSETS_INTERVAL_S` (an
idle partition's lag reaches 0), and a partition whose open failed is opened again. Backfill
slices run on ticks too, when `LivePriority` allows: back to back on an idle loop, at their
share of the CPU under live load."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager

from segstream.app.isolation import run_batch
from segstream.app.priority import LivePriority
from segstream.app.task import PartitionTask
from segstream.app.task_manager import TaskManager

__all__ = ["TickScheduler"]

log = logging.getLogger("segstream.ticks")

#: While backfills are pending, how often the ticker asks whether a slice may run.
POLL_S = 0.005


class TickScheduler:
    """Runs the ticks of the partitions that have work."""

    def __init__(
        self,
        tasks: TaskManager,
        interval_s: float,
        lock: Callable[[int], AbstractAsyncContextManager[None]],
        paused: Callable[[], bool],
        priority: LivePriority,
        unparked: Callable[[PartitionTask, int], None] = lambda _task, _offset: None,
    ) -> None:
        self._tasks = tasks
        self._interval = interval_s
        #: A partition's lock (its transactions take turns with the records' own).
        self._lock = lock
        self._paused = paused
        self._priority = priority
        #: Called for a task whose parked control record its tick released.
        self._unparked = unparked
        #: When each partition last committed a transaction (monotonic seconds).
        self._last_transaction: dict[int, float] = {}

    def committed(self, partition: int) -> None:
        """A batch of records committed on `partition` (its due timers fired in it)."""
        self._last_transaction[partition] = time.monotonic()

    async def run(self, stopping: asyncio.Event) -> None:
        """Tick until `stopping` is set: timers every interval, backfill slices when the
        priority allows (checked every POLL_S while backfills are pending)."""
        priority = self._priority
        timers_at = time.monotonic() + self._interval
        while not stopping.is_set():
            backfills = self._backfills_pending()
            background = backfills and priority.background_wait() == 0.0
            now = time.monotonic()
            if not background and now < timers_at:
                wait = timers_at - now
                await asyncio.sleep(min(wait, POLL_S) if backfills else wait)
                continue
            timers = now >= timers_at
            if timers:
                timers_at = now + self._interval
            if self._paused():
                await asyncio.sleep(0)
                continue
            # Claimed: a batch of records may have taken the slice since it was asked.
            background = background and priority.claim()
            backfilling = 0
            due: list[PartitionTask] = []
            try:
                due = self._due(background, timers)
                # One tick's backfill slices together take at most `slice_s` of evaluation,
                # however many partitions have backfills.
                backfilling = sum(1 for task in due if task.jobs) if background else 0
                for task in due:
                    task.backfill_slice_s = (
                        priority.slice_s / backfilling if backfilling and task.jobs else 0.0
                    )
                    task.slice_evaluated_s = 0.0
                await asyncio.gather(*(self._tick(task) for task in due))
            finally:
                if backfilling:
                    priority.background_ran(sum(task.slice_evaluated_s for task in due))
                elif background:
                    priority.release()
            await asyncio.sleep(0)

    def _backfills_pending(self) -> bool:
        return any(task.ready and task.jobs for task in self._tasks.partitions.values())

    def _due(self, background: bool, timers: bool) -> list[PartitionTask]:
        tasks = self._tasks
        now = time.monotonic()
        due: list[PartitionTask] = []
        for partition in sorted(tasks.assigned):
            # A (re)open that failed (the broker was away) is tried again here, so that an
            # idle partition does not stay closed for good.
            task = tasks.ensure_open(partition)
            if task is None:
                continue
            if background and task.jobs:
                due.append(task)
                continue
            if timers and self._timers_due(task, now):
                due.append(task)
        return due

    def _timers_due(self, task: PartitionTask, now: float) -> bool:
        if not (task.timer_due() or task.sweep_due() or task.group_offsets_due()):
            return False
        # A batch of records that fired its due timers less than a tick ago: a transaction
        # of its own now would only take turns from the records.
        return now - self._last_transaction.get(task.partition, 0.0) >= self._interval

    async def _tick(self, task: PartitionTask) -> None:
        async with self._lock(task.partition):
            if self._tasks.running(task.partition) is not task or not (
                task.backfill_slice_s > 0 or self._timers_due(task, time.monotonic())
            ):
                # Closed or suspended while this tick waited for its turn, or a batch of
                # records fired its timers meanwhile.
                task.backfill_slice_s = 0.0
                return
            try:
                await run_batch(task, [])
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("partition %d: tick failed; reopening", task.partition)
                await self._tasks.suspend(task.partition)
            else:
                self.committed(task.partition)
                released = task.unpark()
                if released is not None:
                    self._unparked(task, released)
            finally:
                # A slice share is only for the tick it was given to.
                task.backfill_slice_s = 0.0
