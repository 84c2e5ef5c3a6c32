"""Worked examples of SPEC §3-§8 run through the naive reference, so it can be trusted alone."""

from __future__ import annotations

from typing import Any

from segstream.timefmt import DAY, parse_datetime

from .naive import naive_replay
from .records import (
    activity,
    definition,
    deleted,
    line,
    segment_deleted,
    transitions,
    updated,
    upserted,
)

T0 = "2026-01-01T10:00:00Z"
BUYER_1H = definition("buyer", {"event": "order.purchased", "within": "1h"})
US = definition("us", {"trait": "location.country", "op": "eq", "value": "US"})


def run(segments: list[Any], lines: list[str], **kwargs: Any) -> list[tuple[Any, ...]]:
    return transitions(naive_replay(segments, lines, **kwargs).memberships)


def at(text: str) -> str:
    return f"2026-01-01T{text}Z"


def test_event_window_leaves_at_at_plus_d_before_the_next_record() -> None:
    result = run(
        [BUYER_1H],
        [
            activity("o1", "p1", at("10:00:00"), "order.purchased"),
            updated("u1", "p1", at("12:00:00"), {}),
        ],
    )
    assert result == [
        ("p1", "buyer", 1, "entered", at("10:00:00"), "event", "o1", None, 1),
        ("p1", "buyer", 2, "left", at("11:00:00"), "timer", None, None, 1),
    ]


def test_a_timer_due_exactly_at_the_next_record_fires_before_it() -> None:
    result = run(
        [BUYER_1H],
        [
            activity("o1", "p1", at("10:00:00"), "order.purchased"),
            activity("o2", "p1", at("11:00:00"), "order.purchased"),
        ],
    )
    assert [r[3:6] for r in result] == [
        ("entered", at("10:00:00"), "event"),
        ("left", at("11:00:00"), "timer"),
        ("entered", at("11:00:00"), "event"),
    ]


def test_until_fires_the_remaining_timers_and_no_later_ones() -> None:
    lines = [activity("o1", "p1", at("10:00:00"), "order.purchased")]
    assert len(run([BUYER_1H], lines, until=parse_datetime(at("10:59:59")))) == 1
    assert run([BUYER_1H], lines, until=parse_datetime(at("11:00:00")))[-1][3:6] == (
        "left",
        at("11:00:00"),
        "timer",
    )


def test_a_late_event_is_applied_at_the_clock_and_leaves_at_its_own_at_plus_d() -> None:
    result = run(
        [BUYER_1H],
        [
            updated("u1", "p1", at("12:00:00"), {}),
            activity("late", "p1", at("11:30:00"), "order.purchased"),
            activity("too-late", "p1", at("10:30:00"), "order.purchased"),
        ],
        until=parse_datetime(at("23:00:00")),
    )
    assert [r[3:7] for r in result] == [
        ("entered", at("12:00:00"), "event", "late"),
        ("left", at("12:30:00"), "timer", None),
    ]


def test_retention_drops_events_without_a_window() -> None:
    ever = definition("ever", {"event": "page.viewed"})
    result = run(
        [ever],
        [activity("v1", "p1", T0, "page.viewed")],
        until=parse_datetime("2026-01-05T00:00:00Z"),
        history_retention=DAY,
    )
    assert [r[3:6] for r in result] == [
        ("entered", T0, "event"),
        ("left", "2026-01-02T10:00:00Z", "timer"),
    ]


def test_duplicates_have_no_effect_not_even_on_the_clock() -> None:
    result = naive_replay(
        [BUYER_1H],
        [
            activity("o1", "p1", at("10:00:00"), "order.purchased"),
            activity("o1", "p1", at("15:00:00"), "order.purchased"),
            updated("u1", "p2", at("10:30:00"), {}),
        ],
    )
    assert result.rejected_lines == []
    # The duplicate did not move the clock to 15:00, so the window is still open.
    assert [r[3] for r in transitions(result.memberships)] == ["entered"]


