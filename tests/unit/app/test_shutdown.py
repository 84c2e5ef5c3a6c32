"""A SIGTERM's stop is bounded: partitions close side by side, and past
SEGSTREAM_SHUTDOWN_TIMEOUT_S the worker leaves without the step still waiting, saying which."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from pathlib import Path
from typing import Any

import pytest
from shell_fakes import FakeProducer, settings_for

import segstream.app.task as task_module
from segstream.app.metrics import WorkerMetrics
from segstream.app.restore import open_store
from segstream.app.task import PartitionTask, TaskState
from segstream.app.worker import Worker


class SlowProducer(FakeProducer):
    """A partition producer whose stop waits `delay` seconds (None: for ever)."""

    def __init__(self, delay: float | None) -> None:
        super().__init__()
        self.delay = delay
        self.stops = 0

    async def stop(self) -> None:
        self.stops += 1
        if self.delay is None:
            await asyncio.Event().wait()
        await asyncio.sleep(self.delay)


class Part:
    """A consumer, catalogue, side producer or web server: its stop waits `delay` seconds
    (None: for ever) and is counted."""

    def __init__(self, delay: float | None = 0.0) -> None:
        self.delay = delay
        self.stopped = 0

    async def stop(self) -> None:
        if self.delay is None:
            await asyncio.Event().wait()
        await asyncio.sleep(self.delay)
        self.stopped += 1


def worker_with(tmp: Path, producers: list[FakeProducer], budget: float = 10.0) -> Worker:
    """A worker (not run) owning one running partition per producer, with stoppable parts."""
    settings = dataclasses.replace(settings_for(tmp), shutdown_timeout_s=budget)
    worker = Worker(settings, WorkerMetrics())
    for partition, producer in enumerate(producers):
        task = PartitionTask(partition, settings, WorkerMetrics(), "t")
        task.store = open_store(settings, tmp / task.store_name)
        task.producer = producer
        task.task_state = TaskState.RUNNING
        worker.tasks.partitions[partition] = task
        worker.tasks.assigned.add(partition)
    worker.consumer, worker.side_producer, worker.web = Part(), Part(), Part()
    worker.catalogue = Part()  # type: ignore[assignment]
    return worker


def stop_and_shut_down(worker: Worker, batch: Any = None) -> float:
    """SIGTERM's path: `stop()`, the batch in progress, the shutdown; the seconds it took."""

    async def main() -> float:
        started = time.monotonic()
        worker.stop()
        await worker._within_budget(batch if batch is not None else asyncio.sleep(0))
        await worker._within_budget(worker._shutdown([]))
        return time.monotonic() - started

    return asyncio.run(main())


def test_partitions_close_side_by_side(tmp_path: Path) -> None:
    """Each partition waits for its producer's stop: three of 1 s take 1 s, not 3 s (upper
    bounds here leave a loaded machine room: they only tell bounded from unbounded)."""
    producers = [SlowProducer(1.0) for _ in range(3)]
    worker = worker_with(tmp_path, list(producers))
    took = stop_and_shut_down(worker)
    assert 1.0 <= took < 2.5
    assert [p.stops for p in producers] == [1, 1, 1]
    assert worker.tasks.partitions == {} and worker.tasks.closing == set()
    parts = (worker.consumer, worker.catalogue, worker.side_producer, worker.web)
    assert [part.stopped for part in parts] == [1, 1, 1, 1]  # type: ignore[attr-defined]


def test_producers_that_never_stop_are_left_after_their_bound(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A broker that never answers: each partition leaves its producer after
    PRODUCER_STOP_TIMEOUT_S (all at once), and the consumer still leaves the group."""
    monkeypatch.setattr(task_module, "PRODUCER_STOP_TIMEOUT_S", 0.3)
    worker = worker_with(tmp_path, [SlowProducer(None), SlowProducer(None)])
    took = stop_and_shut_down(worker)
    assert 0.3 <= took < 2.5
    assert worker.consumer.stopped == 1


def test_a_step_that_never_ends_is_left_at_the_budget_and_named(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The consumer's stop never returns (a close that waits for the broker): the worker
    leaves at SEGSTREAM_SHUTDOWN_TIMEOUT_S, after closing the partitions first, and says
    what it waited for and where every task waits."""
    worker = worker_with(tmp_path, [FakeProducer()], budget=0.5)
    worker.consumer = Part(None)
    with caplog.at_level(logging.INFO, logger="segstream.worker"):
        took = stop_and_shut_down(worker)
    assert 0.5 <= took < 3.0
    assert worker.tasks.partitions == {}  # closed before the consumer was asked to leave
    assert worker.side_producer.stopped == 0  # the budget was spent
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    left = [m for m in warnings if "stopping took over 0.5s" in m]
    assert len(left) == 1 and "the consumer to leave the group" in left[0], warnings
    assert "SEGSTREAM_SHUTDOWN_TIMEOUT_S" in left[0]
    assert any(m.startswith("task ") and "waits at" in m for m in warnings)


def test_a_batch_that_never_ends_uses_the_whole_budget(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The budget starts at SIGTERM: a batch in progress that never ends leaves no time for
    the rest (which the broker and the next owner make up for); one warning, naming it."""
    worker = worker_with(tmp_path, [FakeProducer()], budget=0.4)
    with caplog.at_level(logging.WARNING, logger="segstream.worker"):
        took = stop_and_shut_down(worker, asyncio.Event().wait())
    assert 0.4 <= took < 3.0
    left = [r.getMessage() for r in caplog.records if "stopping took over" in r.getMessage()]
    assert len(left) == 1 and "the batch in progress" in left[0]
    assert worker.consumer.stopped == 0


def test_the_budget_starts_at_stop_not_before(tmp_path: Path) -> None:
    """Before a stop nothing is bounded (consuming runs for ever); `stop()` during a step
    bounds it from then on."""
    worker = worker_with(tmp_path, [FakeProducer()], budget=0.3)

    async def main() -> tuple[float, float]:
        started = time.monotonic()
        await worker._within_budget(asyncio.sleep(0.5))  # longer than the budget: no stop yet
        unbounded = time.monotonic() - started
        consuming = asyncio.ensure_future(worker._within_budget(asyncio.Event().wait()))
        await asyncio.sleep(0.2)
        stopped = time.monotonic()
        worker.stop()
        await consuming
        return unbounded, time.monotonic() - stopped

    unbounded, after_stop = asyncio.run(main())
    assert unbounded >= 0.5
    assert 0.3 <= after_stop < 2.5
