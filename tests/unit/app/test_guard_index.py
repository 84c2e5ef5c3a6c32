"""The guard index over the real RocksDB store (docs/state.md "Guard index", issue 20): a
backfill of a guarded segment walks only the profiles its guard names (and the segment's
members), with exactly the transitions and stored state of a walk over every profile; trait
changes move profiles between index keys; the build pass resumes after a crash (the store
reopened from its files) and a restore (from the changelog) rebuilds the index; a path not
built yet walks every profile, as before."""

from __future__ import annotations

import asyncio
import gc
import random
import shutil
import time
from pathlib import Path
from typing import Any

import orjson
import pytest
from shell_fakes import FakeProducer, Feed, batch, running_task

from segstream.app.store import (
    GBUILD_KEY,
    PartitionStore,
    ProfileWrite,
    guard_key_bytes,
    guard_keys,
    guard_path_prefix,
)
from segstream.app.transaction import PartitionState, PartitionTransaction
from segstream.engine.backfill import BackfillJob
from segstream.engine.membership import MembershipChange
from segstream.engine.processor import SegmentEngine
from segstream.engine.registry import SegmentRegistry
from segstream.rules import condition_fingerprint
from segstream.rules.compile import EvaluationContext
from segstream.schemas.events import parse_input_record
from segstream.state.layout import event_timer_key, head_parts, load_profile, profile_records
from segstream.state.profile import ProfileState
from segstream.timefmt import DAY, HOUR, format_instant

NOW = 1_800_000_000_000_000
RETENTION = 365 * DAY
PROFILES = 600
PLAN = ("custom", "plan")
COUNTRY = ("country",)
RECENT = {"event": "page.viewed", "within": "30d", "count": {"op": "gte", "value": 1}}


def _segment(sid: str, *guards: dict[str, Any]) -> dict[str, Any]:
    return {"id": sid, "name": sid, "condition": {"and": [*guards, RECENT]}}


PRO_OR_TRIAL = _segment("active", {"trait": "custom.plan", "op": "in", "value": ["pro", "trial"]})
PRO = _segment("active", {"trait": "custom.plan", "op": "eq", "value": "pro"})
#: Two guards: the walk takes the one with fewer entries (the plan: ~5% against ~half).
PRO_IN_DE = _segment(
    "pro-de",
    {"trait": "country", "op": "eq", "value": "DE"},
    {"trait": "custom.plan", "op": "eq", "value": "pro"},
)


def _open(path: Path) -> PartitionStore:
    return PartitionStore(path, block_cache_bytes=8 << 20, write_buffer_bytes=8 << 20)


def _plan(rng: random.Random) -> Any:
    roll = rng.random()
    if roll < 0.04:
        return "pro"
    if roll < 0.05:
        return ["team", "Pro"]  # an array: one key per element (case folded)
    if roll < 0.10:
        return "trial"
    if roll < 0.12:
        return rng.choice([5, 5.0, True])  # one number key, and a boolean one
    if roll < 0.15:
        return None  # no plan
    return "free"


def _profile(rng: random.Random, n: int) -> tuple[str, ProfileState]:
    pid = f"u-{n:05d}"
    state = ProfileState(exists=n % 41 != 7)
    if state.exists:
        plan = _plan(rng)
        custom = {"plan": plan} if plan is not None else {}
        state.traits = {"custom": custom, "country": rng.choice(["DE", "FR"])}
    for i in range(rng.randrange(0, 5)):
        at = NOW - rng.choice([DAY, 10 * DAY, 40 * DAY]) + rng.randrange(HOUR)
        event = state.add_event(at, f"{pid}-{i}", "page.viewed", {"url": "/"})
        state.remember(f"{pid}-{i}")
        state.schedule(at + RETENTION, event_timer_key("page.viewed", event.at, event.order))
    return pid, state


