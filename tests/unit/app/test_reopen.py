"""A partition whose opening failed or was cancelled opens again in the same process.

RocksDB holds a lock on a store's directory until the DB is closed. A store that an opening
left to the garbage collector (kept alive by the failure's traceback, or by a reference
cycle the collector has not reached) kept that lock, and every later opening of the
partition in this worker failed with `lock hold by current process`: the partition stopped.
Each test holds the failure (and so its traceback's frames) while it reopens the directory.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from shell_fakes import FakeChangelogReader, FakeProducer, settings_for

from segstream.app import task as task_module
from segstream.app.metrics import WorkerMetrics
from segstream.app.restore import open_store, restore_store
from segstream.app.task import PartitionTask, TaskState


class BrokerAway(ConnectionError):
    pass


class _Producer(FakeProducer):
    async def partitions_for(self, _topic: str) -> set[int]:
        return {0}


def _task(tmp: Path) -> PartitionTask:
    return PartitionTask(
        0, settings_for(tmp), WorkerMetrics(), "t", producer_factory=lambda: _Producer()
    )


def _reopens(tmp: Path, task: PartitionTask) -> None:
    """The partition's directory opens (no lock is held on it)."""
    open_store(task.settings, tmp / task.store_name).close()


def test_a_partition_whose_restore_failed_opens_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def broker_away(*_args: Any) -> Any:
        raise BrokerAway("no leader for the changelog partition")

    async def working(settings: Any, partition: int, store: Any) -> Any:
        return await restore_store(settings, partition, store, FakeChangelogReader([]))

    task = _task(tmp_path)
    monkeypatch.setattr(task_module, "restore_store", broker_away)
    with pytest.raises(BrokerAway) as failure:
        asyncio.run(task.open())
    assert task.task_state is TaskState.SUSPENDED and task.store is None
    _reopens(tmp_path, task)
    assert failure.value.__traceback__ is not None  # its frames were alive all along

    monkeypatch.setattr(task_module, "restore_store", working)
    asyncio.run(task.open())
    assert task.ready
    asyncio.run(task.close())


def test_a_partition_whose_opening_was_cancelled_opens_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A revocation cancels a restore in progress (`TaskManager._close`)."""

    async def slow(*_args: Any) -> Any:
        await asyncio.sleep(3600)

    task = _task(tmp_path)
    monkeypatch.setattr(task_module, "restore_store", slow)

    async def revoke_while_restoring() -> BaseException:
        opening = asyncio.create_task(task.open())
        await asyncio.sleep(0.01)
        opening.cancel()
        (outcome,) = await asyncio.gather(opening, return_exceptions=True)
        assert isinstance(outcome, asyncio.CancelledError)
        return outcome

    outcome = asyncio.run(revoke_while_restoring())
    assert task.store is None
    _reopens(tmp_path, task)
    assert outcome is not None


def test_a_restore_that_fails_after_a_rebuild_closes_the_store_it_made(tmp_path: Path) -> None:
    """A store ahead of its changelog is rebuilt (a new DB in the same directory); the
    rebuild is the restore's own, so a failure after it closes it."""
    settings = settings_for(tmp_path)
    path = tmp_path / "partition-0"
    store = open_store(settings, path)
    store.apply_changelog({}, 10)  # the changelog now ends at 3: the store is ahead of it
    gone = BrokerAway("the changelog's leader went away")
    with pytest.raises(BrokerAway) as failure:
        asyncio.run(restore_store(settings, 0, store, FakeChangelogReader([], end=3, fail=gone)))
    store.close()  # the caller's (closed by the rebuild already: closing again is nothing)
    open_store(settings, path).close()
    assert failure.value.__traceback__ is not None


def test_a_closed_store_still_referred_to_holds_no_lock(tmp_path: Path) -> None:
    """What a revoked partition's engine or a response in flight still holds (its store
    object) does not keep the partition from opening again."""
    settings = settings_for(tmp_path)
    path = tmp_path / "partition-0"
    kept = open_store(settings, path)
    kept.close()
    open_store(settings, path).close()
    kept.close()  # a second close is nothing
