"""Backfills that walk the guard index give exactly what a walk over every profile gives
(docs/state.md "Guard index"): random traits (strings in any case, numbers, booleans, arrays,
absent), random guards, trait changes, deletions and segment edits interleaved with steps of
the index's build pass and backfill slices, over two real RocksDB stores."""

from __future__ import annotations

import gc
import tempfile
from pathlib import Path
from typing import Any

import orjson
from hypothesis import given
from hypothesis import strategies as st

from segstream.app.store import PartitionStore, ProfileWrite, guard_key_bytes, guard_keys
from segstream.app.store import guard_path_prefix as prefix_of
from segstream.app.transaction import PartitionState, PartitionTransaction
from segstream.engine.backfill import BackfillJob
from segstream.engine.processor import SegmentEngine
from segstream.engine.registry import SegmentRegistry
from segstream.rules import condition_fingerprint
from segstream.schemas.events import parse_input_record
from segstream.state.layout import head_parts, profile_records
from segstream.state.profile import ProfileState
from segstream.timefmt import DAY, format_instant

from .budget import examples

NOW = 1_800_000_000_000_000
PATHS = ("plan", "tier")
VALUES: list[Any] = ["pro", "PRO", "free", 1, 1.0, True, 0, -0.0, 2.5, "x"]
trait_value = st.one_of(
    st.sampled_from(VALUES), st.lists(st.sampled_from(VALUES), min_size=1, max_size=3)
)
traits = st.dictionaries(st.sampled_from(PATHS), trait_value, max_size=2)
guard = st.builds(
    lambda path, values, form: (
        {"trait": path, "op": "eq", "value": values[0]}
        if form == "eq" or len(values) == 1
        else {"trait": path, "op": "in", "value": values}
        if form == "in"
        else {"or": [{"trait": path, "op": "eq", "value": v} for v in values]}
    ),
    st.sampled_from(PATHS),
    st.lists(st.sampled_from(["pro", "free", 1, True, 2.5]), min_size=1, max_size=3, unique=True),
    st.sampled_from(["eq", "in", "or"]),
)
extra = st.sampled_from(
    [
        [],
        [{"trait": "tier", "op": "exists"}],
        [{"not": {"trait": "plan", "op": "eq", "value": "free"}}],
    ]
)
condition = st.builds(
    lambda g, e: {"and": [*g, *e]}, st.lists(guard, min_size=1, max_size=2), extra
)
operation = st.one_of(
    st.tuples(st.just("traits"), st.integers(0, 19), traits),
    st.tuples(st.just("delete"), st.integers(0, 19), st.none()),
    st.tuples(st.just("slice"), st.integers(1, 8), st.integers(1, 8)),
    st.tuples(st.just("segment"), condition, st.none()),
    st.tuples(st.just("drop"), st.none(), st.none()),
)


