"""The canonical JSON reader and writer: every stored, consumed and produced JSON goes here.

Reading is fast (orjson) and exact: integers are kept whole (never turned into a float), other
numbers are the nearest IEEE-754 double; `NaN`/`Infinity` and numbers that are infinite as a
double (`1e400`) are not JSON; text must be UTF-8 and escaped lone surrogates (`"\\ud800"`) are
refused; a repeated member name keeps the last value; nesting has no limit of the parser's own
(a 100,000-level array is read without recursion). orjson cannot read integers beyond 64 bits
exactly nor nest deeper than 1,024 levels: only text that may hold either takes the slow,
iterative path of this module.

`lenient=True` (segment definitions only) also accepts non-finite numbers and lone surrogates, so
that a definition file can be read as a whole and the definition that breaks a limit rejected
alone, by the validator, at the path of the value (SPEC §4.2).

Writing is orjson's compact form (keys sorted on request), which is exact for every value
within the SPEC limits (§3.3: 64-bit integers, finite doubles, valid Unicode, shallow nesting);
a value beyond them (a definition stored before v1.1 with an integer beyond 64 bits) is written
by the standard library instead, never refused.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any, Final

import orjson

__all__ = [
    "INT_MAX",
    "INT_MIN",
    "JSONTextError",
    "dumps",
    "dumps_text",
    "loads_exact",
    "loads_record",
]

#: SPEC §3.3: integers lie in [-2^63, 2^63 - 1].
INT_MIN: Final = -(2**63)
INT_MAX: Final = 2**63 - 1

# orjson turns integers outside the 64-bit range into floats (or refuses them). Any such
# integer has at least 19 digits in a row; only text containing one takes the slow path.
# Mapping digits to "0" and the rest to " " then searching is ~6x faster than a regex.
_DIGITS_AS_ZERO: Final = bytes(48 if 48 <= b <= 57 else 32 for b in range(256))
_LONG_DIGIT_RUN: Final = b"0" * 19
#: Integers longer than this are refused by int() (CPython's conversion limit); they are far
#: beyond every SPEC limit, and read as ±2**64 (out of range all the same) instead.
_MAX_INT_DIGITS: Final = 4000


class JSONTextError(ValueError):
    """The text is not JSON (or, unless lenient, breaks the value rules of SPEC §3.3)."""


# One token, after optional JSON whitespace: punctuation, a string, a number or a literal.
# Possessive quantifiers: a string that never closes fails in linear time.
_TOKEN: Final = re.compile(
    r"[ \t\n\r]*+(?:([\[\]{},:])"
    r'|("(?:[^"\\\x00-\x1f]++|\\(?:["\\/bfnrt]|u[0-9a-fA-F]{4}))*+")'
    r"|(-?(?:0|[1-9][0-9]*+)(\.[0-9]++)?([eE][+-]?[0-9]++)?)"
    r"|(true|false|null))"
)
_LITERALS: Final = {"true": True, "false": False, "null": None}
_SURROGATE: Final = re.compile(r"[\ud800-\udfff]")

# Parser states of the iterative reader.
_VALUE, _VALUE_OR_END, _KEY, _KEY_OR_END, _COLON, _NEXT, _DONE = range(7)


def _string(token: str, lenient: bool) -> str:
    text = token[1:-1] if "\\" not in token else json.loads(token)
    if not lenient and "\\u" in token and _SURROGATE.search(text) is not None:
        raise JSONTextError("a string holds a lone surrogate (not valid Unicode)")
    return text


class _Reading:
    """One read: its mode, and whether an integer outside 64 bits was met anywhere."""

    __slots__ = ("lenient", "wide_integer")

    def __init__(self, lenient: bool) -> None:
        self.lenient = lenient
        self.wide_integer = False


def _number(token: str, fraction: str | None, exponent: str | None, reading: _Reading) -> Any:
    lenient = reading.lenient
    if fraction is None and exponent is None:
        if len(token) > _MAX_INT_DIGITS:
            reading.wide_integer = True
            return -(2**64) if token[0] == "-" else 2**64
        integer = int(token)
        if not INT_MIN <= integer <= INT_MAX:
            reading.wide_integer = True
        return integer
    double = float(token)
    if not lenient and math.isinf(double):
        raise JSONTextError(f"the number {token[:40]} is infinite as a double")
    return double


def _parse_iteratively(text: str, reading: _Reading) -> Any:
    """A JSON reader with an explicit stack: any depth, any integer, in linear time."""
    lenient = reading.lenient
    match = _TOKEN.match
    pos = 0
    stack: list[list[Any]] = []  # [container, pending key]
    state = _VALUE
    result: Any = None
    while True:
        m = match(text, pos)
        if m is None:
            if state == _DONE and not text[pos:].strip(" \t\n\r"):
                return result
            raise JSONTextError(f"not valid JSON at character {pos}")
        if state == _DONE:
            raise JSONTextError(f"extra data after the JSON value at character {pos}")
        pos = m.end()
        punct, string, number, fraction, exponent, literal = m.groups()
        value: Any
        if punct is not None:
            if punct == "[" or punct == "{":
                if state != _VALUE and state != _VALUE_OR_END:
                    raise JSONTextError(f"unexpected {punct!r} at character {pos - 1}")
                stack.append([[] if punct == "[" else {}, None])
                state = _VALUE_OR_END if punct == "[" else _KEY_OR_END
                continue
            if punct == ",":
                if state != _NEXT:
                    raise JSONTextError(f"unexpected ',' at character {pos - 1}")
                state = _VALUE if type(stack[-1][0]) is list else _KEY
                continue
            if punct == ":":
                if state != _COLON:
                    raise JSONTextError(f"unexpected ':' at character {pos - 1}")
                state = _VALUE
                continue
            # A closing bracket.
            if not stack:
                raise JSONTextError(f"unexpected {punct!r} at character {pos - 1}")
            is_list = type(stack[-1][0]) is list
            closes = (_NEXT, _VALUE_OR_END) if is_list else (_NEXT, _KEY_OR_END)
            if (punct == "]") != is_list or state not in closes:
                raise JSONTextError(f"unexpected {punct!r} at character {pos - 1}")
            value = stack.pop()[0]
        elif string is not None:
            if state in (_KEY, _KEY_OR_END):
                stack[-1][1] = _string(string, lenient)
                state = _COLON
                continue
            if state != _VALUE and state != _VALUE_OR_END:
                raise JSONTextError(f"unexpected string at character {m.start(2)}")
            value = _string(string, lenient)
        else:
            if state != _VALUE and state != _VALUE_OR_END:
                raise JSONTextError(f"unexpected value at character {m.start()}")
            if number is not None:
                value = _number(number, fraction, exponent, reading)
            else:
                value = _LITERALS[literal]
        if not stack:
            result = value
            state = _DONE
            continue
        top = stack[-1]
        if type(top[0]) is list:
            top[0].append(value)
        else:
            top[0][top[1]] = value
        state = _NEXT


def _read(data: bytes | str, reading: _Reading) -> Any:
    raw = data.encode("utf-8", "surrogatepass") if isinstance(data, str) else bytes(data)
    lenient = reading.lenient
    if _LONG_DIGIT_RUN not in raw.translate(_DIGITS_AS_ZERO):
        try:
            return orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            message = str(exc)
            if "depth limit" not in message and not (
                lenient and ("surrogate" in message or "infinity" in message)
            ):
                raise JSONTextError(message) from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise JSONTextError(f"not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    return _parse_iteratively(text, reading)


def loads_exact(data: bytes | str, *, lenient: bool = False) -> Any:
    """Parse JSON text (UTF-8); raise JSONTextError (a ValueError) if it is not JSON."""
    return _read(data, _Reading(lenient))


def loads_record(data: bytes) -> tuple[Any, bool]:
    """`loads_exact` for an input record, and whether an integer outside [-2^63, 2^63 - 1]
    sits anywhere in the text (a repeated member's overwritten value included)."""
    if _LONG_DIGIT_RUN not in data.translate(_DIGITS_AS_ZERO):
        # The common case, inlined (replay parses a million records): no wide integer can be.
        try:
            return orjson.loads(data), False
        except orjson.JSONDecodeError as exc:
            if "depth limit" not in str(exc):
                raise JSONTextError(str(exc)) from None
    reading = _Reading(lenient=False)
    value = _read(data, reading)
    return value, reading.wide_integer


def _stdlib_dumps(value: Any, sort_keys: bool) -> bytes:
    # ensure_ascii writes a lone surrogate as its escape: the bytes stay UTF-8.
    return json.dumps(
        value, separators=(",", ":"), sort_keys=sort_keys, allow_nan=False, ensure_ascii=True
    ).encode()


def _has_non_finite(value: Any) -> bool:
    stack = [value]
    while stack:
        item = stack.pop()
        kind = type(item)
        if kind is float:
            if not math.isfinite(item):
                return True
        elif kind is dict:
            stack.extend(item.values())
        elif kind is list or kind is tuple:
            stack.extend(item)
    return False


def dumps(value: Any, *, sort_keys: bool = False) -> bytes:
    """Compact UTF-8 JSON bytes of a value (keys in insertion order unless `sort_keys`).

    Raises JSONTextError for a non-finite double (orjson would write `null`, and a restore
    would read back something else) or nesting too deep for the standard library.
    """
    try:
        written = orjson.dumps(value, option=orjson.OPT_SORT_KEYS if sort_keys else 0)
    except orjson.JSONEncodeError:
        # Beyond orjson: an integer wider than 64 bits, a lone surrogate, very deep nesting.
        try:
            return _stdlib_dumps(value, sort_keys)
        except RecursionError:
            raise JSONTextError("the value is nested too deeply to write") from None
        except ValueError as exc:  # a non-finite double
            raise JSONTextError(str(exc)) from None
    # orjson writes NaN and infinities as null: only a text with a null can hold one.
    if b"null" in written and _has_non_finite(value):
        raise JSONTextError("a non-finite number is not JSON")
    return written


def dumps_text(value: Any, *, sort_keys: bool = False) -> str:
    """`dumps` as a str (for log lines and CLI output)."""
    return dumps(value, sort_keys=sort_keys).decode()
