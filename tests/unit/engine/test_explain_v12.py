"""explain_condition on the v1.2 constructs (SPEC §4.4): what each node shows a marketer."""

from __future__ import annotations

import json
from typing import Any

from segstream.engine.explain import explain_condition, next_change_by_time
from segstream.engine.replay import ReplaySession
from segstream.rules.compile import EvaluationContext


def session_with(definitions: list[dict], records: list[dict]) -> ReplaySession:
    session = ReplaySession()
    for definition in definitions:
        assert session.define(definition) == []
    for record in records:
        session.feed(json.dumps(record))
    return session


def event(n: int, kind: str, at: str, **properties: Any) -> dict:
    return {"id": f"e{n}", "type": kind, "profile_id": "p1", "at": at, "properties": properties}


def explained(session: ReplaySession, condition: dict) -> dict:
    state = session.store.get("p1")
    assert state is not None
    return explain_condition(
        condition, EvaluationContext(state, session.now or 0, session.retention)
    )


FUNNEL = {
    "sequence": [
        {"event": "product.viewed"},
        {"event": "cart.added", "where": [{"property": "price", "op": "gt", "value": 10}]},
        {"event": "order.purchased"},
    ],
    "within": "1h",
}


def test_a_sequence_shows_per_step_the_selected_events_and_the_earliest_chain() -> None:
    records = [
        event(1, "cart.added", "2026-03-01T10:00:00Z", price=50),  # before any view: no step 2
        event(2, "product.viewed", "2026-03-01T10:05:00Z"),
        event(3, "product.viewed", "2026-03-01T10:06:00Z"),
        event(4, "cart.added", "2026-03-01T10:07:00Z", price=5),  # not selected by step 2
        event(5, "cart.added", "2026-03-01T10:08:00Z", price=20),
        # Same instant as the cart, later arrival: after it in event order.
        event(6, "order.purchased", "2026-03-01T10:08:00Z"),
    ]
    session = session_with([{"id": "funnel", "name": "Funnel", "condition": FUNNEL}], records)
    tree = explained(session, FUNNEL)
    assert (tree["kind"], tree["truth"], tree["within"]) == ("sequence", True, "1h")
    assert tree["window"]["at_or_before"] == "2026-03-01T10:08:00Z"
    assert tree["window"]["later_than"] == "2026-03-01T09:08:00Z"
    assert tree["steps"] == [
        {"event": "product.viewed", "selected": 2, "matched_at": "2026-03-01T10:05:00Z"},
        {"event": "cart.added", "selected": 2, "matched_at": "2026-03-01T10:08:00Z"},
        {"event": "order.purchased", "selected": 1, "matched_at": "2026-03-01T10:08:00Z"},
    ]
    state = session.store.get("p1")
    assert state is not None and "funnel" in state.members
    # Until when: the chain's first view leaves the 1h window at 11:05, and the second view
    # gives no other chain (no selected cart after it but 10:08's, which it precedes: one
    # still holds), so it is the 10:06 view leaving at 11:06 that ends it.
    alone = next_change_by_time(
        session.registry.definitions(), "funnel", state, session.now or 0, session.retention
    )
    assert (alone.as_json()["changes_at"], alone.entered) == ("2026-03-01T11:06:00Z", False)


def test_a_broken_sequence_shows_how_far_the_chain_got() -> None:
    records = [
        event(1, "order.purchased", "2026-03-01T10:00:00Z"),  # before the cart: not after it
        event(2, "product.viewed", "2026-03-01T10:05:00Z"),
        event(3, "cart.added", "2026-03-01T10:07:00Z", price=20),
    ]
    session = session_with([{"id": "funnel", "name": "Funnel", "condition": FUNNEL}], records)
    tree = explained(session, FUNNEL)
    assert tree["truth"] is False
    assert [(s["selected"], s["matched_at"]) for s in tree["steps"]] == [
        (1, "2026-03-01T10:05:00Z"),
        (1, "2026-03-01T10:07:00Z"),
        (1, None),
    ]


CART = {
    "event": "cart.added",
    "within": "7d",
    "not_followed_by": {"event": "order.purchased", "within": "1h"},
}