class Setup:
    """A partition's store, state and engine, driven the way a task's slices drive them,
    keeping every changelog record its transactions write."""

    def __init__(self, path: Path, *, index: bool) -> None:
        self.path = path
        self.store = _open(path)
        self.changelog: list[tuple[bytes, bytes | None]] = []
        rng = random.Random(7)
        writes = []
        for n in range(PROFILES):
            pid, state = _profile(rng, n)
            records = profile_records(pid, state, None)
            self.changelog.extend(records)
            writes.append(ProfileWrite(pid, records, state.next_due, {}, {}))
        self.store.write(writes, {}, None)
        self.registry = SegmentRegistry(RETENTION)
        self.partition = PartitionState(self.registry, now=NOW)
        self.index = index
        self.evaluated: list[str] = []
        self.transitions: list[tuple[Any, ...]] = []
        self._engine()

    def _engine(self) -> None:
        self.txn = PartitionTransaction(self.store, self.partition, lambda: self.registry)
        self.engine = SegmentEngine(self.registry, self.txn, self.txn.due)
        for name in ("backfill_profile", "leave_deleted"):
            self._count(name)

    def _count(self, name: str) -> None:
        original = getattr(self.engine, name)

        def counting(pid: str, *args: Any) -> Any:
            self.evaluated.append(pid)
            return original(pid, *args)

        setattr(self.engine, name, counting)

    def close(self) -> None:
        """Close the store, and let go of everything that refers to it (rocksdict keeps a
        DB open while some object still does)."""
        self.store.close()
        del self.txn, self.engine, self.store
        self.partition.cache.clear()  # its states read their history through the store
        gc.collect()

    def reopen(self, *, closed: bool = False) -> None:
        """The store reopened from its files (a crash between transactions: each write
        batch is atomic)."""
        if not closed:
            self.close()
        self.store = _open(self.path)
        self._engine()

    def begin(self) -> PartitionTransaction:
        self.txn = PartitionTransaction(self.store, self.partition, lambda: self.registry)
        self.engine.bind(self.txn, self.txn.due)
        return self.txn

    def commit(self, changes: list[MembershipChange]) -> None:
        self.txn.membership(changes)
        self.changelog.extend(self.txn.prepare())
        self.txn.flush(None)
        self.transitions.extend(
            (c.profile_id, c.segment_id, c.segment_version, c.seq, c.entered, c.at, c.cause)
            for c in changes
        )
        if self.index:
            self.store.sync_index(self.registry.guard_paths)

    def build(self, limit: int = 64, steps: int | None = None) -> None:
        """Run the index's build pass (at most `steps` transactions)."""
        done = 0
        while self.store.index_building() is not None and (steps is None or done < steps):
            self.begin().index_step(limit)
            self.commit([])
            done += 1

    def install(self, segment: dict[str, Any]) -> None:
        self.begin()
        kind = self.engine.install_segment(segment, condition_fingerprint(segment["condition"]))
        assert kind is not None
        self.partition.jobs.add(
            BackfillJob(segment["id"], kind, self.registry.versions[segment["id"]])
        )
        self.commit([])

    def delete(self, sid: str) -> None:
        self.begin()
        version = self.engine.remove_segment(sid)
        assert version is not None
        self.partition.jobs.add(BackfillJob(sid, "segment_deleted", version))
        self.commit([])

    def backfill(self, budget: int = 64) -> None:
        self.evaluated.clear()
        while self.partition.jobs.jobs:
            txn = self.begin()
            walk_of = txn.backfill_walk if self.index else None
            jobs = self.partition.jobs
            self.commit(jobs.advance(self.engine, txn.profile_ids_after, budget, NOW, (), walk_of))

    def apply(self, pid: str, eid: str, **event: Any) -> None:
        record = {"id": eid, "profile_id": pid, "at": format_instant(NOW)} | event
        self.begin()
        parsed = parse_input_record(orjson.dumps(record))
        changes = self.partition.jobs.catch_up(self.engine, pid, NOW)
        changes.extend(self.engine.apply(parsed, NOW))
        self.commit(changes)

    def traits(self, pid: str, eid: str, **traits: Any) -> None:
        self.apply(pid, eid, type="profile.updated", traits=traits)


def _index(store: PartitionStore) -> set[bytes]:
    return {key for key, _ in store.scan_guards()}


def _expected(store: PartitionStore, paths: list[tuple[str, ...]]) -> set[bytes]:
    """The index a build from every stored head gives."""
    found = set()
    for key, raw in store.scan(b"p"):
        traits = head_parts(raw)[3]
        for parts in paths:
            prefix = guard_path_prefix(parts)
            found.update(prefix + guard_key_bytes(k) + key[1:] for k in guard_keys(traits, parts))
    return found


