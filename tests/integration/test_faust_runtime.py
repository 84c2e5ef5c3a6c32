"""The Faust runtime on the real broker gives what `segstream replay` gives."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import orjson
import pytest
from faust_harness import FaustCluster
from test_worker_e2e import (
    _workload,
    apply_segments,
    assert_exactly_once,
    final_members,
    sequences,
    wait_applied,
)

from segstream.engine.replay import run_replay
from segstream.timefmt import parse_datetime

pytestmark = pytest.mark.kafka


def test_faust_output_equals_replay(kafka_bootstrap: str, tmp_path: Path) -> None:
    definitions, records = _workload(profiles=100, events=1500, segments=50)
    expected = run_replay(
        definitions,
        [orjson.dumps(r).decode() for r in records],
        until=max(parse_datetime(r["at"]) for r in records),
    )
    assert expected.memberships
    cluster = FaustCluster(kafka_bootstrap, tmp_path, partitions=2)

    async def scenario() -> list[dict[str, Any]]:
        await cluster.create_topics()
        cluster.start("w1")
        cluster.wait_ready("w1", timeout=90)
        await apply_segments(cluster, definitions)
        await wait_applied(cluster, {d["id"] for d in definitions})
        await cluster.produce(records)
        return await cluster.memberships(at_least=len(expected.memberships), until_quiet=5)

    try:
        live = asyncio.run(scenario())
    finally:
        cluster.stop_all()
    assert_exactly_once(live)
    assert final_members(live) == final_members(expected.memberships)
    assert sequences(live, "solo-") == sequences(expected.memberships, "solo-")
    assert len(live) == len(expected.memberships)