def test_invalid_records_are_rejected_with_their_line_numbers() -> None:
    result = naive_replay(
        [US],
        [
            "{not json",
            line([1, 2]),
            '{"id":"x","type":"order.purchased","profile_id":"p1","at":"2026-01-01T10:00:00Z",'
            '"properties":{"amount":NaN}}',
            line({"id": "x", "type": "bogus.thing", "profile_id": "p1", "at": T0}),
            line({"id": "x", "type": "profile.updated", "profile_id": "p1", "at": T0}),
            updated("x", "p1", T0, {"location": {"country": "us"}}),
            updated("x", "p1", T0, {"a.b": 1}),
            segment_deleted(T0, "nope"),
            upserted(T0, definition("bad", {"segment": "nope"})),
            upserted("yesterday", definition("fine", {"event": "page.viewed"})),
            updated("x", "p1", T0, {"location": {"country": "US"}}),
        ],
    )
    assert result.rejected_lines == list(range(1, 11))
    assert len(result.problems) == 10
    assert [r[3:7] for r in transitions(result.memberships)] == [("entered", T0, "event", "x")]


def test_profile_deletion_leaves_forgets_and_later_restarts_an_empty_profile() -> None:
    anyone = definition("anyone", {"not": {"trait": "gender", "op": "eq", "value": "x"}})
    result = naive_replay(
        [US, anyone],
        [
            updated("u1", "p1", at("10:00:00"), {"location": {"country": "US"}}),
            deleted("d1", "p1", at("11:00:00")),
            deleted("d1", "p1", at("11:30:00")),  # redelivered: a duplicate
            updated("u1", "p1", at("12:00:00"), {"gender": "f"}),  # u1 was forgotten: new
            deleted("d1", "p1", at("13:00:00")),  # d1 still remembered: duplicate
        ],
    )
    assert result.rejected_lines == []
    assert transitions(result.memberships) == [
        ("p1", "anyone", 1, "entered", at("10:00:00"), "event", "u1", None, 1),
        ("p1", "anyone", 2, "left", at("11:00:00"), "profile_deleted", "d1", None, 1),
        ("p1", "anyone", 3, "entered", at("12:00:00"), "event", "u1", None, 1),
        ("p1", "us", 1, "entered", at("10:00:00"), "event", "u1", None, 1),
        ("p1", "us", 2, "left", at("11:00:00"), "profile_deleted", "d1", None, 1),
    ]


def test_deleting_an_unknown_profile_is_valid_and_advances_the_clock() -> None:
    result = run(
        [BUYER_1H],
        [
            activity("o1", "p1", at("10:00:00"), "order.purchased"),
            deleted("d9", "ghost", at("12:00:00")),
            updated("u1", "ghost", at("12:00:00"), {}),
        ],
    )
    assert [r[:6] for r in result] == [
        ("p1", "buyer", 1, "entered", at("10:00:00"), "event"),
        ("p1", "buyer", 2, "left", at("11:00:00"), "timer"),
    ]


def test_segment_lifecycle_versions_and_causes() -> None:
    gold = definition("gold", {"trait": "custom.plan", "op": "eq", "value": "gold"})
    gold_ci = {**gold, "condition": {**gold["condition"], "ignore_case": True}}
    gold_ci_false = {**gold, "condition": {**gold["condition"], "ignore_case": False}}
    renamed = {**gold_ci_false, "name": "Gold customers"}
    result = naive_replay(
        [],
        [
            updated("u1", "p1", at("09:00:00"), {"custom": {"plan": "Gold"}}),
            updated("u2", "p2", at("09:00:00"), {"custom": {"plan": "gold"}}),
            upserted(at("10:00:00"), gold),
            upserted(at("11:00:00"), gold_ci),
            upserted(at("12:00:00"), gold_ci_false),
            upserted(at("12:30:00"), renamed),
            segment_deleted(at("13:00:00"), "gold"),
            upserted(at("14:00:00"), gold),
        ],
    )
    assert result.rejected_lines == []
    assert transitions(result.memberships) == [
        ("p1", "gold", 1, "entered", at("11:00:00"), "segment_updated", None, None, 2),
        ("p1", "gold", 2, "left", at("12:00:00"), "segment_updated", None, None, 3),
        ("p2", "gold", 1, "entered", at("10:00:00"), "segment_created", None, None, 1),
        ("p2", "gold", 2, "left", at("13:00:00"), "segment_deleted", None, None, 3),
        ("p2", "gold", 3, "entered", at("14:00:00"), "segment_created", None, None, 4),
    ]


