"""Parsing JSON text fast (orjson) and exactly: integers of any size, no NaN or Infinity."""

from __future__ import annotations

import json
from typing import Any, Final

import orjson

__all__ = ["loads_exact"]

# orjson turns integers outside the 64-bit range into floats (or refuses them). Any such
# integer has at least 19 digits in a row; only text containing one takes the slow path.
# Mapping digits to "0" and the rest to " " then searching is ~6x faster than a regex.
_DIGITS_AS_ZERO: Final = bytes(48 if 48 <= b <= 57 else 32 for b in range(256))
_LONG_DIGIT_RUN: Final = b"0" * 19


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _stdlib_loads(data: bytes) -> Any:
    return json.loads(data.decode("utf-8"), parse_constant=_reject_constant)


def loads_exact(data: bytes) -> Any:
    """Parse UTF-8 JSON text; raise ValueError if it is not valid JSON."""
    if _LONG_DIGIT_RUN not in data.translate(_DIGITS_AS_ZERO):
        try:
            return orjson.loads(data)
        except orjson.JSONDecodeError as first:
            error: ValueError = first
    else:
        error = ValueError("not valid JSON")
    try:
        return _stdlib_loads(data)
    except RecursionError:
        raise ValueError("JSON nested too deeply") from None
    except ValueError as exc:
        # Report orjson's message when it had one: it names line and column.
        raise error if isinstance(error, orjson.JSONDecodeError) else exc from None
