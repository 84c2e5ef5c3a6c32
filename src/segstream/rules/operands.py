"""Checks of an operator's `value` operand (SPEC §4.2), with messages for marketers."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, Final

from segstream.rules.patterns import pattern_problem
from segstream.timefmt import DAY, parse_duration, parse_instant

__all__ = ["MAX_ANNIVERSARY_DAYS", "OPERAND_CHECKS", "is_number", "operand_problems", "show"]

# A problem found in an operand: (path suffix under the operand, message).
OperandProblem = tuple[str, str]


#: Every duration in a definition is at most this long (SPEC §4.2, v1.1).
MAX_DURATION_DAYS: Final = 36_500
MAX_DURATION: Final = MAX_DURATION_DAYS * DAY


def show(value: object) -> str:
    """A value as a marketer reads it in a message: strings quoted, others as JSON."""
    if isinstance(value, str):
        return repr(value) if len(value) <= 60 else repr(value[:57] + "...")
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list):
        return "a list"
    return str(value)


def is_number(value: object) -> bool:
    """A JSON number: int or finite float, never a boolean."""
    return type(value) is int or (type(value) is float and math.isfinite(value))


def _is_scalar(value: object) -> bool:
    return type(value) is str or type(value) is bool or is_number(value)


def _scalar(op: str, value: Any) -> list[OperandProblem]:
    if _is_scalar(value):
        return []
    return [("", f"'{op}' needs a text, a number or true/false, not {show(value)}")]


def _scalar_list(op: str, value: Any) -> list[OperandProblem]:
    if type(value) is not list or not value:
        return [("", f"'{op}' needs a non-empty list of texts, numbers or true/false values")]
    return [
        (f"[{i}]", f"a list for '{op}' may hold texts, numbers or true/false, not {show(item)}")
        for i, item in enumerate(value)
        if not _is_scalar(item)
    ]


def _number(op: str, value: Any) -> list[OperandProblem]:
    if is_number(value):
        return []
    return [("", f"'{op}' compares numbers; {show(value)} is not a number")]


def _range(op: str, value: Any) -> list[OperandProblem]:
    if type(value) is not list or len(value) != 2:
        return [("", f"'{op}' needs two numbers [low, high], e.g. [10, 20]")]
    problems = [
        (f"[{i}]", f"{show(item)} is not a number")
        for i, item in enumerate(value)
        if not is_number(item)
    ]
    if not problems and value[0] > value[1]:
        problems.append(("", f"the low end {value[0]} is above the high end {value[1]}"))
    return problems


def _text(op: str, value: Any) -> list[OperandProblem]:
    if type(value) is str:
        return []
    return [("", f"'{op}' needs a text, not {show(value)}")]


def _instant(op: str, value: Any) -> list[OperandProblem]:
    try:
        parse_instant(value)
    except ValueError:
        return [
            (
                "",
                f"'{op}' needs a date (2026-11-28) or a date and time with a zone "
                f"(2026-11-28T10:00:00Z); {show(value)} is neither",
            )
        ]
    return []


def _duration(op: str, value: Any) -> list[OperandProblem]:
    try:
        size = parse_duration(value)
    except ValueError:
        return [
            (
                "",
                f"'{op}' needs a duration such as '30d' (a whole number and s, m, h, d or w); "
                f"{show(value)} is not one",
            )
        ]
    if size > MAX_DURATION:
        return [("", f"{value} is longer than {MAX_DURATION_DAYS:,} days, the longest duration")]
    return []


#: Longest anniversary operand (SPEC §4.4), in days.
MAX_ANNIVERSARY_DAYS: Final = 366


def _anniversary_span(op: str, value: Any) -> list[OperandProblem]:
    problems = _duration(op, value)
    if problems:
        return problems
    size = parse_duration(value)
    if value[-1] not in "dw" or size % DAY:
        return [
            (
                "",
                f"'{op}' counts whole days: write the period in days or weeks, such as '7d' "
                f"or '2w', not {show(value)}",
            )
        ]
    if size > MAX_ANNIVERSARY_DAYS * DAY:
        return [
            (
                "",
                f"'{op}' looks at most {MAX_ANNIVERSARY_DAYS} days ahead or back; "
                f"{value} is {size // DAY} days",
            )
        ]
    return []


def _pattern(op: str, value: Any) -> list[OperandProblem]:
    if type(value) is not str:
        return [("", f"'{op}' needs a pattern (a text in RE2 syntax), not {show(value)}")]
    problem = pattern_problem(value)
    return [("", problem)] if problem is not None else []


def _point(op: str, value: Any) -> list[OperandProblem]:
    if type(value) is not dict:
        return [("", f'\'{op}\' needs {{"lat": …, "lon": …, "km": …}}, not {show(value)}')]
    problems: list[OperandProblem] = []
    for name in ("lat", "lon", "km"):
        if name not in value:
            problems.append(("", f"'{op}' needs '{name}' (a number)"))
        elif not is_number(value[name]):
            problems.append((f".{name}", f"{show(value[name])} is not a number"))
        elif name == "km" and value[name] <= 0:
            problems.append((".km", "the distance 'km' must be greater than 0"))
    problems.extend(
        (f".{key}", f"'{key}' is not part of a place; use lat, lon and km")
        for key in value
        if key not in ("lat", "lon", "km")
    )
    return problems


OPERAND_CHECKS: Final[dict[str, Callable[[str, Any], list[OperandProblem]] | None]] = {
    "eq": _scalar,
    "neq": _scalar,
    "in": _scalar_list,
    "not_in": _scalar_list,
    "gt": _number,
    "gte": _number,
    "lt": _number,
    "lte": _number,
    "between": _range,
    "exists": None,
    "not_exists": None,
    "contains": _scalar,
    "starts_with": _text,
    "ends_with": _text,
    "before": _instant,
    "after": _instant,
    "within_last": _duration,
    "more_than_ago": _duration,
    "near": _point,
    "within_next": _duration,
    "anniversary_within_next": _anniversary_span,
    "anniversary_within_last": _anniversary_span,
    "matches": _pattern,
}


def operand_problems(op: str, value: Any) -> list[OperandProblem]:
    """Problems of the operand `value` of a known operator `op` (which takes a value)."""
    check = OPERAND_CHECKS[op]
    return check(op, value) if check is not None else []
