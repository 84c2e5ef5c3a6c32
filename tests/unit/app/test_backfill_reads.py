"""A backfill over the real RocksDB store reads only what the segment needs (issue 20): the
heads by one iterator, the history of the condition's event types from the window start, no
dedupe ring, and not again the profiles live records caught up ahead of its cursor. Each
read path is checked against a full evaluation of every profile (the whole state loaded):
the members right after the backfill, and after the timers it scheduled fire 31 days on."""

from __future__ import annotations

import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson

from segstream.app.store import PartitionStore, ProfileWrite
from segstream.app.transaction import PartitionState, PartitionTransaction
from segstream.engine.backfill import BackfillJob, BackfillQueue
from segstream.engine.processor import SegmentEngine
from segstream.engine.registry import SegmentRegistry
from segstream.rules import condition_fingerprint
from segstream.rules.compile import EvaluationContext
from segstream.schemas.events import parse_input_record
from segstream.state.layout import event_timer_key, load_profile, profile_records
from segstream.state.profile import ProfileState
from segstream.timefmt import DAY, HOUR, format_instant

NOW = 1_800_000_000_000_000
RETENTION = 365 * DAY
PROFILES = 400
SEGMENT = {
    "id": "pro-or-viewer",
    "name": "Pro plan or three page views in 30 days",
    "condition": {
        "or": [
            {"trait": "custom.plan", "op": "eq", "value": "pro"},
            {"event": "page.viewed", "within": "30d", "count": {"op": "gte", "value": 3}},
        ]
    },
}


class CountingStore(PartitionStore):
    """The real store, counting the entries its scans hand out by key prefix byte."""

    def __init__(self, path: Path) -> None:
        super().__init__(path, block_cache_bytes=8 << 20, write_buffer_bytes=8 << 20)
        self.read: dict[bytes, int] = {}
        self.old_views = 0  # page views at or before the window start handed out

    def scan(self, prefix: bytes, start: bytes = b"") -> Iterator[tuple[bytes, bytes]]:
        for key, value in super().scan(prefix, start):
            first = key[:1]
            self.read[first] = self.read.get(first, 0) + 1
            if first == b"e" and b"page.viewed" in key:
                at = int.from_bytes(key[-16:-8], "big") - (1 << 63)
                self.old_views += at <= NOW - 30 * DAY
            yield key, value


def _profile(rng: random.Random, n: int) -> tuple[str, ProfileState]:
    pid = f"u-{n:05d}"
    state = ProfileState(exists=n % 37 != 5)  # a few deleted (not existing) profiles
    if state.exists:
        state.traits = {"custom": {"plan": rng.choice(["free", "trial", "pro"])}}
    for i in range(rng.randrange(0, 9)):
        # Around the window's start and end, an hour into the future, and long ago.
        at = NOW - rng.choice([30 * DAY, 30 * DAY - 1, 30 * DAY + 1, DAY, 0, 200 * DAY])
        at += rng.choice([0, 0, -HOUR, HOUR]) if at != NOW else rng.randrange(HOUR)
        type_ = rng.choice(["page.viewed", "page.viewed", "cart.added"])
        event = state.add_event(at, f"{pid}-{i}", type_, {"url": "/"})
        state.remember(f"{pid}-{i}")
        state.schedule(at + RETENTION, event_timer_key(type_, event.at, event.order))
    return pid, state


def _store(path: Path) -> CountingStore:
    store = CountingStore(path)
    rng = random.Random(20)
    writes = []
    for n in range(PROFILES):
        pid, state = _profile(rng, n)
        writes.append(ProfileWrite(pid, profile_records(pid, state, None), state.next_due, {}, {}))
    store.write(writes, {}, None)
    return store


def _full_members(store: PartitionStore, registry: SegmentRegistry, now: int) -> set[str]:
    """Every profile evaluated with its whole state loaded."""
    segment = registry.segments[SEGMENT["id"]]
    members = set()
    for key, raw in store.scan(b"p"):
        pid = key[1:].decode()
        state = load_profile(pid, raw, store.scan)
        _ = state.events  # everything loaded
        if state.exists and segment.run(EvaluationContext(state, now, RETENTION)):
            members.add(pid)
    return members


def _stored_members(store: PartitionStore) -> set[str]:
    return {pid for sid, pid in store.scan_members() if sid == SEGMENT["id"]}


