"""Naive evaluation of one segment condition for one profile at one instant (SPEC §3-§4).

Everything is recomputed from the profile's full traits and event list on every call:
slow on purpose, so that it can be read against the SPEC sentence by sentence.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import date
from typing import Any

import re2

from segstream.timefmt import DAY, parse_date, parse_duration, parse_instant, utc_date

EARTH_RADIUS_KM = 6371.0


@dataclass(frozen=True)
class StoredEvent:
    """One accepted activity event as the profile's history keeps it."""

    at: int
    arrival: int  # tie-breaker: events with the same `at` stay in the order they were applied
    type: str
    event_id: str
    properties: dict[str, Any]
    dated: frozenset[int] = frozenset()  # instants of the date strings among the properties


@dataclass
class EvaluationContext:
    """What a condition can look at: traits, history, the clock and other segments' membership."""

    traits: dict[str, Any]
    events: list[StoredEvent]  # sorted by (at, arrival): "event order"
    now: int
    history_retention: int
    is_member: Callable[[str], bool]
    #: When the current membership of a segment began (None: not a member).
    entered_at: Callable[[str], int | None] = lambda _segment_id: None


def is_number(value: object) -> bool:
    """Numbers are ints and floats; booleans are not numbers (SPEC §4.2)."""
    return isinstance(value, int | float) and not isinstance(value, bool)


def _flatten(node: object) -> Iterator[object]:
    """An array on the way is replaced by its elements (nested arrays too)."""
    if isinstance(node, list):
        for item in node:
            yield from _flatten(item)
    else:
        yield node


def path_values(root: object, path: str) -> list[object]:
    """The end values a dotted path reaches; arrays on the way are expanded; null is missing.

    An array at the very end of the path is returned as one value (an empty array exists).
    """
    current: list[object] = [root]
    for key in path.split("."):
        found: list[object] = []
        for node in current:
            for item in _flatten(node):
                if isinstance(item, dict) and key in item:
                    found.append(item[key])
        current = found
    return [value for value in current if value is not None]


def derived_age(birthdate: str, now: int) -> int:
    """Whole years between a birth date and the UTC date of `now` (29 Feb -> 1 March)."""
    born = utc_date(parse_date(birthdate))
    today = utc_date(now)
    return today.year - born.year - ((today.month, today.day) < (born.month, born.day))


def traits_as_evaluated(traits: dict[str, Any], now: int) -> dict[str, Any]:
    """The traits a condition sees: `age` is derived from `birthdate` when that is set."""
    birthdate = traits.get("birthdate")
    if isinstance(birthdate, str):
        try:
            age = derived_age(birthdate, now)
        except ValueError:
            return traits
        return {**traits, "age": age}
    return traits


def _fold(text: str, ignore_case: bool) -> str:
    return text.casefold() if ignore_case else text


def _scalar_eq(value: object, operand: object, ignore_case: bool) -> bool:
    if isinstance(operand, bool):
        return isinstance(value, bool) and value == operand
    if is_number(operand):
        return is_number(value) and value == operand
    if isinstance(operand, str):
        return isinstance(value, str) and _fold(value, ignore_case) == _fold(operand, ignore_case)
    return False


def _instant_of(value: object) -> int | None:
    if not isinstance(value, str):
        return None
    try:
        return parse_instant(value)
    except ValueError:
        return None


def _haversine_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    phi1, phi2 = math.radians(lat1), math.radians(lat2)
    dphi = math.radians(lat2 - lat1)
    dlam = math.radians(lon2 - lon1)
    a = math.sin(dphi / 2) ** 2 + math.cos(phi1) * math.cos(phi2) * math.sin(dlam / 2) ** 2
    return 2 * EARTH_RADIUS_KM * math.asin(math.sqrt(a))


