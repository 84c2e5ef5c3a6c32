"""The worker's parts without a broker: a fake producer, a real rocksdict in a temporary folder.

A partition transaction commits everything or nothing: after a failed send nothing reaches
the store and every in-memory change (due index, backfill queue, registry, member counts,
clock) is as before the batch. Task states move only along legal transitions.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from pathlib import Path
from typing import Any

import pytest
from aiokafka.errors import KafkaTimeoutError, MessageSizeTooLargeError
from shell_fakes import (
    FakeChangelogReader,
    FakeProducer,
    Feed,
    Record,
    batch,
    running_task,
    settings_for,
)

from segstream.app import task as task_module
from segstream.app.collector import SendRejected
from segstream.app.metrics import WorkerMetrics
from segstream.app.restore import restore_store
from segstream.app.store import meta_key, profile_key
from segstream.app.task import IllegalTaskState, PartitionTask, TaskState
from segstream.app.transaction import (
    IllegalTransactionState,
    PartitionState,
    PartitionTransaction,
)
from segstream.engine.registry import SegmentRegistry
from segstream.schemas.jsontext import dumps
from segstream.timefmt import format_instant

PRO = {"trait": "plan", "op": "eq", "value": "pro"}
RECENT_VIEW = {"event": "page.viewed", "within": "30d"}


def _now(offset_s: float = 0.0) -> str:
    return format_instant(int((time.time() + offset_s) * 1_000_000))


def test_a_committed_batch_reaches_the_store_and_the_counts(tmp_path: Path) -> None:
    producer = FakeProducer()
    task = running_task(tmp_path, producer)
    feed = Feed(task)
    asyncio.run(
        task.process(batch(feed.segment("pro", PRO), feed.traits("p1", "e1", _now(), plan="pro")))
    )
    assert task.store is not None
    assert task.store.get(profile_key("p1")) is not None
    assert task.members == {"pro": 1}
    assert "pro" in task.registry.segments
    [txn] = producer.committed
    topics = [topic for topic, _, _ in txn]
    assert topics.count(task.topics.membership) == 1
    assert task.topics.changelog in topics
    # The consumed offsets went into the same transaction.
    assert {tp.topic: offset for tp, offset in producer.offsets[0].items()} == {
        task.topics.control: 1,
        task.topics.profiles: 1,
    }


def test_a_rejected_send_commits_nothing_and_rolls_everything_back(tmp_path: Path) -> None:
    producer = FakeProducer()
    task = running_task(tmp_path, producer)
    feed = Feed(task)
    # Committed first: a segment, a member, and a timer (the view leaves the window).
    asyncio.run(
        task.process(
            batch(
                feed.segment("pro", PRO),
                feed.segment("recent", RECENT_VIEW),
                feed.traits("p1", "e1", _now(), plan="pro"),
                feed.view("p1", "v1", _now()),
            )
        )
    )
    # The backfills done (ticks), so that pro's v2 below need not wait for its v1's pass.
    while task.jobs:
        asyncio.run(task.process([]))
    assert task.store is not None
    before = {
        "p1": task.store.get(profile_key("p1")),
        "due": task.state.due.get("p1"),
        "members": dict(task.members),
        "segments": {sid: s.version for sid, s in task.registry.segments.items()},
        "jobs": task.jobs.encode(),
        "offset": task.store.changelog_offset(),
    }
    assert before["due"] is not None
    commits = len(producer.committed)

    def reject_changelog(topic: str, _key: bytes | None, _value: bytes | None) -> Any:
        return MessageSizeTooLargeError() if topic == task.topics.changelog else None

    producer.reject = reject_changelog
    failing = batch(
        feed.segment("pro", {"trait": "plan", "op": "eq", "value": "team"}, version=2),
        feed.segment("new", {"trait": "plan", "op": "eq", "value": "team"}),
        feed.traits("p1", "e2", _now(), plan="team"),
        feed.traits("p2", "e3", _now(), plan="team"),
    )
    with pytest.raises(SendRejected) as rejected:
        asyncio.run(task.process(failing))
    assert rejected.value.kind == "changelog"
    assert len(producer.committed) == commits, "a transaction with a failed send committed"
    after = {
        "p1": task.store.get(profile_key("p1")),
        "due": task.state.due.get("p1"),
        "members": dict(task.members),
        "segments": {sid: s.version for sid, s in task.registry.segments.items()},
        "jobs": task.jobs.encode(),
        "offset": task.store.changelog_offset(),
    }
    assert after == before
    assert task.store.get(profile_key("p2")) is None
    # And the same batch runs again, cleanly, once the broker takes it (on a new producer:
    # the old one's transaction is aborted by the new one's initialisation).
    producer.reject = lambda *_: None
    asyncio.run(task.renew_producer())
    asyncio.run(task.process(failing))
    assert task.registry.segments["pro"].version == 2
    assert task.members["pro"] == task.members["new"] == 2  # both are on the team plan now


def test_a_commit_the_broker_never_answers_is_abandoned_within_the_bound(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """aiokafka waits for a transaction's end without a limit: a broker that never answers
    must not hold the partition (the chaos round's stall); the batch is rolled back and runs
    again on a new producer."""
    import segstream.app.task as task_module
    from segstream.errors import TransactionStalled

    monkeypatch.setattr(task_module, "TRANSACTION_WAIT_S", 0.2)
    producer = FakeProducer()
    task = running_task(tmp_path, producer)
    feed = Feed(task)
    records = batch(feed.segment("pro", PRO), feed.traits("p1", "e1", _now(), plan="pro"))
    commit = producer.commit_transaction

    async def never_answered() -> None:
        await asyncio.Event().wait()

    producer.commit_transaction = never_answered  # type: ignore[method-assign]
    started = time.monotonic()
    with pytest.raises(TransactionStalled, match="commit took over"):
        asyncio.run(task.process(records))
    assert time.monotonic() - started < 5.0
    assert not producer.committed
    assert task.store is not None and task.store.get(profile_key("p1")) is None
    assert task.members == {}
    producer.commit_transaction = commit  # type: ignore[method-assign]
    asyncio.run(task.renew_producer())
    asyncio.run(task.process(records))
    assert task.members == {"pro": 1}


def test_each_broker_step_of_a_transaction_is_timed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """segstream_transaction_step_seconds: one observation per step per transaction, the
    stalled step included, so a slow batch shows where it waited."""
    import segstream.app.task as task_module
    from segstream.errors import TransactionStalled

    producer = FakeProducer()
    task = running_task(tmp_path, producer)
    feed = Feed(task)
    asyncio.run(task.process(batch(feed.segment("pro", PRO))))
    asyncio.run(task.process(batch(feed.traits("p1", "e1", _now(), plan="pro"))))

    def count(step: str) -> float | None:
        return task.metrics.registry.get_sample_value(
            "segstream_transaction_step_seconds_count", {"step": step}
        )

    assert {step: count(step) for step in ("begin", "send", "deliveries", "commit")} == {
        "begin": 2,
        "send": 2,
        "deliveries": 2,
        "commit": 2,
    }
    # Both batches consumed records; only the first committed the group's offsets (the
    # second came within SEGSTREAM_GROUP_OFFSETS_INTERVAL_S of it).
    assert count("offsets") == 1

    async def never_answered() -> None:
        await asyncio.Event().wait()

    monkeypatch.setattr(task_module, "TRANSACTION_WAIT_S", 0.1)
    producer.commit_transaction = never_answered  # type: ignore[method-assign]
    with pytest.raises(TransactionStalled, match="commit took over"):
        asyncio.run(task.process(batch(feed.traits("p2", "e2", _now(), plan="pro"))))
    assert count("commit") == 3
    stalled = task.metrics.registry.get_sample_value(
        "segstream_transaction_step_seconds_sum", {"step": "commit"}
    )
    assert stalled is not None and stalled >= 0.1


def test_a_rolled_back_timer_fires_again(tmp_path: Path) -> None:
    producer = FakeProducer()
    task = running_task(tmp_path, producer)
    feed = Feed(task)
    asyncio.run(
        task.process(batch(feed.segment("recent", {"event": "page.viewed", "within": "1s"})))
    )
    asyncio.run(task.process(batch(feed.view("p1", "v1", _now(-0.5)))))
    assert task.members == {"recent": 1}
    due = task.state.due.get("p1")
    assert due is not None
    time.sleep(0.6)
    producer.reject = lambda topic, *_: (
        KafkaTimeoutError() if topic == task.topics.membership else None
    )
    with pytest.raises(KafkaTimeoutError):
        asyncio.run(task.process([]))
    assert task.state.due.get("p1") == due  # popped by the failed tick, put back
    assert task.members == {"recent": 1}
    producer.reject = lambda *_: None
    asyncio.run(task.renew_producer())
    asyncio.run(task.process([]))
    assert task.members == {"recent": 0}
    assert task.state.due.get("p1") != due  # fired (what remains is the history's expiry)


def test_transaction_moves_only_forward(tmp_path: Path) -> None:
    settings = settings_for(tmp_path)
    task = running_task(tmp_path, FakeProducer())
    assert task.store is not None
    state = PartitionState(SegmentRegistry(settings.history_retention))
    txn = PartitionTransaction(task.store, state, lambda: state.registry)
    txn.prepare()
    with pytest.raises(IllegalTransactionState):
        txn.prepare()
    txn.flush(None)
    with pytest.raises(IllegalTransactionState):
        txn.rollback()
    failed = PartitionTransaction(task.store, state, lambda: state.registry)
    failed.rollback()
    failed.rollback()  # twice is harmless
    with pytest.raises(IllegalTransactionState):
        failed.prepare()


def test_task_states_move_only_along_legal_transitions(tmp_path: Path) -> None:
    task = PartitionTask(0, settings_for(tmp_path), WorkerMetrics(), "t")
    assert task.task_state is TaskState.CREATED and not task.ready
    asyncio.run(task.close())
    assert task.task_state is TaskState.CLOSED
    with pytest.raises(IllegalTaskState):
        asyncio.run(task.open())
    running = running_task(tmp_path / "b", FakeProducer())
    asyncio.run(running.suspend())
    assert running.task_state is TaskState.SUSPENDED and running.store is None
    with pytest.raises(IllegalTaskState):
        running._move(TaskState.RUNNING)  # only through a restore


def test_positions_go_with_every_transaction_and_the_group_offsets_with_some(
    tmp_path: Path,
) -> None:
    """Each transaction stores the input positions it reaches in the state (a changelog
    record); the consumer group's offsets go with a transaction once
    SEGSTREAM_GROUP_OFFSETS_INTERVAL_S has passed, and an idle partition's tick (a transaction
    with no records) commits those still behind."""
    producer = FakeProducer()
    task = running_task(tmp_path, producer)
    task.settings = dataclasses.replace(task.settings, group_offsets_interval_s=0.2)
    feed = Feed(task)
    profiles = task.topics.profiles

    def group() -> dict[str, int]:
        return {tp.topic: offset for tp, offset in producer.offsets[-1].items()}

    asyncio.run(task.process(batch(feed.traits("p1", "e1", _now(), plan="pro"))))
    assert task.positions == {profiles: 1} and group() == {profiles: 1}
    asyncio.run(task.process(batch(feed.traits("p2", "e2", _now(), plan="pro"))))
    assert task.positions == {profiles: 2} and group() == {}
    assert task.store is not None
    assert task.store.get(meta_key("positions")) == dumps({profiles: 2})
    changelog = dict((key, value) for _, key, value in producer.sent(task.topics.changelog))
    assert changelog[meta_key("positions")] == dumps({profiles: 2})
    assert not task.group_offsets_due()
    asyncio.run(task.process([]))  # a tick within the interval: nothing for the group
    assert group() == {}
    time.sleep(0.25)
    assert task.group_offsets_due()
    asyncio.run(task.process([]))
    assert group() == {profiles: 2}
    assert not task.group_offsets_due()
    asyncio.run(task.process([]))
    assert group() == {}


def test_a_failed_transaction_moves_no_position(tmp_path: Path) -> None:
    producer = FakeProducer()
    task = running_task(tmp_path, producer)
    feed = Feed(task)
    asyncio.run(task.process(batch(feed.traits("p1", "e1", _now(), plan="pro"))))

    async def refused() -> None:
        raise KafkaTimeoutError()

    producer.commit_transaction = refused  # type: ignore[method-assign]
    with pytest.raises(KafkaTimeoutError):
        asyncio.run(task.process(batch(feed.traits("p2", "e2", _now(), plan="pro"))))
    assert task.positions == {task.topics.profiles: 1}
    assert task.store is not None
    assert task.store.get(meta_key("positions")) == dumps({task.topics.profiles: 1})


def test_an_opened_task_has_the_positions_of_its_restored_state(tmp_path: Path) -> None:
    """What the worker seeks the task's input partitions to (the group's offsets may be
    behind them); the group's offsets are then committed with its first transaction."""
    producer = FakeProducer()
    task = running_task(tmp_path, producer)
    feed = Feed(task)
    asyncio.run(task.process(batch(feed.traits("p1", "e1", _now(), plan="pro"))))
    asyncio.run(task.process(batch(feed.view("p1", "v1", _now(), url="/"))))
    changelog = [
        Record(task.topics.changelog, 0, offset, key, value)
        for offset, (_, key, value) in enumerate(producer.sent(task.topics.changelog))
    ]

    async def restored(settings: Any, partition: int, store: Any) -> Any:
        return await restore_store(settings, partition, store, FakeChangelogReader(changelog))

    second = PartitionTask(
        0,
        settings_for(tmp_path / "second"),
        WorkerMetrics(),
        "t",
        producer_factory=lambda: _OneLeaderProducer(),
    )
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(task_module, "restore_store", restored)
        asyncio.run(second.open())
    try:
        assert second.positions == {task.topics.profiles: 1, task.topics.activity: 1}
        assert second.group_offsets_due()
        asyncio.run(second.process([]))
        committed = second.producer.offsets[-1]
        assert {tp.topic: offset for tp, offset in committed.items()} == second.positions
    finally:
        asyncio.run(second.close())


