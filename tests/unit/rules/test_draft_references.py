"""A preview draft against a partition owner's definitions: cycles rejected, lag tolerated."""

from __future__ import annotations

import pytest

from segstream.engine.registry import SegmentRegistry
from segstream.rules import condition_fingerprint, validate_definition
from segstream.rules.references import draft_definitions


def definition(sid: str, condition: dict[str, object]) -> dict[str, object]:
    return {"id": sid, "name": sid, "condition": condition}


def test_a_draft_that_closes_a_cycle_through_the_owner_is_rejected() -> None:
    owner = {"b": definition("b", {"segment": "a"})}
    draft = definition("a", {"and": [{"trait": "x", "op": "exists"}, {"segment": "b"}]})
    problems = validate_definition(draft, draft_definitions(draft, owner))
    assert [p.path for p in problems] == ["condition.and[1].segment"]
    assert "refers back to 'a'" in problems[0].message


def test_ids_the_owner_does_not_know_yet_are_no_problem() -> None:
    draft = definition("a", {"or": [{"segment": "later"}, {"segment": "b"}]})
    owner = {"b": definition("b", {"trait": "x", "op": "exists"})}
    assert validate_definition(draft, draft_definitions(draft, owner)) == []
    # ... but a self-reference still is, and so is a broken draft.
    selfish = definition("a", {"segment": "a"})
    assert validate_definition(selfish, draft_definitions(selfish, {})) != []
    assert draft_definitions(["not", "a", "dict"], owner) is owner


def test_the_registry_refuses_to_spin_on_a_cycle() -> None:
    registry = SegmentRegistry(365 * 86_400_000_000)
    b = definition("b", {"segment": "a"})
    registry.install(b, 1, condition_fingerprint(b["condition"]))
    a = definition("a", {"segment": "b"})
    with pytest.raises(ValueError, match="cycle"):
        registry.install(a, 1, condition_fingerprint(a["condition"]))
