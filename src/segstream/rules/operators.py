"""Operators of the rule language (SPEC §4.2) compiled into predicates over path values.

A path is resolved to its *terminals*: the values at its end, fanning out through arrays met on
the way (an array at the end stays one terminal). Comparison operators test every element of
the terminals (arrays at the end are expanded) and hold when any element holds; `contains` tests
membership on an array terminal and substring on a string terminal; `exists` holds when some
terminal is not null. `neq`, `not_in` and `not_exists` are exact negations.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from datetime import date
from functools import lru_cache
from typing import Any

from segstream.rules.patterns import compile_pattern
from segstream.timefmt import DAY, date_start, parse_duration, parse_instant, utc_date

__all__ = [
    "ANNIVERSARY_OPERATORS",
    "TIME_OPERATORS",
    "Predicate",
    "anniversary",
    "anniversary_boundaries",
    "compile_predicate",
    "elements",
    "instant_of",
    "split_path",
    "terminals",
]

#: A compiled operator: (terminals of the path, now) -> truth.
Predicate = Callable[[list[Any], int], bool]

ANNIVERSARY_OPERATORS = frozenset({"anniversary_within_next", "anniversary_within_last"})
#: Operators whose truth moves with the clock: each takes a duration operand.
TIME_OPERATORS = frozenset({"within_last", "more_than_ago", "within_next"}) | ANNIVERSARY_OPERATORS
_LAST_YEAR = 9999
EARTH_RADIUS_KM = 6371.0


def split_path(path: str) -> tuple[str, ...]:
    """Split a dotted path into its keys."""
    return tuple(path.split("."))


def terminals(node: Any, parts: Sequence[str]) -> list[Any]:
    """The values at the end of `parts` under `node`, fanning out through arrays on the way."""
    for i, key in enumerate(parts):  # fast path: objects all the way down
        if type(node) is dict:
            node = node.get(key)
        elif type(node) is list:
            out: list[Any] = []
            _collect(node, parts, i, out)
            return out
        else:
            return []
    return [] if node is None else [node]


def _collect(node: Any, parts: Sequence[str], i: int, out: list[Any]) -> None:
    while True:
        if i == len(parts):
            if node is not None:
                out.append(node)
            return
        if isinstance(node, dict):
            node = node.get(parts[i])
            i += 1
        elif isinstance(node, list):
            for item in node:
                _collect(item, parts, i, out)
            return
        else:
            return


def elements(values: list[Any]) -> Iterator[Any]:
    """Every non-null element of the terminals, arrays expanded (recursively)."""
    for v in values:
        if isinstance(v, list):
            yield from elements(v)
        elif v is not None:
            yield v


def _is_number(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


@lru_cache(maxsize=65536)
def _instant(text: str) -> int | None:
    try:
        return parse_instant(text)
    except ValueError:
        return None


def instant_of(value: Any) -> int | None:
    """The instant a date/date-time string denotes, or None for anything else."""
    return _instant(value) if isinstance(value, str) else None


def _equals(operand: Any, ignore_case: bool) -> Callable[[Any], bool]:
    """A test `element == operand` with the type rules of SPEC §4.2."""
    if isinstance(operand, str):
        if ignore_case:
            folded = operand.casefold()
            return lambda v: isinstance(v, str) and v.casefold() == folded
        return lambda v: isinstance(v, str) and v == operand
    if isinstance(operand, bool):
        return lambda v: isinstance(v, bool) and v == operand
    return lambda v: _is_number(v) and v == operand


def _any_element(test: Callable[[Any], bool]) -> Predicate:
    def holds(values: list[Any], _now: int) -> bool:
        # A loop rather than any(genexpr): this is the innermost call of every evaluation.
        for v in values:
            if type(v) is list:
                for element in elements(v):
                    if test(element):
                        return True
            elif test(v):
                return True
        return False

    return holds


def _negate(pred: Predicate) -> Predicate:
    return lambda values, now: not pred(values, now)


def _numeric(test: Callable[[Any], bool]) -> Predicate:
    return _any_element(lambda v: _is_number(v) and test(v))


def _string(test: Callable[[str], bool]) -> Predicate:
    return _any_element(lambda v: isinstance(v, str) and test(v))


def _contains(operand: Any, ignore_case: bool) -> Predicate:
    member = _equals(operand, ignore_case)
    if isinstance(operand, str):
        needle = operand.casefold() if ignore_case else operand

        def substring(v: str) -> bool:
            return needle in (v.casefold() if ignore_case else v)
    else:

        def substring(v: str) -> bool:
            return False

    def holds(values: list[Any], _now: int) -> bool:
        for terminal in values:
            if isinstance(terminal, list):
                if any(member(v) for v in terminal):
                    return True
            elif isinstance(terminal, str) and substring(terminal):
                return True
        return False

    return holds


def _affix(operand: str, ignore_case: bool, starts: bool) -> Predicate:
    affix = operand.casefold() if ignore_case else operand

    def test(v: str) -> bool:
        s = v.casefold() if ignore_case else v
        return s.startswith(affix) if starts else s.endswith(affix)

    return _string(test)


def _instant_test(test: Callable[[int, int], bool]) -> Predicate:
    def holds(values: list[Any], now: int) -> bool:
        for v in elements(values):
            at = instant_of(v)
            if at is not None and test(at, now):
                return True
        return False

    return holds


def anniversary(born: date, year: int) -> date | None:
    """The anniversary of the date `born` in `year` (SPEC §4.4): only in years after `born`'s,
    up to 9999; 29 February falls on 1 March in common years (as for `age`)."""
    if year <= born.year or year > _LAST_YEAR:
        return None
    try:
        return date(year, born.month, born.day)
    except ValueError:
        return date(year, 3, 1)


def _anniversary_test(op: str, days: int) -> Callable[[int, int], bool]:
    """`anniversary_within_next` (today <= a < today + D) or `_last` (today - D < a <= today)."""
    upcoming = op == "anniversary_within_next"

    def test(at: int, now: int) -> bool:
        born = utc_date(at)
        today = utc_date(now)
        first = today.toordinal()
        years = (today.year, today.year + 1) if upcoming else (today.year - 1, today.year)
        for year in years:
            a = anniversary(born, year)
            if a is None:
                continue
            n = a.toordinal()
            if (first <= n < first + days) if upcoming else (first - days < n <= first):
                return True
        return False

    return test


def anniversary_boundaries(
    op: str, span: int, at: int, first_year: int, last_year: int
) -> Iterator[int]:
    """The 00:00:00Z instants where an anniversary operator over the value instant `at` can
    change, for the anniversaries in years `first_year`..`last_year`."""
    days = span // DAY
    born = utc_date(at)
    for year in range(max(first_year, born.year + 1), min(last_year, _LAST_YEAR) + 1):
        a = anniversary(born, year)
        assert a is not None
        start = date_start(a)
        if op == "anniversary_within_next":  # true on the D days up to and including `a`
            yield start - (days - 1) * DAY
            yield start + DAY
        else:  # true on `a` and the D - 1 days after it
            yield start
            yield start + days * DAY


def _near(operand: dict[str, Any]) -> Predicate:
    lat0 = math.radians(operand["lat"])
    lon0 = operand["lon"]
    km = operand["km"]
    cos_lat0 = math.cos(lat0)

    def test(v: Any) -> bool:
        if not isinstance(v, dict):
            return False
        lat, lon = v.get("lat"), v.get("lon")
        if not (_is_number(lat) and _is_number(lon)):
            return False
        assert lat is not None and lon is not None
        dlat = math.radians(lat) - lat0
        dlon = math.radians(lon - lon0)
        a = (
            math.sin(dlat / 2) ** 2
            + cos_lat0 * math.cos(math.radians(lat)) * math.sin(dlon / 2) ** 2
        )
        distance = 2 * EARTH_RADIUS_KM * math.asin(min(1.0, math.sqrt(a)))
        return bool(distance <= km)

    return _any_element(test)


def _exists(values: list[Any], _now: int) -> bool:
    return bool(values)


def compile_predicate(op: str, value: Any = None, ignore_case: bool = False) -> Predicate:
    """Compile a validated `(op, value, ignore_case)` into a predicate over terminals."""
    if op == "exists":
        return _exists
    if op == "not_exists":
        return _negate(_exists)
    if op in ("eq", "neq"):
        eq = _any_element(_equals(value, ignore_case))
        return eq if op == "eq" else _negate(eq)
    if op in ("in", "not_in"):
        tests = [_equals(item, ignore_case) for item in value]
        member = _any_element(lambda v: any(t(v) for t in tests))
        return member if op == "in" else _negate(member)
    if op == "gt":
        return _numeric(lambda v: v > value)
    if op == "gte":
        return _numeric(lambda v: v >= value)
    if op == "lt":
        return _numeric(lambda v: v < value)
    if op == "lte":
        return _numeric(lambda v: v <= value)
    if op == "between":
        lo, hi = value
        return _numeric(lambda v: lo <= v <= hi)
    if op == "contains":
        return _contains(value, ignore_case)
    if op in ("starts_with", "ends_with"):
        return _affix(value, ignore_case, starts=op == "starts_with")
    if op == "before":
        bound = parse_instant(value)
        return _instant_test(lambda at, _now: at < bound)
    if op == "after":
        bound = parse_instant(value)
        return _instant_test(lambda at, _now: at > bound)
    if op == "within_last":
        span = parse_duration(value)
        return _instant_test(lambda at, now: now - span < at <= now)
    if op == "more_than_ago":
        span = parse_duration(value)
        return _instant_test(lambda at, now: at <= now - span)
    if op == "within_next":
        span = parse_duration(value)
        return _instant_test(lambda at, now: now < at <= now + span)
    if op in ANNIVERSARY_OPERATORS:
        return _instant_test(_anniversary_test(op, parse_duration(value) // DAY))
    if op == "matches":
        found = compile_pattern(value, ignore_case)
        return _string(found)
    if op == "near":
        return _near(value)
    raise ValueError(f"unknown operator {op!r}")


def compare_number(op: str, value: Any) -> Callable[[float], bool]:
    """A measure comparison (`count`, `sum`, …) of SPEC §4.1 with a numeric operand."""
    if op == "eq":
        return lambda x: x == value
    if op == "neq":
        return lambda x: x != value
    if op == "gt":
        return lambda x: x > value
    if op == "gte":
        return lambda x: x >= value
    if op == "lt":
        return lambda x: x < value
    if op == "lte":
        return lambda x: x <= value
    if op == "between":
        lo, hi = value
        return lambda x: lo <= x <= hi
    raise ValueError(f"unknown measure operator {op!r}")