def test_numbers_as_written_make_a_new_version() -> None:
    one = definition("n", {"trait": "x", "op": "eq", "value": 1})
    one_float = definition("n", {"trait": "x", "op": "eq", "value": 1.0})
    result = naive_replay(
        [one, one, one_float], [updated("u1", "p1", T0, {"x": 1}), segment_deleted(T0, "n")]
    )
    assert transitions(result.memberships)[-1][-1] == 2


def test_references_carry_the_changed_segment_and_the_event_cause() -> None:
    base = definition("base", {"trait": "gender", "op": "eq", "value": "f"})
    mid = definition("mid", {"segment": "base"})
    top = definition(
        "top", {"and": [{"segment": "mid"}, {"trait": "age", "op": "gte", "value": 1}]}
    )
    base_v2 = definition("base", {"trait": "gender", "op": "eq", "value": "m"})
    result = naive_replay(
        [top, base, mid, top],  # the first `top` refers to an unknown segment: rejected
        [
            updated("u1", "p1", at("10:00:00"), {"gender": "f", "age": 5}),
            upserted(at("11:00:00"), base_v2),
            upserted(at("11:30:00"), definition("cyc", {"segment": "cyc"})),
            upserted(at("12:00:00"), definition("base", {"segment": "top"})),
            segment_deleted(at("13:00:00"), "base"),
            updated("u2", "p1", at("14:00:00"), {"gender": "m"}),
            upserted(at("15:00:00"), base_v2),
            segment_deleted(at("16:00:00"), "top"),
        ],
    )
    assert result.rejected_segments == [0]
    assert result.rejected_lines == [3, 4]
    assert transitions(result.memberships) == [
        ("p1", "base", 1, "entered", at("10:00:00"), "event", "u1", None, 1),
        ("p1", "base", 2, "left", at("11:00:00"), "segment_updated", None, None, 2),
        ("p1", "base", 3, "entered", at("15:00:00"), "segment_created", None, None, 3),
        ("p1", "mid", 1, "entered", at("10:00:00"), "event", "u1", None, 1),
        ("p1", "mid", 2, "left", at("11:00:00"), "segment_updated", None, "base", 1),
        ("p1", "mid", 3, "entered", at("15:00:00"), "segment_updated", None, "base", 1),
        ("p1", "top", 1, "entered", at("10:00:00"), "event", "u1", None, 1),
        ("p1", "top", 2, "left", at("11:00:00"), "segment_updated", None, "base", 1),
        ("p1", "top", 3, "entered", at("15:00:00"), "segment_updated", None, "base", 1),
        ("p1", "top", 4, "left", at("16:00:00"), "segment_deleted", None, None, 1),
    ]


def test_derived_age_of_someone_born_on_29_february() -> None:
    adult = definition("26plus", {"trait": "age", "op": "gte", "value": 26})
    result = run(
        [adult],
        [updated("u1", "p1", "2026-02-27T12:00:00Z", {"birthdate": "2000-02-29", "age": 99})],
        until=parse_datetime("2026-03-05T00:00:00Z"),
    )
    assert [r[3:6] for r in result] == [("entered", "2026-03-01T00:00:00Z", "timer")]


