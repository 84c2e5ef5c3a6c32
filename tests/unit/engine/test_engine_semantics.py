"""Engine semantics from SPEC §3 to §6, scenario by scenario."""

from __future__ import annotations

from scenario import activity, deleted, remove, run, seg, traits, upsert

US_WOMEN = seg(
    "us-women",
    {
        "and": [
            {"trait": "gender", "op": "eq", "value": "female"},
            {"trait": "location.country", "op": "in", "value": ["US"]},
        ]
    },
)


def test_trait_condition_enters_and_leaves() -> None:
    out = run(
        [US_WOMEN],
        [
            traits("e1", "p1", "2026-01-01T00:00:00Z", gender="female", location={"country": "US"}),
            traits("e2", "p1", "2026-01-02T00:00:00Z", location={"country": None}),
        ],
    )
    assert out == [
        ("+", "p1", "us-women@1#1", "2026-01-01T00:00:00Z", "event:e1"),
        ("-", "p1", "us-women@1#2", "2026-01-02T00:00:00Z", "event:e2"),
    ]


def test_duplicate_ids_have_no_effect_and_do_not_move_the_clock() -> None:
    cart = seg("cart", {"event": "cart.added", "within": "10s"})
    out = run(
        [cart],
        [
            activity("e1", "cart.added", "p1", "2026-01-01T00:00:00Z"),
            # A duplicate far in the future must not advance the clock (the timer at +10s
            # fires only when the next valid record passes it).
            activity("e1", "cart.added", "p1", "2026-01-05T00:00:00Z"),
            activity("e2", "page.viewed", "p1", "2026-01-01T00:00:05Z"),
        ],
    )
    assert out == [("+", "p1", "cart@1#1", "2026-01-01T00:00:00Z", "event:e1")]


def test_window_exit_fires_at_the_exact_instant_before_the_next_record() -> None:
    cart = seg("cart", {"event": "cart.added", "within": "5s"})
    out = run(
        [cart],
        [
            activity("e1", "cart.added", "p1", "2026-01-01T00:00:00.5Z"),
            activity("e2", "page.viewed", "p2", "2026-01-01T00:01:00Z"),
        ],
    )
    assert out == [
        ("+", "p1", "cart@1#1", "2026-01-01T00:00:00.5Z", "event:e1"),
        ("-", "p1", "cart@1#2", "2026-01-01T00:00:05.5Z", "timer"),
    ]


def test_until_fires_remaining_timers() -> None:
    cart = seg("cart", {"event": "cart.added", "within": "1h"})
    records = [activity("e1", "cart.added", "p1", "2026-01-01T00:00:00Z")]
    assert len(run([cart], records)) == 1
    assert run([cart], records, until="2026-01-01T00:59:59Z")[-1][0] == "+"
    assert run([cart], records, until="2026-01-01T01:00:00Z")[-1] == (
        "-",
        "p1",
        "cart@1#2",
        "2026-01-01T01:00:00Z",
        "timer",
    )


def test_late_event_counts_if_still_in_window_and_leaves_on_time() -> None:
    cart = seg("cart", {"event": "cart.added", "within": "1h"})
    out = run(
        [cart],
        [
            activity("e1", "page.viewed", "p1", "2026-01-01T10:00:00Z"),
            activity("e2", "cart.added", "p1", "2026-01-01T09:30:00Z"),  # late, still inside
            activity("e3", "cart.added", "p1", "2026-01-01T08:00:00Z"),  # late, outside
        ],
        until="2026-01-02T00:00:00Z",
    )
    assert out == [
        ("+", "p1", "cart@1#1", "2026-01-01T10:00:00Z", "event:e2"),
        ("-", "p1", "cart@1#2", "2026-01-01T10:30:00Z", "timer"),
    ]


