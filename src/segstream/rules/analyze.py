"""Facts about a valid condition: what it reads, what it references, and whether time moves it."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

__all__ = ["ConditionFacts", "analyze_condition", "transitively_time_dependent"]

_TIME_OPERATORS: Final = frozenset(
    (
        "within_last",
        "more_than_ago",
        "within_next",
        "anniversary_within_next",
        "anniversary_within_last",
    )
)


@dataclass(frozen=True)
class ConditionFacts:
    """Sorted unique trait paths, event types and referenced segments; own time dependence."""

    traits: tuple[str, ...]
    events: tuple[str, ...]
    segments: tuple[str, ...]
    time_dependent: bool


def analyze_condition(condition: Mapping[str, Any]) -> ConditionFacts:
    """Facts of ONE valid condition, without following `segment` references."""
    traits: set[str] = set()
    events: set[str] = set()
    segments: set[str] = set()
    time_dependent = False
    stack: list[Mapping[str, Any]] = [condition]
    while stack:
        node = stack.pop()
        if "and" in node:
            stack.extend(node["and"])
        elif "or" in node:
            stack.extend(node["or"])
        elif "not" in node:
            stack.append(node["not"])
        elif "trait" in node:
            traits.add(node["trait"])
            # `age` is derived from `birthdate` at evaluation time, so it moves with the clock.
            if node["trait"] == "age" or node.get("op") in _TIME_OPERATORS:
                time_dependent = True
        elif "event" in node:
            events.add(node["event"])
            follow = node.get("not_followed_by")
            # "Not followed within D" changes at a.at + D: always time dependent (§4.4).
            if isinstance(node.get("within"), str) or follow is not None:
                time_dependent = True
            wheres = [node.get("where") or ()]
            if follow is not None:
                events.add(follow["event"])
                wheres.append(follow.get("where") or ())
            if any(item.get("op") in _TIME_OPERATORS for where in wheres for item in where):
                time_dependent = True
        elif "sequence" in node:
            if isinstance(node.get("within"), str):
                time_dependent = True
            for step in node["sequence"]:
                events.add(step["event"])
                if any(item.get("op") in _TIME_OPERATORS for item in step.get("where") or ()):
                    time_dependent = True
        elif "segment" in node:
            segments.add(node["segment"])
            if "for_at_least" in node:
                time_dependent = True
    return ConditionFacts(
        traits=tuple(sorted(traits)),
        events=tuple(sorted(events)),
        segments=tuple(sorted(segments)),
        time_dependent=time_dependent,
    )


def transitively_time_dependent(facts: ConditionFacts, known: Mapping[str, ConditionFacts]) -> bool:
    """True if the condition, or a segment it references through `known`, depends on time."""
    seen: set[str] = set()
    pending = [facts]
    while pending:
        current = pending.pop()
        if current.time_dependent:
            return True
        for target in current.segments:
            if target not in seen and target in known:
                seen.add(target)
                pending.append(known[target])
    return False
