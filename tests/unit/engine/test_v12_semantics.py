"""SPEC §4.4 (v1.2) semantics, one construct and boundary at a time, under the event clock.

Every scenario is checked twice: against the transitions written out here, and against the
naive reference (tests/reference), which reads the SPEC sentence by sentence.
"""

from __future__ import annotations

from typing import Any

import orjson
from scenario import Transition, activity, run, seg, traits, upsert

from reference.naive import naive_replay
from reference.records import transitions
from segstream.engine.replay import run_replay
from segstream.timefmt import DAY, parse_instant

CART = seg(
    "abandoned",
    {
        "event": "cart.added",
        "within": "7d",
        "not_followed_by": {"event": "order.purchased", "within": "1h"},
    },
)
FUNNEL = seg(
    "funnel",
    {
        "sequence": [
            {"event": "product.viewed"},
            {"event": "cart.added", "where": [{"property": "price", "op": "gt", "value": 10}]},
            {"event": "order.purchased"},
        ],
        "within": "1h",
    },
)


def both(
    segments: list[dict[str, Any]], records: list[Any], until: str | None = None
) -> list[Transition]:
    """The engine's transitions, after checking that the reference emits the same."""
    lines = [orjson.dumps(r).decode() for r in records]
    limit = parse_instant(until) if until else None
    engine = run_replay(segments, lines, until=limit, history_retention=365 * DAY)
    reference = naive_replay(segments, lines, until=limit, history_retention=365 * DAY)
    assert transitions(engine.memberships) == transitions(reference.memberships)
    return run(segments, records, until=until)


# -- not_followed_by --------------------------------------------------------------------------
def test_abandoned_cart_enters_at_a_at_plus_d() -> None:
    out = both(
        [CART],
        [activity("c1", "cart.added", "p1", "2026-03-01T10:00:00Z")],
        until="2026-03-02T00:00:00Z",
    )
    assert out == [("+", "p1", "abandoned@1#1", "2026-03-01T11:00:00Z", "timer")]


def test_purchase_within_d_keeps_the_cart_out() -> None:
    out = both(
        [CART],
        [
            activity("c1", "cart.added", "p1", "2026-03-01T10:00:00Z"),
            activity("o1", "order.purchased", "p1", "2026-03-01T10:59:59Z"),
        ],
        until="2026-03-02T00:00:00Z",
    )
    assert out == []


def test_purchase_exactly_at_a_at_plus_d_fires_the_timer_first() -> None:
    # SPEC §4.4: under the event clock, entered (timer) then left (the b at a.at + D).
    out = both(
        [CART],
        [
            activity("c1", "cart.added", "p1", "2026-03-01T10:00:00Z"),
            activity("o1", "order.purchased", "p1", "2026-03-01T11:00:00Z"),
        ],
    )
    assert out == [
        ("+", "p1", "abandoned@1#1", "2026-03-01T11:00:00Z", "timer"),
        ("-", "p1", "abandoned@1#2", "2026-03-01T11:00:00Z", "event:o1"),
    ]


def test_a_late_purchase_within_d_makes_the_profile_leave() -> None:
    out = both(
        [CART],
        [
            activity("c1", "cart.added", "p1", "2026-03-01T10:00:00Z"),
            activity("v1", "page.viewed", "p1", "2026-03-01T12:00:00Z"),
            activity("o1", "order.purchased", "p1", "2026-03-01T10:30:00Z"),  # late
        ],
    )
    assert out == [
        ("+", "p1", "abandoned@1#1", "2026-03-01T11:00:00Z", "timer"),
        ("-", "p1", "abandoned@1#2", "2026-03-01T12:00:00Z", "event:o1"),
    ]