def test_sum_over_window_with_array_paths() -> None:
    spender = seg(
        "spender",
        {
            "event": "order.purchased",
            "within": "30d",
            "sum": "products.price",
            "op": "gt",
            "value": 100,
        },
    )
    out = run(
        [spender],
        [
            activity(
                "o1",
                "order.purchased",
                "p1",
                "2026-01-01T00:00:00Z",
                products=[{"price": 40}, {"price": 30}],
            ),
            activity(
                "o2",
                "order.purchased",
                "p1",
                "2026-01-10T00:00:00Z",
                products=[{"price": 31}, {"price": "free"}],
            ),
        ],
        until="2026-03-01T00:00:00Z",
    )
    assert out == [
        ("+", "p1", "spender@1#1", "2026-01-10T00:00:00Z", "event:o2"),
        ("-", "p1", "spender@1#2", "2026-01-31T00:00:00Z", "timer"),
    ]


def test_avg_of_nothing_is_false_even_for_neq_but_sum_of_nothing_is_zero() -> None:
    avg = seg("avg", {"event": "order.purchased", "avg": "amount", "op": "neq", "value": 5})
    low = seg("low", {"event": "order.purchased", "sum": "amount", "op": "lt", "value": 5})
    out = run([avg, low], [activity("e1", "page.viewed", "p1", "2026-01-01T00:00:00Z")])
    assert out == [("+", "p1", "low@1#1", "2026-01-01T00:00:00Z", "event:e1")]


def test_where_filters_and_count_measure() -> None:
    fan = seg(
        "fan",
        {
            "event": "product.viewed",
            "where": [{"property": "category", "op": "eq", "value": "shoes", "ignore_case": True}],
            "count": {"op": "gte", "value": 2},
        },
    )
    out = run(
        [fan],
        [
            activity("e1", "product.viewed", "p1", "2026-01-01T00:00:00Z", category="Shoes"),
            activity("e2", "product.viewed", "p1", "2026-01-01T00:00:01Z", category="hats"),
            activity("e3", "product.viewed", "p1", "2026-01-01T00:00:02Z", category="SHOES"),
        ],
    )
    assert out == [("+", "p1", "fan@1#1", "2026-01-01T00:00:02Z", "event:e3")]


def test_retention_drops_old_events() -> None:
    ever = seg("ever", {"event": "app.installed"})
    out = run(
        [ever],
        [activity("e1", "app.installed", "p1", "2026-01-01T00:00:00Z")],
        until="2026-02-01T00:00:00Z",
        retention_days=10,
    )
    assert out == [
        ("+", "p1", "ever@1#1", "2026-01-01T00:00:00Z", "event:e1"),
        ("-", "p1", "ever@1#2", "2026-01-11T00:00:00Z", "timer"),
    ]


def test_derived_age_changes_on_birthday_29_february() -> None:
    adult = seg("adult", {"trait": "age", "op": "gte", "value": 18})
    out = run(
        [adult],
        [traits("e1", "p1", "2026-01-01T00:00:00Z", birthdate="2008-02-29")],
        until="2026-12-31T00:00:00Z",
    )
    # 2026 is not a leap year: 18 on 1 March.
    assert out == [("+", "p1", "adult@1#1", "2026-03-01T00:00:00Z", "timer")]


def test_within_last_on_a_date_trait_enters_and_leaves_on_time() -> None:
    recent = seg("recent", {"trait": "custom.signup", "op": "within_last", "value": "7d"})
    out = run(
        [recent],
        [traits("e1", "p1", "2026-01-01T00:00:00Z", custom={"signup": "2026-01-03"})],
        until="2026-02-01T00:00:00Z",
    )
    assert out == [
        ("+", "p1", "recent@1#1", "2026-01-03T00:00:00Z", "timer"),
        ("-", "p1", "recent@1#2", "2026-01-10T00:00:00Z", "timer"),
    ]


def test_more_than_ago_in_where() -> None:
    old_orders = seg(
        "old",
        {
            "event": "order.purchased",
            "where": [{"property": "shipped", "op": "more_than_ago", "value": "2d"}],
        },
    )
    out = run(
        [old_orders],
        [
            activity(
                "o1",
                "order.purchased",
                "p1",
                "2026-01-01T00:00:00Z",
                shipped="2026-01-01T12:00:00Z",
            )
        ],
        until="2026-01-10T00:00:00Z",
    )
    assert out == [("+", "p1", "old@1#1", "2026-01-03T12:00:00Z", "timer")]


