"""The current-membership topic without a broker (SPEC §6.1): each transition's mirror record
in the same transaction and partition, tombstones on leave, and the seeding of a store that
never wrote the topic, in slices that resume after a crash."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import orjson
from shell_fakes import FakeProducer, Feed, batch, running_task

from segstream.app.members_topic import SEED_CURSOR, SEEDED, seed_slice
from segstream.app.store import meta_key
from segstream.schemas.membership import CurrentMembership
from segstream.timefmt import format_instant

PRO = {"trait": "plan", "op": "eq", "value": "pro"}


def _now() -> str:
    return format_instant(int(time.time() * 1_000_000))


def test_each_transition_is_mirrored_in_its_transaction(tmp_path: Path) -> None:
    producer = FakeProducer()
    task = running_task(tmp_path, producer)
    feed = Feed(task)
    asyncio.run(
        task.process(batch(feed.segment("pro", PRO), feed.traits("p,1", "e1", _now(), plan="pro")))
    )
    asyncio.run(task.process(batch(feed.traits("p,1", "e2", _now(), plan="free"))))
    first, second = producer.committed
    [(_, key, value)] = [r for r in first if r[0] == task.topics.members]
    assert key == b"pro/p,1"
    assert value is not None
    current = CurrentMembership.model_validate_json(value)
    [event] = [orjson.loads(v or b"") for t, _, v in first if t == task.topics.membership]
    assert (current.seq, current.entered_at, current.segment_version) == (1, event["at"], 1)
    # Leaving: a tombstone, in the transaction of the segment.left.
    assert [(k, v) for t, k, v in second if t == task.topics.members] == [(b"pro/p,1", None)]
    assert [t for t, _, _ in second].count(task.topics.membership) == 1


def test_seeding_writes_the_member_index_once_in_slices(tmp_path: Path) -> None:
    producer = FakeProducer()
    task = running_task(tmp_path, producer)
    feed = Feed(task)
    records = [feed.segment("pro", PRO)]
    records += [feed.traits(f"p{i}", f"e{i}", _now(), plan="pro") for i in range(7)]
    asyncio.run(task.process(batch(*records)))
    store = task.store
    assert store is not None
    # An older deployment: no marker. Three members per slice, the cursor in between.
    store.write([], {meta_key(SEEDED): None}, None)
    seen: list[bytes] = []
    while True:
        written, meta = seed_slice(store, task.registry, limit=3)
        seen.extend(key for key, _ in written)
        store.write([], {meta_key(k): v for k, v in meta.items()}, None)
        if SEEDED in meta:
            break
        assert meta[SEED_CURSOR] is not None
    assert seen == [f"pro/p{i}".encode() for i in range(7)]
    assert store.get(meta_key(SEED_CURSOR)) is None


def test_a_task_seeds_on_open_only_when_never_seeded(tmp_path: Path) -> None:
    producer = FakeProducer()
    task = running_task(tmp_path, producer)
    feed = Feed(task)
    asyncio.run(
        task.process(batch(feed.segment("pro", PRO), feed.traits("p1", "e1", _now(), plan="pro")))
    )
    assert task.store is not None
    task.store.write([], {meta_key(SEEDED): None}, None)
    producer.committed.clear()
    asyncio.run(task._seed_members_topic())
    [txn] = producer.committed
    members = [(k, v) for t, k, v in txn if t == task.topics.members]
    assert [k for k, _ in members] == [b"pro/p1"]
    # The marker went to the changelog in the same transaction.
    assert (task.topics.changelog, meta_key(SEEDED), b"1") in txn
    producer.committed.clear()
    asyncio.run(task._seed_members_topic())
    assert producer.committed == []


def test_a_rejected_members_record_names_its_profile(tmp_path: Path) -> None:
    from segstream.app.collector import Rejected
    from segstream.app.isolation import _rejected_profile

    task = running_task(tmp_path, FakeProducer())
    rejected = Rejected(task.topics.members, "members", b"vip/a/b,c", 10)
    assert _rejected_profile(task, rejected) == "a/b,c"
