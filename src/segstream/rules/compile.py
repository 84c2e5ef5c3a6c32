"""Compile validated conditions into leaves and nested closures (never eval of user text).

A condition tree becomes a closure over an `EvaluationContext`; its leaves — trait, event and
segment-membership conditions — are objects shared by every segment that uses the same leaf
(the caller interns them by `leaf_key`), and each leaf is evaluated at most once per pass.
"""

from __future__ import annotations

import math
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from segstream.rules.operators import (
    ANNIVERSARY_OPERATORS,
    EARTH_RADIUS_KM,
    TIME_OPERATORS,
    Predicate,
    anniversary_boundaries,
    compare_number,
    compile_predicate,
    elements,
    instant_of,
    split_path,
    terminals,
)
from segstream.schemas.jsontext import dumps
from segstream.state.profile import ProfileState, StoredEvent
from segstream.timefmt import (
    MAX_INSTANT,
    date_start,
    parse_date,
    parse_duration,
    parse_instant,
    utc_date,
)

__all__ = [
    "FALLS",
    "NEGATIVE",
    "OUTSIDE_BANDS",
    "POSITIVE",
    "RISES",
    "CompiledCondition",
    "Discriminator",
    "EvaluationContext",
    "EventLeaf",
    "HistoryLeaf",
    "Leaf",
    "SegmentLeaf",
    "SequenceLeaf",
    "TraitLeaf",
    "compile_condition",
    "derived_age",
    "index_key",
    "index_keys",
    "latitude_band",
    "leaf_key",
    "make_leaf",
    "next_birthday",
    "trait_terminals",
    "truth_without_history",
]

Node = Callable[["EvaluationContext"], bool]
_AGE = ("age",)


def leaf_key(node: Mapping[str, Any]) -> bytes:
    """The identity of a leaf condition: equal keys mean the same leaf."""
    return dumps(node, sort_keys=True)


def index_key(value: Any) -> tuple[str, Any] | None:
    """A hashable key under which an `eq`/`in` leaf is indexed (case folded; superset-safe)."""
    if isinstance(value, str):
        return ("s", value.casefold())
    if isinstance(value, bool):
        return ("b", value)
    if isinstance(value, int | float):
        return ("n", value)
    return None


def index_keys(values: list[Any]) -> set[tuple[str, Any]]:
    """Index keys of every element of some terminals."""
    keys = set()
    for v in elements(values):
        k = index_key(v)
        if k is not None:
            keys.add(k)
    return keys


def derived_age(birthdate: str, now: int) -> int:
    """Whole years between a birth date and the UTC date of `now` (29 Feb -> 1 Mar)."""
    born = date.fromisoformat(birthdate)
    today = utc_date(now)
    return today.year - born.year - ((today.month, today.day) < (born.month, born.day))


def next_birthday(birthdate: str, now: int) -> int:
    """The first 00:00 UTC instant after `now` at which the derived age changes."""
    born = date.fromisoformat(birthdate)
    year = utc_date(now).year
    while True:
        try:
            day = date(year, born.month, born.day)
        except ValueError:  # 29 February in a common year: a year older on 1 March
            day = date(year, 3, 1)
        instant = date_start(day)
        if instant > now:
            return instant
        year += 1


def _birthdate_of(traits: Mapping[str, Any]) -> str | None:
    value = traits.get("birthdate")
    if isinstance(value, str):
        try:
            parse_date(value)
        except ValueError:
            return None
        return value
    return None


class EvaluationContext:
    """One evaluation pass over one profile at one instant; memoises leaf results."""

    __slots__ = ("_traits", "known", "memo", "now", "profile", "retention")

    def __init__(self, profile: ProfileState, now: int, retention: int) -> None:
        self.profile = profile
        self.now = now
        self.retention = retention
        self.memo: dict[Leaf, bool] = {}
        self._traits: dict[tuple[str, ...], list[Any]] = {}
        #: Per trait path, when the caller knows them: the leaves without a `within_last` /
        #: `more_than_ago` operand that hold (all others on the path are false).
        self.known: dict[tuple[str, ...], frozenset[TraitLeaf]] = {}

    def value(self, leaf: Leaf) -> bool:
        """A leaf's truth in this pass (memoised)."""
        memo = self.memo
        found = memo.get(leaf)
        if found is None:
            found = memo[leaf] = leaf.evaluate(self)
        return found

    def trait_terminals(self, parts: tuple[str, ...]) -> list[Any]:
        """The terminals of a trait path, with `age` derived from `birthdate` when set."""
        found = self._traits.get(parts)
        if found is None:
            found = trait_terminals(self.profile.traits, parts, self.now)
            self._traits[parts] = found
        return found


