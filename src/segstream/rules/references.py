"""Reference checks between segments: unknown ids and cycles, reported at the `segment` node."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from segstream.errors import Problem

__all__ = ["closing_cycle", "draft_definitions", "reference_problems", "referenced_segments"]

#: What an id a draft refers to, unknown here, stands for: a definition without references.
_STAND_IN: Mapping[str, Any] = {"condition": {}}


def referenced_segments(node: object) -> Iterator[str]:
    """Ids of every `segment` node in a condition tree (repeats included), not following them."""
    stack = [node]
    while stack:
        current = stack.pop()
        if type(current) is not dict:
            continue
        if "segment" in current and type(current["segment"]) is str:
            yield current["segment"]
        for key in ("and", "or"):
            children = current.get(key)
            if type(children) is list:
                stack.extend(reversed(children))
        if "not" in current:
            stack.append(current["not"])


def _chain_back(
    start: str, target: str, defined: Mapping[str, Mapping[str, Any]]
) -> list[str] | None:
    """A chain of references start -> ... -> target through `defined` (not expanding target)."""
    parents: dict[str, str | None] = {start: None}
    stack = [start]
    while stack:
        current = stack.pop()
        definition = defined.get(current)
        if current == target or definition is None:
            continue
        for nxt in referenced_segments(definition.get("condition")):
            if nxt == target:
                chain = [target, current]
                step = parents[current]
                while step is not None:
                    chain.append(step)
                    step = parents[step]
                return chain[::-1]
            if nxt not in parents:
                parents[nxt] = current
                stack.append(nxt)
    return None


def _describe_cycle(segment_id: str, chain: Sequence[str]) -> str:
    text = f"segment '{segment_id}' refers to '{chain[0]}'"
    for step in chain[1:-1]:
        text += f", which refers to '{step}'"
    return text + f", which refers back to '{segment_id}'"


def reference_problems(
    segment_id: str | None,
    references: Sequence[tuple[str, str]],
    defined: Mapping[str, Mapping[str, Any]],
) -> list[Problem]:
    """Problems of the references (path, id) a definition with `segment_id` makes."""
    problems: list[Problem] = []
    for path, target in references:
        if target == segment_id:
            problems.append(Problem(path, f"segment '{segment_id}' refers to itself"))
        elif target not in defined:
            problems.append(
                Problem(path, f"there is no segment '{target}'; define it before referring to it")
            )
        elif segment_id is not None:
            chain = _chain_back(target, segment_id, defined)
            if chain is not None:
                problems.append(Problem(path, _describe_cycle(segment_id, chain)))
    return problems


def draft_definitions(
    draft: object, defined: Mapping[str, Mapping[str, Any]]
) -> Mapping[str, Mapping[str, Any]]:
    """What to validate a preview draft against on a partition's owner: its current
    definitions plus a stand-in without references for every id the draft names that is not
    defined there. The owner may lag the catalogue the asking worker checked the draft
    against (such a reference is false, as after a deletion, SPEC §4.3), but a reference that
    closes a cycle through the owner's definitions is still rejected."""
    if type(draft) is not dict:
        return defined
    own = draft.get("id")
    missing = {
        sid
        for sid in referenced_segments(draft.get("condition"))
        if sid not in defined and sid != own
    }
    if not missing:
        return defined
    return {**defined, **dict.fromkeys(missing, _STAND_IN)}


def closing_cycle(
    segment_id: str, condition: object, defined: Mapping[str, Mapping[str, Any]]
) -> str | None:
    """What cycle installing `condition` as `segment_id` would close among `defined` (the
    definitions in force, `segment_id`'s own replaced), described; None when it closes none."""
    for target in referenced_segments(condition):
        if target == segment_id:
            return f"segment '{segment_id}' refers to itself"
        chain = _chain_back(target, segment_id, defined)
        if chain is not None:
            return _describe_cycle(segment_id, chain)
    return None
