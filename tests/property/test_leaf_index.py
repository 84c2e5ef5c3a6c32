"""The registry's leaf indexes never miss a leaf that holds: `contains` by substring and `near`
by latitude band, for traits and for event `where` conditions."""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from segstream.engine.registry import SegmentRegistry
from segstream.rules import condition_fingerprint
from segstream.rules.compile import EventLeaf, TraitLeaf
from segstream.rules.operators import terminals
from segstream.timefmt import DAY

from .budget import examples

NEEDLES = ("sku-1", "SKU-12", "ß", "ss", "/reviews", "x", "Straße", "é")
CENTRES = ((48.86, 2.35), (89.99, 0.0), (-89.5, 10.0), (0.0, 179.9), (45.76, 4.84))
RADII = (0.5, 5, 100, 400, 2500, 20000)


def _registry() -> SegmentRegistry:
    registry = SegmentRegistry(365 * DAY)
    conditions: list[dict[str, Any]] = []
    for needle in NEEDLES:
        for ignore_case in (False, True):
            leaf = {"op": "contains", "value": needle, "ignore_case": ignore_case}
            conditions.append({"trait": "tags", **leaf})
            conditions.append({"event": "page.viewed", "where": [{"property": "path", **leaf}]})
    for lat, lon in CENTRES:
        for km in RADII:
            near = {"op": "near", "value": {"lat": lat, "lon": lon, "km": km}}
            conditions.append({"trait": "location", **near})
            conditions.append({"event": "store.visited", "where": [{"property": "at", **near}]})
    for n, condition in enumerate(conditions):
        definition = {"id": f"s{n}", "name": f"s{n}", "condition": condition}
        registry.install(definition, 1, condition_fingerprint(condition))
    return registry


REGISTRY = _registry()

texts = st.text(alphabet="sSkKuU-12ßxé/reviwsStraße", max_size=24)
points = st.fixed_dictionaries(
    {
        "lat": st.one_of(
            st.floats(-90, 90),
            st.sampled_from((90, -90, 89.99, 408.86, -271.14, 0)),
        ),
        "lon": st.floats(-180, 180),
    }
)
tag_values = st.lists(st.one_of(texts, st.lists(texts, max_size=3)), max_size=3)
location_values = st.lists(st.one_of(points, st.lists(points, max_size=2)), max_size=2)


def _true_leaves(leaves: list[Any], values: list[Any]) -> set[Any]:
    return {leaf for leaf in leaves if leaf.pred(values, 0)}


@examples(300)
@given(old=tag_values, new=tag_values, points_old=location_values, points_new=location_values)
def test_trait_lookups_keep_every_leaf_that_can_flip(
    old: list[Any], new: list[Any], points_old: list[Any], points_new: list[Any]
) -> None:
    for parts, before, after in ((("tags",), old, new), (("location",), points_old, points_new)):
        leaves = [
            leaf
            for leaf in REGISTRY._leaves.values()
            if isinstance(leaf, TraitLeaf) and leaf.parts == parts
        ]
        flips = _true_leaves(leaves, before) ^ _true_leaves(leaves, after)
        assert flips <= REGISTRY.trait_leaves(parts, before, after)


@examples(300)
@given(path=st.one_of(texts, st.lists(texts, max_size=3)), at=st.one_of(points, location_values))
def test_event_lookups_keep_every_leaf_that_selects(path: Any, at: Any) -> None:
    for event_type, properties in (("page.viewed", {"path": path}), ("store.visited", {"at": at})):
        found = REGISTRY.event_leaves(event_type, properties)
        for leaf in REGISTRY._leaves.values():
            if isinstance(leaf, EventLeaf) and leaf.event_type == event_type:
                (where,) = leaf.where
                if where.pred(terminals(properties, where.parts), 0):
                    assert leaf in found


def test_lookups_narrow_to_the_matching_leaves() -> None:
    found = REGISTRY.event_leaves("page.viewed", {"path": "/p/SKU-12/reviews"})
    operands = {leaf.where[0].discriminator.keys for leaf in found}  # type: ignore[union-attr]
    assert operands == {frozenset([k]) for k in ("sku-1", "sku-12", "/reviews", "x")} - {
        frozenset(["x"])
    }
    paris = REGISTRY.trait_leaves(("location",), [], [{"lat": 48.86, "lon": 2.35}])
    assert len(paris) < len([c for c in CENTRES for _ in RADII])
    # A latitude no band covers (the haversine wraps it) checks every banded leaf.
    wrapped = REGISTRY.trait_leaves(("location",), [], [{"lat": 408.86, "lon": 2.35}])
    assert paris <= wrapped


def test_long_texts_fall_back_to_every_leaf() -> None:
    found = REGISTRY.event_leaves("page.viewed", {"path": "y" * 5000})
    assert len(found) == 2 * len(NEEDLES)