def trait_terminals(traits: Mapping[str, Any], parts: tuple[str, ...], now: int) -> list[Any]:
    """Terminals of a trait path at `now` (SPEC §3.1: `age` derives from `birthdate`)."""
    if parts == _AGE:
        birthdate = _birthdate_of(traits)
        if birthdate is not None:
            return [derived_age(birthdate, now)]
    return terminals(traits, parts)


class Leaf:
    """Base of the three leaf kinds; identity is by object (interned by `leaf_key`)."""

    __slots__ = ("key",)

    def __init__(self, key: bytes) -> None:
        self.key = key

    def evaluate(self, ctx: EvaluationContext) -> bool:
        """The leaf's truth for the context's profile at the context's instant."""
        raise NotImplementedError


class TraitLeaf(Leaf):
    """`{"trait": PATH, "op": OP, "value": V}`."""

    __slots__ = ("discriminator", "op", "parts", "path", "pred", "span")

    def __init__(self, key: bytes, node: Mapping[str, Any]) -> None:
        super().__init__(key)
        self.path: str = node["trait"]
        self.parts = split_path(self.path)
        self.op: str = node["op"]
        value = node.get("value")
        self.pred: Predicate = compile_predicate(self.op, value, bool(node.get("ignore_case")))
        self.span: int | None = parse_duration(str(value)) if self.op in TIME_OPERATORS else None
        self.discriminator = _discriminator(self.parts, self.op, value)

    @property
    def time_dependent(self) -> bool:
        """True when the truth can change with time alone."""
        return self.span is not None or self.parts == _AGE

    def evaluate(self, ctx: EvaluationContext) -> bool:
        if self.span is None:
            known = ctx.known.get(self.parts)
            if known is not None:
                return self in known
        return self.pred(ctx.trait_terminals(self.parts), ctx.now)

    @property
    def recurring(self) -> bool:
        """True for an anniversary operator: its instants are found a year or so ahead at a
        time (`change_instants` from `now`), so its timer is renewed when it fires."""
        return self.op in ANNIVERSARY_OPERATORS

    def change_instants(self, values: list[Any], now: int = 0) -> Iterator[int]:
        """Instants where a time operator's leaf can flip for these values (anniversaries:
        the day boundaries of the anniversaries around `now`)."""
        if self.span is None:
            return
        for v in elements(values):
            at = instant_of(v)
            if at is not None:
                if self.recurring:
                    year = utc_date(now).year
                    yield from anniversary_boundaries(self.op, self.span, at, year - 1, year + 2)
                else:
                    yield from value_instants(self.op, self.span, at)


def value_instants(op: str, span: int, at: int) -> tuple[int, ...]:
    """Where a non-recurring time operator over the value instant `at` can change (SPEC §5:
    `within_last`/`more_than_ago` at v and v + D; `within_next` at v - D and v)."""
    if op == "within_next":
        return (at - span, at)
    return (at, at + span)


@dataclass(frozen=True, slots=True)
class Discriminator:
    """What a leaf needs of one path's value, as index keys: an `eq`/`in` value (`eq`), the
    case-folded operand of `starts_with` (`prefix`), `ends_with` (`suffix`) or `contains`
    (`infix`), or the whole-degree latitude bands a `near` circle touches (`lat`)."""

    parts: tuple[str, ...]
    kind: str
    keys: frozenset[Any]

    @property
    def selectivity(self) -> tuple[int, int]:
        """Sort key, most selective first: exact values, then bands, then longer affixes."""
        if self.kind == "eq":
            return (0, 0)
        if self.kind == "lat":
            return (1, len(self.keys))
        return (2, -min(len(k) for k in self.keys))


_AFFIX_KINDS = {"starts_with": "prefix", "ends_with": "suffix", "contains": "infix"}
#: Degrees of latitude per km along a meridian (haversine, R = 6371.0 km).
_DEGREES_PER_KM = 180 / (math.pi * EARTH_RADIUS_KM)
#: A `near` circle spanning more bands than this is not worth indexing.
_MAX_BANDS = 24


def _discriminator(parts: tuple[str, ...], op: str, value: Any) -> Discriminator | None:
    if op in ("eq", "in"):
        keys = [index_key(v) for v in (value if op == "in" else [value])]
        if all(k is not None for k in keys):
            return Discriminator(parts, "eq", frozenset(keys))
        return None
    if op in _AFFIX_KINDS and isinstance(value, str) and value:
        return Discriminator(parts, _AFFIX_KINDS[op], frozenset([value.casefold()]))
    if op == "near":
        return _bands_discriminator(parts, value)
    return None


