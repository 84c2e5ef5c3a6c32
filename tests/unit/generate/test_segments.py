"""Generated segment definitions: valid (SPEC §4), complete in coverage, distinct and selective."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator
from datetime import date
from typing import Any

import orjson
import pytest

from segstream.generate import DEFAULT_END, Workload, generate_workload
from segstream.rules import validate_definition
from segstream.rules.operators import compile_predicate, split_path, terminals
from segstream.timefmt import utc_date

_OPERATORS = {
    "eq", "neq", "in", "not_in", "gt", "gte", "lt", "lte", "between", "exists", "not_exists",
    "contains", "starts_with", "ends_with", "before", "after", "within_last", "more_than_ago",
    "near", "within_next", "anniversary_within_next", "anniversary_within_last", "matches",
}  # fmt: skip
_COUNT_OPS = {"eq", "neq", "gt", "gte", "lt", "lte", "between"}


def _nodes(node: Any) -> Iterator[dict[str, Any]]:
    yield node
    for key in ("and", "or"):
        for child in node.get(key, ()):
            yield from _nodes(child)
    if "not" in node:
        yield from _nodes(node["not"])


def _facts(definitions: list[dict[str, Any]]) -> Counter[str]:
    """What the definitions use: node kinds, operators, window forms and measures."""
    used: Counter[str] = Counter()
    for definition in definitions:
        for node in _nodes(definition["condition"]):
            kinds = ("and", "or", "not", "trait", "event", "sequence", "segment")
            kind = next(k for k in kinds if k in node)
            used[f"node:{kind}"] += 1
            if kind == "trait":
                used[f"op:{node['op']}"] += 1
            if node.get("ignore_case"):
                used["ignore_case"] += 1
            if kind == "event":
                for where in node.get("where", ()):
                    used[f"op:{where['op']}"] += 1
                    used["where"] += 1
                    if where.get("ignore_case"):
                        used["ignore_case"] += 1
                within = node.get("within")
                if isinstance(within, str):
                    used["within:duration"] += 1
                elif isinstance(within, dict):
                    used["within:window"] += 1
                for measure in ("sum", "avg", "min", "max"):
                    if measure in node:
                        used[f"measure:{measure}"] += 1
                        used[f"measure-op:{node['op']}"] += 1
                if "count" in node:
                    used["measure:count"] += 1
                    used[f"measure-op:{node['count']['op']}"] += 1
                if "not_followed_by" in node:
                    used["not_followed_by"] += 1
            if kind == "segment" and "for_at_least" in node:
                used["for_at_least"] += 1
    return used


@pytest.fixture(scope="module")
def definitions(small_workload: Workload) -> list[dict[str, Any]]:
    return list(small_workload.definitions())


def test_definitions_are_valid_in_file_order(definitions: list[dict[str, Any]]) -> None:
    defined: dict[str, dict[str, Any]] = {}
    for definition in definitions:
        assert validate_definition(definition, defined) == [], definition
        defined[definition["id"]] = definition


def test_ids_names_and_references(definitions: list[dict[str, Any]]) -> None:
    assert [d["id"] for d in definitions] == [f"seg-{n:05d}" for n in range(1, 61)]
    for position, definition in enumerate(definitions):
        assert set(definition) == {"id", "name", "condition"}
        assert 1 <= len(definition["name"]) <= 200
        for node in _nodes(definition["condition"]):
            if "segment" in node:
                assert node["segment"] in {d["id"] for d in definitions[:position]}


def test_fifty_definitions_use_every_node_kind_and_operator(
    definitions: list[dict[str, Any]],
) -> None:
    used = _facts(definitions[:50])
    for kind in ("and", "or", "not", "trait", "event", "sequence", "segment"):
        assert used[f"node:{kind}"], kind
    for construct in ("not_followed_by", "for_at_least"):
        assert used[construct], construct
    for op in _OPERATORS:
        assert used[f"op:{op}"], op
    for fact in ("ignore_case", "where", "within:duration", "within:window"):
        assert used[fact], fact
    for measure in ("count", "sum", "avg", "min", "max"):
        assert used[f"measure:{measure}"], measure
    for op in _COUNT_OPS:
        assert used[f"measure-op:{op}"], op


def test_ten_thousand_distinct_valid_definitions() -> None:
    workload = generate_workload(profiles=1, events=1, segments=10_000, seed=2)
    definitions = list(workload.definitions())
    conditions = {orjson.dumps(d["condition"], option=orjson.OPT_SORT_KEYS) for d in definitions}
    assert len(conditions) == 10_000
    defined: dict[str, dict[str, Any]] = {}
    for definition in definitions[::7]:  # a sample keeps the test fast; references need targets
        for node in _nodes(definition["condition"]):
            if "segment" in node:
                target = next(d for d in definitions if d["id"] == node["segment"])
                defined[target["id"]] = target
        assert validate_definition(definition, defined) == [], definition


def _merge(into: dict[str, Any], change: dict[str, Any]) -> None:
    for key, value in change.items():
        if value is None:
            into.pop(key, None)
        elif isinstance(value, dict) and isinstance(into.get(key), dict):
            _merge(into[key], value)
        else:
            into[key] = value


def _final_traits(workload: Workload) -> list[dict[str, Any]]:
    """Each surviving profile's traits at the end, with `age` derived as of the end date."""
    profiles: dict[str, dict[str, Any]] = {}
    for record in workload.records():
        pid = record["profile_id"]
        if record["type"] == "profile.deleted":
            profiles.pop(pid, None)
        elif record["type"] == "profile.updated":
            _merge(profiles.setdefault(pid, {}), orjson.loads(orjson.dumps(record["traits"])))
        elif "context" in record:
            _merge(profiles.setdefault(pid, {}), {"device": record["context"]["device"]})
    today = utc_date(DEFAULT_END)
    for traits in profiles.values():
        if "birthdate" in traits:
            born = date.fromisoformat(traits["birthdate"])
            before_birthday = (today.month, today.day) < (born.month, born.day)
            traits["age"] = today.year - born.year - before_birthday
    return list(profiles.values())


