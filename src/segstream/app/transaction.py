"""One partition transaction: every change one batch makes, held until Kafka commits it.

The partition's committed state is its RocksDB store (which serves committed data only) and
the in-memory `PartitionState` derived from it (registry, due index, backfill queue, member
counts, loaded-state cache). A `PartitionTransaction` collects what a batch changes:

    STARTED ──prepare()──► PREPARED ──flush()──► COMMITTED
       │                       │
       └──────rollback()───────┴──────────────► FAILED

- reads of profile states see the transaction's own writes first, then the store;
- `prepare()` turns the changed parts of each profile (its head, and the history entries,
  dedupe slots and timers its journal recorded) into the changelog records to send, and adds
  a share of the sweep of deleted profiles' old generations (`sweep_records`: a few keys in a
  transaction that changes profiles, more in one that does not, such as a tick);
- only after the Kafka commit, `flush(offset)` writes the store (with the changelog offset the
  writes reach) and publishes the in-memory changes (due index, member counts, cache);
- `rollback()` undoes every in-memory change (due index by its undo log, the backfill queue
  and clock from their snapshots, the registry by reloading the committed definitions), so
  the partition is exactly as it was before the batch and can run it again.
"""

from __future__ import annotations

import enum
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from segstream.app.store import IndexStep, PartitionStore, ProfileWrite, meta_key, profile_key
from segstream.engine.backfill import BackfillJob, BackfillQueue, Walk
from segstream.engine.membership import MembershipChange
from segstream.engine.registry import SegmentRegistry
from segstream.state.due_index import DueIndex
from segstream.state.insight import size_records, timeline_records
from segstream.state.layout import (
    Records,
    commit_journal,
    load_dedupe,
    load_profile,
    profile_records,
    sweep_records,
)
from segstream.state.profile import ProfileState

__all__ = [
    "PROFILE_CACHE_SIZE",
    "IllegalTransactionState",
    "PartitionState",
    "PartitionTransaction",
    "TransactionState",
]

#: Loaded profile states kept between transactions, per partition (most recently committed),
#: with the histories they loaded. Live traffic comes in small batches, and decoding a profile
#: per batch was the largest single cost of the worker at half its throughput (py-spy).
PROFILE_CACHE_SIZE = 2000
#: Old-generation keys a transaction deletes when it changes profiles (the hot path) and
#: when it does not (ticks): the sweep of a deleted profile's history stays off the hot path.
SWEEP_KEYS_BUSY = 50
SWEEP_KEYS_IDLE = 1000


class TransactionState(enum.Enum):
    """Where a transaction is in its life."""

    STARTED = "started"
    PREPARED = "prepared"
    COMMITTED = "committed"
    FAILED = "failed"


_LEGAL: dict[TransactionState, frozenset[TransactionState]] = {
    TransactionState.STARTED: frozenset({TransactionState.PREPARED, TransactionState.FAILED}),
    TransactionState.PREPARED: frozenset({TransactionState.COMMITTED, TransactionState.FAILED}),
    TransactionState.COMMITTED: frozenset(),
    TransactionState.FAILED: frozenset(),
}


class IllegalTransactionState(RuntimeError):
    """A transaction was asked for a step its state does not allow (a bug in the caller)."""


@dataclass
class PartitionState:
    """The in-memory state of a partition derived from its committed store."""

    registry: SegmentRegistry
    due: DueIndex = field(default_factory=DueIndex)
    jobs: BackfillQueue = field(default_factory=BackfillQueue)
    #: Members per segment in this partition (committed).
    members: dict[str, int] = field(default_factory=dict)
    #: The processing clock (microseconds); never goes back.
    now: int = 0
    #: How long size history is kept (SEGSTREAM_SIZE_HISTORY_RETENTION).
    size_retention: int = 30 * 24 * 3600 * 1_000_000
    #: Loaded committed states with the stored head they were loaded from.
    cache: OrderedDict[str, tuple[bytes, ProfileState]] = field(default_factory=OrderedDict)
    #: Per backfill job (segment, kind, version), the guard its indexed walk follows (the one
    #: with the fewest index entries when it was chosen; memory only).
    walk_guards: dict[tuple[str, str, int], Any] = field(default_factory=dict)