def _bands_discriminator(
    parts: tuple[str, ...], operand: Mapping[str, Any]
) -> Discriminator | None:
    # A point within `km` of the centre has |lat - lat0| <= km / R (in radians): the
    # haversine distance is at least R * |dlat| for latitudes in [-90, 90]. The margin
    # (about 1 km) absorbs rounding.
    lat0 = operand["lat"]
    if not -90 <= lat0 <= 90:
        return None
    reach = operand["km"] * _DEGREES_PER_KM + 0.01
    low = math.floor(max(-90.0, lat0 - reach))
    high = math.floor(min(90.0, lat0 + reach))
    if high - low + 1 > _MAX_BANDS:
        return None
    return Discriminator(parts, "lat", frozenset(range(low, high + 1)))


def latitude_band(value: Any) -> int | None:
    """The band key of a `lat`-indexed value: whole degrees of a numeric `lat` in [-90, 90];
    None for a value no `near` can hold for; -1000 for one no band covers (check them all)."""
    if not isinstance(value, dict):
        return None
    lat = value.get("lat")
    if not isinstance(lat, int | float) or isinstance(lat, bool):
        return None
    if -90 <= lat <= 90:
        return math.floor(lat)
    return OUTSIDE_BANDS


OUTSIDE_BANDS = -1000


@dataclass(slots=True)
class _Where:
    parts: tuple[str, ...]
    pred: Predicate
    span: int | None
    discriminator: Discriminator | None
    op: str = ""

    def instants(self, event: StoredEvent, retention: int) -> Iterator[int]:
        """Where this time condition's view of an event can change while it is stored (an
        anniversary: every boundary until the event leaves the retention)."""
        assert self.span is not None
        for v in elements(terminals(event.properties, self.parts)):
            at = instant_of(v)
            if at is None:
                continue
            if self.op in ANNIVERSARY_OPERATORS:
                first = utc_date(event.at).year - 1
                last = utc_date(min(event.at + retention, MAX_INSTANT)).year + 1
                yield from anniversary_boundaries(self.op, self.span, at, first, last)
            else:
                yield from value_instants(self.op, self.span, at)


def compile_where(items: Iterable[Mapping[str, Any]]) -> list[_Where]:
    """The property conditions of a `where`, compiled."""
    found = []
    for item in items:
        op = item["op"]
        value = item.get("value")
        parts = split_path(item["property"])
        found.append(
            _Where(
                parts,
                compile_predicate(op, value, bool(item.get("ignore_case"))),
                parse_duration(str(value)) if op in TIME_OPERATORS else None,
                _discriminator(parts, op, value),
                op,
            )
        )
    return found


def _holds(where: list[_Where], event: StoredEvent, now: int) -> bool:
    props = event.properties
    for w in where:  # noqa: SIM110 - a loop: no generator on the hot path
        if not w.pred(terminals(props, w.parts), now):
            return False
    return True


def _static_key(event_type: str, items: Iterable[Mapping[str, Any]]) -> bytes:
    """Equal for `where`s whose time-independent conditions are the same set."""
    static_items = sorted(
        leaf_key(item).decode() for item in items if item["op"] not in TIME_OPERATORS
    )
    return leaf_key({"event": event_type, "where": static_items})


def _most_selective(where: list[_Where]) -> Discriminator | None:
    # File under the most selective condition: fewer leaves share a bucket.
    found = sorted(
        (w.discriminator for w in where if w.discriminator is not None),
        key=lambda d: d.selectivity,
    )
    return found[0] if found else None


class HistoryLeaf(Leaf):
    """A leaf read from activity history and reached through event types: an event
    condition (with or without `not_followed_by`) or a sequence."""

    __slots__ = ()

    #: The leaf's truth before and after one more event is decided by `truths_around`.
    counted: bool = False

    def truths_around(self, added: StoredEvent, ctx: EvaluationContext) -> tuple[bool, bool]:
        """The leaf's truth without and with `added`, the event just put in the history."""
        raise NotImplementedError

    @property
    def event_types(self) -> tuple[str, ...]:
        """The event types whose events can change this leaf."""
        raise NotImplementedError

    def discriminators(self) -> list[tuple[str, Discriminator | None]]:
        """Where the registry files the leaf: (event type, what it needs of properties)."""
        raise NotImplementedError

    @property
    def static_key(self) -> bytes:
        """Leaves with equal keys select the same events of a type statically."""
        raise NotImplementedError

    @property
    def time_dependent(self) -> bool:
        """True when the truth can change with time alone (besides retention)."""
        raise NotImplementedError

    def selects(
        self, event_type: str, properties: Mapping[str, Any], seen: dict[tuple[str, ...], list[Any]]
    ) -> bool:
        """True when an event of this type and properties can count for the leaf (its
        time-independent `where` holds); `seen` caches terminals per path for one event."""
        raise NotImplementedError

    def change_instants(self, event: StoredEvent, retention: int) -> Iterator[int]:
        """Instants where this leaf's view of `event` can change (a superset is fine)."""
        raise NotImplementedError

    def changes_at(self, event: StoredEvent, due: int, retention: int) -> bool:
        """True when `due` is one of `change_instants(event)`."""
        return due in set(self.change_instants(event, retention))

    def moves_at(self, event: StoredEvent, due: int) -> int:
        """Which way the leaf can move at `due`, a change instant of `event`."""
        return RISES | FALLS