class _OneLeaderProducer(FakeProducer):
    async def partitions_for(self, _topic: str) -> set[int]:
        return {0}


def test_a_transaction_begins_without_a_loop_turn_once_the_producer_has_its_id() -> None:
    """aiokafka's own `begin_transaction` gives the loop back once (a shielded task) even
    with the producer id known; the task's begin changes the transaction manager's state
    directly then, and the state machine still refuses a second begin."""
    from aiokafka import AIOKafkaProducer
    from aiokafka.producer.transaction_manager import TransactionState

    async def scenario() -> tuple[TransactionState, int]:
        producer = AIOKafkaProducer(
            bootstrap_servers="localhost:1", transactional_id="t", enable_idempotence=True
        )
        manager = producer._txn_manager
        manager.set_pid_and_epoch(7, 0)
        turns = 0

        async def count_turns() -> None:
            nonlocal turns
            while True:
                await asyncio.sleep(0)
                turns += 1

        counter = asyncio.create_task(count_turns())
        await asyncio.sleep(0)
        before = turns
        await task_module._begin_transaction(producer)
        state, taken = manager.state, turns - before
        with pytest.raises(AssertionError, match="Invalid state transition"):
            await task_module._begin_transaction(producer)
        counter.cancel()
        await producer.stop()
        return state, taken

    state, turns = asyncio.run(scenario())
    assert state is TransactionState.IN_TRANSACTION
    assert turns == 0


def test_a_producer_without_its_id_yet_begins_the_public_way() -> None:
    producer = FakeProducer()
    asyncio.run(task_module._begin_transaction(producer))
    assert producer._open == []
