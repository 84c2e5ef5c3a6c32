"""Pure helpers of the API: partitioning, limits, and the OpenAPI document in sync."""

from __future__ import annotations

from typing import Any

import pytest
from aiokafka.partitioner import DefaultPartitioner

from segstream.api import HttpApi
from segstream.api.cluster import partition_for
from segstream.api.limits import MAX_CONDITIONS, count_conditions, definition_limits, query_int
from segstream.api.openapi import documented_routes, load_openapi
from segstream.app.settings import WorkerSettings
from segstream.errors import Problem


class NoPartitions:
    """A worker that owns nothing."""

    def __init__(self) -> None:
        self.settings = WorkerSettings.from_env({})
        self.partitions: dict[int, Any] = {}


@pytest.mark.parametrize("partitions", [1, 2, 3, 4, 12])
def test_partition_for_matches_the_producers_partitioner(partitions: int) -> None:
    everything = list(range(partitions))
    for n in range(300):
        pid = f"profile-{n}-é"
        assert partition_for(pid, partitions) == DefaultPartitioner()(
            pid.encode(), everything, everything
        )


def test_count_conditions_counts_nodes_and_where_entries() -> None:
    leaf = {"trait": "a", "op": "exists"}
    event = {"event": "page.viewed", "where": [{"property": "p", "op": "exists"}] * 3}
    assert count_conditions({"and": [leaf, {"not": leaf}, {"or": [event, leaf]}]}) == 10
    assert count_conditions("nonsense") == 0
    deep: dict[str, Any] = leaf
    for _ in range(5000):  # no recursion limit to hit
        deep = {"not": deep}
    assert count_conditions(deep) == 5001


def test_definition_limits() -> None:
    small = {"id": "a", "name": "A", "condition": {"trait": "x", "op": "exists"}}
    assert definition_limits(small) == []
    many = {"or": [{"trait": "x", "op": "exists"}] * 100}
    wide = {**small, "condition": {"and": [many] * 11}}
    assert [p.path for p in definition_limits(wide)] == ["condition"]
    assert count_conditions(wide["condition"]) > MAX_CONDITIONS
    huge = {**small, "description": "x" * 70_000}
    assert [p.path for p in definition_limits(huge)] == [""]


def test_query_int() -> None:
    assert query_int(None, "limit", 100, 1, 1000) == 100
    assert query_int("7", "limit", 100, 1, 1000) == 7
    for bad in ("0", "1001", "-1", "x", "1.5", "٣"):
        assert isinstance(query_int(bad, "limit", 100, 1, 1000), Problem)


def test_openapi_documents_exactly_the_public_routes() -> None:
    api = HttpApi(NoPartitions(), WorkerSettings.from_env({}))
    assert documented_routes(load_openapi()) == set(api.public_routes())