@dataclass(slots=True)
class _Measure:
    kind: str  # count | sum | avg | min | max
    parts: tuple[str, ...] = ()
    compare: Callable[[Any], bool] = field(default=lambda _x: False)
    op: str = "gte"
    #: For a count: from this many events on, the comparison's answer no longer changes
    #: (every operand bound is below it), so a scan can stop there.
    cap: float = math.inf


@dataclass(slots=True)
class _Follow:
    """`not_followed_by`: events of a type (and `where`) that cancel an earlier event when
    they come within `span` after it."""

    event_type: str
    where: list[_Where]
    static_where: list[_Where]
    time_where: list[_Where]
    span: int
    discriminator: Discriminator | None
    static_key: bytes


class EventLeaf(HistoryLeaf):
    """`{"event": TYPE, "where": [...], "within": WINDOW, <measure>}`, or with
    `"not_followed_by": {...}` in place of a measure (SPEC §4.4)."""

    __slots__ = (
        "_static_key",
        "after",
        "before",
        "counted",
        "discriminator",
        "event_type",
        "follow",
        "measure",
        "span",
        "static_where",
        "time_where",
        "where",
    )

    def __init__(self, key: bytes, node: Mapping[str, Any]) -> None:
        super().__init__(key)
        self.event_type: str = node["event"]
        self.where: list[_Where] = compile_where(node.get("where") or ())
        self.static_where = [w for w in self.where if w.span is None]
        #: Equal for leaves whose time-independent `where` is the same set of conditions:
        #: whether an event meets it is decided once per event for all of them.
        self._static_key: bytes = _static_key(self.event_type, node.get("where") or ())
        self.time_where = [w for w in self.where if w.span is not None]
        self.discriminator: Discriminator | None = _most_selective(self.where)
        self.follow: _Follow | None = None
        follow = node.get("not_followed_by")
        if follow is not None:
            where = compile_where(follow.get("where") or ())
            self.follow = _Follow(
                follow["event"],
                where,
                [w for w in where if w.span is None],
                [w for w in where if w.span is not None],
                parse_duration(follow["within"]),
                _most_selective(where),
                _static_key(follow["event"], follow.get("where") or ()),
            )
            # Its own key: the static verdict depends on which side an event is on.
            self._static_key = key
        within = node.get("within")
        self.span: int | None = None
        self.after: int | None = None
        self.before: int | None = None
        if isinstance(within, str):
            self.span = parse_duration(within)
        elif isinstance(within, Mapping):
            if within.get("after") is not None:
                self.after = parse_instant(within["after"])
            if within.get("before") is not None:
                self.before = parse_instant(within["before"])
        self.measure = _measure_of(node)
        # Decided around a new event in one go (`truths_around`): counts and "not followed".
        self.counted = self.follow is not None or self.measure.kind == "count"

    @property
    def static_key(self) -> bytes:
        return self._static_key

    @property
    def event_types(self) -> tuple[str, ...]:
        if self.follow is None or self.follow.event_type == self.event_type:
            return (self.event_type,)
        return (self.event_type, self.follow.event_type)

    def discriminators(self) -> list[tuple[str, Discriminator | None]]:
        found = [(self.event_type, self.discriminator)]
        if self.follow is not None:
            found.append((self.follow.event_type, self.follow.discriminator))
        return _one_per_type(found)

    @property
    def time_dependent(self) -> bool:
        """True when the truth can change with time alone (besides retention)."""
        return self.span is not None or bool(self.time_where) or self.follow is not None

    def selects(
        self, event_type: str, properties: Mapping[str, Any], seen: dict[tuple[str, ...], list[Any]]
    ) -> bool:
        follow = self.follow
        if event_type == self.event_type and self.selects_statically(properties, seen):
            return True
        if follow is None or event_type != follow.event_type:
            return False
        return _statically(follow.static_where, properties, seen)

    def selects_statically(
        self, properties: Mapping[str, Any], seen: dict[tuple[str, ...], list[Any]]
    ) -> bool:
        """True when the time-independent `where` conditions hold for these properties.

        `seen` caches the terminals of each property path for one event across leaves.
        """
        return _statically(self.static_where, properties, seen)

    def changes_at(self, event: StoredEvent, due: int, retention: int) -> bool:
        """True when `due` is one of `change_instants(event)` (cheap for the usual cases)."""
        at = event.at
        if due == at + retention:
            return True
        if self.follow is not None:
            return due in set(self.change_instants(event, retention))
        if self.span is not None and (due == at or due == at + self.span):
            return True
        return bool(self.time_where) and due in set(self.change_instants(event, retention))

    def change_instants(self, event: StoredEvent, retention: int) -> Iterator[int]:
        """Instants where this leaf's view of `event` can change (a superset is fine): the
        window and retention exits, the time `where` conditions and, for `not_followed_by`,
        `at + D` of a first event and the `where` instants of a following one."""
        yield event.at + retention
        follow = self.follow
        if event.type == self.event_type:
            if self.span is not None:
                yield event.at
                yield event.at + self.span
            for w in self.time_where:
                yield from w.instants(event, retention)
            if follow is not None:
                yield event.at + follow.span
        if follow is not None and event.type == follow.event_type:
            for w in follow.time_where:
                yield from w.instants(event, retention)

    def moves_at(self, event: StoredEvent, due: int) -> int:
        """Which way the leaf can move at `due`, a change instant of `event`: RISES, FALLS
        or both. An event entering or leaving the window of a count with an order
        comparison moves the count one way only; anything else may go either way."""
        if self.time_where or self.follow is not None or self.measure.kind != "count":
            return RISES | FALLS
        grows = due == event.at  # otherwise the event leaves the window or the retention
        op = self.measure.op
        if op in ("gt", "gte"):
            return RISES if grows else FALLS
        if op in ("lt", "lte"):
            return FALLS if grows else RISES
        return RISES | FALLS

    def _selected(self, ctx: EvaluationContext, since: int | None = None) -> Iterator[StoredEvent]:
        """The events selected now in event order (with `since`: none before that `at`)."""
        now = ctx.now
        low = now - ctx.retention  # exclusive
        high: int | None = None
        if self.span is not None:
            low = max(low, now - self.span)
            high = now
        if self.after is not None and self.after - 1 > low:
            low = self.after - 1
        before = self.before
        if since is not None and since - 1 > low:
            low = since - 1
        # Only the window is read (from its start) when the history is not in memory.
        history = ctx.profile.history_after(self.event_type, low)
        start = bisect_right(history, low, key=_at)
        where = self.where
        for i in range(start, len(history)):
            e = history[i]
            at = e.at
            if (high is not None and at > high) or (before is not None and at >= before):
                break
            if where and not _holds(where, e, now):
                continue
            yield e

    def counts(self, event: StoredEvent, ctx: EvaluationContext) -> bool:
        """True when `event` (in the profile's history) is one this leaf selects now."""
        now = ctx.now
        at = event.at
        low = now - ctx.retention  # exclusive
        if self.span is not None:
            low = max(low, now - self.span)
            if at > now:
                return False
        if self.after is not None and self.after - 1 > low:
            low = self.after - 1
        if at <= low or (self.before is not None and at >= self.before):
            return False
        props = event.properties
        return all(w.pred(terminals(props, w.parts), now) for w in self.where)

    def first_after(
        self, ctx: EvaluationContext, at: int, order: int, skip: StoredEvent | None = None
    ) -> StoredEvent | None:
        """The first event this leaf selects now that comes after (at, order) in event order
        (`skip`: as if that stored event were not there)."""
        for e in self._selected(ctx, at):
            if (e.at > at or e.order > order) and e is not skip:
                return e
        return None

    def _followed(
        self, ctx: EvaluationContext, first: StoredEvent, skip: StoredEvent | None
    ) -> bool:
        """True when a stored event of `not_followed_by` comes after `first` within D."""
        follow = self.follow
        assert follow is not None
        history = ctx.profile.history(follow.event_type)
        if not history:
            return False
        at, order = first.at, first.order
        end = at + follow.span
        now = ctx.now
        for i in range(bisect_left(history, at, key=_at), len(history)):
            b = history[i]
            if b.at > end:
                break
            if (b.at > at or b.order > order) and b is not skip and _holds(follow.where, b, now):
                return True
        return False

    def _not_followed(self, ctx: EvaluationContext, skip: StoredEvent | None = None) -> bool:
        """Some selected `a` whose D has passed with no `b` after it (SPEC §4.4)."""
        follow = self.follow
        assert follow is not None
        latest = ctx.now - follow.span
        for a in self._selected(ctx):
            if a.at > latest:
                break
            if a is not skip and not self._followed(ctx, a, skip):
                return True
        return False

    def truths_around(self, added: StoredEvent, ctx: EvaluationContext) -> tuple[bool, bool]:
        """The leaf's truth without and with `added`, the event just put in the history.

        A count: one scan, since the event adds one to the count or nothing. (Taking an event
        for counted when it is not could only report a change that is not one: an extra
        evaluation, never a missed one.) `not_followed_by`: an event only of the following
        type can only cancel first events, so without a true `before` nothing changes."""
        if self.follow is not None:
            was = self._not_followed(ctx, added)
            if not was and added.type != self.event_type:
                return False, False
            return was, self._not_followed(ctx)
        m = self.measure
        limit = m.cap + 1  # a count stopped here stays past the cap without the event
        n = 0
        if n < limit:
            for _ in self._selected(ctx):
                n += 1
                if n >= limit:
                    break
        before = n - 1 if n and self.counts(added, ctx) else n
        return m.compare(before), m.compare(n)

    def evaluate(self, ctx: EvaluationContext) -> bool:
        if self.follow is not None:
            return self._not_followed(ctx)
        m = self.measure
        if m.kind == "count":
            n = 0
            cap = m.cap
            if n < cap:
                for _ in self._selected(ctx):
                    n += 1
                    if n >= cap:
                        break
            return m.compare(n)
        values = []
        parts = m.parts
        for e in self._selected(ctx):
            for v in terminals(e.properties, parts):
                kind = type(v)
                if kind is int or kind is float:
                    values.append(v)
                else:  # arrays at the end of the path, or no number at all: the slow path
                    values.extend(
                        x
                        for x in elements([v])
                        if isinstance(x, int | float) and not isinstance(x, bool)
                    )
        if m.kind == "sum":
            total: float = 0
            for v in values:
                total += v
            return m.compare(total)
        if not values:
            return False
        if m.kind == "avg":
            total = 0
            for v in values:
                total += v
            return m.compare(total / len(values))
        return m.compare(min(values) if m.kind == "min" else max(values))