def test_traits_deep_merge_null_deletes_and_activity_device_updates_traits() -> None:
    mobile = definition("mobile", {"trait": "device.type", "op": "eq", "value": "mobile"})
    lyon = definition("lyon", {"trait": "location.city", "op": "exists"})
    result = run(
        [mobile, lyon],
        [
            updated("u1", "p1", at("10:00:00"), {"location": {"city": "Lyon", "country": "FR"}}),
            updated("u2", "p1", at("10:01:00"), {"location": {"country": "US"}}),
            activity("v1", "p1", at("10:02:00"), "page.viewed", {}, {"type": "mobile"}),
            updated("u3", "p1", at("10:03:00"), {"location": {"city": None}}),
            activity("v2", "p1", at("10:04:00"), "page.viewed", {}, {"type": None, "os": "x"}),
            line(
                {
                    "id": "u4",
                    "type": "profile.updated",
                    "profile_id": "p1",
                    "at": at("10:05:00"),
                    "traits": {},
                    "context": {"device": {"type": "mobile"}},
                }
            ),
        ],
    )
    assert [r[:7] for r in result] == [
        ("p1", "lyon", 1, "entered", at("10:00:00"), "event", "u1"),
        ("p1", "lyon", 2, "left", at("10:03:00"), "event", "u3"),
        ("p1", "mobile", 1, "entered", at("10:02:00"), "event", "v1"),
        ("p1", "mobile", 2, "left", at("10:04:00"), "event", "v2"),
    ]


def test_within_last_and_more_than_ago_on_a_date_trait() -> None:
    recent = definition("recent", {"trait": "custom.signup", "op": "within_last", "value": "2d"})
    old = definition("old", {"trait": "custom.signup", "op": "more_than_ago", "value": "2d"})
    result = run(
        [recent, old],
        [updated("u1", "p1", "2026-01-01T00:00:00Z", {"custom": {"signup": "2026-01-02"}})],
        until=parse_datetime("2026-01-09T00:00:00Z"),
    )
    assert [r[1:6] for r in result] == [
        ("old", 1, "entered", "2026-01-04T00:00:00Z", "timer"),
        ("recent", 1, "entered", "2026-01-02T00:00:00Z", "timer"),
        ("recent", 2, "left", "2026-01-04T00:00:00Z", "timer"),
    ]


def test_measures_and_the_of_nothing_rules() -> None:
    big = definition(
        "big",
        {
            "event": "order.purchased",
            "where": [{"property": "products.product_id", "op": "eq", "value": "a"}],
            "sum": "products.price",
            "op": "gte",
            "value": 10,
        },
    )
    avg_neq = definition(
        "avg", {"event": "order.purchased", "avg": "amount", "op": "neq", "value": 5}
    )
    none = definition("none", {"event": "cart.added", "count": {"op": "eq", "value": 0}})
    order = {"products": [{"product_id": "a", "price": 4}, {"product_id": "b", "price": 6.5}]}
    result = run(
        [big, avg_neq, none],
        [
            updated("u1", "p1", at("10:00:00"), {}),
            activity("o1", "p1", at("10:01:00"), "order.purchased", order),
            activity("o2", "p1", at("10:02:00"), "order.purchased", {"amount": "5"}),
            activity("o3", "p1", at("10:03:00"), "order.purchased", {"amount": 4}),
            activity("c1", "p1", at("10:04:00"), "cart.added", {}),
        ],
    )
    assert [r[1:7] for r in result] == [
        ("avg", 1, "entered", at("10:03:00"), "event", "o3"),
        ("big", 1, "entered", at("10:01:00"), "event", "o1"),
        ("none", 1, "entered", at("10:00:00"), "event", "u1"),
        ("none", 2, "left", at("10:04:00"), "event", "c1"),
    ]