def test_equal_at_follows_only_when_it_arrived_later() -> None:
    # Same `at`: the purchase that arrived after the cart follows it; one before does not.
    later = both(
        [CART],
        [
            activity("c1", "cart.added", "p1", "2026-03-01T10:00:00Z"),
            activity("o1", "order.purchased", "p1", "2026-03-01T10:00:00Z"),
        ],
        until="2026-03-02T00:00:00Z",
    )
    earlier = both(
        [CART],
        [
            activity("o1", "order.purchased", "p1", "2026-03-01T10:00:00Z"),
            activity("c1", "cart.added", "p1", "2026-03-01T10:00:00Z"),
        ],
        until="2026-03-02T00:00:00Z",
    )
    assert later == []
    assert earlier == [("+", "p1", "abandoned@1#1", "2026-03-01T11:00:00Z", "timer")]


def test_the_cart_leaves_with_its_window() -> None:
    out = both(
        [CART],
        [activity("c1", "cart.added", "p1", "2026-03-01T10:00:00Z")],
        until="2026-03-09T00:00:00Z",
    )
    assert out == [
        ("+", "p1", "abandoned@1#1", "2026-03-01T11:00:00Z", "timer"),
        ("-", "p1", "abandoned@1#2", "2026-03-08T10:00:00Z", "timer"),
    ]


def test_same_type_follows_itself_and_where_of_b_applies() -> None:
    again = seg(
        "once",
        {
            "event": "cart.added",
            "not_followed_by": {
                "event": "cart.added",
                "where": [{"property": "price", "op": "gt", "value": 5}],
                "within": "1h",
            },
        },
    )
    out = both(
        [again],
        [
            activity("c1", "cart.added", "p1", "2026-03-01T10:00:00Z", price=1),
            activity("c2", "cart.added", "p1", "2026-03-01T10:10:00Z", price=1),
            activity("c3", "cart.added", "p2", "2026-03-01T10:00:00Z", price=9),
            activity("c4", "cart.added", "p2", "2026-03-01T10:20:00Z", price=9),
        ],
        until="2026-03-01T12:00:00Z",
    )
    # p1's carts are cheap: nothing follows them. p2's c3 is followed by c4; c4 by nothing.
    assert out == [
        ("+", "p1", "once@1#1", "2026-03-01T11:00:00Z", "timer"),
        ("+", "p2", "once@1#1", "2026-03-01T11:20:00Z", "timer"),
    ]


# -- sequences --------------------------------------------------------------------------------
def test_funnel_in_order_enters_and_leaves_with_the_first_step() -> None:
    out = both(
        [FUNNEL],
        [
            activity("v1", "product.viewed", "p1", "2026-03-01T10:00:00Z"),
            activity("c1", "cart.added", "p1", "2026-03-01T10:05:00Z", price=20),
            activity("o1", "order.purchased", "p1", "2026-03-01T10:10:00Z"),
        ],
        until="2026-03-02T00:00:00Z",
    )
    assert out == [
        ("+", "p1", "funnel@1#1", "2026-03-01T10:10:00Z", "event:o1"),
        ("-", "p1", "funnel@1#2", "2026-03-01T11:00:00Z", "timer"),
    ]


def test_funnel_out_of_order_or_failing_where_stays_out() -> None:
    out = both(
        [FUNNEL],
        [
            activity("c1", "cart.added", "p1", "2026-03-01T10:00:00Z", price=20),
            activity("v1", "product.viewed", "p1", "2026-03-01T10:05:00Z"),
            activity("o1", "order.purchased", "p1", "2026-03-01T10:10:00Z"),
            activity("v2", "product.viewed", "p2", "2026-03-01T10:00:00Z"),
            activity("c2", "cart.added", "p2", "2026-03-01T10:05:00Z", price=5),
            activity("o2", "order.purchased", "p2", "2026-03-01T10:10:00Z"),
        ],
    )
    assert out == []