def _at(event: StoredEvent) -> int:
    return event.at


def _statically(
    where: list[_Where], properties: Mapping[str, Any], seen: dict[tuple[str, ...], list[Any]]
) -> bool:
    for w in where:
        values = seen.get(w.parts)
        if values is None:
            values = seen[w.parts] = terminals(properties, w.parts)
        if not w.pred(values, 0):
            return False
    return True


def _one_per_type(
    found: list[tuple[str, Discriminator | None]],
) -> list[tuple[str, Discriminator | None]]:
    """One filing per event type: a type with different needs is filed for every event."""
    by_type: dict[str, Discriminator | None] = {}
    for event_type, disc in found:
        if event_type in by_type and by_type[event_type] != disc:
            by_type[event_type] = None
        else:
            by_type[event_type] = disc
    return list(by_type.items())


class SequenceLeaf(HistoryLeaf):
    """`{"sequence": [STEP, ...], "within": WINDOW}`: events e_1 < ... < e_n in event order,
    each selected by its step (SPEC §4.4). Greedy: the earliest event of each step after the
    previous step's is as good as any, so one pass over the steps decides it."""

    __slots__ = ("steps",)

    def __init__(self, key: bytes, node: Mapping[str, Any]) -> None:
        super().__init__(key)
        window = node.get("within")
        self.steps = [
            EventLeaf(
                leaf_key(step),
                {"event": step["event"], "where": step.get("where") or []}
                | ({} if window is None else {"within": window}),
            )
            for step in node["sequence"]
        ]

    @property
    def event_types(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(step.event_type for step in self.steps))

    def discriminators(self) -> list[tuple[str, Discriminator | None]]:
        return _one_per_type([(step.event_type, step.discriminator) for step in self.steps])

    @property
    def static_key(self) -> bytes:
        return self.key

    @property
    def time_dependent(self) -> bool:
        return any(step.time_dependent for step in self.steps)

    def selects(
        self, event_type: str, properties: Mapping[str, Any], seen: dict[tuple[str, ...], list[Any]]
    ) -> bool:
        return any(
            step.event_type == event_type and step.selects_statically(properties, seen)
            for step in self.steps
        )

    def change_instants(self, event: StoredEvent, retention: int) -> Iterator[int]:
        for step in self.steps:
            if step.event_type == event.type:
                yield from step.change_instants(event, retention)

    counted = True

    def evaluate(self, ctx: EvaluationContext, skip: StoredEvent | None = None) -> bool:
        at, order = ctx.now - ctx.retention, -1  # before every stored event
        for step in self.steps:
            found = step.first_after(ctx, at, order, skip)
            if found is None:
                return False
            at, order = found.at, found.order
        return True

    def truths_around(self, added: StoredEvent, ctx: EvaluationContext) -> tuple[bool, bool]:
        """The truth without and with `added`: more events never break a sequence, so a
        false one was false without it too."""
        truth = self.evaluate(ctx)
        return (self.evaluate(ctx, added) if truth else False), truth


