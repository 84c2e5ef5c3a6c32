"""Filters over generated definitions for tests that must not depend on the passing of time."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from segstream.rules import analyze_condition

__all__ = ["time_independent"]


def time_independent(definitions: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """The definitions no passing of time can change, keeping only references to kept ones.

    Live runs and replay agree on these whatever the wall clock does between records.
    """
    kept: list[dict[str, Any]] = []
    ids: set[str] = set()
    for definition in definitions:
        facts = analyze_condition(definition["condition"])
        if facts.time_dependent or not set(facts.segments) <= ids:
            continue
        kept.append(definition)
        ids.add(definition["id"])
    return kept