def _stored(store: PartitionStore) -> dict[bytes, list[tuple[bytes, bytes]]]:
    """Everything but the guard index: profile data, insight, due and member indexes."""
    return {prefix: list(store.scan(prefix)) for prefix in (b"", b"n", b"s")}


def _full_members(store: PartitionStore, registry: SegmentRegistry, sid: str) -> set[str]:
    segment = registry.segments[sid]
    members = set()
    for key, raw in store.scan(b"p"):
        pid = key[1:].decode()
        state = load_profile(pid, raw, store.scan)
        if state.exists and segment.run(EvaluationContext(state, NOW, RETENTION)):
            members.add(pid)
    return members


def _with_plan(store: PartitionStore, *plans: str) -> set[str]:
    """Profiles whose plan (or one element of it) is one of these, case folded."""
    found = set()
    for key, raw in store.scan(b"p"):
        if {("s", p) for p in plans} & guard_keys(head_parts(raw)[3], PLAN):
            found.add(key[1:].decode())
    return found


def _members(store: PartitionStore, sid: str) -> set[str]:
    return {pid for segment, pid in store.scan_members() if segment == sid}


def _pair(tmp_path: Path) -> tuple[Setup, Setup]:
    """The same partition twice: with the guard index (built) and without it."""
    indexed, full = Setup(tmp_path / "indexed", index=True), Setup(tmp_path / "full", index=False)
    return indexed, full


def test_an_indexed_backfill_evaluates_only_what_its_guard_names(tmp_path: Path) -> None:
    indexed, full = _pair(tmp_path)
    for setup in (indexed, full):
        setup.install(PRO_OR_TRIAL)
        setup.build()
        setup.backfill()
    assert indexed.store.indexed_paths() == {PLAN}
    assert full.store.indexed_paths() == frozenset() and _index(full.store) == set()
    assert _index(indexed.store) == _expected(indexed.store, [PLAN])
    store = indexed.store
    # The first backfill ran after the build: it walked only the pro and trial profiles.
    assert sorted(indexed.evaluated) == sorted(_with_plan(store, "pro", "trial"))
    assert len(full.evaluated) == PROFILES
    before = _members(store, "active")
    assert before == _full_members(store, indexed.registry, "active")
    assert len(before) > 10

    # The edit narrows the guard: its walk is the pro profiles and the members (the trial
    # members must leave), not every profile.
    for setup in (indexed, full):
        setup.install(PRO)
        setup.backfill()
    assert sorted(indexed.evaluated) == sorted(_with_plan(store, "pro") | before)
    assert len(indexed.evaluated) < PROFILES // 5
    assert len(full.evaluated) == PROFILES
    assert any(not t[4] for t in indexed.transitions), "trial members left"
    assert indexed.transitions == full.transitions
    assert _stored(indexed.store) == _stored(full.store)
    assert _members(store, "active") == _full_members(store, indexed.registry, "active")

    # A deletion walks the members alone.
    members = _members(store, "active")
    for setup in (indexed, full):
        setup.delete("active")
        setup.backfill()
    assert sorted(indexed.evaluated) == sorted(members)
    assert indexed.transitions == full.transitions
    assert _stored(indexed.store) == _stored(full.store)
    assert _members(store, "active") == set()
    # No segment guards the plan any more: its index is dropped.
    assert indexed.store.indexed_paths() == frozenset() and _index(store) == set()


def test_the_walk_follows_the_guard_with_the_fewest_entries(tmp_path: Path) -> None:
    indexed, full = _pair(tmp_path)
    for setup in (indexed, full):
        setup.install(PRO_IN_DE)
        setup.build()
        setup.backfill()
    assert indexed.store.indexed_paths() == {PLAN, COUNTRY}
    assert _index(indexed.store) == _expected(indexed.store, [PLAN, COUNTRY])
    # Walked by the plan (about 5%), not the country (about half).
    assert sorted(indexed.evaluated) == sorted(_with_plan(indexed.store, "pro"))
    assert indexed.transitions == full.transitions
    assert _stored(indexed.store) == _stored(full.store)