def _measure_of(node: Mapping[str, Any]) -> _Measure:
    count = node.get("count")
    if count is not None:
        op, value = count["op"], count["value"]
        bound = max(value) if op == "between" else value
        return _Measure("count", (), compare_number(op, value), op, math.floor(bound) + 1)
    for kind in ("sum", "avg", "min", "max"):
        path = node.get(kind)
        if path is not None:
            return _Measure(kind, split_path(path), compare_number(node["op"], node["value"]))
    return _Measure("count", (), compare_number("gte", 1), "gte", 2)


class SegmentLeaf(Leaf):
    """`{"segment": ID}`: true while the profile is a member of that segment; with
    `"for_at_least": D`, once the current membership began at least D ago (SPEC §4.4)."""

    __slots__ = ("segment_id", "span")

    def __init__(self, key: bytes, node: Mapping[str, Any]) -> None:
        super().__init__(key)
        self.segment_id: str = node["segment"]
        tenure = node.get("for_at_least")
        self.span: int | None = None if tenure is None else parse_duration(tenure)

    def evaluate(self, ctx: EvaluationContext) -> bool:
        if self.span is None:
            return self.segment_id in ctx.profile.members
        entered = ctx.profile.members.get(self.segment_id)
        return entered is not None and entered <= ctx.now - self.span


