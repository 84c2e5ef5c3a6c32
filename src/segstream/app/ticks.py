"""The tick scheduler: every `SEGSTREAM_TICK_INTERVAL_S`, each owned partition with a due timer
or a pending backfill runs a transaction with no records (timers fire at their instants, a
backfill advances one slice), and a partition whose open failed is opened again."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager

from segstream.app.isolation import run_batch
from segstream.app.task import BACKFILL_SLICE_S, PartitionTask
from segstream.app.task_manager import TaskManager

__all__ = ["TickScheduler"]

log = logging.getLogger("segstream.ticks")


class TickScheduler:
    """Runs the ticks of the partitions that have work."""

    def __init__(
        self,
        tasks: TaskManager,
        interval_s: float,
        lock: Callable[[], AbstractAsyncContextManager[object]],
        paused: Callable[[], bool],
    ) -> None:
        self._tasks = tasks
        self._interval = interval_s
        self._lock = lock
        self._paused = paused
        #: When each partition last committed a transaction (monotonic seconds).
        self._last_transaction: dict[int, float] = {}

    def committed(self, partition: int) -> None:
        """A batch of records committed on `partition` (its due timers fired in it)."""
        self._last_transaction[partition] = time.monotonic()

    async def run(self, stopping: asyncio.Event) -> None:
        """Tick until `stopping` is set."""
        while not stopping.is_set():
            await asyncio.sleep(self._interval)
            if self._paused():
                continue
            async with self._lock():
                due = self._due()
                # One tick's backfill slices together take at most BACKFILL_SLICE_S of
                # evaluation, however many partitions have backfills.
                backfilling = sum(1 for task in due if task.jobs)
                for task in due:
                    task.backfill_slice_s = BACKFILL_SLICE_S / max(1, backfilling)
                await asyncio.gather(*(self._tick(task) for task in due))

    def _due(self) -> list[PartitionTask]:
        tasks = self._tasks
        now = time.monotonic()
        due: list[PartitionTask] = []
        for partition in sorted(tasks.assigned):
            # A (re)open that failed (the broker was away) is tried again here, so that an
            # idle partition does not stay closed for good.
            task = tasks.ensure_open(partition)
            if task is None or not task.has_work():
                continue
            if not task.jobs and now - self._last_transaction.get(partition, 0.0) < self._interval:
                # A batch of records fired its due timers less than a tick ago; a
                # transaction of its own now would only take turns from the records.
                continue
            due.append(task)
        return due

    async def _tick(self, task: PartitionTask) -> None:
        try:
            await run_batch(task, [])
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("partition %d: tick failed; reopening", task.partition)
            await self._tasks.suspend(task.partition)
        else:
            self.committed(task.partition)