def test_trait_changes_move_profiles_between_index_keys(tmp_path: Path) -> None:
    indexed, full = _pair(tmp_path)
    for setup in (indexed, full):
        setup.install(PRO_OR_TRIAL)
        setup.build()
        setup.backfill()
    store = indexed.store
    free = sorted(_with_plan(store, "free"))
    pro = sorted(_with_plan(store, "pro"))
    for setup in (indexed, full):
        setup.traits(free[0], "t1", custom={"plan": "pro"})  # into the index's pro key
        setup.traits(free[1], "t2", custom={"plan": ["trial", "PRO"]})  # two keys
        setup.traits(pro[0], "t3", custom={"plan": "free"})  # out of it
        setup.traits(pro[1], "t4", custom={"plan": None})  # no plan at all
        setup.traits(pro[2], "t5", country="FR")  # off the path: no index write
        setup.apply(pro[3], "t6", type="profile.deleted")  # a deleted profile has no traits
        setup.traits(pro[3], "t7", custom={"plan": "pro"})  # and exists again
        setup.traits("new-1", "t8", custom={"plan": "trial"})  # a new profile
    assert _index(store) == _expected(store, [PLAN])
    assert _with_plan(store, "pro") == (set(pro) - {pro[0], pro[1]}) | {free[0], free[1]}
    for setup in (indexed, full):
        setup.install(PRO)
        setup.backfill()
    assert indexed.transitions == full.transitions
    assert _stored(indexed.store) == _stored(full.store)
    assert _members(store, "active") == _full_members(store, indexed.registry, "active")


def test_a_crash_mid_build_resumes_where_it_stopped(tmp_path: Path) -> None:
    indexed, full = _pair(tmp_path)
    for setup in (indexed, full):
        setup.install(PRO_OR_TRIAL)
    assert indexed.store.index_building() == (PLAN, None)
    indexed.build(limit=50, steps=4)
    building = indexed.store.index_building()
    assert building is not None and building[1] == "u-00199"
    free = sorted(_with_plan(indexed.store, "free"))
    behind = [p for p in free if p <= "u-00199"][:2]
    ahead = [p for p in free if p > "u-00199"][:2]
    for setup in (indexed, full):
        # Writes behind the cursor keep the path at once; those ahead wait for the pass.
        for n, pid in enumerate(behind + ahead):
            setup.traits(pid, f"c{n}", custom={"plan": "pro"})
    # The crash: the store is closed between transactions and reopened from its files.
    indexed.reopen()
    assert indexed.store.index_building() == (PLAN, "u-00199")
    assert indexed.store.indexed_paths() == frozenset()
    part = {k for k in _expected(indexed.store, [PLAN]) if k[-7:].decode() <= "u-00199"}
    assert _index(indexed.store) == part
    # Until the path is built, the backfill walks every profile, with the same results.
    for setup in (indexed, full):
        setup.backfill()
    assert len(indexed.evaluated) == PROFILES - len(behind + ahead)  # those caught up aside
    assert indexed.transitions == full.transitions
    indexed.build(limit=50)
    assert indexed.store.indexed_paths() == {PLAN}
    assert indexed.store.get(GBUILD_KEY) is None
    assert _index(indexed.store) == _expected(indexed.store, [PLAN])
    for setup in (indexed, full):
        setup.install(PRO)
        setup.backfill()
    assert len(indexed.evaluated) < PROFILES // 5
    assert indexed.transitions == full.transitions
    assert _stored(indexed.store) == _stored(full.store)


def test_a_restore_rebuilds_the_index(tmp_path: Path) -> None:
    setup = Setup(tmp_path / "p0", index=True)
    setup.install(PRO_OR_TRIAL)
    setup.build()
    setup.backfill()
    ahead = tmp_path / "copy"
    setup.close()
    shutil.copytree(setup.path, ahead)  # the store as it was: restored from here, below
    setup.reopen(closed=True)
    mark = len(setup.changelog)
    free = sorted(_with_plan(setup.store, "free"))
    pro = sorted(_with_plan(setup.store, "pro"))
    setup.traits(free[0], "r1", custom={"plan": "pro"})
    setup.traits(pro[0], "r2", custom={"plan": "free"})
    setup.apply(pro[1], "r3", type="profile.deleted")
    expected = _index(setup.store)
    assert expected == _expected(setup.store, [PLAN])

    # A store behind the changelog applies the rest: the changed heads move their keys.
    behind = _open(ahead)
    behind.apply_changelog(setup.changelog[mark:], 1)
    assert _index(behind) == expected

    # A store restored from nothing has no index; the build pass makes it again.
    fresh = _open(tmp_path / "fresh")
    for n in range(0, len(setup.changelog), 500):
        fresh.apply_changelog(setup.changelog[n : n + 500], n)
    assert fresh.indexed_paths() == frozenset() and _index(fresh) == set()
    fresh.sync_index(setup.registry.guard_paths)
    # A crash mid-build of the restored store: reopened from its files, it goes on.
    txn = PartitionTransaction(fresh, PartitionState(setup.registry), lambda: setup.registry)
    txn.index_step(100)
    txn.prepare()
    txn.flush(None)
    fresh.close()
    del txn, fresh
    gc.collect()
    fresh = _open(tmp_path / "fresh")
    assert fresh.index_building() == (PLAN, "u-00099")
    while fresh.index_building() is not None:
        txn = PartitionTransaction(fresh, PartitionState(setup.registry), lambda: setup.registry)
        txn.index_step(100)
        txn.prepare()
        txn.flush(None)
    assert fresh.indexed_paths() == {PLAN}
    assert _index(fresh) == expected


