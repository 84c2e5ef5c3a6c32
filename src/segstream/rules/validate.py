"""Validation of a segment definition (SPEC §4): every problem, at the JSON path of its node."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from segstream.errors import Problem
from segstream.rules.operands import (
    MAX_DURATION,
    MAX_DURATION_DAYS,
    is_number,
    operand_problems,
    show,
)
from segstream.rules.references import reference_problems
from segstream.schemas.limits import MAX_RECORD_DEPTH, limit_problem
from segstream.schemas.vocabulary import (
    ACTIVITY_TYPES,
    AGGREGATES,
    MEASURE_OPERATORS,
    OPERATORS,
    PROFILE_TYPES,
    SEGMENT_ID,
    is_activity_type,
)
from segstream.timefmt import DAY, HOUR, MINUTE, SECOND, parse_duration, parse_instant

__all__ = ["MAX_CHILDREN", "MAX_DEPTH", "validate_definition"]

MAX_DEPTH: Final = 10
MAX_CHILDREN: Final = 100
MAX_NAME: Final = 200

_KINDS: Final = ("and", "or", "not", "trait", "event", "sequence", "segment")
MIN_STEPS: Final = 2
MAX_STEPS: Final = 10
_DEFINITION_KEYS: Final = ("id", "name", "description", "condition")
_LEAF_KEYS: Final = {
    "trait": ("trait", "op", "value", "ignore_case"),
    "property": ("property", "op", "value", "ignore_case"),
}
_EVENT_KEYS: Final = (
    "event",
    "where",
    "within",
    "count",
    *AGGREGATES,
    "op",
    "value",
    "not_followed_by",
)
_MEASURE_KEYS: Final = ("count", *AGGREGATES)
_FOLLOW_KEYS: Final = ("event", "where", "within")
_STEP_KEYS: Final = ("event", "where")
_SEQUENCE_KEYS: Final = ("sequence", "within")
_SEGMENT_KEYS: Final = ("segment", "for_at_least")
_OPERATOR_LIST: Final = ", ".join(OPERATORS)
_MEASURE_OPERATOR_LIST: Final = ", ".join(MEASURE_OPERATORS)
_ACTIVITY_LIST: Final = ", ".join(ACTIVITY_TYPES) + " or custom.<name>"
_CONDITION_FORMS: Final = (
    "a condition is an object with one of 'trait', 'event', 'sequence', 'segment', 'and', 'or' "
    "or 'not'"
)


def _at(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _unknown_keys(
    node: Mapping[str, Any], allowed: tuple[str, ...], path: str, what: str
) -> list[Problem]:
    return [
        Problem(_at(path, key), f"'{key}' is not part of {what}; it takes: {', '.join(allowed)}")
        for key in node
        if key not in allowed
    ]


def _format_duration(us: int) -> str:
    for unit, size in (("d", DAY), ("h", HOUR), ("m", MINUTE), ("s", SECOND)):
        if us % size == 0:
            return f"{us // size}{unit}"
    return f"{us / SECOND}s"


class _ConditionChecker:
    """Walks one condition tree, collecting problems and the `segment` references it makes."""

    def __init__(self, history_retention: int) -> None:
        self.history_retention = history_retention
        self.problems: list[Problem] = []
        self.references: list[tuple[str, str]] = []

    def add(self, path: str, message: str) -> None:
        self.problems.append(Problem(path, message))

    def condition(self, node: object, path: str, depth: int, depth_reported: bool) -> None:
        if type(node) is not dict:
            self.add(path, f"{_CONDITION_FORMS}, not {show(node)}")
            return
        kinds = [kind for kind in _KINDS if kind in node]
        if not kinds:
            hint = " ('property' belongs inside an event's 'where')" if "property" in node else ""
            self.add(path, f"not a condition: {_CONDITION_FORMS}{hint}")
            return
        if len(kinds) > 1:
            listed = " and ".join(f"'{kind}'" for kind in kinds)
            self.add(path, f"a condition is one thing; this one has both {listed}")
            return
        if depth > MAX_DEPTH:
            if not depth_reported:
                self.add(
                    path,
                    f"conditions are nested too deep: this one is at level {depth}; "
                    f"at most {MAX_DEPTH} levels are allowed",
                )
            # Nothing deeper is checked: a definition's size, not Python's stack, bounds it.
            return
        kind = kinds[0]
        if kind in ("and", "or"):
            self.combination(node, kind, path, depth, depth_reported)
        elif kind == "not":
            self.problems.extend(_unknown_keys(node, ("not",), path, "a 'not' condition"))
            self.condition(node["not"], _at(path, "not"), depth + 1, depth_reported)
        elif kind == "trait":
            self.leaf(node, "trait", path)
        elif kind == "event":
            self.event(node, path)
        elif kind == "sequence":
            self.sequence(node, path)
        else:
            self.segment(node, path)

    def combination(
        self, node: Mapping[str, Any], kind: str, path: str, depth: int, depth_reported: bool
    ) -> None:
        self.problems.extend(_unknown_keys(node, (kind,), path, f"an '{kind}' condition"))
        children = node[kind]
        here = _at(path, kind)
        if type(children) is not list:
            self.add(here, f"'{kind}' needs a list of conditions, not {show(children)}")
            return
        if not 1 <= len(children) <= MAX_CHILDREN:
            self.add(
                here,
                f"'{kind}' needs 1 to {MAX_CHILDREN} conditions; this one has {len(children)}",
            )
        for i, child in enumerate(children):
            self.condition(child, f"{here}[{i}]", depth + 1, depth_reported)

    def leaf(self, node: Mapping[str, Any], kind: str, path: str) -> None:
        """A trait condition, or (kind 'property') a condition inside an event's `where`."""
        allowed = _LEAF_KEYS[kind]
        self.problems.extend(_unknown_keys(node, allowed, path, f"a {kind} condition"))
        self.field_path(node, kind, path)
        if "ignore_case" in node and type(node["ignore_case"]) is not bool:
            self.add(_at(path, "ignore_case"), "'ignore_case' must be true or false")
        if "op" not in node:
            self.add(_at(path, "op"), f"missing 'op'; use one of: {_OPERATOR_LIST}")
            return
        op = node["op"]
        if type(op) is not str or op not in OPERATORS:
            self.add(
                _at(path, "op"), f"{show(op)} is not an operator; use one of: {_OPERATOR_LIST}"
            )
            return
        here = _at(path, "value")
        if op in ("exists", "not_exists"):
            if "value" in node:
                self.add(here, f"'{op}' takes no value; remove 'value'")
            return
        if "value" not in node:
            self.add(here, f"missing 'value' for '{op}'")
            return
        for suffix, message in operand_problems(op, node["value"]):
            self.add(here + suffix, message)

    def field_path(self, node: Mapping[str, Any], key: str, path: str) -> None:
        text = node.get(key)
        if type(text) is not str or not text or "" in text.split("."):
            self.add(
                _at(path, key),
                f"'{key}' needs a path such as 'location.country' (names separated by dots), "
                f"not {show(text)}",
            )

    def event(self, node: Mapping[str, Any], path: str) -> None:
        self.problems.extend(_unknown_keys(node, _EVENT_KEYS, path, "an event condition"))
        self.event_type(node, path)
        if "where" in node:
            self.where(node["where"], _at(path, "where"))
        if "within" in node:
            self.within(node["within"], _at(path, "within"))
        if "not_followed_by" in node:
            for key in (*_MEASURE_KEYS, "op", "value"):
                if key in node:
                    self.add(
                        _at(path, key),
                        f"an event with 'not_followed_by' takes no measure ('{key}'): it holds "
                        "when such an event was not followed in time, whatever the count",
                    )
            self.not_followed_by(node["not_followed_by"], _at(path, "not_followed_by"))
            return
        self.measure(node, path)

    def event_type(self, node: Mapping[str, Any], path: str) -> None:
        kind = node.get("event")
        if "event" not in node:
            self.add(_at(path, "event"), f"missing 'event'; use one of: {_ACTIVITY_LIST}")
        elif kind in PROFILE_TYPES:
            self.add(
                _at(path, "event"),
                f"'{kind}' is a profile change, not an activity; use one of: {_ACTIVITY_LIST}",
            )
        elif not is_activity_type(kind):
            self.add(
                _at(path, "event"),
                f"{show(kind)} is not an activity type; use one of: {_ACTIVITY_LIST}",
            )

    def not_followed_by(self, follow: object, here: str) -> None:
        """`{"event": TYPE_B, "where": [...], "within": D}`: D required, a duration."""
        if type(follow) is not dict:
            self.add(
                here,
                "'not_followed_by' needs the event that must not follow and how soon, e.g. "
                '{"event": "order.purchased", "within": "1h"}, not ' + show(follow),
            )
            return
        self.problems.extend(_unknown_keys(follow, _FOLLOW_KEYS, here, "'not_followed_by'"))
        self.event_type(follow, here)
        if "where" in follow:
            self.where(follow["where"], _at(here, "where"))
        window = follow.get("within")
        if "within" not in follow:
            self.add(
                _at(here, "within"),
                "missing 'within': how soon the event must follow, such as '1h' or '7d'",
            )
        elif type(window) is not str:
            self.add(
                _at(here, "within"),
                "'within' of 'not_followed_by' is a duration such as '1h' or '7d' (how long "
                f"after the first event), not {show(window)}",
            )
        else:
            self.within(window, _at(here, "within"))

    def sequence(self, node: Mapping[str, Any], path: str) -> None:
        self.problems.extend(_unknown_keys(node, _SEQUENCE_KEYS, path, "a sequence"))
        steps = node["sequence"]
        here = _at(path, "sequence")
        if "within" in node:
            self.within(node["within"], _at(path, "within"))
        if type(steps) is not list:
            self.add(
                here,
                "'sequence' needs a list of steps in order, such as "
                '[{"event": "product.viewed"}, {"event": "cart.added"}], not ' + show(steps),
            )
            return
        if not MIN_STEPS <= len(steps) <= MAX_STEPS:
            self.add(
                here,
                f"a sequence has {MIN_STEPS} to {MAX_STEPS} steps; this one has {len(steps)}",
            )
        for i, step in enumerate(steps):
            step_path = f"{here}[{i}]"
            if type(step) is not dict:
                self.add(
                    step_path,
                    'each step is an event such as {"event": "cart.added"}, not ' + show(step),
                )
                continue
            for key in step:
                if key == "within":
                    self.add(
                        _at(step_path, key),
                        "a step has no window of its own: the sequence's 'within' applies to "
                        "every step",
                    )
                elif key in (*_MEASURE_KEYS, "op", "value"):
                    self.add(
                        _at(step_path, key),
                        f"a step takes no measure ('{key}'): each step is one event",
                    )
                elif key not in _STEP_KEYS:
                    self.add(
                        _at(step_path, key),
                        f"'{key}' is not part of a sequence step; it takes: event, where",
                    )
            self.event_type(step, step_path)
            if "where" in step:
                self.where(step["where"], _at(step_path, "where"))

    def where(self, items: object, here: str) -> None:
        if type(items) is not list:
            self.add(here, f"'where' needs a list of property conditions, not {show(items)}")
            return
        for i, item in enumerate(items):
            item_path = f"{here}[{i}]"
            if type(item) is not dict or "property" not in item:
                self.add(
                    item_path,
                    "each 'where' item is a property condition such as "
                    '{"property": "amount", "op": "gt", "value": 100}',
                )
                continue
            self.leaf(item, "property", item_path)

    def within(self, window: object, here: str) -> None:
        if type(window) is str:
            try:
                size = parse_duration(window)
            except ValueError as exc:
                self.add(here, str(exc))
                return
            if size > MAX_DURATION:
                self.add(here, f"{window} is longer than {MAX_DURATION_DAYS:,} days")
            elif size > self.history_retention:
                self.add(
                    here,
                    f"a {window} window is longer than the "
                    f"{_format_duration(self.history_retention)} history kept",
                )
            return
        if type(window) is not dict:
            self.add(
                here,
                "'within' needs a duration such as '30d' or "
                '{"after": "2026-01-01", "before": "2026-02-01"}, not ' + show(window),
            )
            return
        if "after" not in window and "before" not in window:
            self.add(here, "'within' needs 'after', 'before' or both")
        for key, value in window.items():
            if key not in ("after", "before"):
                self.add(f"{here}.{key}", f"'{key}' is not part of a window; use after and before")
                continue
            try:
                parse_instant(value)
            except ValueError:
                self.add(
                    f"{here}.{key}",
                    f"'{key}' needs a date (2026-11-28) or a date and time with a zone "
                    f"(2026-11-28T10:00:00Z); {show(value)} is neither",
                )

    def measure(self, node: Mapping[str, Any], path: str) -> None:
        present = [key for key in _MEASURE_KEYS if key in node]
        for extra in present[1:]:
            self.add(
                _at(path, extra),
                f"only one measure per condition; this one already has '{present[0]}'",
            )
        measure = present[0] if present else None
        if measure is None or measure == "count":
            for key in ("op", "value"):
                if key in node:
                    self.add(
                        _at(path, key),
                        f"a top-level '{key}' goes with sum, avg, min or max; for a count write "
                        '"count": {"op": "gte", "value": 3}',
                    )
            if measure == "count":
                self.count(node["count"], _at(path, "count"))
            return
        aggregate_path = node[measure]
        if type(aggregate_path) is not str or not aggregate_path or "" in aggregate_path.split("."):
            self.add(
                _at(path, measure),
                f"'{measure}' needs a property path such as 'amount', not {show(aggregate_path)}",
            )
        self.comparison(node, path, measure, integers=False)

    def count(self, count: object, here: str) -> None:
        if type(count) is not dict:
            self.add(here, '\'count\' needs {"op": …, "value": …}, e.g. {"op": "gte", "value": 3}')
            return
        for key in count:
            if key not in ("op", "value"):
                self.add(f"{here}.{key}", f"'{key}' is not part of a count; it takes: op, value")
        self.comparison(count, here, "count", integers=True)

    def comparison(
        self, node: Mapping[str, Any], path: str, measure: str, *, integers: bool
    ) -> None:
        """The `op` and `value` of a measure: a count (whole numbers >= 0) or an aggregate."""
        if "op" not in node:
            self.add(
                _at(path, "op"),
                f"missing 'op' for '{measure}'; use one of: {_MEASURE_OPERATOR_LIST}",
            )
            op = None
        else:
            op = node["op"]
            if type(op) is not str or op not in MEASURE_OPERATORS:
                self.add(
                    _at(path, "op"),
                    f"{show(op)} is not an operator for '{measure}'; use one of: "
                    f"{_MEASURE_OPERATOR_LIST}",
                )
                op = None
        here = _at(path, "value")
        if "value" not in node:
            self.add(here, f"missing 'value' for '{measure}'")
            return
        value = node["value"]
        kind = "a whole number 0 or more" if integers else "a number"
        if op == "between":
            if type(value) is not list or len(value) != 2:
                self.add(here, f"'between' needs [low, high], each {kind}")
                return
            for i, item in enumerate(value):
                if not self.measure_value(item, f"{here}[{i}]", kind, integers):
                    return
            if value[0] > value[1]:
                self.add(here, f"the low end {value[0]} is above the high end {value[1]}")
        elif op is not None:
            self.measure_value(value, here, kind, integers)

    def measure_value(self, value: object, here: str, kind: str, integers: bool) -> bool:
        good = (type(value) is int and value >= 0) if integers else is_number(value)
        if not good:
            self.add(here, f"{show(value)} is not {kind}")
        return good

    def segment(self, node: Mapping[str, Any], path: str) -> None:
        self.problems.extend(_unknown_keys(node, _SEGMENT_KEYS, path, "a segment condition"))
        if "for_at_least" in node:
            span = node["for_at_least"]
            at = _at(path, "for_at_least")
            try:
                size = parse_duration(span)
            except ValueError:
                self.add(
                    at,
                    "'for_at_least' needs a duration such as '30d' (a whole number and s, m, "
                    f"h, d or w); {show(span)} is not one",
                )
            else:
                if size > MAX_DURATION:
                    self.add(at, f"{span} is longer than {MAX_DURATION_DAYS:,} days")
        target = node["segment"]
        here = _at(path, "segment")
        if type(target) is not str or SEGMENT_ID.fullmatch(target) is None:
            self.add(here, f"{show(target)} is not a segment id")
            return
        self.references.append((here, target))