class _DueChanges:
    """The due index as one transaction sees it: changes go to the index at once (the engine
    pops due timers in order), with the value each profile had before, to undo them."""

    def __init__(self, base: DueIndex) -> None:
        self._base = base
        self._undo: dict[str, int | None] = {}

    def set(self, profile_id: str, due: int | None) -> None:
        if profile_id not in self._undo:
            self._undo[profile_id] = self._base.get(profile_id)
        self._base.set(profile_id, due)

    def pop_until(self, until: int) -> tuple[int, str] | None:
        head = self._base.peek()
        if head is None or head[0] > until:
            return None
        if head[1] not in self._undo:
            self._undo[head[1]] = head[0]
        return self._base.pop_until(until)

    def undo(self) -> None:
        for profile_id, due in self._undo.items():
            self._base.set(profile_id, due)
        self._undo.clear()


class PartitionTransaction:
    """The changes of one batch of one partition (see the module docstring)."""

    def __init__(
        self,
        store: PartitionStore,
        state: PartitionState,
        reload_registry: Callable[[], SegmentRegistry],
    ) -> None:
        self.status = TransactionState.STARTED
        self._store = store
        self._state = state
        self._reload_registry = reload_registry
        self.due = _DueChanges(state.due)
        # Snapshots for the rollback: the queue is a few jobs, so copying it is cheap.
        self._jobs_before = state.jobs.encode() if state.jobs else None
        self._now_before = state.now
        self._registry_changed = False
        self.loaded: dict[str, ProfileState] = {}
        self._members_before: dict[str, dict[str, int]] = {}
        #: The traits each loaded profile had (a state's traits are replaced, never changed in
        #: place: a reference is a snapshot), for the guard index.
        self._traits_before: dict[str, Any] = {}
        self._raw: dict[str, bytes] = {}  # the stored head of each profile read
        #: This transaction's step of the guard index's build pass (written by `flush`).
        self._index_step: IndexStep | None = None
        #: Loaded without their dedupe ring (`get_for_evaluation`): kept out of the cache.
        self._lean: set[str] = set()
        #: Committed heads read ahead by `profile_ids_after`, not loaded yet.
        self._heads: dict[str, bytes] = {}
        self._dirty: set[str] = set()
        self._encoded: dict[str, bytes] = {}  # the head each changed profile has after it
        self._meta: dict[bytes, bytes | None] = {}
        self._swept: Records = []
        self._changes: list[MembershipChange] = []
        self._insight: list[tuple[bytes, bytes | None]] = []

    # -- the engine's view of the profiles (engine.types.ProfileStore) ---------------------
    def get(self, profile_id: str) -> ProfileState | None:
        """The profile's state: this transaction's, or the committed one (loaded once per
        transaction, or taken from the cache when it holds exactly the stored head)."""
        state = self.loaded.get(profile_id)
        if state is None:
            return self._load(profile_id, dedupe=True)
        if profile_id in self._lean:
            # Loaded for evaluation only; a record is about to be applied to it.
            self._lean.discard(profile_id)
            load_dedupe(profile_id, state, self._store.scan)
        return state

    def get_for_evaluation(self, profile_id: str) -> ProfileState | None:
        """The profile's state for an evaluation that applies no record (a backfill's): as
        `get`, but a state read from the store leaves its dedupe ring unread, and it does not
        go into the cache (a backfill would otherwise replace the live profiles there)."""
        state = self.loaded.get(profile_id)
        if state is None:
            return self._load(profile_id, dedupe=False)
        return state

    def _load(self, profile_id: str, *, dedupe: bool) -> ProfileState | None:
        raw = self._heads.pop(profile_id, None)
        if raw is None:
            raw = self._store.get(profile_key(profile_id))
        if raw is None:
            return None
        # Taken out of the cache: this transaction may change the object, and only a
        # committed transaction puts states back (`flush`); a rollback leaves it out.
        cache = self._state.cache
        cached = cache.pop(profile_id, None)
        hit = cached is not None and cached[0] == raw
        if hit and cached is not None:
            state = cached[1]
        else:
            state = load_profile(profile_id, raw, self._store.scan, dedupe=dedupe)
            if not dedupe:
                self._lean.add(profile_id)
        self.loaded[profile_id] = state
        self._members_before[profile_id] = dict(state.members)
        self._traits_before[profile_id] = state.traits
        self._raw[profile_id] = raw
        return state

    def profile_ids_after(self, cursor: str | None, limit: int) -> list[str]:
        """Up to `limit` profile ids after `cursor`, in key order (what a backfill walks):
        the committed ones, their heads read by the same iterator and kept for this
        transaction's loads instead of one point read each, and those it made."""
        heads = self._store.profile_heads_after(cursor, limit)
        self._heads.update(heads)
        found = [profile_id for profile_id, _ in heads]
        # Profiles this transaction made (no stored head yet) before a job began in it: the
        # store's walk cannot see them, and no catch-up evaluated them.
        made = [
            p
            for p in self.loaded
            if p not in self._raw and p not in self._heads and (cursor is None or p > cursor)
        ]
        if made:
            found = sorted(set(found).union(made))[:limit]
        return found

    def backfill_walk(self, job: BackfillJob) -> Walk | None:
        """A job's walk of its own, or None (every profile): a deletion walks the segment's
        members, and a guarded segment whose guard paths some guard has indexed walks that
        guard's index keys (the guard with the fewest entries) and its members (a profile
        failing the guard must still leave). Both add the profiles this transaction loaded:
        the committed indexes do not know the changes it made before the job began."""
        registry = self._state.registry
        sid = job.segment_id
        if job.kind == "segment_deleted":
            return lambda cursor, limit: self._walk([sid], cursor, limit)
        segment = registry.segments.get(sid)
        if segment is None or not segment.guards:
            return None
        built = self._store.indexed_paths()
        if not built:
            return None
        choice = (sid, job.kind, job.version)
        guard = self._state.walk_guards.get(choice)
        if guard is None or guard.parts not in built or guard not in segment.guards:
            usable = [g for g in segment.guards if g.parts in built]
            if not usable:
                return None
            best, fewest = usable[0], None
            for candidate in usable:
                cap = fewest if fewest is not None else 1 << 62
                found = self._store.guard_entries(candidate.parts, candidate.keys, cap)
                if fewest is None or found < fewest:
                    best, fewest = candidate, found
            guard = self._state.walk_guards[choice] = best
        sources: list[Any] = [(guard.parts, key) for key in sorted(guard.keys, key=repr)]
        sources.append(sid)
        return lambda cursor, limit: self._walk(sources, cursor, limit)

    def _walk(self, sources: list[Any], cursor: str | None, limit: int) -> list[str]:
        found = self._store.guarded_ids_after(sources, cursor, limit, self.loaded.keys())
        unread = [p for p in found if p not in self.loaded and p not in self._heads]
        for profile_id, raw in zip(unread, self._store.heads(unread), strict=True):
            if raw is not None:
                self._heads[profile_id] = raw
        return found

    def index_step(self, limit: int) -> int:
        """Take up to `limit` more heads into this transaction's step of the guard index's
        build pass; the heads read (0: nothing to build, or the path is done)."""
        previous = self._index_step
        if previous is not None and previous.finished:
            return 0
        step = self._store.index_step(limit, previous)
        if step is None:
            return 0
        self._index_step = step
        return step.heads - (previous.heads if previous is not None else 0)

    def put(self, profile_id: str, state: ProfileState) -> None:
        """Mark a profile changed (its records are made in `prepare`)."""
        self.loaded[profile_id] = state
        self._members_before.setdefault(profile_id, {})
        self._traits_before.setdefault(profile_id, {})
        self._dirty.add(profile_id)

    def profile_ids(self) -> Iterable[str]:
        """Every committed profile id, in key order."""
        cursor: str | None = None
        while batch := self._store.profile_ids_after(cursor, 1000):
            yield from batch
            cursor = batch[-1]

    # -- other changes ------------------------------------------------------------------------
    def put_meta(self, name: str, value: bytes | None) -> None:
        """Write (None: delete) a partition meta entry."""
        self._meta[meta_key(name)] = value

    def registry_changed(self) -> None:
        """The batch installed or removed a segment version (a rollback reloads them)."""
        self._registry_changed = True

    def membership(self, changes: list[MembershipChange]) -> None:
        """Transitions the batch emits (member counts move on `flush`)."""
        self._changes.extend(changes)

    # -- the life of the transaction -------------------------------------------------------
    def prepare(self) -> list[tuple[bytes, bytes | None]]:
        """The changed parts of the changed profiles: the changelog records (key, value) to
        send."""
        self._move(TransactionState.PREPARED)
        records: list[tuple[bytes, bytes | None]] = []
        self._writes: list[ProfileWrite] = []
        for profile_id in self._dirty:
            state = self.loaded[profile_id]
            stored = self._raw.get(profile_id)
            written = profile_records(profile_id, state, stored)
            if not written:
                # Evaluated but unchanged (most profiles of a backfill): no write.
                if stored is not None:
                    self._encoded[profile_id] = stored
                continue
            self._encoded[profile_id] = written[0][1] or b""
            self._writes.append(
                ProfileWrite(
                    profile_id,
                    written,
                    state.next_due,
                    self._members_before[profile_id],
                    dict(state.members),
                    self._traits_before[profile_id],
                    state.traits,
                )
            )
            records.extend(written)
        records.extend(self._meta.items())
        self._insight = self._insight_records()
        records.extend(self._insight)
        limit = SWEEP_KEYS_BUSY if self._writes else SWEEP_KEYS_IDLE
        self._swept, _finished = sweep_records(self._store.scan, self.loaded.keys(), limit)
        records.extend(self._swept)
        return records

    def _insight_records(self) -> list[tuple[bytes, bytes | None]]:
        """Timeline entries and size buckets of the batch's transitions (state/insight.py)."""
        if not self._changes:
            return []
        by_profile: dict[str, list[MembershipChange]] = {}
        for change in self._changes:
            by_profile.setdefault(change.profile_id, []).append(change)
        records: list[tuple[bytes, bytes | None]] = []
        for profile_id, changes in by_profile.items():
            total = sum(self.loaded[profile_id].seqs.values())
            records.extend(timeline_records(profile_id, list(changes), total))
        store, state = self._store, self._state
        records.extend(
            size_records(self._changes, state.members, store.get, store.scan, state.size_retention)
        )
        return records

    def flush(self, changelog_offset: int | None) -> None:
        """After the Kafka commit: write the store and publish the in-memory changes."""
        self._move(TransactionState.COMMITTED)
        self._store.write(
            self._writes,
            {**self._meta, **dict(self._insight)},
            changelog_offset,
            self._swept,
            self._index_step,
        )
        cache = self._state.cache
        lean = self._lean
        for profile_id, state in self.loaded.items():
            head = self._encoded.get(profile_id, self._raw.get(profile_id))
            if head is None:
                continue  # made but not written
            commit_journal(state)
            if profile_id in lean:
                continue  # no dedupe ring: loaded whole next time
            cache[profile_id] = (head, state)
            cache.move_to_end(profile_id)
        while len(cache) > PROFILE_CACHE_SIZE:
            cache.popitem(last=False)
        members = self._state.members
        for change in self._changes:
            members[change.segment_id] = members.get(change.segment_id, 0) + (
                1 if change.entered else -1
            )

    def rollback(self) -> None:
        """Undo every in-memory change of the batch (nothing reached the store)."""
        if self.status in (TransactionState.COMMITTED, TransactionState.FAILED):
            if self.status is TransactionState.COMMITTED:
                raise IllegalTransactionState("a committed transaction cannot roll back")
            return
        self._move(TransactionState.FAILED)
        self.due.undo()
        indexing = self._state.jobs.indexing
        self._state.jobs = BackfillQueue.decode(self._jobs_before)
        self._state.jobs.indexing = indexing
        self._state.now = self._now_before
        if self._registry_changed:
            # Installs change the registry's indexes in place; the committed definitions
            # are in the store, so a fresh registry from them is the state before the batch.
            self._state.registry = self._reload_registry()
            # Timers were scheduled for the installed segments too: the undo above put back
            # every due instant the batch touched.

    def _move(self, target: TransactionState) -> None:
        if target not in _LEGAL[self.status]:
            raise IllegalTransactionState(
                f"transaction cannot go from {self.status.value} to {target.value}"
            )
        self.status = target
