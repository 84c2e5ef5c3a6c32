"""SegmentEngine: applies input events, timers and segment changes to profile state.

Every method takes the clock `now` from its caller (the event clock in replay, the processing
clock live) and returns the membership changes it decided, in emission order.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Collection, Iterable, Mapping
from collections.abc import Set as AbstractSet
from typing import Any

from segstream.engine.membership import MembershipChange
from segstream.engine.registry import AGE_PATH, CompiledSegment, SegmentRegistry
from segstream.engine.types import DueTimes, ProfileStore
from segstream.errors import ProfileProcessingError
from segstream.rules.compile import (
    FALLS,
    RISES,
    EvaluationContext,
    EventLeaf,
    HistoryLeaf,
    Leaf,
    SegmentLeaf,
    TraitLeaf,
    index_keys,
    next_birthday,
    trait_terminals,
)
from segstream.rules.operators import split_path, terminals
from segstream.schemas.events import InputEvent
from segstream.schemas.jsontext import dumps
from segstream.state.layout import event_timer_key, parse_event_timer
from segstream.state.profile import ProfileState, StoredEvent

__all__ = ["REACH_CACHE_SIZE", "SegmentEngine", "deep_merge"]

CauseOf = Callable[[str], dict[str, str]]
_EVENT_TIMER = "e"
_TRAIT_TIMER = "t"
#: A `for_at_least` of a membership comes due (key: this and the segment id).
_TENURE_TIMER = "m"
_NOTHING: frozenset[str] = frozenset()
#: Profiles whose reachable segments the engine remembers by default (cleared when full).
REACH_CACHE_SIZE = 100_000


def deep_merge(base: Mapping[str, Any], patch: Mapping[str, Any]) -> dict[str, Any]:
    """Merge `patch` into a copy of `base` (SPEC §3.1): objects key by key, null deletes."""
    merged = dict(base)
    for key, value in patch.items():
        if value is None:
            merged.pop(key, None)
        elif isinstance(value, dict):
            current = merged.get(key)
            merged[key] = deep_merge(current if isinstance(current, dict) else {}, value)
        else:
            merged[key] = value
    return merged


def _same(old: list[Any], new: list[Any]) -> bool:
    # `==` says 1 == 1.0 == True; the encoded form tells them apart.
    return old == new and dumps(old) == dumps(new)


class SegmentEngine:
    """The pure segment engine over a profile store and a due-time index."""

    def __init__(
        self,
        registry: SegmentRegistry,
        store: ProfileStore,
        due: DueTimes,
        *,
        reach_cache_size: int = REACH_CACHE_SIZE,
    ) -> None:
        self.registry = registry
        self.store = store
        self._view = _evaluation_view(store)
        self.due = due
        self.retention = registry.retention
        #: Per profile: (the traits object it was computed for, registry epoch, reachable
        #: segments). An entry holds its traits object: the size bounds that memory.
        self._reach_cache: dict[str, tuple[dict[str, Any], int, set[str]]] = {}
        self._reach_cache_size = reach_cache_size

    # -- a long-lived engine --------------------------------------------------------------
    def bind(self, store: ProfileStore, due: DueTimes) -> None:
        """Work on the next transaction's view of the same profiles and timers: a host keeps
        one engine (and its caches) for as long as its registry, binding it per transaction."""
        self.store = store
        self._view = _evaluation_view(store)
        self.due = due

    def forget(self, profile_ids: Iterable[str]) -> None:
        """Drop what the caches hold for these profiles (a host whose transaction rolled back
        calls this: nothing derived from state that was never committed stays)."""
        cache = self._reach_cache
        for pid in profile_ids:
            cache.pop(pid, None)

    def cached_profiles(self) -> int:
        """Profiles the caches hold something for (for tests and metrics)."""
        return len(self._reach_cache)

    # -- input events ---------------------------------------------------------------------
    def is_duplicate(self, event: InputEvent) -> bool:
        """True when the profile already saw this event id (SPEC §3.3): it has no effect."""
        state = self.store.get(event.profile_id)
        return state is not None and state.has_seen(event.id)

    def apply(self, event: InputEvent, now: int) -> list[MembershipChange]:
        """Apply one valid, non-duplicate input event at clock `now`."""
        pid = event.profile_id
        state = self.store.get(pid)
        if state is None:
            state = ProfileState()
        if event.type == "profile.deleted":
            changes = self._delete_profile(pid, state, event.id, now)
        else:
            changes = self._update_profile(pid, state, event, now)
        self._save(pid, state)
        return changes

    def _update_profile(
        self, pid: str, state: ProfileState, event: InputEvent, now: int
    ) -> list[MembershipChange]:
        # Memberships equal the truth at `now` before the record (timers due by now have
        # fired), so a segment can change only if one of its leaves changes value: evaluate
        # the leaves the record can touch before and after it, then only their segments.
        registry = self.registry
        retention = self.retention
        created = not state.exists
        if event.type == "profile.updated":
            patch = event.traits or None
        else:
            patch = {"device": event.device} if event.device is not None else None
        trait_leaves: set[Leaf] = set()
        flipped: set[TraitLeaf] = set()
        holds_now: set[TraitLeaf] = set()  # of the flipped leaves' paths: true after
        known: dict[tuple[str, ...], frozenset[TraitLeaf]] = {}  # holds_now by path
        new_traits: dict[str, Any] | None = None
        trait_paths: list[tuple[str, ...]] = []
        guards_moved = False
        if patch:
            new_traits = deep_merge(state.traits, patch)
            trait_paths = registry.trait_paths(patch)
            if "birthdate" in patch and "age" not in patch:
                trait_paths.extend(registry.trait_paths(["age"]))
            for parts in trait_paths:
                before = trait_terminals(state.traits, parts, now)
                after = trait_terminals(new_traits, parts, now)
                if not _same(before, after):
                    held = registry.true_leaves(parts, before)
                    holds = registry.true_leaves(parts, after) if held is not None else None
                    if held is not None and holds is not None:
                        # Known before and after without evaluating: only the leaves that
                        # flip, plus the ones that need `now`, go on.
                        flipped |= held ^ holds
                        holds_now |= holds
                        known[parts] = holds
                        trait_leaves |= registry.span_leaves(parts)
                    else:
                        trait_leaves |= registry.trait_leaves(parts, before, after)
                    if parts in registry.guard_paths:
                        guards_moved = True
        # Evaluate only the leaves some segment could change through: a segment whose
        # guards the profile fails (with its new traits) and that it is not a member of is
        # false before and after. Most trait leaves of a new profile fall away here.
        if new_traits is None or not guards_moved:
            reach = self._reach(pid, state.traits, new_traits)
        else:
            reach = self._reach(pid, new_traits)
        members = state.members
        event_leaves: set[HistoryLeaf] = set()
        if event.type != "profile.updated":
            state.drop_expired(now - retention)
            if event.at > now - retention:
                # Unused leaves first out: their `where` is not worth testing.
                event_leaves = self._selecting(event.type, event.properties, used=(reach, members))
        counted: list[HistoryLeaf] = []
        trait_used = registry.used_leaves(trait_leaves, reach, members)
        event_used = registry.used_leaves(event_leaves, reach, members)
        if created:  # the empty profile: each leaf's value on it is a constant
            before_values = {leaf: registry.empty_value(leaf) for leaf in trait_used}
            before_values.update((leaf, registry.empty_value(leaf)) for leaf in event_used)
        else:
            old = EvaluationContext(state, now, retention)
            before_values = {leaf: leaf.evaluate(old) for leaf in trait_used}
            for event_leaf in event_used:
                # A count is taken once, after the event is added (`truths_around`).
                if not event_leaf.counted:
                    before_values[event_leaf] = event_leaf.evaluate(old)
                else:
                    counted.append(event_leaf)

        state.exists = True
        if new_traits is not None:
            if guards_moved and not created:
                # Event timers are kept only for leaves some segment could use (below): a
                # segment the profile now meets the guards of needs its timers over history.
                newly = registry.reachable(new_traits) - registry.reachable(state.traits)
                for sid in sorted(newly):
                    self._schedule_segment(state, registry.segments[sid], now)
            state.traits = new_traits
            for parts in trait_paths:
                # Idempotent, and needed even when the terminals look unchanged (a new
                # birthdate can keep today's age but move the next birthday).
                self._schedule_trait(state, parts, now, reach)
        ctx = EvaluationContext(state, now, retention)
        ctx.known = known
        candidates: set[str] = set()
        moved_by = registry.moved_by
        if event_leaves:
            stored = state.add_event(event.at, event.id, event.type, event.properties)
            # Timers only for leaves some segment could change through for this profile.
            if event_used:
                self._schedule_event(state, stored, event_used, now)
            for event_leaf in counted:
                was, truth = event_leaf.truths_around(stored, ctx)
                ctx.memo[event_leaf] = truth
                if truth != was:
                    moved_by(event_leaf, truth, reach, members, candidates)
        elif event.type != "profile.updated" and event.at > now - retention:
            state.add_event(event.at, event.id, event.type, event.properties)
        state.remember(event.id)

        # Memberships equal the truth before the record, so only the segments a changed
        # leaf can move towards the other side need evaluating (see `moved_by`).
        by_guards: AbstractSet[str] = reach
        if created and not state.has_history:
            # A profile made by its traits: each reachable segment's guards have just risen,
            # so they are all candidates at once, and only unguarded users are left to find.
            candidates.update(reach)
            by_guards = _NOTHING
        for flip in flipped:
            moved_by(flip, flip in holds_now, by_guards, members, candidates)
        for leaf, was in before_values.items():
            truth = ctx.value(leaf)
            if truth != was:
                moved_by(leaf, truth, by_guards, members, candidates)
        if created:
            candidates |= registry.vacuous
        if not state.has_history and candidates:
            # No history (a profile made by its traits): segments that need an event stay
            # false; only a member of one (its traits alone used to decide it) can change.
            bound = registry.history_bound
            candidates = {sid for sid in candidates if sid not in bound or sid in members}
        cause = {"kind": "event", "event_id": event.id}
        return self._evaluate(pid, state, candidates, now, lambda _sid: cause, ctx)

    def _delete_profile(
        self, pid: str, state: ProfileState, deletion_id: str, now: int
    ) -> list[MembershipChange]:
        changes = []
        if state.exists:
            cause = {"kind": "profile_deleted", "event_id": deletion_id}
            rank = self.registry.rank
            for sid in sorted(state.members, key=lambda s: (rank.get(s, 0), s)):
                version = self.registry.segments[sid].version
                changes.append(self._transition(pid, state, sid, version, False, now, cause))
        state.forget(deletion_id)
        return changes

    # -- timers -------------------------------------------------------------------------
    def fire_due(self, until: int) -> list[MembershipChange]:
        """Fire every timer due at or before `until`, in due-time order."""
        changes: list[MembershipChange] = []
        while (head := self.due.pop_until(until)) is not None:
            due, pid = head
            try:
                state = self.store.get(pid)
                if state is None:
                    continue
                changes.extend(self._fire(pid, state, due))
                self._save(pid, state)
            except Exception as exc:
                raise ProfileProcessingError(pid, "timer", exc) from exc
        return changes

    def _fire(self, pid: str, state: ProfileState, due: int) -> list[MembershipChange]:
        registry = self.registry
        # Per leaf, the ways its truth can move now (RISES, FALLS or both).
        moves: dict[Leaf, int] = {}
        for key in state.pop_due(due):
            if key[0] == _EVENT_TIMER:
                event = state.find_event(*parse_event_timer(key))
                if event is not None:
                    for timed in self._selecting(event.type, event.properties, event, due):
                        moves[timed] = moves.get(timed, 0) | timed.moves_at(event, due)
            elif key[0] == _TENURE_TIMER:
                # A membership has lasted long enough: its `for_at_least` leaves can rise.
                for tenure in registry.tenure_leaves(key[1:]):
                    moves[tenure] = moves.get(tenure, 0) | RISES
            else:
                parts = split_path(key[1:])
                for trait_leaf in registry.time_trait_leaves(parts):
                    moves[trait_leaf] = RISES | FALLS
                if parts == AGE_PATH or registry.recurring(parts):
                    self._schedule_trait(state, parts, due)
        state.drop_expired(due - self.retention)
        if not state.exists:
            return []
        # Memberships equal the truth just before `due`: a leaf that can only fall (say,
        # a count leaving its window) can move members out but no one in.
        reach = self._reach(pid, state.traits)
        members = state.members
        segments: set[str] = set()
        for leaf, way in moves.items():
            if way & RISES:
                registry.moved_by(leaf, True, reach, members, segments)
            if way & FALLS:
                registry.moved_by(leaf, False, reach, members, segments)
        cause = {"kind": "timer"}
        return self._evaluate(pid, state, segments, due, lambda _sid: cause)

    def _reach(
        self, pid: str, traits: dict[str, Any], same_as: dict[str, Any] | None = None
    ) -> set[str]:
        """The registry's `reachable` segments for a profile's traits, cached while neither
        the traits object nor the active segments change (do not mutate the result).

        `same_as`: traits that replace `traits` without changing any guard path.
        """
        epoch = self.registry.epoch
        cached = self._reach_cache.get(pid)
        if cached is not None and cached[0] is traits and cached[1] == epoch:
            reach = cached[2]
        else:
            reach = self.registry.reachable(traits)
        if len(self._reach_cache) >= self._reach_cache_size:
            self._reach_cache.clear()
        self._reach_cache[pid] = (same_as if same_as is not None else traits, epoch, reach)
        return reach

    def _selecting(
        self,
        event_type: str,
        properties: Mapping[str, Any],
        timed: StoredEvent | None = None,
        due: int = 0,
        used: tuple[AbstractSet[str], Collection[str]] | None = None,
    ) -> set[HistoryLeaf]:
        """Leaves whose time-independent `where` selects an event (and, for a timer on a
        stored event, whose view of it changes at `due`); with `used` (reach, members), only
        those some segment could change through (`used_leaves`)."""
        seen: dict[tuple[str, ...], list[Any]] = {}
        leaves: Iterable[HistoryLeaf] = self.registry.event_leaves(event_type, properties)
        if used is not None:
            leaves = self.registry.used_leaves(leaves, *used)
        if timed is not None:
            retention = self.retention
            leaves = {leaf for leaf in leaves if leaf.changes_at(timed, due, retention)}
        verdicts: dict[bytes, bool] = {}
        selected = set()
        for leaf in leaves:
            verdict = verdicts.get(leaf.static_key)
            if verdict is None:
                verdict = verdicts[leaf.static_key] = leaf.selects(event_type, properties, seen)
            if verdict:
                selected.add(leaf)
        return selected

    def _schedule_event(
        self,
        state: ProfileState,
        event: StoredEvent,
        leaves: Iterable[HistoryLeaf],
        now: int,
        housekeeping: bool = True,
    ) -> None:
        """Timers at the instants where the leaves' view of a stored event can change. With
        `housekeeping` false, not the retention exit: the caller knows no leaf given can
        move there (a plain windowed leaf, see `_window_start`); the event is then dropped
        by the next record or timer of the profile instead of at its own timer."""
        key = event_timer_key(event.type, event.at, event.order)
        at = event.at
        instants = {at + self.retention} if housekeeping else set()
        for leaf in leaves:
            if not isinstance(leaf, EventLeaf) or leaf.follow is not None:
                instants.update(leaf.change_instants(event, self.retention))
                continue
            # Inline of EventLeaf.change_instants for the usual leaf: a window, no time `where`.
            if leaf.span is not None:
                instants.add(at)
                instants.add(at + leaf.span)
            if leaf.time_where:
                instants.update(leaf.change_instants(event, self.retention))
        for due in instants:
            if due > now:
                state.schedule(due, key)

    def _schedule_trait(
        self,
        state: ProfileState,
        parts: tuple[str, ...],
        now: int,
        reach: AbstractSet[str] | None = None,
    ) -> None:
        """Timers for the time-dependent leaves on a trait path; with `reach`, only for the
        leaves some segment could change through for the profile (as for event timers)."""
        registry = self.registry
        time_leaves: Collection[TraitLeaf] = registry.time_trait_leaves(parts)
        if time_leaves and reach is not None:
            if not registry.time_path_used(parts, reach, state.members):
                return
            if parts != AGE_PATH:  # age leaves share one timer: the next birthday
                time_leaves = registry.used_leaves(time_leaves, reach, state.members)
        if not time_leaves:
            return
        key = _TRAIT_TIMER + ".".join(parts)
        if parts == AGE_PATH:
            # A derived age changes on birthdays only (its terminals are numbers: no leaf
            # on it has instants of its own).
            birthdate = state.traits.get("birthdate")
            if isinstance(birthdate, str):
                state.schedule(next_birthday(birthdate, now), key)
            return
        values = trait_terminals(state.traits, parts, now)
        instants: set[int] = set()
        for leaf in time_leaves:
            instants.update(leaf.change_instants(values, now))
        for due in instants:
            if due > now:
                state.schedule(due, key)

    def _schedule_segment(self, state: ProfileState, segment: CompiledSegment, now: int) -> None:
        """Timers a newly installed segment needs over a profile's existing state."""
        trait_paths: set[tuple[str, ...]] = set()
        for leaf in segment.leaves:
            if isinstance(leaf, HistoryLeaf):
                low = _window_start(leaf, now)
                for event_type in leaf.event_types:
                    if low is None:
                        events = state.history(event_type)
                    else:
                        events = state.history_after(event_type, low)
                    for event in events:
                        if low is not None and event.at <= low:
                            continue  # loaded before; outside the window (see _window_start)
                        if leaf.selects(event_type, event.properties, {}):
                            # A plain windowed leaf cannot move at the retention exit: no
                            # timer for it (half the timers such a backfill writes).
                            self._schedule_event(
                                state, event, (leaf,), now, housekeeping=low is None
                            )
            elif isinstance(leaf, SegmentLeaf) and leaf.span is not None:
                entered = state.members.get(leaf.segment_id)
                if entered is not None and entered + leaf.span > now:
                    state.schedule(entered + leaf.span, _TENURE_TIMER + leaf.segment_id)
            elif isinstance(leaf, TraitLeaf) and leaf.time_dependent:
                trait_paths.add(leaf.parts)
        for parts in trait_paths:
            self._schedule_trait(state, parts, now)

    # -- segment lifecycle -----------------------------------------------------------------
    def install_segment(
        self, definition: Mapping[str, Any], fingerprint: bytes, version: int | None = None
    ) -> str | None:
        """Make a validated definition active; returns the backfill's cause kind
        (`segment_created` / `segment_updated`), or None when nothing needs evaluating (a
        name-only change, or a `version` older than the one already applied)."""
        registry = self.registry
        sid: str = definition["id"]
        current = registry.segments.get(sid)
        if current is not None and current.fingerprint == fingerprint:
            if version is None or version >= current.version:
                registry.rename(definition)
            return None
        if version is not None and version <= registry.versions.get(sid, 0):
            return None  # a repeat or an out-of-date control record
        kind = "segment_created" if current is None else "segment_updated"
        if version is None:
            version = registry.versions.get(sid, 0) + 1
        registry.install(definition, version, fingerprint)
        return kind

    def remove_segment(self, sid: str, version: int | None = None) -> int | None:
        """Deactivate a segment; returns its version, or None when it was not active."""
        registry = self.registry
        if version is not None:
            registry.versions[sid] = max(registry.versions.get(sid, 0), version)
        if sid not in registry.segments:
            return None
        return registry.remove(sid).version

    def upsert_segment(
        self, definition: Mapping[str, Any], fingerprint: bytes, now: int
    ) -> list[MembershipChange]:
        """Create or edit a (validated) segment and backfill it over every profile."""
        kind = self.install_segment(definition, fingerprint)
        if kind is None:
            return []
        sid: str = definition["id"]
        changes: list[MembershipChange] = []
        for pid in list(self.store.profile_ids()):
            changes.extend(self.backfill_profile(pid, sid, kind, now))
        return changes

    def backfill_profile(self, pid: str, sid: str, kind: str, now: int) -> list[MembershipChange]:
        """Evaluate one profile for a segment's new version (and its dependents)."""
        state = self._view(pid)
        segment = self.registry.segments.get(sid)
        if state is None or not state.exists or segment is None:
            return []
        if segment.guards and sid not in state.members and not _meets(segment, state.traits):
            # False before and after: nothing to evaluate, no timers (as for records, a
            # trait change that meets the guards schedules the segment's timers), no write.
            return []
        self._schedule_segment(state, segment, now)
        changes = self._evaluate(pid, state, {sid}, now, _lifecycle_cause(sid, kind))
        self._save(pid, state)
        return changes

    def delete_segment(self, sid: str, now: int) -> list[MembershipChange]:
        """Delete a segment: every member leaves, dependents are re-evaluated."""
        version = self.remove_segment(sid)
        if version is None:
            return []
        changes: list[MembershipChange] = []
        for pid in list(self.store.profile_ids()):
            changes.extend(self.leave_deleted(pid, sid, version, now))
        return changes

    def leave_deleted(self, pid: str, sid: str, version: int, now: int) -> list[MembershipChange]:
        """One profile's side of a segment deletion (idempotent)."""
        state = self.store.get(pid)
        if state is None or sid not in state.members:
            return []
        changes = [
            self._transition(pid, state, sid, version, False, now, {"kind": "segment_deleted"})
        ]
        dependents = self.registry.dependents.get(sid, set())
        changes.extend(
            self._evaluate(
                pid, state, set(dependents), now, _lifecycle_cause(sid, "segment_deleted")
            )
        )
        self._save(pid, state)
        return changes

    # -- evaluation -----------------------------------------------------------------------------
    def _evaluate(
        self,
        pid: str,
        state: ProfileState,
        candidates: set[str],
        now: int,
        cause_of: CauseOf,
        ctx: EvaluationContext | None = None,
    ) -> list[MembershipChange]:
        """Re-evaluate candidate segments in reference order; cascade to dependents on change."""
        if not candidates:
            return []
        registry = self.registry
        rank = registry.rank
        segments = registry.segments
        dependents = registry.dependents
        if ctx is None:
            ctx = EvaluationContext(state, now, self.retention)
        members = state.members
        # Candidates in (rank, id) order, merged with a heap of dependents a change queues.
        order = sorted([(rank.get(sid, 0), sid) for sid in candidates])
        heap: list[tuple[int, str]] = []
        queued = candidates
        changes: list[MembershipChange] = []
        i = 0
        n = len(order)
        while i < n or heap:
            if heap and (i == n or heap[0] < order[i]):
                _, sid = heapq.heappop(heap)
            else:
                _, sid = order[i]
                i += 1
            segment = segments.get(sid)
            if segment is None:
                continue
            truth = bool(segment.run(ctx))
            if truth == (sid in members):
                continue
            changes.append(
                self._transition(pid, state, sid, segment.version, truth, now, cause_of(sid))
            )
            if truth:
                for tenure in registry.tenure_leaves(sid):
                    assert tenure.span is not None
                    state.schedule(now + tenure.span, _TENURE_TIMER + sid)
            for dep in dependents.get(sid, ()):
                if dep not in queued:
                    if queued is candidates:
                        queued = set(candidates)
                    queued.add(dep)
                    heapq.heappush(heap, (rank.get(dep, 0), dep))
        return changes

    @staticmethod
    def _transition(
        pid: str,
        state: ProfileState,
        sid: str,
        version: int,
        entered: bool,
        now: int,
        cause: dict[str, str],
    ) -> MembershipChange:
        seq = state.seqs.get(sid, 0) + 1
        state.seqs[sid] = seq
        if entered:
            state.members[sid] = now
        else:
            state.members.pop(sid, None)
        return MembershipChange(pid, sid, version, seq, entered, now, cause)

    def _save(self, pid: str, state: ProfileState) -> None:
        self.store.put(pid, state)
        self.due.set(pid, state.next_due)