def _compiled(node: dict[str, Any]) -> Callable[[dict[str, Any]], bool]:
    """A trait-only condition as a test over traits, built from the rule language's operators."""
    if "and" in node:
        parts = [_compiled(child) for child in node["and"]]
        return lambda traits: all(part(traits) for part in parts)
    if "or" in node:
        parts = [_compiled(child) for child in node["or"]]
        return lambda traits: any(part(traits) for part in parts)
    if "not" in node:
        inner = _compiled(node["not"])
        return lambda traits: not inner(traits)
    predicate = compile_predicate(node["op"], node.get("value"), node.get("ignore_case", False))
    path = split_path(node["trait"])
    return lambda traits: predicate(terminals(traits, path), DEFAULT_END)


def _trait_only(node: dict[str, Any]) -> bool:
    return all(
        "event" not in n and "segment" not in n and "sequence" not in n for n in _nodes(node)
    )


def test_trait_only_segments_match_a_small_share_of_profiles() -> None:
    workload = generate_workload(profiles=2500, events=2500, segments=400, seed=13)
    profiles = _final_traits(workload)
    shares = []
    for definition in workload.definitions():
        if _trait_only(definition["condition"]):
            holds = _compiled(definition["condition"])
            matched = sum(holds(traits) for traits in profiles)
            shares.append(matched / len(profiles))
            assert shares[-1] <= 0.03, definition
    assert len(shares) > 100
    assert sum(shares) / len(shares) < 0.006
    assert sum(share > 0 for share in shares) > 0.5 * len(shares)  # not vacuous either


def test_thousand_segments_emit_well_under_one_transition_per_event() -> None:
    replay = pytest.importorskip("segstream.engine.replay")
    workload = generate_workload(profiles=300, events=3000, segments=1000, seed=17)
    session = replay.ReplaySession()
    for definition in workload.definitions():
        assert session.define(definition) == []
    transitions = 0
    entered: Counter[str] = Counter()
    for record in workload.records():
        for change in session.feed(orjson.dumps(record)):
            transitions += 1
            entered[change.to_record(0)["segment_id"]] += 1
    transitions += len(session.finish(None))
    assert transitions < 0.4 * 3000
    assert max(entered.values()) < 0.1 * 300