class Setup:
    def __init__(self, store: PartitionStore) -> None:
        self.store = store
        self.registry = SegmentRegistry(RETENTION)
        self.partition = PartitionState(self.registry, now=NOW)
        self.txn = self.begin()
        self.engine = SegmentEngine(self.registry, self.txn, self.txn.due)
        kind = self.engine.install_segment(SEGMENT, condition_fingerprint(SEGMENT["condition"]))
        assert kind == "segment_created"
        self.partition.jobs = BackfillQueue([BackfillJob(SEGMENT["id"], kind, 1)])
        self.evaluated: list[str] = []
        backfill_profile = self.engine.backfill_profile

        def counting(pid: str, *args: Any) -> Any:
            self.evaluated.append(pid)
            return backfill_profile(pid, *args)

        self.engine.backfill_profile = counting  # type: ignore[method-assign]

    def begin(self) -> PartitionTransaction:
        self.txn = PartitionTransaction(self.store, self.partition, lambda: self.registry)
        if hasattr(self, "engine"):
            self.engine.bind(self.txn, self.txn.due)
        return self.txn

    def commit(self, changes: list[Any]) -> None:
        self.txn.membership(changes)
        self.txn.prepare()
        self.txn.flush(None)

    def backfill(self, budget: int = 64) -> None:
        while self.partition.jobs:
            self.begin()
            jobs = self.partition.jobs
            self.commit(jobs.advance(self.engine, self.txn.profile_ids_after, budget, NOW))


def test_a_backfill_reads_the_window_and_no_dedupe_ring(tmp_path: Path) -> None:
    store = _store(tmp_path / "p0")
    setup = Setup(store)
    store.read.clear()
    store.old_views = 0
    setup.backfill()
    assert store.read.get(b"d", 0) == 0, "no dedupe ring read"
    assert store.old_views == 0, "no page view before the window start read"
    assert store.read.get(b"e", 0) > 100  # the windows were read
    assert len(setup.evaluated) == PROFILES
    members = _stored_members(store)
    assert members == _full_members(store, setup.registry, NOW)
    assert 50 < len(members) < PROFILES
    assert setup.partition.cache == {} or all(
        len(state.seen) == state.seen_total for _, state in setup.partition.cache.values()
    )

    # The timers it scheduled move the members as a full evaluation says, 31 days on.
    later = NOW + 31 * DAY
    setup.begin()
    setup.commit(setup.engine.fire_due(later))
    assert _stored_members(store) == _full_members(store, setup.registry, later)


def test_a_state_loaded_for_evaluation_reads_its_ring_before_a_record(tmp_path: Path) -> None:
    store = _store(tmp_path / "p0")
    setup = Setup(store)
    txn = setup.begin()
    state = txn.get_for_evaluation("u-00001")
    assert state is not None and len(state.seen) == 0 < state.seen_total
    # A record for the same profile in the same transaction: its ring is read first, so a
    # duplicate is still found.
    duplicate = {
        "id": "u-00001-0",
        "type": "page.viewed",
        "profile_id": "u-00001",
        "at": format_instant(NOW),
        "properties": {},
    }
    event = parse_input_record(orjson.dumps(duplicate))
    assert setup.engine.is_duplicate(event)
    assert len(state.seen) == state.seen_total
    setup.commit([])
    assert "u-00001" in setup.partition.cache  # whole again: cached
    txn = setup.begin()
    txn.get_for_evaluation("u-00002")
    setup.commit([])
    assert "u-00002" not in setup.partition.cache  # without its ring: not cached


def test_profiles_caught_up_ahead_of_the_cursor_are_not_evaluated_again(tmp_path: Path) -> None:
    store = _store(tmp_path / "p0")
    setup = Setup(store)
    jobs = setup.partition.jobs
    # Live records reach profiles ahead of the cursor: each is caught up first.
    ahead = [f"u-{n:05d}" for n in (3, 150, 151, 399)]
    setup.begin()
    changes = []
    for pid in ahead:
        changes.extend(jobs.catch_up(setup.engine, pid, NOW))
    setup.commit(changes)
    assert setup.evaluated == ahead
    setup.evaluated.clear()
    setup.backfill()
    assert sorted(setup.evaluated) == sorted({f"u-{n:05d}" for n in range(PROFILES)} - set(ahead))
    assert _stored_members(store) == _full_members(store, setup.registry, NOW)


def test_a_rolled_back_catch_up_is_evaluated_again(tmp_path: Path) -> None:
    store = _store(tmp_path / "p0")
    setup = Setup(store)
    txn = setup.begin()
    setup.partition.jobs.catch_up(setup.engine, "u-00007", NOW)
    txn.prepare()
    txn.rollback()  # the catch-up never reached the store
    setup.evaluated.clear()
    setup.backfill()
    assert "u-00007" in setup.evaluated
    assert _stored_members(store) == _full_members(store, setup.registry, NOW)