def _meets(segment: CompiledSegment, traits: Mapping[str, Any]) -> bool:
    """A profile with these traits meets every guard of the segment (as `reachable` says)."""
    return all(
        not guard.keys.isdisjoint(index_keys(terminals(traits, guard.parts)))
        for guard in segment.guards
    )


def _evaluation_view(store: ProfileStore) -> Callable[[str], ProfileState | None]:
    """How a backfill reads a profile it applies no record to: the store's
    `get_for_evaluation` where it has one (it may leave the dedupe ring unread), else `get`."""
    view: Callable[[str], ProfileState | None] = getattr(store, "get_for_evaluation", store.get)
    return view


def _window_start(leaf: HistoryLeaf, now: int) -> int | None:
    """For a plain windowed event leaf (`within`, no time `where`, no `not_followed_by`), the
    start of its window at `now`: the only events whose timers can still change its value
    are after it, so a newly installed segment reads its history from there (a range read on
    the keyed layout) instead of all of it. An event at or before the start is out of the
    window for good; its one instant still ahead, the retention exit, cannot move such a
    leaf (a live event still gets that timer: housekeeping, not needed for its value; the
    events in the window get none for such a leaf either). None: another leaf, which reads
    the whole history."""
    if not isinstance(leaf, EventLeaf) or leaf.follow is not None or leaf.time_where:
        return None
    return now - leaf.span if leaf.span is not None else None


def _lifecycle_cause(root: str, kind: str) -> CauseOf:
    own = {"kind": kind}
    dependent = {"kind": "segment_updated", "segment_id": root}
    return lambda sid: own if sid == root else dependent