def test_operators_arrays_missing_values_and_case() -> None:
    cases: list[tuple[dict[str, Any], bool]] = [
        ({"trait": "custom.tags", "op": "contains", "value": "VIP", "ignore_case": True}, True),
        ({"trait": "custom.tags", "op": "contains", "value": "vi"}, False),
        ({"trait": "custom.tags", "op": "starts_with", "value": "ne"}, True),
        ({"trait": "custom.tags", "op": "eq", "value": "new"}, True),
        ({"trait": "custom.tags", "op": "neq", "value": "new"}, False),
        ({"trait": "custom.empty", "op": "exists"}, True),
        ({"trait": "custom.empty", "op": "neq", "value": 1}, True),
        ({"trait": "custom.nothing", "op": "not_exists"}, True),
        ({"trait": "custom.nothing", "op": "neq", "value": "a"}, True),
        ({"trait": "custom.nothing", "op": "not_in", "value": ["a"]}, True),
        ({"trait": "custom.nothing", "op": "lt", "value": 1}, False),
        ({"trait": "custom.flag", "op": "eq", "value": 1}, False),
        ({"trait": "custom.flag", "op": "gt", "value": 0}, False),
        ({"trait": "custom.flag", "op": "eq", "value": True}, True),
        ({"trait": "custom.n", "op": "eq", "value": 2.0}, True),
        ({"trait": "custom.n", "op": "between", "value": [2, 2]}, True),
        ({"trait": "custom.n", "op": "contains", "value": "2"}, False),
        ({"trait": "custom.street", "op": "eq", "value": "STRASSE", "ignore_case": True}, True),
        ({"trait": "custom.when", "op": "after", "value": "2025-12-31"}, True),
        ({"trait": "custom.when", "op": "before", "value": "2025-12-31T00:00:00Z"}, False),
        ({"trait": "custom.items.sku", "op": "in", "value": ["z", "b"]}, True),
        ({"trait": "custom.items.sku", "op": "exists"}, True),
        ({"trait": "custom.none_items.sku", "op": "exists"}, False),
        (
            {"trait": "location", "op": "near", "value": {"lat": 48.86, "lon": 2.35, "km": 400}},
            True,
        ),
        (
            {"trait": "location", "op": "near", "value": {"lat": 48.86, "lon": 2.35, "km": 300}},
            False,
        ),
    ]
    traits = {
        "custom": {
            "tags": ["new", "vip"],
            "empty": [],
            "flag": True,
            "n": 2,
            "street": "straße",
            "when": "2026-01-01",
            "items": [{"sku": "a"}, {"sku": "b"}],
            "none_items": [],
        },
        "location": {"lat": 45.76, "lon": 4.84},  # Lyon: ~392 km from Paris
    }
    segments = [definition(f"c{i}", condition) for i, (condition, _) in enumerate(cases)]
    result = run(segments, [updated("u1", "p1", T0, traits)])
    entered = {r[1] for r in result}
    assert entered == {f"c{i}" for i, (_, expected) in enumerate(cases) if expected}


def test_where_with_within_last_on_a_property_changes_with_time() -> None:
    fresh = definition(
        "fresh",
        {"event": "custom.x", "where": [{"property": "ts", "op": "within_last", "value": "1h"}]},
    )
    result = run(
        [fresh],
        [activity("x1", "p1", at("10:00:00"), "custom.x", {"ts": at("10:30:00")})],
        until=parse_datetime(at("23:00:00")),
    )
    assert [r[3:6] for r in result] == [
        ("entered", at("10:30:00"), "timer"),
        ("left", at("11:30:00"), "timer"),
    ]


def test_only_the_last_1000_ids_of_a_profile_are_remembered() -> None:
    views = [
        activity(f"v{i}", "p1", f"2026-01-01T10:{i // 60 % 60:02d}:{i % 60:02d}Z", "page.viewed")
        for i in range(1001)
    ]
    count = definition("count", {"event": "page.viewed", "count": {"op": "gte", "value": 1002}})
    again = [
        activity("v0", "p1", at("18:00:00"), "page.viewed"),  # forgotten: a new event
        activity("v1000", "p1", at("18:00:01"), "page.viewed"),  # remembered: a duplicate
    ]
    result = naive_replay([count], views + again)
    assert result.rejected_lines == []
    assert [r[3:7] for r in transitions(result.memberships)] == [
        ("entered", at("18:00:00"), "event", "v0")
    ]