def _scalar_holds(op: str, value: object, operand: Any, ignore_case: bool, now: int) -> bool:
    """One positive operator on one non-array value; a wrong type is simply false."""
    if op == "eq":
        return _scalar_eq(value, operand, ignore_case)
    if op == "in":
        return any(_scalar_eq(value, item, ignore_case) for item in operand)
    if op in ("gt", "gte", "lt", "lte", "between"):
        return is_number(value) and compare_number(value, op, operand)
    if op in ("contains", "starts_with", "ends_with"):
        if not isinstance(value, str) or not isinstance(operand, str):
            return False
        text, part = _fold(value, ignore_case), _fold(operand, ignore_case)
        if op == "contains":
            return part in text
        return text.startswith(part) if op == "starts_with" else text.endswith(part)
    if op in ("before", "after"):
        instant = _instant_of(value)
        if instant is None:
            return False
        bound = parse_instant(operand)
        return instant < bound if op == "before" else instant > bound
    if op in ("within_last", "more_than_ago"):
        instant = _instant_of(value)
        if instant is None:
            return False
        duration = parse_duration(operand)
        if op == "within_last":
            return now - duration < instant <= now
        return instant <= now - duration
    if op == "within_next":
        instant = _instant_of(value)
        return instant is not None and now < instant <= now + parse_duration(operand)
    if op in ("anniversary_within_next", "anniversary_within_last"):
        instant = _instant_of(value)
        if instant is None:
            return False
        days = parse_duration(operand) // DAY
        today = utc_date(now).toordinal()
        for anniversary in anniversaries(utc_date(instant), utc_date(now).year):
            a = anniversary.toordinal()
            if op == "anniversary_within_next" and today <= a < today + days:
                return True
            if op == "anniversary_within_last" and today - days < a <= today:
                return True
        return False
    if op == "matches":
        if not isinstance(value, str):
            return False
        options = re2.Options()
        options.case_sensitive = not ignore_case
        return re2.compile(operand, options=options).search(value) is not None
    if op == "near":
        if not isinstance(value, dict):
            return False
        lat, lon = value.get("lat"), value.get("lon")
        if not isinstance(lat, int | float) or not isinstance(lon, int | float):
            return False
        if isinstance(lat, bool) or isinstance(lon, bool):
            return False
        distance = _haversine_km(lat, lon, operand["lat"], operand["lon"])
        return bool(distance <= operand["km"])
    raise ValueError(f"unknown operator {op!r}")


def anniversaries(born: date, around: int) -> list[date]:
    """The anniversaries of `born` in the years around the year `around` (every one that an
    operand of at most 366 days can reach): same month and day, after `born`'s year, up to
    9999; 29 February falls on 1 March in common years."""
    found = []
    for year in range(around - 2, around + 3):
        if born.year < year <= 9999:
            try:
                found.append(date(year, born.month, born.day))
            except ValueError:
                found.append(date(year, 3, 1))
    return found


def _end_value_holds(op: str, value: object, operand: Any, ignore_case: bool, now: int) -> bool:
    """A positive operator on one end value; an array end value holds if any element does."""
    if isinstance(value, list):
        if op == "contains":  # on an array: element membership, not substrings of elements
            return any(_scalar_eq(item, operand, ignore_case) for item in value)
        return any(
            item is not None and _scalar_holds(op, item, operand, ignore_case, now)
            for item in value
        )
    return _scalar_holds(op, value, operand, ignore_case, now)


_NEGATIONS = {"neq": "eq", "not_in": "in", "not_exists": "exists"}


def operator_holds(
    op: str, values: list[object], operand: Any, ignore_case: bool, now: int
) -> bool:
    """An operator over all end values of a path (SPEC §4.2)."""
    if op in _NEGATIONS:
        return not operator_holds(_NEGATIONS[op], values, operand, ignore_case, now)
    if op == "exists":
        return len(values) > 0
    return any(_end_value_holds(op, value, operand, ignore_case, now) for value in values)