def test_context_device_updates_device_traits() -> None:
    mobile = seg("mobile", {"trait": "device.type", "op": "eq", "value": "mobile"})
    record = activity("e1", "page.viewed", "p1", "2026-01-01T00:00:00Z")
    record["context"] = {"device": {"type": "mobile", "os": "iOS"}}
    nulling = activity("e2", "page.viewed", "p1", "2026-01-01T00:00:01Z")
    nulling["context"] = {"device": {"type": None}}
    out = run([mobile], [record, nulling])
    assert [o[0] for o in out] == ["+", "-"]


def test_vacuous_segment_on_profile_creation() -> None:
    not_female = seg("nf", {"not": {"trait": "gender", "op": "eq", "value": "female"}})
    out = run([not_female], [activity("e1", "page.viewed", "p1", "2026-01-01T00:00:00Z")])
    assert out == [("+", "p1", "nf@1#1", "2026-01-01T00:00:00Z", "event:e1")]


def test_profile_deletion_leaves_everything_and_seq_continues() -> None:
    anyone = seg("anyone", {"trait": "gender", "op": "exists"})
    out = run(
        [anyone],
        [
            traits("e1", "p1", "2026-01-01T00:00:00Z", gender="x"),
            deleted("d1", "p1", "2026-01-02T00:00:00Z"),
            deleted("d1", "p1", "2026-01-02T00:00:01Z"),  # duplicate
            traits("e1", "p1", "2026-01-03T00:00:00Z", gender="y"),  # id forgotten: new
        ],
    )
    assert out == [
        ("+", "p1", "anyone@1#1", "2026-01-01T00:00:00Z", "event:e1"),
        ("-", "p1", "anyone@1#2", "2026-01-02T00:00:00Z", "profile_deleted:d1"),
        ("+", "p1", "anyone@1#3", "2026-01-03T00:00:00Z", "event:e1"),
    ]


def test_segment_created_edited_renamed_deleted_and_recreated() -> None:
    a = seg("a", {"trait": "plan", "op": "eq", "value": "pro"})
    a2 = seg("a", {"trait": "plan", "op": "in", "value": ["pro", "free"]})
    out = run(
        [],
        [
            traits("e1", "p1", "2026-01-01T00:00:00Z", plan="pro"),
            traits("e2", "p2", "2026-01-01T00:00:00Z", plan="free"),
            upsert("2026-01-02T00:00:00Z", a),
            upsert("2026-01-03T00:00:00Z", seg("a", a["condition"], name="renamed")),
            upsert("2026-01-04T00:00:00Z", a2),
            remove("2026-01-05T00:00:00Z", "a"),
            remove("2026-01-05T00:00:00Z", "a"),  # unknown now: rejected
            upsert("2026-01-06T00:00:00Z", a),
        ],
    )
    assert out == [
        ("+", "p1", "a@1#1", "2026-01-02T00:00:00Z", "segment_created"),
        ("+", "p2", "a@2#1", "2026-01-04T00:00:00Z", "segment_updated"),
        ("-", "p1", "a@2#2", "2026-01-05T00:00:00Z", "segment_deleted"),
        ("-", "p2", "a@2#2", "2026-01-05T00:00:00Z", "segment_deleted"),
        ("+", "p1", "a@3#3", "2026-01-06T00:00:00Z", "segment_created"),
    ]


