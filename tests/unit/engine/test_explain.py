"""explain_condition and next_change_by_time on small hand-made profiles."""

from __future__ import annotations

import json

from segstream.engine.explain import (
    SEARCH_HORIZON,
    explain_condition,
    json_number,
    next_change_by_time,
)
from segstream.engine.replay import ReplaySession
from segstream.rules.compile import EvaluationContext
from segstream.timefmt import DAY, format_instant, parse_datetime


def session_with(definitions: list[dict], records: list[dict]) -> ReplaySession:
    session = ReplaySession()
    for definition in definitions:
        assert session.define(definition) == []
    for record in records:
        session.feed(json.dumps(record))
    return session


def purchase(n: int, at: str, amount: float | int) -> dict:
    return {
        "id": f"o{n}",
        "type": "order.purchased",
        "profile_id": "p1",
        "at": at,
        "properties": {"amount": amount},
    }


def test_numbers_json_cannot_carry_are_strings() -> None:
    assert json_number(2**63) == str(2**63)
    assert json_number(-(2**63)) == -(2**63)
    assert json_number(float("inf")) == "inf"
    assert json_number(float("-inf")) == "-inf"
    assert json_number(float("nan")) == "nan"
    assert json_number(True) is True
    assert json_number(1.5) == 1.5


def test_a_float_sum_that_overflows_is_shown_as_inf() -> None:
    condition = {"event": "order.purchased", "sum": "amount", "op": "gt", "value": 1}
    session = session_with(
        [{"id": "big", "name": "Big", "condition": condition}],
        [purchase(1, "2026-01-01T00:00:00Z", 1e308), purchase(2, "2026-01-01T00:01:00Z", 1e308)],
    )
    state = session.store.get("p1")
    assert state is not None
    tree = explain_condition(
        condition, EvaluationContext(state, session.now or 0, session.retention)
    )
    assert (tree["truth"], tree["measured"], tree["numbers"], tree["selected"]) == (
        True,
        "inf",
        2,
        2,
    )


def test_the_tree_names_paths_and_values_and_a_construct_without_a_case_still_gets_its_truth() -> (
    None
):
    condition = {
        "and": [
            {"trait": "age", "op": "gte", "value": 18},
            {"not": {"segment": "other"}},
        ]
    }
    session = session_with(
        [
            {"id": "other", "name": "Other", "condition": {"trait": "gender", "op": "exists"}},
            {"id": "adult", "name": "Adult", "condition": condition},
        ],
        [
            {
                "id": "u1",
                "type": "profile.updated",
                "profile_id": "p1",
                "at": "2026-01-01T00:00:00Z",
                "traits": {"birthdate": "2000-06-01"},
            }
        ],
    )
    state = session.store.get("p1")
    assert state is not None
    ctx = EvaluationContext(state, session.now or 0, session.retention)
    tree = explain_condition(condition, ctx)
    age, negation = tree["children"]
    assert (age["path"], age["values"], age["derived_from"]) == (
        "condition.and[0]",
        [25],
        "birthdate",
    )
    assert negation["children"][0] | {"member": False} == negation["children"][0]
    assert negation["children"][0]["path"] == "condition.and[1].not"
    assert tree["truth"] is True
    # A node kind explain has no case for (say, one added to the language later) is
    # evaluated by the compiler and shown as written.
    from segstream.engine import explain as module

    saved = module._EXPLAINERS.pop("trait")
    try:
        other = explain_condition(condition["and"][0], ctx)
    finally:
        module._EXPLAINERS["trait"] = saved
    assert other == {
        "path": "condition",
        "kind": "trait",
        "truth": True,
        "node": condition["and"][0],
    }


def test_until_when_follows_references_and_is_bounded_for_birthdays() -> None:
    recent = {"event": "order.purchased", "within": "7d"}
    definitions = [
        {"id": "recent", "name": "Recent", "condition": recent},
        {"id": "lapsed", "name": "Lapsed", "condition": {"not": {"segment": "recent"}}},
        {"id": "adult", "name": "Adult", "condition": {"trait": "age", "op": "gte", "value": 18}},
    ]
    session = session_with(
        definitions,
        [
            {
                "id": "u1",
                "type": "profile.updated",
                "profile_id": "p1",
                "at": "2026-01-01T00:00:00Z",
                "traits": {"birthdate": "2000-06-01"},
            },
            purchase(1, "2026-01-02T00:00:00Z", 5),
        ],
    )
    state = session.store.get("p1")
    assert state is not None
    now, definitions_now = session.now or 0, session.registry.definitions()
    leaves = next_change_by_time(definitions_now, "recent", state, now, session.retention)
    assert (format_instant(leaves.at or 0), leaves.entered) == ("2026-01-09T00:00:00Z", False)
    enters = next_change_by_time(definitions_now, "lapsed", state, now, session.retention)
    assert (enters.at, enters.entered, enters.truth_now) == (leaves.at, True, False)
    # Adult stays adult: the search fires birthdays until its bound (100 years) and says so;
    # with a lower count bound, it stops there.
    adult = next_change_by_time(definitions_now, "adult", state, now, session.retention)
    assert (adult.at, adult.bounded) == (None, True)
    assert adult.searched_until is not None
    assert now + SEARCH_HORIZON - 366 * DAY < adult.searched_until <= now + SEARCH_HORIZON
    few = next_change_by_time(definitions_now, "adult", state, now, session.retention, limit=3)
    assert (few.at, few.bounded) == (None, True)
    assert few.searched_until == parse_datetime("2028-06-01T00:00:00Z")
    # The live state was not touched.
    assert "recent" in state.members and state.timers == session.store.get("p1").timers
    assert parse_datetime("2026-01-09T00:00:00Z") == leaves.at
