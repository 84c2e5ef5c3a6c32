"""The partitions this worker owns (Kafka Streams' TaskManager): assignment, revocation, and
the one way a task gets (back) to running.

An assignment closes the tasks of lost partitions at once and opens the new ones in the
background, all concurrently and outside the rebalance callback: a restore of one partition
holds neither the others nor the group's rebalance. While a task restores, its input
partitions are paused, so the consumer does not fetch records it would have to give back.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from segstream.app import heap
from segstream.app.metrics import WorkerMetrics
from segstream.app.settings import WorkerSettings
from segstream.app.task import PartitionTask, TaskState

__all__ = ["TaskManager"]

log = logging.getLogger("segstream.tasks")


class TaskManager:
    """Owns the `PartitionTask`s of this worker."""

    def __init__(
        self,
        settings: WorkerSettings,
        metrics: WorkerMetrics,
        group_id: str,
        *,
        pause: Callable[[int], None] = lambda _partition: None,
        resume: Callable[[int], None] = lambda _partition: None,
        opened: Callable[[int], None] = lambda _partition: None,
    ) -> None:
        self.settings = settings
        self.metrics = metrics
        self.group_id = group_id
        #: Tasks by partition (the API reads `partitions[p].store` of running ones).
        self.partitions: dict[int, PartitionTask] = {}
        self.assigned: set[int] = set()
        self._pause = pause
        self._resume = resume
        self._opened = opened
        self._opening: dict[int, asyncio.Task[None]] = {}
        #: The partitions being closed (what a shutdown that takes too long waits for).
        self.closing: set[int] = set()

    def running(self, partition: int) -> PartitionTask | None:
        """The partition's task when it is ours and running."""
        task = self.partitions.get(partition)
        return task if task is not None and task.ready else None

    def all_running(self) -> bool:
        """Every assigned partition has a running task."""
        return all(self.running(p) is not None for p in self.assigned)

    # -- assignment ----------------------------------------------------------------------
    async def assign(self, partitions: set[int]) -> None:
        """The group's new assignment for this worker: close what went, open what came."""
        revoked = sorted(set(self.partitions) - partitions)
        for partition in revoked:
            log.info("partition %d revoked", partition)
        await self._close_many(revoked)
        if revoked:
            heap.release()
        self.assigned = set(partitions)
        for partition in sorted(partitions - set(self.partitions)):
            log.info("partition %d assigned", partition)
            self.partitions[partition] = PartitionTask(
                partition, self.settings, self.metrics, self.group_id
            )
            self.ensure_open(partition)
        self.metrics.set_assigned(len(partitions))

    def ensure_open(self, partition: int) -> PartitionTask | None:
        """The running task of an assigned partition; else start (re)opening it in the
        background (once) and return None: the caller gives its records back."""
        task = self.partitions.get(partition)
        if task is None or partition not in self.assigned:
            return None
        if task.ready:
            return task
        if partition not in self._opening and task.task_state in (
            TaskState.CREATED,
            TaskState.SUSPENDED,
        ):
            self._pause(partition)
            self._opening[partition] = asyncio.create_task(
                self._open(task), name=f"open-partition-{partition}"
            )
        return None

    async def suspend(self, partition: int) -> None:
        """After a failure the broker may have seen half of: the task reopens on next use."""
        task = self.partitions.get(partition)
        if task is not None:
            await task.suspend()

    async def _open(self, task: PartitionTask) -> None:
        partition = task.partition
        try:
            await task.open()
        except asyncio.CancelledError:
            raise
        except Exception:
            # The broker away: the task stays suspended; the next batch or tick tries again.
            log.exception("partition %d: opening failed; will retry", partition)
        else:
            if self.partitions.get(partition) is task:
                self._opened(partition)
            if set(self._opening) == {partition}:
                heap.settle()  # the last to open: its long-lived objects out of full GCs
        finally:
            if self._opening.get(partition) is asyncio.current_task():
                del self._opening[partition]
            if self.partitions.get(partition) is task:
                # Running: records flow again; failed: the ticker's retry or a rewind
                # fetches them again.
                self._resume(partition)

    async def _close_many(self, partitions: list[int]) -> None:
        """Close these side by side: each waits for its producer (up to
        `PRODUCER_STOP_TIMEOUT_S` when the broker does not answer), so one after another
        they would add up."""
        self.closing.update(partitions)
        await asyncio.gather(*(self._close(partition) for partition in partitions))

    async def _close(self, partition: int) -> None:
        task = self.partitions.pop(partition, None)
        opening = self._opening.pop(partition, None)
        try:
            if opening is not None:
                opening.cancel()
                await asyncio.gather(opening, return_exceptions=True)
            if task is not None:
                try:
                    await task.close()
                except Exception:
                    log.exception("partition %d: closing failed", partition)
        finally:
            self.closing.discard(partition)
        self.metrics.forget_partition(partition)

    async def close_all(self) -> None:
        """Close every task (shutdown), side by side."""
        await self._close_many(sorted(self.partitions))
        self.assigned = set()