def test_a_late_step_completes_the_sequence() -> None:
    out = both(
        [FUNNEL],
        [
            activity("v1", "product.viewed", "p1", "2026-03-01T10:00:00Z"),
            activity("o1", "order.purchased", "p1", "2026-03-01T10:10:00Z"),
            activity("c1", "cart.added", "p1", "2026-03-01T10:05:00Z", price=20),  # late
        ],
    )
    assert out == [("+", "p1", "funnel@1#1", "2026-03-01T10:10:00Z", "event:c1")]


def test_one_event_never_serves_two_steps() -> None:
    twice = seg("twice", {"sequence": [{"event": "page.viewed"}, {"event": "page.viewed"}]})
    out = both(
        [twice],
        [
            activity("v1", "page.viewed", "p1", "2026-03-01T10:00:00Z"),
            activity("v2", "page.viewed", "p1", "2026-03-01T10:00:00Z"),  # equal at, later
        ],
    )
    assert out == [("+", "p1", "twice@1#1", "2026-03-01T10:00:00Z", "event:v2")]


# -- for_at_least -----------------------------------------------------------------------------
VIP = seg("vip", {"trait": "vip", "op": "eq", "value": True})
LOYAL = seg("loyal", {"segment": "vip", "for_at_least": "1d"})


def test_for_at_least_enters_a_day_after_the_membership_began() -> None:
    out = both(
        [VIP, LOYAL],
        [
            traits("t1", "p1", "2026-03-01T10:00:00Z", vip=True),
            # An edit of vip that keeps p1 a member does not restart the day.
            upsert(
                "2026-03-01T20:00:00Z", seg("vip", {"trait": "vip", "op": "in", "value": [True]})
            ),
            traits("t2", "p1", "2026-03-03T00:00:00Z", vip=False),
            traits("t3", "p1", "2026-03-04T00:00:00Z", vip=True),
        ],
        until="2026-03-06T00:00:00Z",
    )
    assert out == [
        ("+", "p1", "vip@1#1", "2026-03-01T10:00:00Z", "event:t1"),
        ("+", "p1", "loyal@1#1", "2026-03-02T10:00:00Z", "timer"),
        ("-", "p1", "vip@2#2", "2026-03-03T00:00:00Z", "event:t2"),
        ("-", "p1", "loyal@1#2", "2026-03-03T00:00:00Z", "event:t2"),
        ("+", "p1", "vip@2#3", "2026-03-04T00:00:00Z", "event:t3"),
        ("+", "p1", "loyal@1#3", "2026-03-05T00:00:00Z", "timer"),
    ]


def test_for_at_least_created_later_counts_from_the_old_entry() -> None:
    out = both(
        [VIP],
        [
            traits("t1", "p1", "2026-03-01T10:00:00Z", vip=True),
            upsert("2026-03-01T12:00:00Z", LOYAL),
            upsert("2026-03-03T00:00:00Z", seg("late", {"segment": "vip", "for_at_least": "1h"})),
        ],
        until="2026-03-04T00:00:00Z",
    )
    assert out == [
        ("+", "p1", "vip@1#1", "2026-03-01T10:00:00Z", "event:t1"),
        ("+", "p1", "loyal@1#1", "2026-03-02T10:00:00Z", "timer"),
        ("+", "p1", "late@1#1", "2026-03-03T00:00:00Z", "segment_created"),
    ]


# -- within_next and anniversaries ------------------------------------------------------------
def test_within_next_is_true_from_v_minus_d_until_v() -> None:
    renewal = seg("renewing", {"trait": "renewal", "op": "within_next", "value": "7d"})
    out = both(
        [renewal],
        [traits("t1", "p1", "2026-03-01T00:00:00Z", renewal="2026-03-10")],
        until="2026-03-20T00:00:00Z",
    )
    assert out == [
        ("+", "p1", "renewing@1#1", "2026-03-03T00:00:00Z", "timer"),
        ("-", "p1", "renewing@1#2", "2026-03-10T00:00:00Z", "timer"),
    ]


