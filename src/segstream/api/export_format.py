"""The formats of a member export: the `traits` parameter, trait lookup, CSV and JSON lines.

A row is (profile id, entered instant in microseconds, one value per requested trait path).
CSV follows RFC 4180: a header line, CRLF line ends, and a field quoted (its quotes doubled)
when it holds a comma, a quote, CR or LF, so ids and traits with any of them come back intact.
A string trait is written as it is, a missing or null one as an empty field, any other value
(number, boolean, object, array) as its canonical JSON text.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from typing import Any

from segstream.errors import Problem
from segstream.schemas.jsontext import dumps, dumps_text
from segstream.timefmt import format_instant

__all__ = [
    "FORMATS",
    "MAX_TRAIT_PATHS",
    "ExportRow",
    "csv_header",
    "csv_rows",
    "jsonl_rows",
    "parse_traits",
    "trait_values",
]

#: (profile id, entered instant, trait values)
ExportRow = tuple[str, int, list[Any]]

#: format -> (content type, file suffix)
FORMATS = {
    "csv": "text/csv; charset=utf-8",
    "jsonl": "application/x-ndjson; charset=utf-8",
}
MAX_TRAIT_PATHS = 50
_MAX_PATH_CHARS = 256


def parse_traits(text: str | None) -> list[str] | Problem:
    """The trait paths of `traits=a,b.c` (none when absent or empty), or what is wrong."""
    if not text:
        return []
    paths = text.split(",")
    if len(paths) > MAX_TRAIT_PATHS:
        return Problem("traits", f"at most {MAX_TRAIT_PATHS} trait paths")
    for path in paths:
        if not path or len(path) > _MAX_PATH_CHARS or "" in path.split("."):
            return Problem(
                "traits",
                f"{path!r} is not a trait path (dotted keys, 1-{_MAX_PATH_CHARS} characters)",
            )
    if len(set(paths)) != len(paths):
        return Problem("traits", "a trait path is repeated")
    return paths


def trait_values(traits: dict[str, Any], paths: Sequence[str]) -> list[Any]:
    """The value at each dotted path under the profile's traits (None where there is none)."""
    values = []
    for path in paths:
        node: Any = traits
        for key in path.split("."):
            node = node.get(key) if isinstance(node, dict) else None
            if node is None:
                break
        values.append(node)
    return values


def csv_header(paths: Sequence[str]) -> str:
    """The CSV header line."""
    return _csv([["profile_id", "entered_at", *paths]])


def csv_rows(rows: Sequence[ExportRow]) -> str:
    """CSV lines of `rows`."""
    return _csv(
        [[pid, format_instant(entered), *map(_cell, values)] for pid, entered, values in rows]
    )


def jsonl_rows(rows: Sequence[ExportRow], paths: Sequence[str]) -> bytes:
    """One JSON object a line: {"profile_id", "entered_at", "traits": {path: value}}."""
    out = bytearray()
    for pid, entered, values in rows:
        record = {
            "profile_id": pid,
            "entered_at": format_instant(entered),
            "traits": dict(zip(paths, values, strict=True)),
        }
        out += dumps(record)
        out += b"\n"
    return bytes(out)


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    return dumps_text(value)


def _csv(lines: list[list[str]]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n", quoting=csv.QUOTE_MINIMAL)
    writer.writerows(lines)
    return buffer.getvalue()