def make_leaf(key: bytes, node: Mapping[str, Any]) -> Leaf:
    """Build the leaf object of a leaf condition."""
    if "trait" in node:
        return TraitLeaf(key, node)
    if "event" in node:
        return EventLeaf(key, node)
    if "sequence" in node:
        return SequenceLeaf(key, node)
    return SegmentLeaf(key, node)


#: Which way a leaf's truth can move at a timer: to true, to false (or-ed when either).
RISES = 1
FALLS = 2

#: How a leaf occurs in a condition: un-negated (its rise can make the condition true and
#: its fall false), negated (the other way round), or both.
POSITIVE = 1
NEGATIVE = 2


@dataclass(slots=True)
class CompiledCondition:
    """A condition as a closure, the leaves it reads, their polarity, and its guards.

    Guards are exact values (`eq`/`in` trait leaves, or an `or` of them on one path) a
    profile's trait must meet for the whole condition to hold (the root, or children of a
    root `and`); a profile that fails one and is not a member cannot enter, which lets the
    registry skip the segment cheaply.
    `polarity` maps each leaf to POSITIVE, NEGATIVE or both (or-ed): the condition is
    monotone in each leaf, so a change of leaves can only move it their way.
    """

    run: Node
    leaves: list[Leaf]
    guards: list[Discriminator]
    polarity: dict[Leaf, int] = field(default_factory=dict)
    #: Segments the profile must be a member of for the condition to hold (the root, or
    #: children of a root `and`).
    ref_guards: list[str] = field(default_factory=list)


def _cost(node: Mapping[str, Any]) -> int:
    """Evaluation order inside and/or: cheap and selective first, history scans last."""
    if "trait" in node:
        return 0 if node["op"] in ("eq", "in") else 1
    if "segment" in node:
        return 1
    if "event" in node or "sequence" in node:
        return 3
    return 2


def _guards_of(
    node: Mapping[str, Any], leaf_of: Callable[[Mapping[str, Any]], Leaf]
) -> list[Discriminator]:
    guards = []
    for child in node.get("and", [node]):
        # An `or` of exact values of one path guards like an `in` of them all.
        found: list[Discriminator] = []
        for option in child.get("or", [child]):
            disc = _exact(leaf_of(option)) if "trait" in option else None
            if disc is None or disc.parts != (found[0].parts if found else disc.parts):
                break
            found.append(disc)
        else:
            if found:
                keys = frozenset().union(*(d.keys for d in found))
                guards.append(Discriminator(found[0].parts, "eq", keys))
    return guards


