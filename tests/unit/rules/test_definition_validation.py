"""validate_definition: every rule of SPEC §4 reported at its JSON path, in plain words."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from segstream.errors import Problem
from segstream.rules import validate_definition
from segstream.schemas.segments import SegmentDefinition
from segstream.timefmt import DAY


def definition(condition: object, **fields: Any) -> dict[str, Any]:
    return {"id": "seg", "name": "Segment", "condition": condition, **fields}


def trait(op: str, *value: object, **extra: Any) -> dict[str, Any]:
    node: dict[str, Any] = {"trait": "t", "op": op, **extra}
    if value:
        node["value"] = value[0]
    return node


def nested_not(levels: int) -> dict[str, Any]:
    node: dict[str, Any] = {"trait": "t", "op": "exists"}
    for _ in range(levels):
        node = {"not": node}
    return node


DEFINED: dict[str, dict[str, Any]] = {
    "vip": definition({"trait": "vip", "op": "eq", "value": True}, id="vip"),
    "spenders": definition({"segment": "vip"}, id="spenders"),
}

VALID_CONDITIONS: list[object] = [
    {
        "and": [
            {"trait": "gender", "op": "eq", "value": "female"},
            {"trait": "location.country", "op": "in", "value": ["US"]},
        ]
    },
    {"or": [{"segment": "vip"}, {"not": {"segment": "spenders"}}]},
    trait("eq", "x", ignore_case=True),
    trait("neq", 1.5),
    trait("eq", False, ignore_case=False),
    trait("in", ["a", 1, True]),
    trait("not_in", [0]),
    trait("gt", 1),
    trait("gte", -2.5),
    trait("lt", 0),
    trait("lte", 2**63 - 1),
    trait("gte", -(2**63)),
    trait("within_last", "36500d"),
    trait("between", [1, 1]),
    trait("between", [-1.5, 2]),
    trait("exists"),
    trait("not_exists", ignore_case=True),
    trait("contains", "x"),
    trait("contains", 3),
    trait("contains", True),
    trait("starts_with", ""),
    trait("ends_with", "z"),
    trait("before", "2026-11-28"),
    trait("after", "2026-11-28T10:00:00.5+02:00"),
    trait("within_last", "30d"),
    trait("more_than_ago", "2w"),
    trait("near", {"lat": 52.5, "lon": 13.4, "km": 0.5}),
    {"trait": "age", "op": "gte", "value": 18},
    {"event": "order.purchased"},
    {"event": "custom.signed_up", "within": "365d"},
    {"event": "page.viewed", "within": {"after": "2026-01-01"}},
    {"event": "page.viewed", "within": {"before": "2026-01-01T00:00:00Z"}},
    {"event": "page.viewed", "within": {"after": "2026-02-01", "before": "2026-01-01"}},
    {"event": "page.viewed", "where": []},
    {
        "event": "order.purchased",
        "where": [
            {"property": "products.product_id", "op": "eq", "value": "p1"},
            {"property": "amount", "op": "between", "value": [1, 2], "ignore_case": False},
        ],
        "within": "30d",
        "count": {"op": "gte", "value": 2},
    },
    {"event": "order.purchased", "count": {"op": "between", "value": [0, 3]}},
    {"event": "order.purchased", "sum": "amount", "op": "gt", "value": 100},
    {"event": "order.purchased", "avg": "products.price", "op": "between", "value": [1, 2.5]},
    {"event": "order.purchased", "min": "amount", "op": "neq", "value": -1},
    {"event": "order.purchased", "max": "amount", "op": "lte", "value": 1e6},
    {"and": [trait("exists")] * 100},
    nested_not(9),
]


@pytest.mark.parametrize("condition", VALID_CONDITIONS)
def test_valid_conditions(condition: object) -> None:
    assert validate_definition(definition(condition), DEFINED) == []


def test_valid_definition_fields() -> None:
    assert validate_definition(definition(trait("exists"), description=None), {}) == []
    assert validate_definition(definition(trait("exists"), description="text"), {}) == []
    assert validate_definition(definition(trait("exists"), id="a" * 64, name="n" * 200), {}) == []
    assert validate_definition(definition(trait("exists"), id="a_b-9"), {}) == []


# (definition or condition, expected path, words the message must contain)
INVALID: list[tuple[object, str, str]] = [
    ([], "", "a segment definition is an object"),
    # SPEC v1.1 limits (§3.3, §4.2), at the path of the value.
    (trait("lte", 10**30), "condition.value", "an integer outside"),
    (trait("lte", 2**63), "condition.value", "an integer outside"),
    (trait("lte", float("inf")), "condition.value", "not finite"),
    (trait("eq", "\ud800"), "condition.value", "lone surrogate"),
    (trait("within_last", "300000000d"), "condition.value", "36,500 days"),
    (trait("within_last", "36501d"), "condition.value", "36,500 days"),
    (trait("before", "9999-12-31T23:59:59-05:00"), "condition.value", "neither"),
    ({"name": "x", "condition": trait("exists")}, "id", "missing 'id'"),
    ({"id": "x", "condition": trait("exists")}, "name", "missing 'name'"),
    ({"id": "x", "name": "x"}, "condition", "missing 'condition'"),
    (definition(trait("exists"), id="VIP"), "id", "1 to 64 characters"),
    (definition(trait("exists"), id="a" * 65), "id", "1 to 64 characters"),
    (definition(trait("exists"), id=""), "id", "1 to 64 characters"),
    (definition(trait("exists"), id=5), "id", "1 to 64 characters"),
    (definition(trait("exists"), name=""), "name", "1 to 200 characters"),
    (definition(trait("exists"), name="n" * 201), "name", "1 to 200 characters"),
    (definition(trait("exists"), name=None), "name", "1 to 200 characters"),
    (definition(trait("exists"), description=5), "description", "a text or null"),
    (definition(trait("exists"), version=1), "version", "'version' is not part of"),
    ("x", "condition", "a condition is an object"),
    ({}, "condition", "not a condition"),
    ({"property": "a", "op": "exists"}, "condition", "'property' belongs inside"),
    ({"trait": "a", "op": "exists", "segment": "vip"}, "condition", "both 'trait' and 'segment'"),
    ({"and": []}, "condition.and", "1 to 100 conditions"),
    ({"or": [trait("exists")] * 101}, "condition.or", "1 to 100 conditions; this one has 101"),
    ({"and": trait("exists")}, "condition.and", "needs a list of conditions"),
    ({"and": [trait("exists")], "x": 1}, "condition.x", "'x' is not part of an 'and'"),
    ({"not": [trait("exists")]}, "condition.not", "a condition is an object"),
    ({"not": trait("exists"), "or": []}, "condition", "both 'or' and 'not'"),
    (nested_not(10), "condition" + ".not" * 10, "level 11"),
    ({"trait": "", "op": "exists"}, "condition.trait", "needs a path"),
    ({"trait": "a..b", "op": "exists"}, "condition.trait", "needs a path"),
    ({"trait": 5, "op": "exists"}, "condition.trait", "needs a path"),
    ({"trait": "a"}, "condition.op", "missing 'op'; use one of: eq, neq"),
    (trait("bigger", 1), "condition.op", "'bigger' is not an operator; use one of: eq, neq,"),
    (trait("EQ", 1), "condition.op", "'EQ' is not an operator"),
    (trait("eq", 1, ignore_case="yes"), "condition.ignore_case", "true or false"),
    (trait("eq", 1, unit="kg"), "condition.unit", "'unit' is not part of a trait condition"),
    (trait("eq"), "condition.value", "missing 'value' for 'eq'"),
    (trait("eq", None), "condition.value", "not null"),
    (trait("eq", [1]), "condition.value", "a text, a number or true/false"),
    (trait("neq", {"a": 1}), "condition.value", "a text, a number or true/false"),
    (trait("in", []), "condition.value", "non-empty list"),
    (trait("in", "US"), "condition.value", "non-empty list"),
    (trait("not_in", ["a", None]), "condition.value[1]", "not null"),
    (trait("in", [["a"]]), "condition.value[0]", "not a list"),
    (trait("gt", "5"), "condition.value", "'5' is not a number"),
    (trait("gte", True), "condition.value", "true is not a number"),
    (trait("lt", None), "condition.value", "null is not a number"),
    (trait("lte", [1]), "condition.value", "is not a number"),
    (trait("between", [2, 1]), "condition.value", "low end 2 is above the high end 1"),
    (trait("between", [1]), "condition.value", "two numbers [low, high]"),
    (trait("between", [1, 2, 3]), "condition.value", "two numbers [low, high]"),
    (trait("between", 5), "condition.value", "two numbers [low, high]"),
    (trait("between", [1, "2"]), "condition.value[1]", "'2' is not a number"),
    (trait("between", [False, 2]), "condition.value[0]", "false is not a number"),
    (trait("exists", 1), "condition.value", "'exists' takes no value"),
    (trait("not_exists", None), "condition.value", "'not_exists' takes no value"),
    (trait("contains", None), "condition.value", "a text, a number or true/false"),
    (trait("contains", ["a"]), "condition.value", "a text, a number or true/false"),
    (trait("starts_with", 1), "condition.value", "'starts_with' needs a text"),
    (trait("ends_with", True), "condition.value", "'ends_with' needs a text"),
    (trait("before", "yesterday"), "condition.value", "a date (2026-11-28)"),
    (trait("after", "2026-11-28T10:00:00"), "condition.value", "a date (2026-11-28)"),
    (trait("after", "2026-02-30"), "condition.value", "a date (2026-11-28)"),
    (trait("before", 20261128), "condition.value", "a date (2026-11-28)"),
    (trait("within_last", "30"), "condition.value", "a duration such as '30d'"),
    (trait("within_last", "0d"), "condition.value", "a duration such as '30d'"),
    (trait("more_than_ago", "1y"), "condition.value", "a duration such as '30d'"),
    (trait("more_than_ago", 30), "condition.value", "a duration such as '30d'"),
    (trait("near", [1, 2, 3]), "condition.value", "'near' needs"),
    (trait("near", {"lat": 1, "lon": 2}), "condition.value", "'near' needs 'km'"),
    (trait("near", {"lat": "1", "lon": 2, "km": 1}), "condition.value.lat", "not a number"),
    (trait("near", {"lat": 1, "lon": 2, "km": 0}), "condition.value.km", "greater than 0"),
    (trait("near", {"lat": 1, "lon": 2, "km": -1}), "condition.value.km", "greater than 0"),
    (trait("near", {"lat": 1, "lon": 2, "km": 1, "r": 1}), "condition.value.r", "not part of"),
    ({"event": "profile.updated"}, "condition.event", "profile change, not an activity"),
    ({"event": "profile.deleted"}, "condition.event", "profile change, not an activity"),
    ({"event": "purchase"}, "condition.event", "'purchase' is not an activity type"),
    ({"event": "custom.A"}, "condition.event", "not an activity type"),
    ({"event": 5}, "condition.event", "not an activity type"),
    ({"event": "page.viewed", "filter": []}, "condition.filter", "not part of an event condition"),
    ({"event": "page.viewed", "where": {}}, "condition.where", "needs a list"),
    ({"event": "page.viewed", "where": [trait("exists")]}, "condition.where[0]", "property"),
    (
        {"event": "page.viewed", "where": [{"property": "a", "op": "bigger", "value": 1}]},
        "condition.where[0].op",
        "'bigger' is not an operator",
    ),
    (
        {"event": "page.viewed", "where": [{"property": "a", "op": "gt", "value": "x"}]},
        "condition.where[0].value",
        "'x' is not a number",
    ),
    (
        {"event": "page.viewed", "where": [{"property": "a", "op": "exists", "trait": "b"}]},
        "condition.where[0].trait",
        "not part of a property condition",
    ),
    ({"event": "page.viewed", "within": "400d"}, "condition.within", "a 400d window is longer"),
    ({"event": "page.viewed", "within": "53w"}, "condition.within", "than the 365d history kept"),
    ({"event": "page.viewed", "within": "30 days"}, "condition.within", "not a duration"),
    ({"event": "page.viewed", "within": 30}, "condition.within", "a duration such as '30d'"),
    ({"event": "page.viewed", "within": {}}, "condition.within", "'after', 'before' or both"),
    (
        {"event": "page.viewed", "within": {"after": "soon"}},
        "condition.within.after",
        "a date (2026-11-28)",
    ),
    (
        {"event": "page.viewed", "within": {"before": None}},
        "condition.within.before",
        "a date (2026-11-28)",
    ),
    (
        {"event": "page.viewed", "within": {"after": "2026-01-01", "until": "x"}},
        "condition.within.until",
        "not part of a window",
    ),
    ({"event": "page.viewed", "count": 3}, "condition.count", "'count' needs"),
    ({"event": "page.viewed", "count": {"value": 1}}, "condition.count.op", "missing 'op'"),
    ({"event": "page.viewed", "count": {"op": "gt"}}, "condition.count.value", "missing 'value'"),
    (
        {"event": "page.viewed", "count": {"op": "contains", "value": 1}},
        "condition.count.op",
        "not an operator for 'count'",
    ),
    ({"event": "page.viewed", "count": {"op": "gt", "value": -1}}, "condition.count.value", "0 or"),
    (
        {"event": "page.viewed", "count": {"op": "gt", "value": 1.5}},
        "condition.count.value",
        "whole",
    ),
    (
        {"event": "page.viewed", "count": {"op": "gt", "value": 1.0}},
        "condition.count.value",
        "whole",
    ),
    (
        {"event": "page.viewed", "count": {"op": "gt", "value": True}},
        "condition.count.value",
        "whole",
    ),
    (
        {"event": "page.viewed", "count": {"op": "between", "value": [3, 1]}},
        "condition.count.value",
        "low end 3 is above the high end 1",
    ),
    (
        {"event": "page.viewed", "count": {"op": "between", "value": 3}},
        "condition.count.value",
        "[low, high]",
    ),
    (
        {"event": "page.viewed", "count": {"op": "gt", "value": 1, "of": "x"}},
        "condition.count.of",
        "not part of a count",
    ),
    (
        {"event": "order.purchased", "count": {"op": "gt", "value": 1}, "sum": "amount"},
        "condition.sum",
        "only one measure per condition",
    ),
    (
        {"event": "order.purchased", "sum": "amount", "max": "amount", "op": "gt", "value": 1},
        "condition.max",
        "only one measure",
    ),
    ({"event": "order.purchased", "op": "gt", "value": 1}, "condition.op", "goes with sum, avg"),
    ({"event": "order.purchased", "sum": "amount"}, "condition.op", "missing 'op' for 'sum'"),
    (
        {"event": "order.purchased", "sum": "amount", "op": "gt"},
        "condition.value",
        "missing 'value' for 'sum'",
    ),
    (
        {"event": "order.purchased", "avg": "amount", "op": "gt", "value": "1"},
        "condition.value",
        "'1' is not a number",
    ),
    (
        {"event": "order.purchased", "min": "", "op": "gt", "value": 1},
        "condition.min",
        "needs a property path",
    ),
    (
        {"event": "order.purchased", "max": "amount", "op": "in", "value": [1]},
        "condition.op",
        "not an operator for 'max'",
    ),
    (
        {"event": "order.purchased", "sum": "amount", "op": "between", "value": [5, 1]},
        "condition.value",
        "low end 5 is above the high end 1",
    ),
    ({"segment": "VIP"}, "condition.segment", "'VIP' is not a segment id"),
    ({"segment": "vip", "x": 1}, "condition.x", "not part of a segment condition"),
    ({"not": {"segment": "nobody"}}, "condition.not.segment", "there is no segment 'nobody'"),
    (definition({"segment": "seg"}), "condition.segment", "segment 'seg' refers to itself"),
    (
        definition({"or": [trait("exists"), {"segment": "spenders"}]}, id="vip"),
        "condition.or[1].segment",
        "segment 'vip' refers to 'spenders', which refers back to 'vip'",
    ),
]


@pytest.mark.parametrize(("raw", "path", "words"), INVALID)
def test_invalid(raw: object, path: str, words: str) -> None:
    if not (isinstance(raw, dict) and "name" in raw) and path.startswith("condition"):
        raw = definition(raw)
    problems = validate_definition(raw, DEFINED)
    assert any(p.path == path and words in p.message for p in problems), problems


def test_every_problem_is_reported() -> None:
    raw = {
        "id": "VIP!",
        "name": "",
        "colour": "red",
        "condition": {
            "and": [
                trait("bigger", 1),
                {"event": "profile.updated"},
                {"event": "order.purchased", "within": "400d"},
                {"not": {"segment": "nope"}},
            ]
        },
    }
    paths = [p.path for p in validate_definition(raw, {})]
    assert sorted(paths) == sorted(
        [
            "colour",
            "id",
            "name",
            "condition.and[0].op",
            "condition.and[1].event",
            "condition.and[2].within",
            "condition.and[3].not.segment",
        ]
    )


def test_depth_problem_reported_once_per_branch() -> None:
    problems = validate_definition(definition(nested_not(14)), {})
    assert len(problems) == 1


def test_longer_cycle_is_named_in_full() -> None:
    defined = {
        "a": definition({"segment": "b"}, id="a"),
        "b": definition({"and": [{"segment": "c"}]}, id="b"),
        "c": definition(trait("exists"), id="c"),
    }
    problems = validate_definition(definition({"not": {"segment": "a"}}, id="c"), defined)
    assert problems == [
        Problem(
            "condition.not.segment",
            "segment 'c' refers to 'a', which refers to 'b', which refers back to 'c'",
        )
    ]


def test_edit_replaces_the_old_condition_in_the_cycle_check() -> None:
    # 'spenders' refers to 'vip'; editing 'vip' to drop nothing is fine, but referring to
    # 'spenders' closes a cycle, and the old 'vip' condition plays no part.
    assert validate_definition(definition(trait("exists"), id="vip"), DEFINED) == []
    defined = {"a": definition({"segment": "b"}, id="a"), "b": definition(trait("exists"), id="b")}
    assert validate_definition(definition({"segment": "a"}, id="b"), defined) != []
    assert validate_definition(definition({"segment": "b"}, id="a"), defined) == []


def test_dangling_references_in_defined_segments_are_tolerated() -> None:
    defined = {"a": definition({"segment": "gone"}, id="a")}
    assert validate_definition(definition({"segment": "a"}, id="b"), defined) == []


def test_history_retention_bounds_windows() -> None:
    raw = definition({"event": "page.viewed", "within": "31d"})
    assert validate_definition(raw, {}, history_retention=31 * DAY) == []
    problems = validate_definition(raw, {}, history_retention=30 * DAY)
    assert problems == [
        Problem("condition.within", "a 31d window is longer than the 30d history kept")
    ]


def test_problem_paths_reach_deep_nodes() -> None:
    raw = definition(
        {"or": [trait("exists"), {"event": "page.viewed", "where": [trait("exists"), {}]}]}
    )
    raw["condition"]["or"][1]["where"][1] = {"property": "a", "op": "gt", "value": None}
    paths = [p.path for p in validate_definition(raw, {})]
    assert "condition.or[1].where[0]" in paths
    assert "condition.or[1].where[1].value" in paths


def _model_accepts(raw: object) -> bool:
    try:
        SegmentDefinition.model_validate(raw)
    except ValidationError:
        return False
    return True


# Problems the models cannot see: they know no other segments and no retention setting.
# Nor the value limits of SPEC §3.3, which JSON Schema does not express for every value.
_CONTEXT_PROBLEMS = (
    "segment '",
    "there is no segment",
    "history kept",
    "an integer outside",
    "lone surrogate",
    "36,500 days",
    "0001-01-01",
)


@pytest.mark.parametrize(
    "raw",
    [definition(c) for c in VALID_CONDITIONS]
    + [r if isinstance(r, dict) and "name" in r else definition(r) for r, _, _ in INVALID],
)
def test_models_agree_with_the_validator(raw: object) -> None:
    problems = [
        p
        for p in validate_definition(raw, DEFINED)
        if not any(word in p.message for word in _CONTEXT_PROBLEMS)
    ]
    assert _model_accepts(raw) == (problems == [])
