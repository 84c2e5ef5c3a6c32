"""Hypothesis strategies: small vocabularies of segments and event streams where things flip.

Times sit within a few days of T0 (which brings 28 Feb, a 29 Feb birthday and 1 March
into range), windows last minutes to days, and a handful of profiles share every path,
so that windows, retention, birthdays and date conditions actually change membership.
Numbers are halves and quarters so that sums are exact whatever the order of addition.
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass
from typing import Any

from hypothesis import strategies as st

from segstream.timefmt import DAY, HOUR, MINUTE, format_instant, parse_datetime

T0 = parse_datetime("2026-02-27T00:00:00Z")
PROFILES = ("p1", "p2", "p3", "p4")
SEGMENT_IDS = ("s1", "s2", "s3", "s4")
ACTIVITY_TYPES = ("page.viewed", "cart.added", "order.purchased", "custom.x")
DURATIONS = ("30m", "1h", "6h", "1d", "2d", "3d", "1w")
DATES = ("2026-02-26", "2026-02-27", "2026-02-28", "2026-03-01", "2026-03-02")
DATETIMES = ("2026-02-27T06:00:00Z", "2026-02-27T12:30:00+02:00", "2026-02-28T00:15:00Z")
STEPS = (0, 1, 15 * MINUTE, 30 * MINUTE, HOUR, 3 * HOUR, 6 * HOUR, 12 * HOUR, DAY)
LATENESS = (15 * MINUTE, HOUR, DAY, 4 * DAY)

absent = object()

dates = st.sampled_from(DATES + DATETIMES + ("not a date", "2026-02-30"))
plain_numbers = st.sampled_from((0, 2, 2.5, 5, 10, 20.25))


def _maybe(strategy: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """The value, null (which deletes a trait) or absent."""
    return st.one_of(strategy, st.none(), st.just(absent))


def _object(**fields: st.SearchStrategy[Any]) -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries({name: _maybe(s) for name, s in fields.items()}).map(
        lambda d: {k: v for k, v in d.items() if v is not absent}
    )


traits = _object(
    gender=st.sampled_from(("female", "male", "Female")),
    age=st.sampled_from((20, 26, 30.5, 45)),
    birthdate=st.sampled_from(("2000-02-29", "1990-02-28", "1996-03-01", "2001-01-01")),
    location=st.one_of(
        _object(
            country=st.sampled_from(("US", "FR")),
            city=st.sampled_from(("Lyon", "lyon", "Paris", "Straße", "STRASSE")),
            # 408.86: out of range, yet the haversine puts it on Paris (no latitude band has it).
            lat=st.sampled_from((45.76, 48.86, 408.86)),
            lon=st.sampled_from((4.84, 2.35)),
        ),
        # Not an object: replaces one, and `near`/`location.city` then look through an array.
        st.just([{"lat": 45.76, "lon": 4.84, "city": "lyon"}, {"lat": 48.86, "lon": 2.35}]),
    ),
    device=_object(type=st.sampled_from(("mobile", "desktop"))),
    custom=st.one_of(
        _object(
            plan=st.sampled_from(("gold", "Gold", "silver", 3, True)),
            tags=st.sampled_from((["vip", "new"], [], ["VIP"], ["new", 3])),
            signup=dates,
        ),
        st.just("flat"),  # a value replacing the whole object
    ),
)

devices = _object(type=st.sampled_from(("mobile", "tablet")), os=st.sampled_from(("ios",)))

products = st.lists(
    st.fixed_dictionaries({"product_id": st.sampled_from(("a", "b", "A")), "price": plain_numbers}),
    max_size=2,
)

properties = _object(
    amount=st.one_of(plain_numbers, st.just("7")),
    product_id=st.sampled_from(("a", "b", "A")),
    products=products,
    url=st.sampled_from(("https://x.test/a", "https://x.test/B")),
    ts=dates,
)

# (path, op, value); `absent` marks operators without a value.
TRAIT_TESTS: tuple[tuple[str, str, Any], ...] = (
    ("gender", "eq", "female"),
    ("gender", "in", ["female", "male"]),
    ("gender", "neq", "male"),
    ("age", "gte", 26),
    ("age", "between", [20, 30]),
    ("age", "lt", 30),
    ("birthdate", "before", "1995-01-01"),
    ("birthdate", "exists", absent),
    ("location.country", "eq", "US"),
    ("location.country", "not_in", ["US"]),
    ("location", "near", {"lat": 48.86, "lon": 2.35, "km": 100}),
    ("location", "near", {"lat": 45.76, "lon": 4.84, "km": 5}),
    ("location", "near", {"lat": 0, "lon": 0, "km": 15000}),
    ("location.city", "eq", "lyon"),
    ("location.city", "eq", "strasse"),
    ("custom.plan", "eq", "gold"),
    ("custom.plan", "starts_with", "G"),
    ("custom.plan", "gt", 2),
    ("custom.plan", "eq", True),
    ("custom.tags", "contains", "vip"),
    ("custom.tags", "eq", 3),
    ("custom.tags", "exists", absent),
    ("custom.tags", "not_exists", absent),
    ("custom.signup", "within_last", "1d"),
    ("custom.signup", "more_than_ago", "2d"),
    ("custom.signup", "after", "2026-02-28"),
    ("device.type", "eq", "mobile"),
)

PROPERTY_TESTS: tuple[tuple[str, str, Any], ...] = (
    ("amount", "gt", 6),
    ("amount", "lte", 5),
    ("product_id", "eq", "a"),
    ("products.product_id", "in", ["a"]),
    ("products.price", "gte", 5),
    ("url", "contains", "/a"),
    ("url", "contains", "x.TEST/b"),
    ("url", "ends_with", "b"),
    ("ts", "within_last", "1h"),
    ("ts", "more_than_ago", "1d"),
    ("ts", "before", "2026-02-28T12:00:00Z"),
    ("ts", "not_exists", absent),
)

STRING_OPS = ("eq", "neq", "in", "not_in", "contains", "starts_with", "ends_with")


@st.composite
def _leaf_test(
    draw: st.DrawFn, key: str, tests: tuple[tuple[str, str, Any], ...]
) -> dict[str, Any]:
    path, op, value = draw(st.sampled_from(tests))
    node: dict[str, Any] = {key: path, "op": op}
    if value is not absent:
        node["value"] = value
    if op in STRING_OPS:
        case = draw(st.sampled_from((absent, True, False)))
        if case is not absent:
            node["ignore_case"] = case
    return node


trait_conditions = _leaf_test("trait", TRAIT_TESTS)

windows = st.one_of(
    st.just(absent),
    st.sampled_from(DURATIONS),
    st.sampled_from(DURATIONS),
    st.builds(
        lambda after, before, sides: {
            k: v for k, v in (("after", after), ("before", before)) if k in sides
        },
        st.sampled_from(DATETIMES + DATES[:2]),
        st.sampled_from(DATETIMES + DATES[2:]),
        st.sampled_from(("after", "before", "after before")),
    ),
)

measures = st.one_of(
    st.just({}),
    st.just({}),
    st.builds(
        lambda op, value: {"count": {"op": op, "value": value}},
        st.sampled_from(("eq", "neq", "gt", "gte", "lt", "lte")),
        st.integers(0, 3),
    ),
    st.builds(lambda n: {"count": {"op": "between", "value": [n, n + 1]}}, st.integers(0, 2)),
    st.builds(
        lambda kind, path, op, value: {kind: path, "op": op, "value": value},
        st.sampled_from(("sum", "avg", "min", "max")),
        st.sampled_from(("amount", "products.price")),
        st.sampled_from(("eq", "neq", "gt", "gte", "lt", "lte")),
        st.sampled_from((0, 5, 7.5, 10)),
    ),
)


@st.composite
def event_conditions(draw: st.DrawFn) -> dict[str, Any]:
    """An event condition with optional where, window and measure."""
    node: dict[str, Any] = {"event": draw(st.sampled_from(ACTIVITY_TYPES))}
    where = draw(st.lists(_leaf_test("property", PROPERTY_TESTS), max_size=2))
    if where:
        node["where"] = where
    window = draw(windows)
    if window is not absent:
        node["within"] = window
    node.update(draw(measures))
    return node


segment_refs = st.sampled_from((*SEGMENT_IDS, "s9")).map(lambda s: {"segment": s})

# Weighted so that most leaves can change with time and few refer to undefined segments.
leaves = st.one_of(
    trait_conditions,
    trait_conditions,
    event_conditions(),
    event_conditions(),
    event_conditions(),
    segment_refs,
)

combined_conditions = st.recursive(
    leaves,
    lambda children: st.one_of(
        st.lists(children, min_size=1, max_size=3).map(lambda c: {"and": c}),
        st.lists(children, min_size=1, max_size=3).map(lambda c: {"or": c}),
        children.map(lambda c: {"not": c}),
    ),
    max_leaves=4,
)

# Lone leaves are frequent: they are the ones whose truth visibly flips with time.
conditions = st.one_of(leaves, combined_conditions)

definitions = st.builds(
    lambda sid, name, condition: {"id": sid, "name": name, "condition": condition},
    st.sampled_from(SEGMENT_IDS),
    st.sampled_from(("A", "B")),
    conditions,
)


@dataclass
class Scenario:
    """Inputs of one replay: definitions, EVENTS.jsonl lines, `until` and the retention."""

    segments: list[dict[str, Any]]
    lines: list[str]
    until: int | None
    history_retention: int

    def describe(self) -> str:
        """The scenario as text to paste into a bug report."""
        parts = ["segments = " + json.dumps(self.segments)]
        parts += [f"{n}: {text}" for n, text in enumerate(self.lines, start=1)]
        until = format_instant(self.until) if self.until is not None else None
        parts.append(f"until = {until}; history_retention = {self.history_retention}")
        return "\n".join(parts)


INVALID_LINES = (
    "{",
    "[1]",
    '{"id":"bad","type":"page.viewed","profile_id":"p1","at":"2026-02-27T00:00:00Z",'
    '"properties":{"amount":NaN}}',
    '{"id":"bad","type":"user.signed_in","profile_id":"p1","at":"2026-02-27T00:00:00Z"}',
    '{"id":"bad","type":"profile.updated","profile_id":"p1","at":"2026-02-27T00:00:00Z",'
    '"traits":{"location":{"country":"us"}}}',
    '{"id":"bad","type":"profile.updated","profile_id":"p2","at":"2026-02-27"}',
    '{"type":"segment.deleted","at":"2026-02-27T00:00:00Z","segment_id":"s9"}',
    '{"id":"bad","type":"profile.updated","profile_id":"p3","at":"2026-02-27T00:00:00Z",'
    '"traits":{"custom":{"a.b":1}}}',
    '{"id":"bad","type":"cart.added","profile_id":"p3","at":"2026-02-27T00:00:00Z",'
    '"context":{"device":{"type":"phone"}}}',
    '{"type":"segment.upserted","at":"2026-02-27","segment":'
    '{"id":"s5","name":"dated","condition":{"event":"page.viewed"}}}',
)


def retyped(condition: object) -> object:
    """The same condition written differently: ints as floats, `ignore_case: false` spelled out.

    It selects the same profiles but is a different condition (SPEC §4: a new version).
    """
    if isinstance(condition, list):
        return [retyped(item) for item in condition]
    if not isinstance(condition, dict):
        return condition
    node = {key: retyped(value) for key, value in condition.items()}
    value = node.get("value")
    if isinstance(value, int) and not isinstance(value, bool) and "count" not in node:
        node["value"] = float(value)
    if node.get("op") in STRING_OPS and "ignore_case" not in node:
        node["ignore_case"] = False
    return node


def _variant(draw: st.DrawFn, base: dict[str, Any]) -> dict[str, Any]:
    """An upsert of a known definition: identical, renamed, described or re-spelled."""
    segment = copy.deepcopy(base)
    change = draw(st.sampled_from(("same", "rename", "describe", "retype")))
    if change == "rename":
        segment["name"] = segment["name"] + "!"
    elif change == "describe":
        segment["description"] = draw(st.sampled_from(("about", None)))
    elif change == "retype":
        segment["condition"] = retyped(segment["condition"])
    return segment


def spellings(instant: int) -> st.SearchStrategy[str]:
    """Equivalent RFC 3339 spellings of one instant (case, offsets, fractions)."""
    text = format_instant(instant)
    local = format_instant(instant + 2 * HOUR).removesuffix("Z") + "+02:00"
    return st.sampled_from(
        (
            text,
            text,
            text.lower(),
            text.removesuffix("Z") + "+00:00",
            local,
            text.removesuffix("Z") + ("" if "." in text else ".") + "0000009Z",
        )
    )


@st.composite
def scenarios(draw: st.DrawFn, history_retention: int = 365 * DAY) -> Scenario:
    """Definitions and a stream of records with late events, duplicates and rejects."""
    segments = draw(st.lists(definitions, min_size=1, max_size=4))
    clock = T0
    sent: list[dict[str, Any]] = []
    known = list(segments)
    lines: list[str] = []
    for number in range(draw(st.integers(3, 25))):
        kind = draw(
            st.sampled_from(
                ("updated",) * 4
                + ("activity",) * 5
                + ("deleted", "duplicate", "invalid", "upsert", "reupsert", "drop")
            )
        )
        if draw(st.integers(0, 5)) == 0:
            at = clock - draw(st.sampled_from(LATENESS))
        else:
            clock += draw(st.sampled_from(STEPS))
            at = clock
        at_text = draw(spellings(at))
        profile_id = draw(st.sampled_from(PROFILES))
        record: dict[str, Any]
        if kind == "invalid":
            lines.append(draw(st.sampled_from(INVALID_LINES)))
            continue
        if kind == "upsert":
            record = {"type": "segment.upserted", "at": at_text, "segment": draw(definitions)}
            known.append(record["segment"])
        elif kind == "reupsert":
            segment = _variant(draw, draw(st.sampled_from(known)))
            record = {"type": "segment.upserted", "at": at_text, "segment": segment}
        elif kind == "drop":
            record = {
                "type": "segment.deleted",
                "at": at_text,
                "segment_id": draw(st.sampled_from(SEGMENT_IDS)),
            }
        elif kind == "duplicate" and sent:
            record = {**draw(st.sampled_from(sent)), "at": at_text}
        elif kind == "deleted":
            record = {"id": f"e{number}", "type": "profile.deleted", "profile_id": profile_id}
        elif kind == "activity":
            record = {
                "id": f"e{number}",
                "type": draw(st.sampled_from(ACTIVITY_TYPES)),
                "profile_id": profile_id,
                "properties": draw(properties),
            }
            device = draw(st.one_of(st.just(absent), devices))
            if device is not absent:
                record["context"] = {"device": device}
        else:
            record = {
                "id": f"e{number}",
                "type": "profile.updated",
                "profile_id": profile_id,
                "traits": draw(traits),
            }
            if draw(st.integers(0, 5)) == 0:  # ignored on profile events
                record["context"] = {"device": {"type": "mobile"}}
        record["at"] = draw(spellings(at))
        if "id" in record:
            sent.append(record)
        lines.append(json.dumps(record))
    until = draw(st.one_of(st.none(), st.sampled_from((HOUR, DAY, 3 * DAY)).map(clock.__add__)))
    return Scenario(segments, lines, until, history_retention)