def test_dependents_follow_with_cause_segment_id() -> None:
    base = seg("base", {"trait": "plan", "op": "eq", "value": "pro"})
    dep = seg("dep", {"segment": "base"})
    dep2 = seg("dep2", {"not": {"segment": "dep"}})
    out = run(
        [base, dep, dep2],
        [
            traits("e1", "p1", "2026-01-01T00:00:00Z", plan="pro"),
            upsert(
                "2026-01-02T00:00:00Z", seg("base", {"trait": "plan", "op": "eq", "value": "x"})
            ),
            remove("2026-01-03T00:00:00Z", "dep"),
        ],
    )
    assert out == [
        ("+", "p1", "base@1#1", "2026-01-01T00:00:00Z", "event:e1"),
        ("+", "p1", "dep@1#1", "2026-01-01T00:00:00Z", "event:e1"),
        ("-", "p1", "base@2#2", "2026-01-02T00:00:00Z", "segment_updated"),
        ("-", "p1", "dep@1#2", "2026-01-02T00:00:00Z", "segment_updated:base"),
        ("+", "p1", "dep2@1#1", "2026-01-02T00:00:00Z", "segment_updated:base"),
    ]


def test_deleting_a_referenced_segment_reevaluates_dependents() -> None:
    base = seg("base", {"trait": "plan", "op": "eq", "value": "pro"})
    dep = seg("dep", {"segment": "base"})
    out = run(
        [base, dep],
        [
            traits("e1", "p1", "2026-01-01T00:00:00Z", plan="pro"),
            remove("2026-01-02T00:00:00Z", "base"),
        ],
    )
    assert out[2:] == [
        ("-", "p1", "base@1#2", "2026-01-02T00:00:00Z", "segment_deleted"),
        ("-", "p1", "dep@1#2", "2026-01-02T00:00:00Z", "segment_updated:base"),
    ]


def test_invalid_records_have_no_effect() -> None:
    cart = seg("cart", {"event": "cart.added", "within": "5s"})
    out = run(
        [cart],
        [
            activity("e1", "cart.added", "p1", "2026-01-01T00:00:00Z"),
            "not json",
            {"id": "x", "type": "nope", "profile_id": "p1", "at": "2026-01-02T00:00:00Z"},
            upsert("2026-01-03T00:00:00Z", seg("bad", {"segment": "missing"})),
        ],
    )
    # None of the invalid records advanced the clock, so the timer at +5s has not fired.
    assert out == [("+", "p1", "cart@1#1", "2026-01-01T00:00:00Z", "event:e1")]


def test_near_operator() -> None:
    paris = seg(
        "paris",
        {"trait": "location", "op": "near", "value": {"lat": 48.8566, "lon": 2.3522, "km": 50}},
    )
    out = run(
        [paris],
        [
            traits("e1", "p1", "2026-01-01T00:00:00Z", location={"lat": 48.80, "lon": 2.13}),
            traits("e2", "p2", "2026-01-01T00:00:00Z", location={"lat": 51.5, "lon": -0.12}),
        ],
    )
    assert [o[1] for o in out] == ["p1"]


def test_window_exit_after_moving_into_a_segments_guard() -> None:
    # Timers are kept only for leaves some segment could use for the profile: the purchase
    # made in Berlin gets no timer for the Paris segment until the profile moves to Paris.
    paris = seg(
        "paris-buyers",
        {
            "and": [
                {"trait": "location.city", "op": "eq", "value": "Paris"},
                {"event": "order.purchased", "within": "1d"},
            ]
        },
    )
    out = run(
        [paris],
        [
            traits("e1", "p1", "2026-01-01T00:00:00Z", location={"city": "Berlin"}),
            activity("e2", "order.purchased", "p1", "2026-01-01T01:00:00Z", amount=5),
            traits("e3", "p1", "2026-01-01T02:00:00Z", location={"city": "Paris"}),
            traits("e4", "p1", "2026-01-03T00:00:00Z", gender="female"),
        ],
    )
    assert out == [
        ("+", "p1", "paris-buyers@1#1", "2026-01-01T02:00:00Z", "event:e3"),
        ("-", "p1", "paris-buyers@1#2", "2026-01-02T01:00:00Z", "timer"),
    ]