def test_a_task_builds_the_index_in_its_slices_and_walks_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    evaluated: list[str] = []
    original = SegmentEngine.backfill_profile

    def counting(self: SegmentEngine, pid: str, *args: Any) -> Any:
        evaluated.append(pid)
        return original(self, pid, *args)

    monkeypatch.setattr(SegmentEngine, "backfill_profile", counting)
    producer = FakeProducer()
    task = running_task(tmp_path, producer)
    feed = Feed(task)
    at = format_instant(int(time.time() * 1_000_000))
    rng = random.Random(3)
    plans = {f"p{n:04d}": "pro" if rng.random() < 0.05 else "free" for n in range(300)}
    plans["p0001"] = "pro"
    records = [feed.traits(pid, f"e-{pid}", at, plan=plan) for pid, plan in plans.items()]
    asyncio.run(task.process(batch(*records)))
    guard = {"trait": "plan", "op": "eq", "value": "pro"}
    asyncio.run(task.process(batch(feed.segment("pro", guard))))
    assert task.jobs and task.jobs.indexing
    slices = 0
    while task.jobs:
        asyncio.run(task.process([]))
        slices += 1
        assert slices < 50
    assert task.store is not None and task.store.indexed_paths() == {("plan",)}
    pro = {pid for pid, plan in plans.items() if plan == "pro"}
    assert task.members == {"pro": len(pro)}
    # An edit on the same guard: walked by the index (the pro profiles, its members).
    evaluated.clear()
    edited = {"and": [guard, {"trait": "plan", "op": "exists"}]}
    asyncio.run(task.process(batch(feed.segment("pro", edited, version=2))))
    assert not task.jobs.indexing
    while task.jobs:
        asyncio.run(task.process([]))
    assert sorted(evaluated) == sorted(pro)
    assert task.members == {"pro": len(pro)}
    # A restart loads the index's state from the store: nothing to build again.
    assert task.store is not None
    state = task._load(task.store)
    assert not state.jobs


def test_a_profile_made_in_the_batch_before_its_segment_is_evaluated(tmp_path: Path) -> None:
    """A batch that makes a profile, then installs a segment, and runs a backfill slice in
    the same transaction (a live batch owed the backfills' share): the slice's walk, over
    every head or over the index, evaluates the profile though the store has no head of it
    yet (before this session the walk over the heads left it out for good)."""
    producer = FakeProducer()
    task = running_task(tmp_path, producer)
    feed = Feed(task)
    at = format_instant(int(time.time() * 1_000_000))
    guard = {"trait": "plan", "op": "eq", "value": "pro"}
    task.records_slice_s = 1.0
    asyncio.run(
        task.process(batch(feed.traits("p1", "e1", at, plan="pro"), feed.segment("a", guard)))
    )
    assert task.members == {"a": 1}
    while task.jobs:
        asyncio.run(task.process([]))
    assert task.store is not None and task.store.indexed_paths() == {("plan",)}
    # Now with the plan indexed: the walk of the new segment is the index's.
    edited = {"and": [guard, {"trait": "plan", "op": "exists"}]}
    asyncio.run(
        task.process(batch(feed.traits("p2", "e2", at, plan="pro"), feed.segment("b", edited)))
    )
    assert not task.jobs
    assert task.members == {"a": 2, "b": 2}