def test_not_followed_by_names_the_candidate_that_satisfies_it_and_a_blocked_one() -> None:
    records = [
        event(1, "cart.added", "2026-03-01T10:00:00Z"),
        event(2, "order.purchased", "2026-03-01T10:30:00Z"),  # cancels cart 1
        event(3, "cart.added", "2026-03-01T12:00:00Z"),  # nothing within 1h: satisfies
        event(4, "cart.added", "2026-03-01T13:30:00Z"),  # its hour has not passed yet
        event(5, "custom.touched", "2026-03-01T14:00:00Z"),
    ]
    session = session_with([{"id": "abandoned", "name": "Abandoned", "condition": CART}], records)
    tree = explained(session, CART)
    assert (tree["kind"], tree["truth"], tree["measure"], tree["candidates"]) == (
        "event",
        True,
        "not_followed_by",
        3,
    )
    assert tree["not_followed_by"] == CART["not_followed_by"]
    assert tree["satisfied_by"] == {"at": "2026-03-01T12:00:00Z", "until": "2026-03-01T13:00:00Z"}
    assert tree["blocked"] == {
        "at": "2026-03-01T10:00:00Z",
        "until": "2026-03-01T11:00:00Z",
        "by": "2026-03-01T10:30:00Z",
    }
    assert tree["waiting"] is None  # the search stops at the satisfying candidate


def test_not_followed_by_false_while_waiting_then_true_at_a_plus_d() -> None:
    records = [
        event(1, "cart.added", "2026-03-01T10:00:00Z"),
        event(2, "order.purchased", "2026-03-01T10:00:00Z"),  # same instant, later: follows
        event(3, "cart.added", "2026-03-01T10:20:00Z"),
        event(4, "custom.touched", "2026-03-01T10:40:00Z"),
    ]
    definitions = [{"id": "abandoned", "name": "Abandoned", "condition": CART}]
    session = session_with(definitions, records)
    tree = explained(session, CART)
    assert (tree["truth"], tree["satisfied_by"]) == (False, None)
    assert tree["blocked"] is None  # cart 1's hour has not passed either
    assert tree["waiting"] == {"at": "2026-03-01T10:00:00Z", "until": "2026-03-01T11:00:00Z"}
    state = session.store.get("p1")
    assert state is not None
    now = session.now or 0
    # Cart 1 is cancelled by the purchase; cart 3 makes it true at 11:20.
    alone = next_change_by_time(
        session.registry.definitions(), "abandoned", state, now, 0 or session.retention
    )
    assert (alone.as_json()["changes_at"], alone.entered) == ("2026-03-01T11:20:00Z", True)


def test_for_at_least_shows_entered_at_and_when_it_becomes_true() -> None:
    tenured = {"segment": "buyer", "for_at_least": "2d"}
    definitions = [
        {"id": "buyer", "name": "Buyer", "condition": {"event": "order.purchased"}},
        {"id": "loyal", "name": "Loyal", "condition": tenured},
    ]
    records = [
        event(1, "order.purchased", "2026-03-01T10:00:00Z"),
        event(2, "custom.touched", "2026-03-02T10:00:00Z"),
    ]
    session = session_with(definitions, records)
    tree = explained(session, tenured)
    assert tree == {
        "path": "condition",
        "kind": "segment",
        "truth": False,
        "segment": "buyer",
        "member": True,
        "entered_at": "2026-03-01T10:00:00Z",
        "for_at_least": "2d",
        "true_from": "2026-03-03T10:00:00Z",
    }
    outsider = explained(session_with(definitions, records[1:]), tenured)
    assert (outsider["member"], outsider["entered_at"], outsider["true_from"]) == (
        False,
        None,
        None,
    )


def test_v12_trait_operators_show_the_value_compared_and_the_operand_as_written() -> None:
    profile = {
        "id": "u1",
        "type": "profile.updated",
        "profile_id": "p1",
        "at": "2026-03-01T00:00:00Z",
        "traits": {"renewal": "2026-03-05", "joined": "2020-03-03", "city": "STRASSE 1"},
    }
    session = session_with([], [profile])
    cases = [
        ({"trait": "renewal", "op": "within_next", "value": "7d"}, True, "2026-03-05"),
        ({"trait": "joined", "op": "anniversary_within_next", "value": "2d"}, False, "2020-03-03"),
        ({"trait": "joined", "op": "anniversary_within_next", "value": "3d"}, True, "2020-03-03"),
        ({"trait": "joined", "op": "anniversary_within_last", "value": "1w"}, False, "2020-03-03"),
        ({"trait": "city", "op": "matches", "value": "^stra(ss|ß)e\\s\\d+$"}, False, "STRASSE 1"),
    ]
    for condition, truth, value in cases:
        tree = explained(session, condition)
        assert (tree["kind"], tree["truth"], tree["op"], tree["value"], tree["values"]) == (
            "trait",
            truth,
            condition["op"],
            condition["value"],
            [value],
        ), condition
    folded = {"trait": "city", "op": "matches", "value": "^stra(ss|ß)e", "ignore_case": True}
    tree = explained(session, folded)
    assert (tree["truth"], tree["value"], tree["ignore_case"]) == (True, "^stra(ss|ß)e", True)
