"""Cached trait-leaf truths: exact per terminals, dropped when the path's leaves change, and the
engine's output is the same with and without them."""

from __future__ import annotations

import orjson
import pytest

from segstream.engine import registry as registry_module
from segstream.engine.registry import SegmentRegistry
from segstream.engine.replay import run_replay
from segstream.generate import generate_workload
from segstream.rules import condition_fingerprint
from segstream.timefmt import DAY


def install(registry: SegmentRegistry, sid: str, condition: dict[str, object]) -> None:
    definition = {"id": sid, "name": sid, "condition": condition}
    registry.install(definition, 1, condition_fingerprint(condition))


def test_truths_are_exact_and_follow_the_paths_leaves() -> None:
    registry = SegmentRegistry(365 * DAY)
    install(registry, "big", {"trait": "points", "op": "gt", "value": 5})
    install(registry, "flag", {"trait": "points", "op": "eq", "value": True})
    names = lambda found: sorted(orjson.loads(leaf.key)["op"] for leaf in found)  # noqa: E731
    assert names(registry.true_leaves(("points",), [6])) == ["gt"]
    assert names(registry.true_leaves(("points",), [True])) == ["eq"]  # true is not the number 1
    assert names(registry.true_leaves(("points",), [1])) == []
    install(registry, "small", {"trait": "points", "op": "lt", "value": 10})
    assert names(registry.true_leaves(("points",), [6])) == ["gt", "lt"]
    registry.remove("big")
    assert names(registry.true_leaves(("points",), [6])) == ["lt"]


def test_a_path_with_too_many_values_is_no_longer_cached(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(registry_module, "_TRUTH_VALUES", 2)
    registry = SegmentRegistry(365 * DAY)
    install(registry, "big", {"trait": "points", "op": "gt", "value": 5})
    assert registry.true_leaves(("points",), [1]) is not None
    assert registry.true_leaves(("points",), [2]) is not None
    assert registry.true_leaves(("points",), [3]) is None
    assert registry.true_leaves(("points",), [1]) is None
    install(registry, "small", {"trait": "points", "op": "lt", "value": 10})
    assert registry.true_leaves(("points",), [1]) is not None


@pytest.mark.parametrize("cached_values", [0, 3])
def test_replay_is_the_same_without_cached_truths(
    cached_values: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    workload = generate_workload(profiles=200, events=3000, segments=400, seed=11)
    definitions = list(workload.definitions())
    lines = [orjson.dumps(record) for record in workload.records()]

    def transitions() -> list[dict[str, object]]:
        out = []
        for change in run_replay(definitions, lines).memberships:
            change.pop("emitted_at", None)
            out.append(change)
        return out

    expected = transitions()
    assert len(expected) > 100
    monkeypatch.setattr(registry_module, "_TRUTH_VALUES", cached_values)
    assert transitions() == expected


def test_leaves_that_need_now_are_still_evaluated() -> None:
    recent = {
        "id": "recent",
        "name": "recent",
        "condition": {"trait": "signup_date", "op": "within_last", "value": "7d"},
    }
    record = {
        "id": "e1",
        "type": "profile.updated",
        "profile_id": "p1",
        "at": "2026-01-05T00:00:00Z",
        "traits": {"signup_date": "2026-01-01"},
    }
    out = run_replay([recent], [orjson.dumps(record)]).memberships
    assert [(m["type"], m["at"]) for m in out] == [("segment.entered", "2026-01-05T00:00:00Z")]
