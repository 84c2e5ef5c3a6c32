"""analyze_condition, transitively_time_dependent and condition_fingerprint."""

from __future__ import annotations

from typing import Any

import pytest

from segstream.rules import (
    ConditionFacts,
    analyze_condition,
    condition_fingerprint,
    transitively_time_dependent,
)


def test_facts_are_sorted_unique_and_do_not_follow_references() -> None:
    condition = {
        "and": [
            {"trait": "location.country", "op": "eq", "value": "US"},
            {"trait": "gender", "op": "exists"},
            {"not": {"trait": "gender", "op": "eq", "value": "x"}},
            {"or": [{"segment": "vip"}, {"segment": "b2b"}, {"segment": "vip"}]},
            {"event": "page.viewed", "where": [{"property": "url", "op": "exists"}]},
            {"event": "custom.z", "within": {"after": "2026-01-01"}},
            {"event": "page.viewed", "sum": "x", "op": "gt", "value": 1},
        ]
    }
    assert analyze_condition(condition) == ConditionFacts(
        traits=("gender", "location.country"),
        events=("custom.z", "page.viewed"),
        segments=("b2b", "vip"),
        time_dependent=False,
    )


@pytest.mark.parametrize(
    ("condition", "expected"),
    [
        ({"event": "page.viewed", "within": "30d"}, True),
        ({"event": "page.viewed", "within": {"after": "2026-01-01"}}, False),
        ({"event": "page.viewed"}, False),
        (
            {
                "event": "page.viewed",
                "where": [{"property": "at", "op": "within_last", "value": "1d"}],
            },
            True,
        ),
        (
            {
                "event": "page.viewed",
                "where": [{"property": "at", "op": "more_than_ago", "value": "1d"}],
            },
            True,
        ),
        ({"trait": "signup", "op": "within_last", "value": "7d"}, True),
        ({"not": {"trait": "signup", "op": "more_than_ago", "value": "7d"}}, True),
        ({"trait": "age", "op": "gte", "value": 18}, True),
        ({"trait": "age", "op": "exists"}, True),
        ({"trait": "birthdate", "op": "before", "value": "2000-01-01"}, False),
        ({"trait": "birthdate", "op": "exists"}, False),
        ({"trait": "signup", "op": "after", "value": "2026-01-01"}, False),
        ({"trait": "custom.age", "op": "gt", "value": 1}, False),
        ({"segment": "timed"}, False),
    ],
)
def test_own_time_dependence(condition: dict[str, Any], expected: bool) -> None:
    assert analyze_condition(condition).time_dependent is expected


def test_time_dependence_through_references() -> None:
    timed = analyze_condition({"event": "page.viewed", "within": "1h"})
    middle = analyze_condition({"or": [{"segment": "timed"}]})
    plain = analyze_condition({"trait": "a", "op": "exists"})
    known = {"timed": timed, "middle": middle, "plain": plain}
    top = analyze_condition({"and": [{"segment": "middle"}, {"segment": "plain"}]})
    assert transitively_time_dependent(top, known)
    assert not transitively_time_dependent(analyze_condition({"segment": "plain"}), known)
    assert not transitively_time_dependent(analyze_condition({"segment": "gone"}), known)


def test_fingerprint_is_canonical_and_exact() -> None:
    a = {"trait": "t", "op": "eq", "value": 1}
    assert condition_fingerprint(a) == condition_fingerprint({"value": 1, "op": "eq", "trait": "t"})
    values = [condition_fingerprint({**a, "value": v}) for v in (1, 1.0, True, "1")]
    assert len(set(values)) == 4
    assert condition_fingerprint(a) != condition_fingerprint({**a, "ignore_case": False})
    nested = {"and": [{"b": 1, "a": 2}]}
    assert condition_fingerprint(nested) == b'{"and":[{"a":2,"b":1}]}'


def test_fingerprint_of_integers_beyond_64_bits() -> None:
    big = {"trait": "t", "op": "eq", "value": 10**30}
    assert condition_fingerprint(big) == condition_fingerprint(dict(reversed(big.items())))
    assert condition_fingerprint(big) != condition_fingerprint({**big, "value": 1e30})
    assert b"1000000000000000000000000000000" in condition_fingerprint(big)