class Partition:
    def __init__(self, path: Path, profiles: list[dict[str, Any] | None], index: bool) -> None:
        self.store = PartitionStore(path, block_cache_bytes=1 << 20, write_buffer_bytes=1 << 20)
        self.index = index
        writes = []
        for n, found in enumerate(profiles):
            state = ProfileState(exists=found is not None)
            state.traits = found or {}
            pid = f"u{n:02d}"
            writes.append(ProfileWrite(pid, profile_records(pid, state, None), None, {}, {}))
        self.store.write(writes, {}, None)
        self.registry = SegmentRegistry(365 * DAY)
        self.state = PartitionState(self.registry, now=NOW)
        self.txn = PartitionTransaction(self.store, self.state, lambda: self.registry)
        self.engine = SegmentEngine(self.registry, self.txn, self.txn.due)
        self.transitions: list[tuple[Any, ...]] = []
        self.version = 0
        self.event = 0

    def begin(self) -> PartitionTransaction:
        self.txn = PartitionTransaction(self.store, self.state, lambda: self.registry)
        self.engine.bind(self.txn, self.txn.due)
        return self.txn

    def commit(self, changes: list[Any]) -> None:
        self.txn.membership(changes)
        self.txn.prepare()
        self.txn.flush(None)
        self.transitions.extend(
            (c.profile_id, c.segment_id, c.segment_version, c.seq, c.entered, c.cause)
            for c in changes
        )
        if self.index:
            self.store.sync_index(self.registry.guard_paths)

    def run(self, op: tuple[Any, Any, Any]) -> None:
        kind, a, b = op
        if kind in ("traits", "delete"):
            self.event += 1
            record: dict[str, Any] = {
                "id": f"e{self.event}",
                "profile_id": f"u{a:02d}",
                "at": format_instant(NOW),
                "type": "profile.updated" if kind == "traits" else "profile.deleted",
            }
            if kind == "traits":
                record["traits"] = b
            self.begin()
            changes = self.state.jobs.catch_up(self.engine, record["profile_id"], NOW)
            changes.extend(self.engine.apply(parse_input_record(orjson.dumps(record)), NOW))
            self.commit(changes)
        elif kind == "slice":
            txn = self.begin()
            if self.index:
                txn.index_step(a)
            walk_of = txn.backfill_walk if self.index else None
            self.commit(
                self.state.jobs.advance(self.engine, txn.profile_ids_after, b, NOW, (), walk_of)
            )
        elif kind in ("segment", "drop") and self.state.jobs.jobs:
            # A worker parks a segment's control record while a backfill of it is pending.
            self.finish()
            self.run(op)
        elif kind == "segment":
            self.begin()
            definition = {"id": "s", "name": "s", "condition": a}
            found = self.engine.install_segment(definition, condition_fingerprint(a))
            if found is not None:
                self.state.jobs.add(BackfillJob("s", found, self.registry.versions["s"]))
            self.commit([])
        elif kind == "drop":
            self.begin()
            version = self.engine.remove_segment("s")
            if version is not None:
                self.state.jobs.add(BackfillJob("s", "segment_deleted", version))
            self.commit([])

    def finish(self) -> None:
        """Every job done, the index built, the old generations swept."""
        while (
            self.state.jobs.jobs
            or self.store.index_building() is not None
            or self.store.sweep_pending()
        ):
            self.run(("slice", 7, 7))

    def close(self) -> None:
        self.store.close()
        del self.txn, self.engine, self.store
        self.state.cache.clear()
        gc.collect()


def _stored(store: PartitionStore) -> list[tuple[bytes, Any]]:
    found: list[tuple[bytes, Any]] = []
    for prefix in (b"", b"n", b"s"):
        for key, value in store.scan(prefix):
            if key[:1] == b"p":
                head = orjson.loads(value)
                del head[10]  # the version, which every write raises
                found.append((key, head))
            else:
                found.append((key, value))
    return found


@examples(40)
@given(
    st.lists(st.one_of(st.none(), traits), min_size=20, max_size=20),
    condition,
    st.lists(operation, max_size=12),
    condition,
    st.lists(operation, max_size=12),
)
def test_an_indexed_walk_gives_what_a_full_walk_gives(
    profiles: list[dict[str, Any] | None],
    first: dict[str, Any],
    operations: list[tuple[Any, Any, Any]],
    edit: dict[str, Any],
    more: list[tuple[Any, Any, Any]],
) -> None:
    # A segment backfilled (its guard paths built first), random changes, an edit walked
    # by the built index (members that fail its guards must leave), more changes.
    script = [
        ("segment", first, None),
        ("finish", None, None),
        *operations,
        ("finish", None, None),
        ("segment", edit, None),
        *more,
    ]
    with tempfile.TemporaryDirectory(prefix="s7-guard-prop") as tmp:
        indexed = Partition(Path(tmp) / "indexed", profiles, index=True)
        full = Partition(Path(tmp) / "full", profiles, index=False)
        try:
            for op in script:
                for partition in (indexed, full):
                    if op[0] == "finish":
                        partition.finish()
                    else:
                        partition.run(op)
            indexed.finish()
            full.finish()
            # Per profile in the same order (seq); across profiles, a live record may meet
            # a walk that is further on when it passes over profiles.
            assert sorted(indexed.transitions) == sorted(full.transitions)
            # The stored state too, but for the heads' write counters: a walk that passes
            # over profiles groups the writes into other transactions.
            assert _stored(indexed.store) == _stored(full.store)
            # The index holds exactly what the heads say, for every guard path in use.
            wanted = set(indexed.registry.guard_paths)
            assert indexed.store.indexed_paths() == wanted
            expected = {
                prefix_of(parts) + guard_key_bytes(k) + key[1:]
                for key, raw in indexed.store.scan(b"p")
                for parts in wanted
                for k in guard_keys(head_parts(raw)[3], parts)
            }
            assert {k for k, _ in indexed.store.scan_guards()} == expected
        finally:
            indexed.close()
            full.close()
