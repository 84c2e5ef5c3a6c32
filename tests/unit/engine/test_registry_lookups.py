"""The registry's reachable segments and leaf users agree with a direct check of each guard."""

from __future__ import annotations

import random
from typing import Any

import pytest

from segstream.engine.registry import SegmentRegistry
from segstream.generate import generate_workload
from segstream.rules import condition_fingerprint
from segstream.rules.compile import index_keys
from segstream.rules.operators import terminals
from segstream.timefmt import DAY


@pytest.fixture(scope="module")
def loaded() -> tuple[SegmentRegistry, list[dict[str, Any]]]:
    workload = generate_workload(profiles=300, events=600, segments=400, seed=7)
    registry = SegmentRegistry(365 * DAY)
    for definition in workload.definitions():
        registry.install(definition, 1, condition_fingerprint(definition["condition"]))
    traits = [r["traits"] for r in workload.records() if r["type"] == "profile.updated"]
    return registry, traits


def meets_guards(registry: SegmentRegistry, sid: str, traits: dict[str, Any]) -> bool:
    for disc in registry.segments[sid].guards:
        if disc.keys.isdisjoint(index_keys(terminals(traits, disc.parts))):
            return False
    return True


def test_reachable_and_users_match_each_guard(
    loaded: tuple[SegmentRegistry, list[dict[str, Any]]],
) -> None:
    registry, profiles = loaded
    rng = random.Random(3)
    sids = sorted(registry.segments)
    guarded = [sid for sid in sids if registry.segments[sid].guards]
    assert len(guarded) > 100
    for traits in profiles[:150]:
        reach = registry.reachable(traits)
        assert reach == {sid for sid in guarded if meets_guards(registry, sid, traits)}
        members = set(rng.sample(sids, rng.randint(0, 3)))
        leaves = rng.sample(list(registry._users), 40)
        found = registry.users_for(leaves, reach | members)
        for leaf in leaves:
            expected = {
                sid
                for sid in registry._users[leaf].all
                if sid in members or meets_guards(registry, sid, traits)
            }
            assert found.get(leaf, set()) == expected


def test_removal_unfiles_guards(loaded: tuple[SegmentRegistry, list[dict[str, Any]]]) -> None:
    registry, _ = loaded
    fresh = SegmentRegistry(registry.retention)
    for sid, segment in registry.segments.items():
        fresh.install(segment.definition, segment.version, segment.fingerprint)
        fresh.remove(sid)
    assert not fresh._guarded.here
    assert not fresh._guarded.below
    assert fresh._users == {}
    assert not fresh.guard_paths