def _exact(leaf: Leaf) -> Discriminator | None:
    """The `eq` discriminator of a time-independent trait leaf (an `eq`/`in` condition)."""
    if (
        isinstance(leaf, TraitLeaf)
        and leaf.discriminator is not None
        and leaf.discriminator.kind == "eq"
        and not leaf.time_dependent
    ):
        return leaf.discriminator
    return None


def compile_condition(
    condition: Mapping[str, Any], intern: Callable[[Mapping[str, Any]], Leaf]
) -> CompiledCondition:
    """Compile a validated condition; `intern` returns the shared leaf for a leaf node."""
    leaves: list[Leaf] = []
    polarity: dict[Leaf, int] = {}

    def leaf_of(node: Mapping[str, Any], negated: bool) -> Leaf:
        leaf = intern(node)
        leaves.append(leaf)
        polarity[leaf] = polarity.get(leaf, 0) | (NEGATIVE if negated else POSITIVE)
        return leaf

    def build(node: Mapping[str, Any], negated: bool = False) -> Node:
        if "and" in node:
            kids = sorted(node["and"], key=_cost)
            if len(kids) > 1 and all(_memoisable(c) for c in kids):
                return _all_leaves(tuple(leaf_of(c, negated) for c in kids))
            children = [build(c, negated) for c in kids]
            if len(children) == 1:
                return children[0]

            def all_of(ctx: EvaluationContext) -> bool:
                for child in children:  # noqa: SIM110 - a loop: no generator on the hot path
                    if not child(ctx):
                        return False
                return True

            return all_of
        if "or" in node:
            kids = sorted(node["or"], key=_cost)
            if len(kids) > 1 and all(_memoisable(c) for c in kids):
                return _any_leaf(tuple(leaf_of(c, negated) for c in kids))
            children = [build(c, negated) for c in kids]
            if len(children) == 1:
                return children[0]

            def any_of(ctx: EvaluationContext) -> bool:
                for child in children:  # noqa: SIM110 - a loop: no generator on the hot path
                    if child(ctx):
                        return True
                return False

            return any_of
        if "not" in node:
            inner = build(node["not"], not negated)
            return lambda ctx: not inner(ctx)
        leaf = leaf_of(node, negated)
        if isinstance(leaf, SegmentLeaf):
            return leaf.evaluate
        evaluate = leaf.evaluate

        def memoised(ctx: EvaluationContext) -> bool:
            memo = ctx.memo
            value = memo.get(leaf)
            if value is None:
                value = memo[leaf] = evaluate(ctx)
            return value

        return memoised

    run = build(condition)
    ref_guards = [c["segment"] for c in condition.get("and", [condition]) if "segment" in c]
    return CompiledCondition(run, leaves, _guards_of(condition, intern), polarity, ref_guards)


def _memoisable(node: Mapping[str, Any]) -> bool:
    """A trait, event or sequence leaf: its value is fixed for a pass (a membership is not)."""
    return "trait" in node or "event" in node or "sequence" in node


def _all_leaves(leaves: tuple[Leaf, ...]) -> Node:
    # An `and` of trait/event leaves in one frame: no closure call per child.
    def all_of(ctx: EvaluationContext) -> bool:
        memo = ctx.memo
        for leaf in leaves:
            value = memo.get(leaf)
            if value is None:
                value = memo[leaf] = leaf.evaluate(ctx)
            if not value:
                return False
        return True

    return all_of


def _any_leaf(leaves: tuple[Leaf, ...]) -> Node:
    def any_of(ctx: EvaluationContext) -> bool:
        memo = ctx.memo
        for leaf in leaves:
            value = memo.get(leaf)
            if value is None:
                value = memo[leaf] = leaf.evaluate(ctx)
            if value:
                return True
        return False

    return any_of


def truth_without_history(
    condition: Mapping[str, Any], empty_value: Callable[[Mapping[str, Any]], bool]
) -> bool | None:
    """The condition's truth for every profile without activity history, whatever its traits
    and memberships, or None when those decide it. `empty_value` gives an event leaf's truth
    over no events (time plays no part in it)."""
    if "and" in condition:
        values = [truth_without_history(c, empty_value) for c in condition["and"]]
        if False in values:
            return False
        return True if all(v is True for v in values) else None
    if "or" in condition:
        values = [truth_without_history(c, empty_value) for c in condition["or"]]
        if True in values:
            return True
        return False if all(v is False for v in values) else None
    if "not" in condition:
        inner = truth_without_history(condition["not"], empty_value)
        return None if inner is None else not inner
    if "event" in condition or "sequence" in condition:
        return empty_value(condition)
    return None