def compare_number(value: Any, op: str, operand: Any) -> bool:
    """The numeric comparison of a count or an aggregate (and of gt/gte/lt/lte/between)."""
    if op == "eq":
        return bool(value == operand)
    if op == "neq":
        return bool(value != operand)
    if op == "gt":
        return bool(value > operand)
    if op == "gte":
        return bool(value >= operand)
    if op == "lt":
        return bool(value < operand)
    if op == "lte":
        return bool(value <= operand)
    if op == "between":
        low, high = operand
        return bool(low <= value <= high)
    raise ValueError(f"operator {op!r} does not compare numbers")


def _property_condition_holds(prop: dict[str, Any], properties: object, now: int) -> bool:
    values = path_values(properties, prop["property"])
    return operator_holds(
        prop["op"], values, prop.get("value"), bool(prop.get("ignore_case", False)), now
    )


def _in_window(event: StoredEvent, within: object, ctx: EvaluationContext) -> bool:
    if event.at <= ctx.now - ctx.history_retention or event.at > ctx.now:
        return False
    if within is None:
        return True
    if isinstance(within, str):
        return ctx.now - parse_duration(within) < event.at
    assert isinstance(within, dict)
    if "after" in within and event.at < parse_instant(within["after"]):
        return False
    return not ("before" in within and event.at >= parse_instant(within["before"]))


def selected_events(condition: dict[str, Any], ctx: EvaluationContext) -> list[StoredEvent]:
    """The events of the condition's type, inside its window and retention, matching `where`."""
    return [
        event
        for event in ctx.events
        if event.type == condition["event"]
        and _in_window(event, condition.get("within"), ctx)
        and all(
            _property_condition_holds(prop, event.properties, ctx.now)
            for prop in condition.get("where", [])
        )
    ]


def _numeric_values(events: Iterable[StoredEvent], path: str) -> list[int | float]:
    numbers: list[int | float] = []
    for event in events:
        for value in path_values(event.properties, path):
            numbers.extend(item for item in _flatten(value) if is_number(item))  # type: ignore[misc]
    return numbers


def _before(first: StoredEvent, second: StoredEvent) -> bool:
    """Event order: by `at`, then arrival."""
    return (first.at, first.arrival) < (second.at, second.arrival)


def _not_followed(condition: dict[str, Any], ctx: EvaluationContext) -> bool:
    """SPEC §4.4, word for word: some selected `a` with a.at + D <= now and no stored `b` of
    TYPE_B selected by its `where` with a < b and b.at <= a.at + D."""
    follow = condition["not_followed_by"]
    span = parse_duration(follow["within"])
    b_selector = {"event": follow["event"], "where": follow.get("where", [])}
    stored_b = [
        b
        for b in ctx.events
        if b.type == follow["event"]
        and b.at > ctx.now - ctx.history_retention
        and all(_property_condition_holds(p, b.properties, ctx.now) for p in b_selector["where"])
    ]
    for a in selected_events(condition, ctx):
        if a.at + span > ctx.now:
            continue
        if not any(_before(a, b) and b.at <= a.at + span for b in stored_b):
            return True
    return False


def _sequence_holds(condition: dict[str, Any], ctx: EvaluationContext) -> bool:
    """Some e_1 in S_1, ..., e_n in S_n with e_1 < ... < e_n (tries every chain)."""
    selected = []
    for step in condition["sequence"]:
        node = {"event": step["event"], "where": step.get("where", [])}
        if "within" in condition:
            node["within"] = condition["within"]
        selected.append(selected_events(node, ctx))

    def chain(i: int, after: StoredEvent | None) -> bool:
        if i == len(selected):
            return True
        return any((after is None or _before(after, e)) and chain(i + 1, e) for e in selected[i])

    return chain(0, None)


