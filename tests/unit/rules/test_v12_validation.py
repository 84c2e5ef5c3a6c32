"""SPEC §4.4 (v1.2) constructs: valid forms pass, each broken rule is reported at its path in
plain words, and the pydantic models agree with the validator."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from segstream.rules import validate_definition
from segstream.schemas.segments import SegmentDefinition
from segstream.timefmt import DAY


def definition(condition: object, **fields: Any) -> dict[str, Any]:
    return {"id": "seg", "name": "Segment", "condition": condition, **fields}


DEFINED: dict[str, dict[str, Any]] = {
    "vip": definition({"trait": "vip", "op": "eq", "value": True}, id="vip"),
}


def _model_accepts(raw: object) -> bool:
    try:
        SegmentDefinition.model_validate(raw)
    except ValidationError:
        return False
    return True


CART_ABANDONED = {
    "event": "cart.added",
    "within": "7d",
    "not_followed_by": {"event": "order.purchased", "within": "1h"},
}
FUNNEL = {
    "sequence": [
        {"event": "product.viewed"},
        {"event": "cart.added", "where": [{"property": "price", "op": "gt", "value": 10}]},
        {"event": "order.purchased"},
    ],
    "within": "7d",
}


def _trait(op: str, value: object, **extra: Any) -> dict[str, Any]:
    return {"trait": "birthdate", "op": op, "value": value, **extra}


def _steps(n: int) -> list[dict[str, Any]]:
    return [{"event": "page.viewed"}] * n


VALID: list[object] = [
    CART_ABANDONED,
    {"event": "cart.added", "not_followed_by": {"event": "cart.added", "within": "365d"}},
    {
        "event": "cart.added",
        "where": [{"property": "price", "op": "gt", "value": 5}],
        "not_followed_by": {
            "event": "order.purchased",
            "where": [{"property": "amount", "op": "gte", "value": 5}],
            "within": "30m",
        },
    },
    FUNNEL,
    {"sequence": _steps(2)},
    {"sequence": _steps(10), "within": {"after": "2026-01-01"}},
    {"sequence": [{"event": "custom.signed_up", "where": []}, {"event": "app.installed"}]},
    {"segment": "vip", "for_at_least": "30d"},
    {"segment": "vip", "for_at_least": "36500d"},
    _trait("within_next", "14d"),
    _trait("within_next", "1s"),
    _trait("anniversary_within_next", "7d"),
    _trait("anniversary_within_next", "1d"),
    _trait("anniversary_within_last", "366d"),
    _trait("anniversary_within_last", "52w"),
    {"trait": "email", "op": "matches", "value": r"@(gmail|yahoo)\.com$", "ignore_case": True},
    {"trait": "email", "op": "matches", "value": ""},
    {"trait": "email", "op": "matches", "value": "x" * 1000},
    {"trait": "email", "op": "matches", "value": "é" * 1000},
    {
        "event": "order.purchased",
        "where": [
            {"property": "renewal", "op": "within_next", "value": "14d"},
            {"property": "first", "op": "anniversary_within_last", "value": "2w"},
            {"property": "coupon", "op": "matches", "value": "^SUMMER[0-9]+$"},
        ],
    },
]


@pytest.mark.parametrize("condition", VALID)
def test_valid(condition: object) -> None:
    assert validate_definition(definition(condition), DEFINED) == []


INVALID: list[tuple[object, str, str]] = [
    ({"sequence": _steps(1)}, "condition.sequence", "2 to 10 steps; this one has 1"),
    ({"sequence": _steps(11)}, "condition.sequence", "2 to 10 steps; this one has 11"),
    ({"sequence": []}, "condition.sequence", "2 to 10 steps"),
    ({"sequence": {"event": "page.viewed"}}, "condition.sequence", "needs a list of steps"),
    ({"sequence": [{"event": "page.viewed"}, 3]}, "condition.sequence[1]", "each step is an"),
    (
        {"sequence": [{"event": "page.viewed", "within": "1d"}, {"event": "cart.added"}]},
        "condition.sequence[0].within",
        "no window of its own",
    ),
    (
        {"sequence": [{"event": "page.viewed", "count": {"op": "gte", "value": 2}}] * 2},
        "condition.sequence[1].count",
        "takes no measure",
    ),
    (
        {"sequence": [{"event": "page.viewed"}, {"event": "profile.updated"}]},
        "condition.sequence[1].event",
        "profile change",
    ),
    (
        {"sequence": [{"event": "page.viewed"}, {"where": []}]},
        "condition.sequence[1].event",
        "missing 'event'",
    ),
    (
        {"sequence": [{"event": "page.viewed"}, {"event": "page.viewed", "x": 1}]},
        "condition.sequence[1].x",
        "not part of a sequence step",
    ),
    (
        {
            "sequence": [
                {"event": "page.viewed", "where": [{"property": "p", "op": "zz", "value": 1}]},
                {"event": "page.viewed"},
            ]
        },
        "condition.sequence[0].where[0].op",
        "is not an operator",
    ),
    ({"sequence": _steps(2), "within": "366d"}, "condition.within", "history kept"),
    ({"sequence": _steps(2), "count": 1}, "condition.count", "not part of a sequence"),
    (
        {**CART_ABANDONED, "count": {"op": "gte", "value": 1}},
        "condition.count",
        "takes no measure",
    ),
    (
        {"event": "cart.added", "sum": "price", "op": "gt", "value": 1, "not_followed_by": {}},
        "condition.sum",
        "takes no measure",
    ),
    (
        {**CART_ABANDONED, "op": "gt"},
        "condition.op",
        "takes no measure",
    ),
    (
        {"event": "cart.added", "not_followed_by": {"event": "order.purchased"}},
        "condition.not_followed_by.within",
        "missing 'within'",
    ),
    (
        {"event": "cart.added", "not_followed_by": {"event": "order.purchased", "within": "400d"}},
        "condition.not_followed_by.within",
        "history kept",
    ),
    (
        {
            "event": "cart.added",
            "not_followed_by": {"event": "order.purchased", "within": {"after": "2026-01-01"}},
        },
        "condition.not_followed_by.within",
        "is a duration",
    ),
    (
        {"event": "cart.added", "not_followed_by": {"event": "nope", "within": "1h"}},
        "condition.not_followed_by.event",
        "not an activity type",
    ),
    (
        {"event": "cart.added", "not_followed_by": {"within": "1h"}},
        "condition.not_followed_by.event",
        "missing 'event'",
    ),
    (
        {"event": "cart.added", "not_followed_by": {"event": "cart.added", "within": "1h", "n": 1}},
        "condition.not_followed_by.n",
        "not part of 'not_followed_by'",
    ),
    (
        {"event": "cart.added", "not_followed_by": "order.purchased"},
        "condition.not_followed_by",
        "needs the event",
    ),
    ({"segment": "vip", "for_at_least": "0d"}, "condition.for_at_least", "needs a duration"),
    ({"segment": "vip", "for_at_least": 30}, "condition.for_at_least", "needs a duration"),
    ({"segment": "vip", "for_at_least": "36501d"}, "condition.for_at_least", "36,500 days"),
    ({"segment": "nobody", "for_at_least": "1d"}, "condition.segment", "there is no segment"),
    (_trait("within_next", "soon"), "condition.value", "needs a duration"),
    (_trait("within_next", "36501d"), "condition.value", "36,500 days"),
    (_trait("anniversary_within_next", "24h"), "condition.value", "days or weeks"),
    (_trait("anniversary_within_next", "1m"), "condition.value", "days or weeks"),
    (_trait("anniversary_within_last", "367d"), "condition.value", "at most 366 days"),
    (_trait("anniversary_within_last", "53w"), "condition.value", "at most 366 days"),
    (_trait("anniversary_within_last", "0d"), "condition.value", "needs a duration"),
    ({"trait": "email", "op": "matches", "value": "(a"}, "condition.value", "not a valid RE2"),
    ({"trait": "email", "op": "matches", "value": r"(a)\1"}, "condition.value", "not a valid RE2"),
    ({"trait": "email", "op": "matches", "value": "(?<=a)b"}, "condition.value", "not a valid"),
    ({"trait": "email", "op": "matches", "value": "x" * 1001}, "condition.value", "at most 1,000"),
    ({"trait": "email", "op": "matches", "value": 5}, "condition.value", "needs a pattern"),
    (
        {
            "event": "page.viewed",
            "where": [{"property": "url", "op": "matches", "value": "[z-a]"}],
        },
        "condition.where[0].value",
        "not a valid RE2",
    ),
]


@pytest.mark.parametrize(("condition", "path", "words"), INVALID)
def test_invalid(condition: object, path: str, words: str) -> None:
    problems = validate_definition(definition(condition), DEFINED)
    assert any(p.path == path and words in p.message for p in problems), problems


def test_durations_are_bounded_by_the_retention_given() -> None:
    raw = definition(
        {"event": "cart.added", "not_followed_by": {"event": "order.purchased", "within": "2d"}}
    )
    problems = validate_definition(raw, {}, history_retention=1 * DAY)
    assert [p.path for p in problems] == ["condition.not_followed_by.within"]


_CONTEXT = ("there is no segment", "history kept", "36,500 days")


@pytest.mark.parametrize(
    "raw", [definition(c) for c in VALID] + [definition(c) for c, _, _ in INVALID]
)
def test_models_agree_with_the_validator(raw: object) -> None:
    problems = [
        p for p in validate_definition(raw, DEFINED) if not any(w in p.message for w in _CONTEXT)
    ]
    assert _model_accepts(raw) == (problems == [])