def test_trait_time_exit_after_moving_into_a_segments_guard() -> None:
    # Same for trait timers: the signup-date timer for the Paris segment is set on the move.
    paris = seg(
        "paris-new",
        {
            "and": [
                {"trait": "location.city", "op": "eq", "value": "Paris"},
                {"trait": "signup_date", "op": "within_last", "value": "7d"},
            ]
        },
    )
    out = run(
        [paris],
        [
            traits(
                "e1",
                "p1",
                "2026-01-01T00:00:00Z",
                location={"city": "Berlin"},
                signup_date="2026-01-01T00:00:00Z",
            ),
            traits("e2", "p1", "2026-01-02T00:00:00Z", location={"city": "Paris"}),
            traits("e3", "p1", "2026-01-10T00:00:00Z", gender="female"),
        ],
    )
    assert out == [
        ("+", "p1", "paris-new@1#1", "2026-01-02T00:00:00Z", "event:e2"),
        ("-", "p1", "paris-new@1#2", "2026-01-08T00:00:00Z", "timer"),
    ]


def test_negated_leaves_move_members_out_and_non_members_in() -> None:
    # The engine evaluates only segments a changed leaf can move (by where the leaf occurs
    # un-negated or negated): a rise of a negated leaf must reach the members, a fall the
    # non-members.
    quiet = seg(
        "quiet",
        {
            "and": [
                {"trait": "location.country", "op": "eq", "value": "US"},
                {"not": {"event": "cart.added", "within": "5s"}},
                {"not": {"trait": "custom.plan", "op": "eq", "value": "pro"}},
            ]
        },
    )
    out = run(
        [quiet],
        [
            traits("e1", "p1", "2026-01-01T00:00:00Z", location={"country": "US"}),
            activity("e2", "cart.added", "p1", "2026-01-01T00:00:01Z"),
            traits("e3", "p1", "2026-01-01T00:00:10Z", custom={"plan": "pro"}),
            traits("e4", "p1", "2026-01-01T00:00:11Z", custom={"plan": "free"}),
        ],
    )
    assert out == [
        ("+", "p1", "quiet@1#1", "2026-01-01T00:00:00Z", "event:e1"),
        ("-", "p1", "quiet@1#2", "2026-01-01T00:00:01Z", "event:e2"),
        ("+", "p1", "quiet@1#3", "2026-01-01T00:00:06Z", "timer"),
        ("-", "p1", "quiet@1#4", "2026-01-01T00:00:10Z", "event:e3"),
        ("+", "p1", "quiet@1#5", "2026-01-01T00:00:11Z", "event:e4"),
    ]


def test_a_profile_without_history_skips_segments_that_need_an_event() -> None:
    buyers = seg(
        "fr-buyers",
        {
            "and": [
                {"trait": "location.country", "op": "eq", "value": "FR"},
                {"event": "order.purchased"},
            ]
        },
    )
    rare = seg(
        "fr-rare",
        {
            "and": [
                {"trait": "location.country", "op": "eq", "value": "FR"},
                {"event": "order.purchased", "count": {"op": "lt", "value": 2}},
            ]
        },
    )
    out = run(
        [buyers, rare],
        [
            traits("e1", "p1", "2026-01-01T00:00:00Z", location={"country": "FR"}),
            activity("e2", "order.purchased", "p1", "2026-01-01T00:00:01Z"),
            activity("e3", "order.purchased", "p1", "2026-01-01T00:00:02Z"),
        ],
    )
    assert out == [
        ("+", "p1", "fr-rare@1#1", "2026-01-01T00:00:00Z", "event:e1"),
        ("+", "p1", "fr-buyers@1#1", "2026-01-01T00:00:01Z", "event:e2"),
        ("-", "p1", "fr-rare@1#2", "2026-01-01T00:00:02Z", "event:e3"),
    ]


