"""The registry's two ways of finding a leaf's users (guard tries, reachable segments) agree."""

from __future__ import annotations

import random

import pytest

from segstream.engine import registry as registry_module
from segstream.engine.registry import SegmentRegistry
from segstream.generate import generate_workload
from segstream.rules import condition_fingerprint
from segstream.rules.compile import Leaf
from segstream.timefmt import DAY


@pytest.fixture(scope="module")
def loaded() -> tuple[SegmentRegistry, list[dict[str, object]]]:
    workload = generate_workload(profiles=300, events=600, segments=400, seed=7)
    registry = SegmentRegistry(365 * DAY)
    for definition in workload.definitions():
        registry.install(definition, 1, condition_fingerprint(definition["condition"]))
    traits = [r["traits"] for r in workload.records() if r["type"] == "profile.updated"]
    return registry, traits


def test_wide_and_narrow_lookups_agree(
    loaded: tuple[SegmentRegistry, list[dict[str, object]]], monkeypatch: pytest.MonkeyPatch
) -> None:
    registry, profiles = loaded
    leaves: list[Leaf] = list(registry._users)
    rng = random.Random(3)
    sids = sorted(registry.segments)
    assert len(leaves) > 50
    for traits in profiles[:150]:
        members = {sid: 1 for sid in rng.sample(sids, rng.randint(0, 3))}
        chosen = rng.sample(leaves, 40)
        monkeypatch.setattr(registry_module, "_WIDE", 10**9)
        narrow = registry.users_for(chosen, traits, members)
        monkeypatch.setattr(registry_module, "_WIDE", 0)
        wide = registry.users_for(chosen, traits, members)
        assert wide == narrow


def test_removal_unfiles_guards(
    loaded: tuple[SegmentRegistry, list[dict[str, object]]],
) -> None:
    registry, _ = loaded
    fresh = SegmentRegistry(registry.retention)
    for sid, segment in registry.segments.items():
        fresh.install(segment.definition, segment.version, segment.fingerprint)
        fresh.remove(sid)
    assert not fresh._guarded.here
    assert not fresh._guarded.below
    assert fresh._users == {}
