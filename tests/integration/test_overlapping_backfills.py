"""A segment that references one whose backfill is still running gets replay's causes."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import orjson
import pytest
from test_worker_e2e import apply_segments, assert_exactly_once, wait_applied
from worker_harness import WorkerCluster

from segstream.engine.replay import run_replay

pytestmark = pytest.mark.kafka

PROFILES = 3000


def _at() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def test_dependent_created_during_a_pending_backfill(kafka_bootstrap: str, tmp_path: Path) -> None:
    base = {"id": "base", "name": "Base", "condition": {"trait": "n", "op": "lt", "value": 100}}
    dependent = {"id": "dep", "name": "Dep", "condition": {"segment": "base"}}
    records = [
        {
            "id": f"e{i}",
            "type": "profile.updated",
            "profile_id": f"p{i:05d}",
            "at": _at(),
            "traits": {"n": i},
        }
        for i in range(PROFILES)
    ]
    # A small batch keeps base's backfill pending while dep arrives.
    cluster = WorkerCluster(kafka_bootstrap, tmp_path, partitions=2, SEGSTREAM_BACKFILL_BATCH="20")

    async def scenario() -> list[dict[str, Any]]:
        await cluster.create_topics()
        cluster.start("w1")
        cluster.wait_ready("w1")
        await cluster.produce(records)
        await asyncio.sleep(3)
        await apply_segments(cluster, [base])
        await apply_segments(cluster, [dependent])
        await wait_applied(cluster, {"base", "dep"}, timeout=120)
        return await cluster.memberships(at_least=200)

    try:
        live = asyncio.run(scenario())
    finally:
        cluster.stop_all()
    expected = run_replay(
        [],
        [orjson.dumps(r).decode() for r in records]
        + [
            orjson.dumps({"type": "segment.upserted", "at": _at(), "segment": s}).decode()
            for s in (base, dependent)
        ],
    )
    assert_exactly_once(live)

    def summary(memberships: list[dict[str, Any]]) -> list[Any]:
        return sorted(
            (m["profile_id"], m["segment_id"], m["type"], m["seq"], orjson.dumps(m["cause"]))
            for m in memberships
        )

    assert summary(live) == summary(expected.memberships)