def test_leap_day_birthdays_fall_on_the_first_of_march_in_common_years() -> None:
    soon = seg("soon", {"trait": "birthdate", "op": "anniversary_within_next", "value": "7d"})
    out = both(
        [soon],
        [traits("t1", "p1", "2026-06-01T00:00:00Z", birthdate="2000-02-29")],
        until="2028-03-05T00:00:00Z",
    )
    assert out == [
        ("+", "p1", "soon@1#1", "2027-02-23T00:00:00Z", "timer"),
        ("-", "p1", "soon@1#2", "2027-03-02T00:00:00Z", "timer"),
        ("+", "p1", "soon@1#3", "2028-02-23T00:00:00Z", "timer"),
        ("-", "p1", "soon@1#4", "2028-03-01T00:00:00Z", "timer"),
    ]


def test_anniversary_within_last_across_a_year_end() -> None:
    recent = seg(
        "anniversary",
        {"trait": "custom.signup", "op": "anniversary_within_last", "value": "2d"},
    )
    out = both(
        [recent],
        [traits("t1", "p1", "2026-01-05T00:00:00Z", custom={"signup": "2025-12-31T18:00:00Z"})],
        until="2027-01-10T00:00:00Z",
    )
    assert out == [
        ("+", "p1", "anniversary@1#1", "2026-12-31T00:00:00Z", "timer"),
        ("-", "p1", "anniversary@1#2", "2027-01-02T00:00:00Z", "timer"),
    ]


def test_the_first_anniversary_is_a_year_after_the_date() -> None:
    today = seg("today", {"trait": "since", "op": "anniversary_within_last", "value": "1d"})
    out = both(
        [today],
        [traits("t1", "p1", "2026-03-01T12:00:00Z", since="2026-03-01")],
        until="2027-03-03T00:00:00Z",
    )
    assert out == [
        ("+", "p1", "today@1#1", "2027-03-01T00:00:00Z", "timer"),
        ("-", "p1", "today@1#2", "2027-03-02T00:00:00Z", "timer"),
    ]


def test_anniversary_in_where_changes_at_day_boundaries() -> None:
    booked = seg(
        "trip-anniversary",
        {
            "event": "order.purchased",
            "where": [{"property": "trip", "op": "anniversary_within_next", "value": "1d"}],
        },
    )
    out = both(
        [booked],
        [activity("o1", "order.purchased", "p1", "2026-03-01T00:00:00Z", trip="2025-03-05")],
        until="2026-03-07T00:00:00Z",
    )
    assert out == [
        ("+", "p1", "trip-anniversary@1#1", "2026-03-05T00:00:00Z", "timer"),
        ("-", "p1", "trip-anniversary@1#2", "2026-03-06T00:00:00Z", "timer"),
    ]


# -- matches ----------------------------------------------------------------------------------
def test_matches_uses_re2_simple_case_folding() -> None:
    street = seg(
        "street", {"trait": "street", "op": "matches", "value": "straße", "ignore_case": True}
    )
    folded = seg("folded", {"trait": "street", "op": "eq", "value": "straße", "ignore_case": True})
    gmail = seg(
        "gmail", {"trait": "emails", "op": "matches", "value": r"@gmail\.com$", "ignore_case": True}
    )
    out = both(
        [street, folded, gmail],
        [
            traits("t1", "p1", "2026-03-01T00:00:00Z", street="STRASSE"),
            traits("t2", "p2", "2026-03-01T00:00:00Z", street="Hauptstraße 1"),
            traits("t3", "p3", "2026-03-01T00:00:00Z", emails=[3, "a@GMAIL.com"]),
        ],
    )
    assert out == [
        ("+", "p1", "folded@1#1", "2026-03-01T00:00:00Z", "event:t1"),
        ("+", "p2", "street@1#1", "2026-03-01T00:00:00Z", "event:t2"),
        ("+", "p3", "gmail@1#1", "2026-03-01T00:00:00Z", "event:t3"),
    ]