def _event_condition_holds(condition: dict[str, Any], ctx: EvaluationContext) -> bool:
    if "not_followed_by" in condition:
        return _not_followed(condition, ctx)
    events = selected_events(condition, ctx)
    if "count" in condition:
        return compare_number(len(events), condition["count"]["op"], condition["count"]["value"])
    for measure in ("sum", "avg", "min", "max"):
        if measure not in condition:
            continue
        numbers = _numeric_values(events, condition[measure])
        total: int | float = 0
        for number in numbers:  # plain left-to-right addition in event order
            total += number
        if measure == "sum":
            result: int | float = total
        elif not numbers:
            return False  # avg/min/max of nothing: false whatever the op
        elif measure == "avg":
            result = total / len(numbers)
        else:
            result = min(numbers) if measure == "min" else max(numbers)
        return compare_number(result, condition["op"], condition["value"])
    return len(events) >= 1


def condition_holds(condition: dict[str, Any], ctx: EvaluationContext) -> bool:
    """Whether a (valid) condition holds for the context's profile at `ctx.now`."""
    if "and" in condition:
        return all(condition_holds(child, ctx) for child in condition["and"])
    if "or" in condition:
        return any(condition_holds(child, ctx) for child in condition["or"])
    if "not" in condition:
        return not condition_holds(condition["not"], ctx)
    if "trait" in condition:
        traits = traits_as_evaluated(ctx.traits, ctx.now)
        values = path_values(traits, condition["trait"])
        return operator_holds(
            condition["op"],
            values,
            condition.get("value"),
            bool(condition.get("ignore_case", False)),
            ctx.now,
        )
    if "event" in condition:
        return _event_condition_holds(condition, ctx)
    if "sequence" in condition:
        return _sequence_holds(condition, ctx)
    if "segment" in condition:
        if not ctx.is_member(condition["segment"]):
            return False
        if "for_at_least" in condition:
            entered = ctx.entered_at(condition["segment"])
            assert entered is not None
            return entered <= ctx.now - parse_duration(condition["for_at_least"])
        return True
    raise ValueError(f"not a condition: {condition!r}")


def referenced_segments(condition: object) -> set[str]:
    """Ids of the segments a condition references, at any depth."""
    if not isinstance(condition, dict):
        return set()
    if "segment" in condition and isinstance(condition["segment"], str):
        return {condition["segment"]}
    found: set[str] = set()
    for key in ("and", "or"):
        for child in condition.get(key, []) if isinstance(condition.get(key), list) else []:
            found |= referenced_segments(child)
    if "not" in condition:
        found |= referenced_segments(condition["not"])
    return found


def durations_in(condition: object) -> set[int]:
    """Every duration a condition mentions (windows, within_last, more_than_ago), in µs."""
    found: set[int] = set()
    if isinstance(condition, dict):
        if isinstance(condition.get("within"), str):
            found.add(parse_duration(condition["within"]))
        if condition.get("op") in ("within_last", "more_than_ago", "within_next"):
            found.add(parse_duration(condition["value"]))
        if isinstance(condition.get("for_at_least"), str):
            found.add(parse_duration(condition["for_at_least"]))
        for value in condition.values():
            found |= durations_in(value)
    elif isinstance(condition, list):
        for item in condition:
            found |= durations_in(item)
    return found


def uses_anniversaries(condition: object) -> bool:
    """True when an anniversary operator appears anywhere in a condition."""
    if isinstance(condition, dict):
        if condition.get("op") in ("anniversary_within_next", "anniversary_within_last"):
            return True
        return any(uses_anniversaries(v) for v in condition.values())
    if isinstance(condition, list):
        return any(uses_anniversaries(item) for item in condition)
    return False


def instants_in(document: object) -> set[int]:
    """Every string anywhere in a document that reads as a date or date-time, in µs."""
    found: set[int] = set()
    if isinstance(document, dict):
        for value in document.values():
            found |= instants_in(value)
    elif isinstance(document, list):
        for item in document:
            found |= instants_in(item)
    else:
        instant = _instant_of(document)
        if instant is not None:
            found.add(instant)
    return found