def validate_definition(
    raw: object,
    defined: Mapping[str, Mapping[str, Any]],
    *,
    history_retention: int = 365 * DAY,
    check_references: bool = True,
) -> list[Problem]:
    """Every problem of the definition `raw` against the segments `defined` (empty = valid).

    `check_references=False`: references are not checked (a record of the segments topic is
    checked on its own, SPEC §4.3).
    """
    if type(raw) is not dict:
        return [
            Problem(
                "",
                'a segment definition is an object {"id", "name", "description", "condition"}, '
                f"not {show(raw)}",
            )
        ]
    beyond = limit_problem(raw, "", MAX_RECORD_DEPTH)
    if beyond is not None:
        # Checked first: the rest of the checks may assume SPEC §3.3 values (and a bounded
        # depth), and one such value is reason enough (SPEC §4.2: the definition alone).
        path, what = beyond
        return [Problem(path, f"{what}; definitions obey the limits of input values")]
    problems = _unknown_keys(raw, _DEFINITION_KEYS, "", "a segment definition")
    segment_id = raw.get("id")
    if "id" not in raw:
        problems.append(Problem("id", "missing 'id'"))
    elif type(segment_id) is not str or SEGMENT_ID.fullmatch(segment_id) is None:
        problems.append(
            Problem(
                "id",
                "the id must be 1 to 64 characters from a-z, 0-9, '_' and '-'; "
                f"{show(segment_id)} is not",
            )
        )
        segment_id = None
    name = raw.get("name")
    if "name" not in raw:
        problems.append(Problem("name", "missing 'name'"))
    elif type(name) is not str or not 1 <= len(name) <= MAX_NAME:
        problems.append(Problem("name", f"the name must be a text of 1 to {MAX_NAME} characters"))
    description = raw.get("description")
    if description is not None and type(description) is not str:
        problems.append(Problem("description", "the description must be a text or null"))
    if "condition" not in raw:
        problems.append(Problem("condition", "missing 'condition'"))
        return problems
    checker = _ConditionChecker(history_retention)
    checker.condition(raw["condition"], "condition", 1, False)
    problems.extend(checker.problems)
    if check_references:
        problems.extend(reference_problems(segment_id, checker.references, defined))
    return problems
