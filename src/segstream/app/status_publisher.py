"""The status publisher: every STATUS_INTERVAL_S, each running partition's segment versions,
readiness and member counts go to the status topic (`segments list` and the API aggregate
them), and the worker's member, backfill and lag gauges are refreshed."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Any

from segstream.app.metrics import WorkerMetrics
from segstream.app.settings import WorkerSettings
from segstream.app.task import PartitionTask
from segstream.app.task_manager import TaskManager
from segstream.schemas.jsontext import dumps
from segstream.timefmt import format_instant

__all__ = ["STATUS_INTERVAL_S", "StatusPublisher"]

STATUS_INTERVAL_S = 2.0


class StatusPublisher:
    """Publishes partition status and refreshes the per-segment and lag gauges."""

    def __init__(
        self,
        settings: WorkerSettings,
        metrics: WorkerMetrics,
        tasks: TaskManager,
        lock: Callable[[int], AbstractAsyncContextManager[None]],
        web_url: Callable[[], str | None],
        ready: Callable[[], bool],
        before_publish: Callable[[], Awaitable[None]],
    ) -> None:
        self._settings = settings
        self._metrics = metrics
        self._tasks = tasks
        self._lock = lock
        self._web_url = web_url
        self._ready = ready
        self._before_publish = before_publish
        self._reported_segments: set[str] = set()
        self._reported_lag: set[tuple[str, int]] = set()

    async def run(self, stopping: asyncio.Event, producer: Any, consumer: Any) -> None:
        """Publish until `stopping` is set."""
        topics = self._settings.topics
        while not stopping.is_set():
            await asyncio.sleep(STATUS_INTERVAL_S)
            self._metrics.set_ready(self._ready())
            snapshots: list[_Snapshot] = []
            for partition, task in list(self._tasks.partitions.items()):
                async with self._lock(partition):
                    # Between two of its transactions: what is reported is committed state
                    # (a segment is not "ready" while its last backfill slice may still be
                    # aborted).
                    if self._tasks.partitions.get(partition) is task:
                        snapshots.append(_Snapshot.of(partition, task))
            self.report_members(snapshots)
            statuses = [(s.partition, s.status) for s in snapshots if s.status is not None]
            await self._before_publish()
            for partition, status in statuses:
                status["worker"] = self._settings.worker_id
                # Where this worker answers HTTP: peers forward partition-owned requests here.
                status["web"] = self._web_url()
                status["at"] = format_instant(time.time_ns() // 1000)
                await producer.send(topics.status, key=str(partition).encode(), value=dumps(status))
            await self.report_lag(consumer)

    def report_members(self, snapshots: list[_Snapshot]) -> None:
        """Members per segment over this worker's partitions (a gauge per segment)."""
        totals: dict[str, int] = {}
        for snapshot in snapshots:
            for segment_id in snapshot.segments:
                totals[segment_id] = totals.get(segment_id, 0) + snapshot.members.get(segment_id, 0)
        for segment_id in self._reported_segments - totals.keys():
            self._metrics.forget_segment(segment_id)
        backlog: dict[str, int] = dict.fromkeys(totals, 0)
        for snapshot in snapshots:
            for segment_id, count in snapshot.backlog.items():
                backlog[segment_id] = backlog.get(segment_id, 0) + count
        for segment_id, count in totals.items():
            self._metrics.set_members(segment_id, count)
            self._metrics.set_backfill_remaining(segment_id, backlog.get(segment_id, 0))
        self._reported_segments = set(totals)

    async def report_lag(self, consumer: Any) -> None:
        """Records between each assigned partition's position and its high watermark."""
        reported: set[tuple[str, int]] = set()
        for tp in list(consumer.assignment()):
            highwater = consumer.highwater(tp)
            if highwater is None:
                continue
            try:
                position = await consumer.position(tp)
            except Exception:  # noqa: S112 - a partition moving away mid-report: skip it
                continue
            self._metrics.set_lag(tp.topic, tp.partition, max(0, highwater - position))
            reported.add((tp.topic, tp.partition))
        # The new owner reports partitions that moved away; stale gauges would count twice.
        for topic, partition in self._reported_lag - reported:
            self._metrics.forget_lag(topic, partition)
        self._reported_lag = reported


@dataclass(frozen=True)
class _Snapshot:
    """One partition's committed figures, taken between two of its transactions."""

    partition: int
    segments: tuple[str, ...]
    members: dict[str, int]
    backlog: dict[str, int]
    #: Its status record when running.
    status: dict[str, Any] | None

    @classmethod
    def of(cls, partition: int, task: PartitionTask) -> _Snapshot:
        return cls(
            partition,
            tuple(task.registry.segments),
            dict(task.members),
            task.backlog(),
            task.status() if task.ready else None,
        )
