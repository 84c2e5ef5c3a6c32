"""The limits of values (SPEC §3.3, v1.1) that JSON itself does not impose.

Integers lie in [-2^63, 2^63 - 1], other numbers are finite doubles, strings are valid Unicode
(no lone surrogate), and containers nest only so deep. Input records are checked here after
parsing (the reader already refuses non-finite numbers and lone surrogates in them); segment
definitions, read leniently, are checked for all four, at the JSON path of the value.
"""

from __future__ import annotations

import math
import re
from typing import Any, Final

from segstream.schemas.jsontext import INT_MAX, INT_MIN

__all__ = [
    "INT_MAX",
    "INT_MIN",
    "MAX_RECORD_DEPTH",
    "MAX_VALUE_DEPTH",
    "limit_problem",
]

#: The record object is level 1 and may reach this level (ignored fields included).
MAX_RECORD_DEPTH: Final = 64
#: `traits`, `properties` and `context` count from 1 on their own and may reach this level.
MAX_VALUE_DEPTH: Final = 32

_SURROGATE: Final = re.compile(r"[\ud800-\udfff]")


def _key(where: str, key: str) -> str:
    # A name with a lone surrogate is shown escaped: the path must be printable as UTF-8.
    if _SURROGATE.search(key) is not None:
        key = key.encode("utf-8", "backslashreplace").decode()
    return f"{where}.{key}" if where else key


def limit_problem(value: Any, where: str, max_depth: int) -> tuple[str, str] | None:
    """The first value under `value` that breaks a limit, as (JSON path, what is wrong).

    `value` itself is at level 1 and may nest to `max_depth`; the walk never goes deeper than
    that (so it is bounded however deep the value is).
    """
    return _walk(value, where, 1, max_depth)


def _scalar_problem(value: Any) -> str | None:
    kind = type(value)
    if kind is int:
        if not INT_MIN <= value <= INT_MAX:
            return "an integer outside [-2^63, 2^63 - 1]"
    elif kind is float:
        if not math.isfinite(value):
            return "a number that is not finite as a double"
    elif kind is str and _SURROGATE.search(value) is not None:
        return "a string with a lone surrogate (not valid Unicode)"
    return None


def _walk(value: Any, where: str, level: int, max_depth: int) -> tuple[str, str] | None:
    kind = type(value)
    if kind is dict:
        items: Any = value.items()
    elif kind is list:
        items = ((f"[{i}]", child) for i, child in enumerate(value))
    else:
        problem = _scalar_problem(value)
        return (where, problem) if problem is not None else None
    if level > max_depth:
        return where, f"nested deeper than {max_depth} levels"
    for key, child in items:
        if kind is dict:
            if _SURROGATE.search(key) is not None:
                return _key(where, key), "a member name with a lone surrogate"
            path = _key(where, key)
        else:
            path = f"{where}{key}"
        child_kind = type(child)
        if child_kind is dict or child_kind is list:
            found = _walk(child, path, level + 1, max_depth)
            if found is not None:
                return found
        else:
            problem = _scalar_problem(child)
            if problem is not None:
                return path, problem
    return None