def test_a_count_below_a_bound_rises_when_events_leave_its_window() -> None:
    # At a window exit a count can only fall: `lt` leaves can only rise, so non-members
    # are the ones to evaluate.
    calm = seg(
        "calm",
        {
            "and": [
                {"trait": "location.country", "op": "eq", "value": "US"},
                {"event": "cart.added", "within": "5s", "count": {"op": "lt", "value": 2}},
            ]
        },
    )
    out = run(
        [calm],
        [
            traits("e1", "p1", "2026-01-01T00:00:00Z", location={"country": "US"}),
            activity("e2", "cart.added", "p1", "2026-01-01T00:00:01Z"),
            activity("e3", "cart.added", "p1", "2026-01-01T00:00:02Z"),
            activity("e4", "page.viewed", "p1", "2026-01-01T00:01:00Z"),
        ],
    )
    assert out == [
        ("+", "p1", "calm@1#1", "2026-01-01T00:00:00Z", "event:e1"),
        ("-", "p1", "calm@1#2", "2026-01-01T00:00:02Z", "event:e3"),
        ("+", "p1", "calm@1#3", "2026-01-01T00:00:06Z", "timer"),
    ]


def test_an_or_of_values_on_one_path_guards_like_in() -> None:
    either = seg(
        "lyon-or-paris-gold",
        {
            "and": [
                {
                    "or": [
                        {"trait": "location.city", "op": "eq", "value": "Lyon"},
                        {"trait": "location.city", "op": "eq", "value": "Paris"},
                    ]
                },
                {"trait": "custom.plan", "op": "eq", "value": "gold"},
            ]
        },
    )
    out = run(
        [either],
        [
            traits("e1", "p1", "2026-01-01T00:00:00Z", custom={"plan": "gold"}),
            traits("e2", "p1", "2026-01-01T00:00:01Z", location={"city": "Paris"}),
            traits("e3", "p1", "2026-01-01T00:00:02Z", location={"city": "Nice"}),
            traits("e4", "p1", "2026-01-01T00:00:03Z", location={"city": "Lyon"}),
        ],
    )
    assert out == [
        ("+", "p1", "lyon-or-paris-gold@1#1", "2026-01-01T00:00:01Z", "event:e2"),
        ("-", "p1", "lyon-or-paris-gold@1#2", "2026-01-01T00:00:02Z", "event:e3"),
        ("+", "p1", "lyon-or-paris-gold@1#3", "2026-01-01T00:00:03Z", "event:e4"),
    ]


def test_a_segment_requiring_another_enters_for_its_members_only() -> None:
    fr = seg("fr", {"trait": "location.country", "op": "eq", "value": "FR"})
    fr_buyers = seg(
        "fr-buyers",
        {"and": [{"segment": "fr"}, {"event": "order.purchased", "within": "7d"}]},
    )
    out = run(
        [fr, fr_buyers],
        [
            activity("e1", "order.purchased", "p1", "2026-01-01T00:00:00Z"),
            traits("e2", "p1", "2026-01-01T00:00:01Z", location={"country": "FR"}),
            activity("e3", "order.purchased", "p2", "2026-01-01T00:00:02Z"),
            activity("e4", "order.purchased", "p1", "2026-01-01T00:00:03Z"),
            traits("e5", "p1", "2026-01-01T00:00:04Z", location={"country": "US"}),
            traits("e6", "p2", "2026-01-01T00:00:05Z", location={"country": "FR"}),
            traits("e7", "p3", "2026-01-01T00:00:06Z", location={"country": "FR"}),
            activity("e8", "order.purchased", "p3", "2026-01-01T00:00:07Z"),
        ],
    )
    # A dependent that changes in the same pass shares the record's cause.
    assert out == [
        ("+", "p1", "fr@1#1", "2026-01-01T00:00:01Z", "event:e2"),
        ("+", "p1", "fr-buyers@1#1", "2026-01-01T00:00:01Z", "event:e2"),
        ("-", "p1", "fr@1#2", "2026-01-01T00:00:04Z", "event:e5"),
        ("-", "p1", "fr-buyers@1#2", "2026-01-01T00:00:04Z", "event:e5"),
        ("+", "p2", "fr@1#1", "2026-01-01T00:00:05Z", "event:e6"),
        ("+", "p2", "fr-buyers@1#1", "2026-01-01T00:00:05Z", "event:e6"),
        ("+", "p3", "fr@1#1", "2026-01-01T00:00:06Z", "event:e7"),
        ("+", "p3", "fr-buyers@1#1", "2026-01-01T00:00:07Z", "event:e8"),
    ]
