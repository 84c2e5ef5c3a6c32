"""Limits on what one request may ask of the API (pure)."""

from __future__ import annotations

from typing import Any

import orjson

from segstream.errors import Problem

__all__ = [
    "MAX_CONDITIONS",
    "MAX_DEFINITION_BYTES",
    "MAX_SAMPLE",
    "Slots",
    "count_conditions",
    "definition_limits",
    "query_int",
]

#: Largest definition accepted, as compact JSON.
MAX_DEFINITION_BYTES = 64 * 1024
#: Most matching profile ids a preview returns.
MAX_SAMPLE = 100
#: Most condition nodes (and/or/not, leaves and `where` property conditions) in one definition.
MAX_CONDITIONS = 1000


def count_conditions(node: Any) -> int:
    """Condition nodes in a (possibly invalid) condition tree, `where` entries included."""
    total = 0
    pending = [node]
    while pending:
        current = pending.pop()
        if not isinstance(current, dict):
            continue
        total += 1
        for key in ("and", "or"):
            children = current.get(key)
            if isinstance(children, list):
                pending.extend(children)
        if "not" in current:
            pending.append(current["not"])
        where = current.get("where")
        if isinstance(where, list):
            total += len(where)
    return total


def definition_limits(raw: object) -> list[Problem]:
    """Problems when a submitted definition is larger than the API accepts."""
    try:
        size = len(orjson.dumps(raw))
    except (TypeError, orjson.JSONEncodeError):
        size = 0  # integers beyond 64 bits: the body size limit still bounds them
    if size > MAX_DEFINITION_BYTES:
        return [Problem("", f"definition is {size} bytes; at most {MAX_DEFINITION_BYTES}")]
    condition = raw.get("condition") if isinstance(raw, dict) else None
    count = count_conditions(condition)
    if count > MAX_CONDITIONS:
        return [Problem("condition", f"{count} conditions; at most {MAX_CONDITIONS}")]
    return []


def query_int(raw: str | None, name: str, default: int, low: int, high: int) -> int | Problem:
    """An integer query parameter within [low, high], or the problem with it."""
    if raw is None or raw == "":
        return default
    if not raw.isascii() or not raw.isdigit():
        return Problem(name, f"must be an integer from {low} to {high}")
    value = int(raw)
    if not low <= value <= high:
        return Problem(name, f"must be an integer from {low} to {high}")
    return value


class Slots:
    """At most `size` holders at once; one more is refused at once (never queued), so a
    flood of expensive requests cannot pile up work on the worker's event loop."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.held = 0

    def take(self) -> bool:
        """Take a slot; False when all are held."""
        if self.held >= self.size:
            return False
        self.held += 1
        return True

    def give_back(self) -> None:
        """Return a slot taken with `take`."""
        self.held -= 1
