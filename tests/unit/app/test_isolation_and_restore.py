"""What fails a batch is isolated and the partition goes on; a store restores from a changelog.

A fake producer and a real rocksdict store; the live counterpart is
tests/integration/test_exactly_once_rejections.py.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiokafka.errors import MessageSizeTooLargeError
from shell_fakes import (
    FakeChangelogReader,
    FakeProducer,
    Feed,
    Record,
    batch,
    running_task,
    settings_for,
)

from segstream.app.isolation import run_batch
from segstream.app.restore import open_store, restore_store
from segstream.app.store import OFFSET_KEY, meta_key, profile_key
from segstream.engine.processor import SegmentEngine
from segstream.timefmt import format_instant

PRO = {"trait": "plan", "op": "eq", "value": "pro"}
BUSY = {"event": "page.viewed", "within": "1h", "count": {"op": "gte", "value": 25}}


def _stored(store: Any) -> dict[bytes, bytes]:
    return {k: v for k, v in store.scan(b"") if k != OFFSET_KEY}


def _now() -> str:
    return format_instant(int(time.time() * 1_000_000))


def _dead_letters(producer: FakeProducer, topic: str) -> list[tuple[bytes | None, bytes | None]]:
    return [(key, value) for _, key, value in producer.sent(topic)]


@pytest.mark.parametrize("whole_batches", [False, True], ids=["per-record", "whole-batch"])
def test_a_record_whose_state_is_rejected_is_dead_lettered_and_the_rest_commit(
    tmp_path: Path, whole_batches: bool
) -> None:
    # whole-batch: the broker fails every changelog record of the transaction with the
    # large one, and only the record that produced the large state may be dead-lettered.
    producer = FakeProducer(whole_batches=whole_batches)
    task = running_task(tmp_path, producer)
    feed = Feed(task)
    asyncio.run(run_batch(task, batch(feed.segment("pro", PRO))))

    def reject_big_states(topic: str, key: bytes | None, value: bytes | None) -> Any:
        too_big = topic == task.topics.changelog and value is not None and len(value) > 600
        return MessageSizeTooLargeError() if too_big else None

    producer.reject = reject_big_states
    records = [feed.traits(f"p{i}", f"e{i}", _now(), plan="pro") for i in range(4)]
    big = feed.traits("p3", "huge", _now(), note="x" * 2000)
    records += [big, *(feed.traits(f"p{i}", f"e{i}", _now(), plan="pro") for i in (4, 5))]
    asyncio.run(run_batch(task, batch(*records)))
    letters = producer.sent(task.topics.deadletter)
    assert [(key, value) for _, key, value in letters] == [(big.key, big.value)]
    assert task.members == {"pro": 6}
    assert task.store is not None
    for i in range(6):
        assert task.store.get(profile_key(f"p{i}")) is not None
    # Every consumed offset is committed with the state: the partition went on.
    assert task.positions[task.topics.profiles] == 7
    assert orjson.loads(task.store.get(meta_key("positions")) or b"") == task.positions
    # Each record's transition came out once.
    entered = [
        orjson.loads(v or b"")["profile_id"] for _, _, v in producer.sent(task.topics.membership)
    ]
    assert sorted(entered) == [f"p{i}" for i in range(6)]


def test_a_record_whose_processing_raises_is_dead_lettered_as_internal(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    producer = FakeProducer()
    task = running_task(tmp_path, producer)
    feed = Feed(task)
    apply = SegmentEngine.apply

    def exploding(self: SegmentEngine, event: Any, now: int) -> Any:
        changes = apply(self, event, now)  # the state is changed, then it fails
        if event.id == "boom":
            raise RuntimeError("a defect")
        return changes

    monkeypatch.setattr(SegmentEngine, "apply", exploding)
    good = feed.traits("p1", "ok", _now(), plan="pro")
    bad = feed.traits("p2", "boom", _now(), plan="pro")
    asyncio.run(run_batch(task, batch(feed.segment("pro", PRO), bad, good)))
    [(_, key, value)] = producer.sent(task.topics.deadletter)
    assert (key, value) == (bad.key, bad.value)
    assert task.members == {"pro": 1}
    assert task.store is not None
    assert task.store.get(profile_key("p2")) is None  # its half-made change rolled back
    assert producer.started == 1  # a new producer after the aborted attempt


def test_a_timer_that_raises_is_dropped_for_that_profile_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    producer = FakeProducer()
    task = running_task(tmp_path, producer)
    feed = Feed(task)
    window = {"event": "page.viewed", "within": "1s"}
    asyncio.run(run_batch(task, batch(feed.segment("recent", window))))
    asyncio.run(
        run_batch(task, batch(feed.view("p1", "v1", _now()), feed.view("p2", "v2", _now())))
    )
    assert task.members == {"recent": 2}
    fire = SegmentEngine._fire

    def exploding(self: SegmentEngine, pid: str, state: Any, due: int) -> Any:
        if pid == "p1":
            raise RuntimeError("a defect")
        return fire(self, pid, state, due)

    monkeypatch.setattr(SegmentEngine, "_fire", exploding)
    time.sleep(1.1)
    asyncio.run(run_batch(task, []))
    assert task.members == {"recent": 1}  # p2 left on time; p1's timer was dropped
    assert task.state.due.get("p1") is None
    assert "p1" in task.skipped_profiles


def test_a_store_restores_from_its_changelog_then_catches_up(tmp_path: Path) -> None:
    producer = FakeProducer()
    task = running_task(tmp_path / "first", producer)
    feed = Feed(task)
    asyncio.run(
        run_batch(
            task,
            batch(
                feed.segment("pro", PRO),
                feed.traits("p1", "e1", _now(), plan="pro"),
                feed.traits("p2", "e2", _now(), plan="pro"),
            ),
        )
    )
    asyncio.run(run_batch(task, batch(feed.traits("p2", "e3", _now(), plan="free"))))
    # History, dedupe slots and timers of a windowed segment, then a deletion.
    asyncio.run(run_batch(task, batch(feed.segment("busy", BUSY))))
    views = [feed.view("p3", f"v{i}", _now(), url=f"/{i}") for i in range(30)]
    asyncio.run(run_batch(task, batch(*views[:20])))
    asyncio.run(run_batch(task, batch(*views[20:], feed.view("p4", "w1", _now(), url="/"))))
    asyncio.run(run_batch(task, batch(feed.deletion("p4", "d4", _now()))))
    changelog = [
        Record(task.topics.changelog, 0, offset, key, value)
        for offset, (_, key, value) in enumerate(producer.sent(task.topics.changelog))
    ]
    settings = settings_for(tmp_path / "second")
    store = open_store(settings, tmp_path / "second" / "partition-0")
    # Half of it first (a worker that stopped there), then the rest.
    restored, applied = asyncio.run(
        restore_store(settings, 0, store, FakeChangelogReader(changelog[:3]))
    )
    assert applied == 3
    restored, applied = asyncio.run(
        restore_store(settings, 0, restored, FakeChangelogReader(changelog))
    )
    assert applied == len(changelog) - 3
    assert task.store is not None
    for pid in ("p1", "p2"):
        assert restored.get(profile_key(pid)) == task.store.get(profile_key(pid))
    # Every head, history entry, dedupe slot and timer, and the derived indexes, are the same.
    assert _stored(restored) == _stored(task.store)
    assert any(key.startswith(b"e") for key in _stored(restored))
    # Derived indexes and metadata live in column families of their own; the default family
    # holds the profile layout (with sweep marks w) and the insight entries (timeline h,
    # size history g).
    assert {key[:1] for key in _stored(restored)} <= {b"p", b"e", b"d", b"t", b"w", b"h", b"g"}
    assert any(key.startswith(b"h") for key in _stored(restored))
    assert list(restored.meta_items("")) == list(task.store.meta_items(""))
    assert list(restored.scan_members()) == list(task.store.scan_members())
    assert ("pro", "p1") in list(restored.scan_members())
    assert restored.changelog_offset() == len(changelog) - 1
