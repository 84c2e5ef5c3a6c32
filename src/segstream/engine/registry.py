"""The active segments: compiled conditions, shared leaves, and the indexes that pick the
segments an event, a trait change or a timer can affect."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Collection, Iterable, Mapping
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field
from typing import Any, TypeVar

from segstream.errors import Problem, ReferenceCycle
from segstream.rules.compile import (
    NEGATIVE,
    OUTSIDE_BANDS,
    POSITIVE,
    Discriminator,
    EvaluationContext,
    HistoryLeaf,
    Leaf,
    SegmentLeaf,
    TraitLeaf,
    compile_condition,
    index_keys,
    latitude_band,
    leaf_key,
    make_leaf,
    truth_without_history,
)
from segstream.rules.operators import elements as _elements
from segstream.rules.operators import split_path, terminals
from segstream.rules.references import closing_cycle
from segstream.schemas.jsontext import dumps
from segstream.state.profile import ProfileState

__all__ = ["CompiledSegment", "SegmentRegistry"]


@dataclass(slots=True)
class CompiledSegment:
    """One active segment version, ready to evaluate."""

    id: str
    version: int
    definition: dict[str, Any]
    fingerprint: bytes
    run: Any  # Callable[[EvaluationContext], bool]
    leaves: list[Leaf]
    guards: list[Discriminator]
    refs: frozenset[str]
    vacuous: bool  # true for a profile with no traits, no history and no memberships


AnyLeaf = TypeVar("AnyLeaf", bound=Leaf)

_AFFIXES = frozenset({"prefix", "suffix", "infix"})

KeysOf = Callable[[tuple[str, ...]], set[tuple[str, Any]]]


@dataclass(slots=True)
class _GuardTrie:
    """Segments filed by their guards, one level per guard: a lookup descends only into the
    values the profile has, so a segment is reached only if the profile meets every guard."""

    here: set[str] = field(default_factory=set)
    below: dict[tuple[str, ...], dict[tuple[str, Any], _GuardTrie]] = field(default_factory=dict)

    def add(self, sid: str, guards: list[Discriminator]) -> None:
        if not guards:
            self.here.add(sid)
            return
        disc = guards[0]
        children = self.below.setdefault(disc.parts, {})
        for k in disc.keys:
            children.setdefault(k, _GuardTrie()).add(sid, guards[1:])

    def discard(self, sid: str) -> bool:
        """Remove a segment; True when this node is left empty."""
        self.here.discard(sid)
        for parts in list(self.below):
            children = self.below[parts]
            for k in list(children):
                if children[k].discard(sid):
                    del children[k]
            if not children:
                del self.below[parts]
        return not self.here and not self.below

    def collect(self, keys_of: KeysOf, into: set[str]) -> None:
        into |= self.here
        for parts, children in self.below.items():
            for k in keys_of(parts):
                child = children.get(k)
                if child is not None:
                    child.collect(keys_of, into)


@dataclass(slots=True)
class _LeafUsers:
    """The segments that read a leaf: all of them, those without guards (`open`), and by the
    way the leaf occurs in them — un-negated (`up`: its rise can make them true) or negated
    (`down`) — each with its segments without any guard (`*_open`) and, by segment, those
    whose only guard is membership of that segment (`*_ref`)."""

    all: set[str] = field(default_factory=set)
    open: set[str] = field(default_factory=set)
    up: set[str] = field(default_factory=set)
    up_open: set[str] = field(default_factory=set)
    up_ref: dict[str, set[str]] = field(default_factory=dict)
    down: set[str] = field(default_factory=set)
    down_open: set[str] = field(default_factory=set)
    down_ref: dict[str, set[str]] = field(default_factory=dict)

    def add(self, sid: str, guarded: bool, polarity: int, ref_guard: str | None) -> None:
        self.all.add(sid)
        if not guarded:
            self.open.add(sid)
        for way, users, unguarded, by_ref in (
            (POSITIVE, self.up, self.up_open, self.up_ref),
            (NEGATIVE, self.down, self.down_open, self.down_ref),
        ):
            if not polarity & way:
                continue
            users.add(sid)
            if not guarded:
                if ref_guard is None:
                    unguarded.add(sid)
                else:
                    by_ref.setdefault(ref_guard, set()).add(sid)

    def discard(self, sid: str) -> None:
        for users in (self.all, self.open, self.up, self.up_open, self.down, self.down_open):
            users.discard(sid)
        for by_ref in (self.up_ref, self.down_ref):
            for ref in list(by_ref):
                by_ref[ref].discard(sid)
                if not by_ref[ref]:
                    del by_ref[ref]


@dataclass(slots=True)
class _Bucketed:
    """Leaves filed by one path and discriminator kind, under each key they need."""

    by_key: dict[Any, set[Any]] = field(default_factory=dict)
    lengths: Counter[int] = field(default_factory=Counter)  # affix key lengths

    def lookup(self, kind: str, values: list[Any], found: set[Any]) -> None:
        by_key = self.by_key
        if kind == "eq":
            keys: set[Any] = index_keys(values)
        elif kind == "lat":
            keys = set()
            for v in _elements(values):
                band = latitude_band(v)
                if band == OUTSIDE_BANDS:
                    self._all(found)
                    return
                if band is not None:
                    keys.add(band)
        else:
            strings = [v.casefold() for v in _elements(values) if isinstance(v, str)]
            if kind == "infix":
                # Every substring of a key's length: exact, but bounded for long texts.
                if sum(len(t) for t in strings) * len(self.lengths) > _MAX_SUBSTRINGS:
                    self._all(found)
                    return
                keys = {
                    text[i : i + n]
                    for n in self.lengths
                    for text in strings
                    for i in range(len(text) - n + 1)
                }
            else:
                keys = set()
                for n in self.lengths:
                    for text in strings:
                        if len(text) >= n:
                            keys.add(text[:n] if kind == "prefix" else text[-n:])
        for k in keys:
            bucket = by_key.get(k)
            if bucket:
                found |= bucket

    def _all(self, found: set[Any]) -> None:
        for bucket in self.by_key.values():
            found |= bucket


#: Substrings an `infix` lookup may try before it returns every leaf of the bucket instead.
_MAX_SUBSTRINGS = 4096


@dataclass(slots=True)
class _Discriminated:
    """Leaves of one event type or trait path, filed by what they need of a value."""

    general: set[Any] = field(default_factory=set)
    filed: dict[tuple[tuple[str, ...], str], _Bucketed] = field(default_factory=dict)

    def add(self, leaf: Any, disc: Discriminator | None) -> None:
        if disc is None:
            self.general.add(leaf)
            return
        filed = self.filed.setdefault((disc.parts, disc.kind), _Bucketed())
        for k in disc.keys:
            filed.by_key.setdefault(k, set()).add(leaf)
            if disc.kind in _AFFIXES:
                filed.lengths[len(k)] += 1

    def remove(self, leaf: Any, disc: Discriminator | None) -> None:
        if disc is None:
            self.general.discard(leaf)
            return
        where = (disc.parts, disc.kind)
        filed = self.filed[where]
        for k in disc.keys:
            bucket = filed.by_key[k]
            bucket.discard(leaf)
            if not bucket:
                del filed.by_key[k]
            if disc.kind in _AFFIXES:
                filed.lengths[len(k)] -= 1
                if not filed.lengths[len(k)]:
                    del filed.lengths[len(k)]
        if not filed.by_key:
            del self.filed[where]

    def lookup(self, values_of: Callable[[tuple[str, ...]], list[Any]]) -> set[Any]:
        """The general leaves plus those whose key the values (by path) can meet."""
        found = set(self.general)
        for (parts, kind), filed in self.filed.items():
            filed.lookup(kind, values_of(parts), found)
        return found

    def __bool__(self) -> bool:
        return bool(self.general or self.filed)


class SegmentRegistry:
    """Active segment versions, their shared leaves and the leaf indexes."""

    def __init__(self, retention: int) -> None:
        self.retention = retention
        self.segments: dict[str, CompiledSegment] = {}
        self._definitions: dict[str, dict[str, Any]] = {}
        #: Last version ever assigned per id (kept after deletion: versions are never reused).
        self.versions: dict[str, int] = {}
        self.dependents: dict[str, set[str]] = {}
        self.rank: dict[str, int] = {}
        self.vacuous: set[str] = set()
        #: Segments no profile without activity history can be in (an event they need).
        self.history_bound: set[str] = set()
        self._leaves: dict[bytes, Leaf] = {}
        self._empty: dict[Leaf, bool] = {}
        self._empty_context = EvaluationContext(ProfileState(), 0, retention)
        self._users: dict[Leaf, _LeafUsers] = {}
        self._events: dict[str, _Discriminated] = {}
        self._traits: dict[tuple[str, ...], _Discriminated] = {}
        self._trait_time: dict[tuple[str, ...], set[TraitLeaf]] = {}
        #: Per segment id, the `for_at_least` leaves on its membership.
        self._tenures: dict[str, set[SegmentLeaf]] = {}
        #: Per trait path, its `within_last`/`more_than_ago` leaves (their truth needs `now`).
        self._trait_spans: dict[tuple[str, ...], set[TraitLeaf]] = {}
        #: Per trait path, the other leaves that hold, by the terminals' exact JSON.
        self._truths: dict[tuple[str, ...], dict[bytes, frozenset[TraitLeaf]]] = {}
        #: Paths whose terminals took too many distinct values to keep their truths.
        self._truthless: set[tuple[str, ...]] = set()
        self._truth_lookups: dict[tuple[str, ...], int] = {}
        self._trait_roots: dict[str, set[tuple[str, ...]]] = {}
        #: Per trait path: (epoch, users of its time-dependent leaves, any without guards).
        self._time_users: dict[tuple[str, ...], tuple[int, set[str], bool]] = {}
        #: Every guarded segment filed by its guards (see `reachable`).
        self._guarded = _GuardTrie()
        #: Changes whenever the set of active segments does (callers cache `reachable`).
        self.epoch = 0
        #: Trait paths some guard reads, with how many guards read each.
        self.guard_paths: Counter[tuple[str, ...]] = Counter()

    # -- definitions ----------------------------------------------------------------------
    def definitions(self) -> Mapping[str, dict[str, Any]]:
        """Current definitions by id (for validation of the next change); do not mutate."""
        return self._definitions

    def install(
        self, definition: Mapping[str, Any], version: int, fingerprint: bytes
    ) -> CompiledSegment:
        """Make `definition` the active version of its segment (replacing any older one).

        Raises ReferenceCycle, changing nothing, if it would close a reference cycle.
        """
        sid: str = definition["id"]
        cycle = closing_cycle(sid, definition["condition"], self._definitions)
        if cycle is not None:
            raise ReferenceCycle([Problem("condition", f"a reference cycle: {cycle}")])
        if sid in self.segments:
            self._unlink(self.segments[sid])
        interned: dict[int, Leaf] = {}  # by node identity: compiling asks more than once

        def intern(node: Mapping[str, Any]) -> Leaf:
            leaf = interned.get(id(node))
            if leaf is None:
                leaf = interned[id(node)] = self._intern(node)
            return leaf

        compiled = compile_condition(definition["condition"], intern)
        # File the segment under its most selective-looking guard: the trait path on which
        # segments ask for the most distinct values (a city rather than a gender).
        compiled.guards.sort(key=lambda g: -self._distinct_values(g.parts))
        leaves = list(dict.fromkeys(compiled.leaves))
        refs = frozenset(leaf.segment_id for leaf in leaves if isinstance(leaf, SegmentLeaf))
        segment = CompiledSegment(
            id=sid,
            version=version,
            definition=dict(definition),
            fingerprint=fingerprint,
            run=compiled.run,
            leaves=leaves,
            guards=compiled.guards,
            refs=refs,
            vacuous=compiled.run(EvaluationContext(self._empty_context.profile, 0, self.retention)),
        )
        # Without a trait guard, a required membership files the segment by that segment.
        ref_guard = compiled.ref_guards[0] if compiled.ref_guards else None
        self.segments[sid] = segment
        self._definitions[sid] = segment.definition
        self.versions[sid] = version
        for leaf in leaves:
            self._users.setdefault(leaf, _LeafUsers()).add(
                sid, bool(compiled.guards), compiled.polarity[leaf], ref_guard
            )
        if compiled.guards:
            self._guarded.add(sid, compiled.guards)
            self.guard_paths.update(g.parts for g in compiled.guards)
        for ref in refs:
            self.dependents.setdefault(ref, set()).add(sid)
        if segment.vacuous:
            self.vacuous.add(sid)
        else:
            self.vacuous.discard(sid)
        without_history = truth_without_history(
            definition["condition"], lambda node: self.empty_value(intern(node))
        )
        if without_history is False:
            self.history_bound.add(sid)
        else:
            self.history_bound.discard(sid)
        self._rerank(sid)
        self.epoch += 1
        return segment

    def _distinct_values(self, parts: tuple[str, ...]) -> int:
        index = self._traits.get(parts)
        filed = index.filed.get((parts, "eq")) if index is not None else None
        return len(filed.by_key) if filed is not None else 0

    def rename(self, definition: Mapping[str, Any]) -> None:
        """Take a new name/description for a segment whose condition did not change."""
        segment = self.segments[definition["id"]]
        segment.definition = self._definitions[segment.id] = dict(definition)

    def remove(self, sid: str) -> CompiledSegment:
        """Deactivate a segment; its version number stays reserved."""
        segment = self.segments.pop(sid)
        del self._definitions[sid]
        self._unlink(segment)
        self.vacuous.discard(sid)
        self.history_bound.discard(sid)
        self._rerank(sid)
        self.epoch += 1
        return segment

    def _unlink(self, segment: CompiledSegment) -> None:
        if segment.guards:
            self._guarded.discard(segment.id)
            self.guard_paths.subtract(g.parts for g in segment.guards)
            self.guard_paths = +self.guard_paths
        for leaf in segment.leaves:
            users = self._users[leaf]
            users.discard(segment.id)
            if not users.all:
                del self._users[leaf]
                self._forget_leaf(leaf)
        for ref in segment.refs:
            deps = self.dependents.get(ref)
            if deps is not None:
                deps.discard(segment.id)
                if not deps:
                    del self.dependents[ref]

    def _rerank(self, sid: str) -> None:
        # Rank: 0 for a segment without references, else 1 + the highest referenced rank;
        # evaluating in rank order sees every referenced membership already updated.
        pending = [sid]
        while pending:
            current = pending.pop()
            segment = self.segments.get(current)
            rank = 0
            if segment is not None:
                rank = 1 + max((self.rank.get(r, 0) for r in segment.refs), default=-1)
            if rank > len(self.segments):
                # Only a cycle ranks past the number of segments; callers validate against
                # the installed definitions first, so this is a defect, not a spin.
                raise ValueError(f"segment references form a cycle through '{current}'")
            if self.rank.get(current) != rank:
                self.rank[current] = rank
                pending.extend(self.dependents.get(current, ()))

    # -- leaves -----------------------------------------------------------------------------
    def _intern(self, node: Mapping[str, Any]) -> Leaf:
        key = leaf_key(node)
        leaf = self._leaves.get(key)
        if leaf is None:
            leaf = self._leaves[key] = make_leaf(key, node)
            self._index_leaf(leaf)
        return leaf

    def _index_leaf(self, leaf: Leaf) -> None:
        if isinstance(leaf, HistoryLeaf):
            for event_type, disc in leaf.discriminators():
                self._events.setdefault(event_type, _Discriminated()).add(leaf, disc)
        elif isinstance(leaf, SegmentLeaf):
            if leaf.span is not None:
                self._tenures.setdefault(leaf.segment_id, set()).add(leaf)
        elif isinstance(leaf, TraitLeaf):
            self._traits.setdefault(leaf.parts, _Discriminated()).add(leaf, leaf.discriminator)
            self._trait_roots.setdefault(leaf.parts[0], set()).add(leaf.parts)
            if leaf.time_dependent:
                self._trait_time.setdefault(leaf.parts, set()).add(leaf)
            if leaf.span is not None:
                self._trait_spans.setdefault(leaf.parts, set()).add(leaf)
            self._truths.pop(leaf.parts, None)
            self._truth_lookups.pop(leaf.parts, None)
            self._truthless.discard(leaf.parts)

    def _forget_leaf(self, leaf: Leaf) -> None:
        del self._leaves[leaf.key]
        self._empty.pop(leaf, None)
        if isinstance(leaf, HistoryLeaf):
            for event_type, disc in leaf.discriminators():
                index = self._events[event_type]
                index.remove(leaf, disc)
                if not index:
                    del self._events[event_type]
        elif isinstance(leaf, SegmentLeaf):
            tenures = self._tenures.get(leaf.segment_id)
            if tenures is not None:
                tenures.discard(leaf)
                if not tenures:
                    del self._tenures[leaf.segment_id]
        elif isinstance(leaf, TraitLeaf):
            index = self._traits[leaf.parts]
            index.remove(leaf, leaf.discriminator)
            if not index:
                del self._traits[leaf.parts]
                roots = self._trait_roots[leaf.parts[0]]
                roots.discard(leaf.parts)
                if not roots:
                    del self._trait_roots[leaf.parts[0]]
            for by_path in (self._trait_time, self._trait_spans):
                found = by_path.get(leaf.parts)
                if found is not None:
                    found.discard(leaf)
                    if not found:
                        del by_path[leaf.parts]
            self._truths.pop(leaf.parts, None)
            self._truth_lookups.pop(leaf.parts, None)
            self._truthless.discard(leaf.parts)

    # -- lookups ------------------------------------------------------------------------------
    def empty_value(self, leaf: Leaf) -> bool:
        """A leaf's truth for a profile with no traits and no history (time plays no part)."""
        value = self._empty.get(leaf)
        if value is None:
            value = self._empty[leaf] = leaf.evaluate(self._empty_context)
        return value

    def tenure_leaves(self, sid: str) -> set[SegmentLeaf]:
        """The `for_at_least` leaves on membership of a segment."""
        return self._tenures.get(sid, set())

    def recurring(self, parts: tuple[str, ...]) -> bool:
        """True when a leaf on a trait path has an anniversary operator (renewed timers)."""
        return any(leaf.recurring for leaf in self._trait_time.get(parts, ()))

    def event_leaves(self, event_type: str, properties: Mapping[str, Any]) -> set[HistoryLeaf]:
        """Leaves on `event_type` whose indexed `where` condition these properties can meet."""
        index = self._events.get(event_type)
        if index is None:
            return set()
        return index.lookup(lambda parts: terminals(properties, parts))

    def trait_paths(self, roots: Iterable[str] | None = None) -> list[tuple[str, ...]]:
        """Trait paths some leaf reads, optionally only those under the given top-level keys."""
        if roots is None:
            return list(self._traits)
        paths: list[tuple[str, ...]] = []
        for root in roots:
            paths.extend(self._trait_roots.get(root, ()))
        return paths

    def trait_leaves(
        self, parts: tuple[str, ...], old: list[Any], new: list[Any]
    ) -> set[TraitLeaf]:
        """Leaves on a trait path that a change of its terminals from `old` to `new` can flip."""
        index = self._traits.get(parts)
        if index is None:
            return set()
        both = old + new
        return index.lookup(lambda _parts: both)

    def true_leaves(self, parts: tuple[str, ...], values: list[Any]) -> frozenset[TraitLeaf] | None:
        """The leaves on a trait path, `within_last`/`more_than_ago` aside, that hold for these
        terminals; None for a path whose terminals take too many distinct values to cache.

        Such a leaf's truth depends on the terminals alone, so it is decided once per distinct
        terminals (exact JSON: 1, 1.0 and true differ) and kept until a leaf on the path is
        added or removed.
        """
        if parts in self._truthless:
            return None
        cache = self._truths.setdefault(parts, {})
        key = dumps(values)
        found = cache.get(key)
        lookups = self._truth_lookups[parts] = self._truth_lookups.get(parts, 0) + 1
        if found is None:
            # Too many values, or mostly new ones (coordinates, amounts): evaluating the
            # leaves that have users is cheaper than evaluating all of them for the cache.
            if len(cache) >= _TRUTH_VALUES or (lookups >= 1024 and len(cache) * 4 > lookups):
                self._truthless.add(parts)
                del self._truths[parts]
                return None
            index = self._traits.get(parts)
            candidates = index.lookup(lambda _parts: values) if index is not None else set()
            found = cache[key] = frozenset(
                leaf for leaf in candidates if leaf.span is None and leaf.pred(values, 0)
            )
        return found

    def span_leaves(self, parts: tuple[str, ...]) -> set[TraitLeaf]:
        """The `within_last`/`more_than_ago` leaves on a trait path."""
        return self._trait_spans.get(parts, set())

    def time_trait_leaves(self, parts: tuple[str, ...]) -> set[TraitLeaf]:
        """Leaves on a trait path whose truth can change with time alone."""
        return self._trait_time.get(parts, set())

    def time_path_used(
        self, parts: tuple[str, ...], reach: AbstractSet[str], members: Collection[str]
    ) -> bool:
        """True when some time-dependent leaf on a trait path has a segment in `users_for`
        (one check of their users together: `age` has a leaf per age bound)."""
        cached = self._time_users.get(parts)
        if cached is None or cached[0] != self.epoch:
            users: set[str] = set()
            has_open = False
            for leaf in self._trait_time.get(parts, ()):
                leaf_users = self._users.get(leaf)
                if leaf_users is not None:
                    users |= leaf_users.all
                    has_open = has_open or bool(leaf_users.open)
            cached = self._time_users[parts] = (self.epoch, users, has_open)
        _, users, has_open = cached
        return has_open or not users.isdisjoint(reach) or not users.isdisjoint(members)

    def reachable(self, traits: Mapping[str, Any]) -> set[str]:
        """Guarded segments whose every guard a profile with these traits can meet."""
        keys_at: dict[tuple[str, ...], set[tuple[str, Any]]] = {}

        def keys_of(parts: tuple[str, ...]) -> set[tuple[str, Any]]:
            keys = keys_at.get(parts)
            if keys is None:
                keys = keys_at[parts] = index_keys(terminals(traits, parts))
            return keys

        reach: set[str] = set()
        self._guarded.collect(keys_of, reach)
        return reach

    def users_for(
        self,
        leaves: Iterable[Leaf],
        reach: AbstractSet[str],
        members: Collection[str] = (),
    ) -> dict[Leaf, set[str]]:
        """Per leaf, the active segments reading it that can change for a profile.

        `reach` is the profile's `reachable` segments and `members` its memberships: a
        guarded segment outside both is false before and after (the profile fails a guard
        and is not a member). Leaves left with no segment are left out.
        """
        found: dict[Leaf, set[str]] = {}
        users_of = self._users
        for leaf in leaves:
            users = users_of.get(leaf)
            if users is None:
                continue
            sids = users.all & reach
            if users.open:
                sids |= users.open
            if members:
                sids |= users.all.intersection(members)
            if sids:
                found[leaf] = sids
        return found

    def used_leaves(
        self, leaves: Iterable[AnyLeaf], reach: AbstractSet[str], members: Collection[str]
    ) -> list[AnyLeaf]:
        """The leaves that have a segment in `users_for` (without collecting them)."""
        used = []
        users_of = self._users
        for leaf in leaves:
            users = users_of.get(leaf)
            if users is not None and (
                users.open
                or not users.all.isdisjoint(reach)
                or (members and not users.all.isdisjoint(members))
            ):
                used.append(leaf)
        return used

    def moved_by(
        self,
        leaf: Leaf,
        rose: bool,
        reach: AbstractSet[str],
        members: Collection[str],
        into: set[str],
    ) -> None:
        """Add the segments a leaf's change (a rise when `rose`) can move for a profile whose
        memberships equal the truth before the change: non-members it can make true, and
        members it can make false. Any other segment of the leaf keeps its truth, since a
        condition is monotone in each leaf in the direction of its polarity."""
        users = self._users.get(leaf)
        if users is None:
            return
        if rose:
            enter, enter_open, enter_ref, leave = users.up, users.up_open, users.up_ref, users.down
        else:
            enter, enter_open, enter_ref = users.down, users.down_open, users.down_ref
            leave = users.up
        if enter:
            into |= enter & reach
            into |= enter_open
            if enter_ref and members:
                # A segment that requires membership of another can enter only for its
                # members (one that enters in this pass queues its dependents).
                for member in members:
                    found = enter_ref.get(member)
                    if found:
                        into |= found
        if leave and members:
            into |= leave.intersection(members)

    def segments_using(
        self, leaves: Iterable[Leaf], reach: AbstractSet[str], members: Collection[str] = ()
    ) -> set[str]:
        """Ids of the active segments that read any of these leaves and can change for a
        profile with this `reach` and these `members` (see `users_for`)."""
        found: set[str] = set()
        for sids in self.users_for(leaves, reach, members).values():
            found |= sids
        return found


#: Distinct terminals per trait path whose true leaves `true_leaves` keeps (then it stops).
_TRUTH_VALUES = 4096

AGE_PATH = split_path("age")
