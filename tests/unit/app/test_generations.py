"""Deleting a profile costs O(1) keys, not O(history) (issue 19): the deletion moves the
profile to a new generation, and a sweep deletes the old generation's keys later, a bounded
number per transaction, from the store and (by tombstones) from the changelog. A restore
before the sweep does not bring the old history back; after it, a compacted changelog holds
none of it."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

from shell_fakes import (
    FakeChangelogReader,
    FakeProducer,
    Feed,
    Record,
    batch,
    running_task,
    settings_for,
)
from test_isolation_and_restore import _stored

from segstream.app import transaction
from segstream.app.isolation import run_batch
from segstream.app.restore import open_store, restore_store
from segstream.app.store import PartitionStore, profile_key
from segstream.state.layout import load_profile, profile_of_key
from segstream.timefmt import format_instant

BUSY = {"event": "page.viewed", "within": "1h", "count": {"op": "gte", "value": 25}}


def _now() -> str:
    return format_instant(int(time.time() * 1_000_000))


def _keys_of(store: PartitionStore, pid: str, kinds: bytes = b"etw") -> list[bytes]:
    return [
        k
        for k in _stored(store)
        if k[:1] in [bytes([c]) for c in kinds] and profile_of_key(k) == pid
    ]


def _restored(tmp: Path, records: list[tuple[bytes, bytes | None]]) -> PartitionStore:
    settings = settings_for(tmp)
    changelog = [Record("c", 0, n, key, value) for n, (key, value) in enumerate(records)]
    store = open_store(settings, tmp / "partition-0")
    restored, _ = asyncio.run(restore_store(settings, 0, store, FakeChangelogReader(changelog)))
    return restored


def _compacted(records: list[tuple[bytes, bytes | None]]) -> list[tuple[bytes, bytes | None]]:
    """What log compaction leaves: the last record per key, tombstones gone (in offset order)."""
    last: dict[bytes, tuple[int, bytes | None]] = {}
    for n, (key, value) in enumerate(records):
        last[key] = (n, value)
    kept = sorted((n, key, value) for key, (n, value) in last.items() if value is not None)
    return [(key, value) for _, key, value in kept]


def test_a_deletion_writes_o1_keys_and_the_sweep_drops_the_old_generation(
    tmp_path: Path, monkeypatch: Any
) -> None:
    monkeypatch.setattr(transaction, "SWEEP_KEYS_IDLE", 40)  # several sweeps for one profile
    producer = FakeProducer()
    task = running_task(tmp_path / "first", producer)
    feed = Feed(task)
    asyncio.run(run_batch(task, batch(feed.segment("busy", BUSY))))
    views = [feed.view("big", f"v{i}", _now(), url=f"/{i}") for i in range(120)]
    asyncio.run(run_batch(task, batch(*views, feed.view("other", "o1", _now(), url="/"))))
    assert task.store is not None
    old_keys = _keys_of(task.store, "big", b"et")
    assert len(old_keys) >= 120
    sent_before = len(producer.sent(task.topics.changelog))

    asyncio.run(run_batch(task, batch(feed.deletion("big", "d1", _now()))))
    deletion = [
        r
        for r in producer.sent(task.topics.changelog)[sent_before:]
        if r[1] is not None and r[1][:1] in (b"p", b"e", b"d", b"t", b"w")
    ]
    # The head, the sweep mark, the deletion id's dedupe slot: no tombstone per event. (The
    # insight timeline, h keys, is issue 23's and forgets its entries one by one.)
    assert len(deletion) <= 4, deletion
    assert not [k for _, k, _ in deletion if k is not None and k[:1] in (b"e", b"t")]
    state = load_profile("big", task.store.get(profile_key("big")) or b"", task.store.scan)
    assert not state.exists and not state.has_history and state.events == {}
    assert task.store.count_profiles() == 2

    # A restore before the sweep: the old entries come back as keys nobody reads.
    log = [(k or b"", v) for _, k, v in producer.sent(task.topics.changelog)]
    early = _restored(tmp_path / "early", log)
    state = load_profile("big", early.get(profile_key("big")) or b"", early.scan)
    assert not state.exists and state.events == {} and state.timers == []

    # The sweep: ticks delete the old generation a bounded share at a time.
    sweeps = 0
    while _keys_of(task.store, "big"):
        before = len(producer.sent(task.topics.changelog))
        asyncio.run(run_batch(task, []))
        # (Partition meta aside: the tick that finishes the segment's backfill writes it.)
        swept = [r for r in producer.sent(task.topics.changelog)[before:] if r[1][:1] != b"m"]
        assert len(swept) <= 41
        sweeps += 1
        assert sweeps < 20
    assert sweeps >= 3
    # The restored store kept the old keys and its sweep mark: its transactions sweep too.
    assert _keys_of(early, "big", b"w") and _keys_of(early, "big", b"e")

    # The compacted changelog holds none of the old generation and restores the same store.
    log = [(k or b"", v) for _, k, v in producer.sent(task.topics.changelog)]
    compacted = _compacted(log)
    assert not [k for k, _ in compacted if profile_of_key(k) == "big" and k[:1] in b"etw"]
    assert _stored(_restored(tmp_path / "late", compacted)) == _stored(task.store)

    # The profile comes back in its new generation, with only its new history.
    asyncio.run(run_batch(task, batch(feed.view("big", "n1", _now(), url="/new"))))
    state = load_profile("big", task.store.get(profile_key("big")) or b"", task.store.scan)
    assert state.exists and [e.id for e in state.history("page.viewed")] == ["n1"]
    assert state.generation == 1
