"""Live records first: backfill slices wait for fetched records, take the idle loop in full,
and keep their minimum share under full live load; a control record related to a pending
backfill waits in the control topic instead of finishing that backfill in one transaction;
the partition keeps one engine whose caches never outlive a rolled-back batch."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import pytest
from aiokafka.errors import MessageSizeTooLargeError
from shell_fakes import FakeProducer, Feed, batch, running_task

from segstream.app.collector import SendRejected
from segstream.app.priority import IDLE_AFTER_S, LivePriority
from segstream.timefmt import format_instant

BASE = {"trait": "n", "op": "lt", "value": 1000}


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def _now() -> str:
    return format_instant(int(time.time() * 1_000_000))


def test_an_idle_loop_runs_slices_back_to_back() -> None:
    clock = Clock()
    priority = LivePriority(0.05, 0.1, clock)
    assert priority.background_wait() == 0.0
    priority.background_ran(0.05)
    # The next slice waits for the consume loop to look once; an empty fetch lets it go.
    assert priority.background_wait() > 0.0
    priority.live_idle()
    assert priority.background_wait() == 0.0


def test_while_records_flow_slices_get_the_minimum_share() -> None:
    clock = Clock()
    priority = LivePriority(0.05, 0.1, clock)
    priority.background_ran(0.05)
    priority.live_fetched()
    assert priority.live_waiting and not priority.idle()
    # 50 ms of slices, then 9 x 50 ms of other work (10 %).
    assert priority.background_wait() == pytest.approx(0.45)
    priority.live_processed()
    assert not priority.live_waiting
    priority.live_idle()
    clock.now += 0.2
    assert priority.background_wait() == pytest.approx(0.25), "records came 0.2 s ago"
    # Records stopped: after IDLE_AFTER_S (and an empty fetch) slices run back to back.
    clock.now += IDLE_AFTER_S
    assert priority.background_wait() == 0.0


def test_under_full_live_load_slices_keep_their_minimum_share() -> None:
    clock = Clock()
    priority = LivePriority(0.05, 0.1, clock)
    background = 0.0
    # Simulate 20 s in which records are always waiting when a slice is not running.
    end = clock.now + 20
    while clock.now < end:
        wait = priority.background_wait()
        if wait == 0.0:
            clock.now += 0.05  # one slice
            priority.background_ran(0.05)
            background += 0.05
        else:
            # A live batch of 20 ms runs meanwhile.
            priority.live_fetched()
            clock.now += 0.02
            priority.live_processed()
    share = background / 20
    assert 0.08 <= share <= 0.12, share


def _drain(task: Any) -> int:
    ticks = 0
    while task.jobs:
        asyncio.run(task.process([]))
        ticks += 1
    return ticks


def test_a_related_segment_change_waits_for_the_pending_backfill(tmp_path: Path) -> None:
    producer = FakeProducer()
    task = running_task(tmp_path, producer)
    feed = Feed(task)
    profiles = [feed.traits(f"p{i:04d}", f"e{i}", _now(), n=i) for i in range(600)]
    asyncio.run(task.process(batch(*profiles)))
    task.backfill_slice_s = 0.0001  # a few profiles per tick
    base = feed.segment("base", BASE)
    dep = feed.segment("dep", {"segment": "base"})
    after = feed.traits("p0001", "e-late", _now(), n=1)
    asyncio.run(task.process(batch(base, dep, after)))
    # dep waits: not installed, its offset not committed, the record after it applied.
    assert task.parked_control == dep.offset
    assert "dep" not in task.registry.segments
    assert task.positions[task.topics.control] == dep.offset
    assert task.positions[task.topics.profiles] == after.offset + 1
    assert task.unpark() is None
    assert _drain(task) > 1, "the backfill ran in slices, not in one transaction"
    assert task.unpark() == dep.offset
    assert task.parked_control is None
    # Read again (the worker resumes the control partition at its offset): applied now.
    asyncio.run(task.process(batch(dep)))
    assert "dep" in task.registry.segments
    _drain(task)
    assert task.members["base"] == task.members["dep"] == 600


def test_one_engine_for_the_partition_and_no_cache_of_a_rolled_back_batch(
    tmp_path: Path,
) -> None:
    producer = FakeProducer()
    task = running_task(tmp_path, producer)
    feed = Feed(task)
    asyncio.run(task.process(batch(feed.segment("base", BASE))))
    engine = task.engine
    asyncio.run(task.process(batch(feed.traits("p1", "e1", _now(), n=1))))
    assert task.engine is engine, "the engine lives across batches"
    cached = engine.cached_profiles() if engine is not None else 0
    assert cached >= 1

    def reject_changelog(topic: str, _key: bytes | None, _value: bytes | None) -> Any:
        return MessageSizeTooLargeError() if topic == task.topics.changelog else None

    producer.reject = reject_changelog
    with pytest.raises(SendRejected):
        asyncio.run(task.process(batch(feed.traits("p2", "e2", _now(), n=2))))
    assert task.engine is engine
    assert engine is not None and engine.cached_profiles() == cached, "p2 was never committed"
    asyncio.run(task.renew_producer())
    # A rolled-back segment change replaces the registry: the engine goes with it.
    with pytest.raises(SendRejected):
        asyncio.run(
            task.process(batch(feed.segment("other", BASE), feed.traits("p3", "e3", _now(), n=3)))
        )
    producer.reject = lambda *_: None
    asyncio.run(task.renew_producer())
    asyncio.run(task.process(batch(feed.traits("p4", "e4", _now(), n=4))))
    assert task.engine is not engine
    assert task.engine is not None and task.engine.registry is task.registry


def test_a_batch_of_records_carries_a_slice_only_when_given_one(tmp_path: Path) -> None:
    producer = FakeProducer()
    task = running_task(tmp_path, producer)
    feed = Feed(task)
    profiles = [feed.traits(f"p{i:04d}", f"e{i}", _now(), n=i) for i in range(300)]
    asyncio.run(task.process(batch(*profiles, feed.segment("base", BASE))))
    [job] = task.jobs.jobs
    assert job.done == 0, "records alone never advance a backfill"
    task.records_slice_s = 0.05  # owed its minimum share (the worker's LivePriority)
    asyncio.run(task.process(batch(feed.traits("p0001", "e-live", _now(), live=True))))
    assert not task.jobs or task.jobs.jobs[0].done > 0
    assert task.slice_evaluated_s > 0
