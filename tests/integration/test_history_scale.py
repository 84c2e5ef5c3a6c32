"""A profile with a long history does not slow its partition (issue 19): one profile with
20,000 stored events on a one-partition worker, then another profile's event produces its
transition within seconds, and so does one more event of the big profile; the big profile's
memberships equal replay's, also after a restore from the changelog on an empty disk."""

from __future__ import annotations

import asyncio
import json
import random
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from test_worker_e2e import apply_segments, assert_exactly_once, final_members
from worker_harness import WorkerCluster

from segstream.engine.replay import run_replay
from segstream.state.layout import profile_of_key
from segstream.timefmt import DAY, format_instant

pytestmark = pytest.mark.kafka

HISTORY = 20_000
#: What "within seconds" means here, on a loaded 2-core test machine.
LATENCY_S = 10.0

DEFINITIONS: list[dict[str, Any]] = [
    {"id": "viewers", "name": "Viewers", "condition": {"event": "page.viewed"}},
    {
        "id": "heavy",
        "name": "Heavy",
        # A count scans the history up to its bound: a high one costs time, whatever the layout.
        "condition": {"event": "page.viewed", "count": {"op": "gte", "value": 500}},
    },
    {
        "id": "product-fan",
        "name": "Product fan",
        "condition": {
            "event": "page.viewed",
            "where": [{"property": "path", "op": "starts_with", "value": "/p/001"}],
            "count": {"op": "gte", "value": 20},  # ~38 of the views
        },
    },
    {
        "id": "spender",
        "name": "Spender",
        "condition": {"event": "order.purchased", "sum": "total", "op": "gte", "value": 1000},
    },
    {
        "id": "steady",
        "name": "Steady",
        "condition": {
            "event": "order.purchased",
            "avg": "total",
            "op": "between",
            "value": [10, 40],
        },
    },
    {"id": "pro", "name": "Pro", "condition": {"trait": "plan", "op": "eq", "value": "pro"}},
]


def _records(now: int) -> list[dict[str, Any]]:
    rng = random.Random(19)
    records: list[dict[str, Any]] = []
    for n in range(HISTORY):
        # `at` spread over 300 days and out of order: inserts land inside the history.
        at = now - rng.randrange(2 * DAY, 300 * DAY)
        if n % 20 == 19:
            total = round(rng.uniform(0.1, 60.0), 2)
            records.append(_event("big", f"o{n}", "order.purchased", at, {"total": total}))
        else:
            path = f"/p/{rng.randrange(0, 5000):04d}"
            records.append(_event("big", f"v{n}", "page.viewed", at, {"path": path}))
    return records


def _event(pid: str, eid: str, type_: str, at: int, properties: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": eid,
        "type": type_,
        "profile_id": pid,
        "at": format_instant(at),
        "properties": properties,
    }


async def _wait_for(cluster: WorkerCluster, profile_id: str, segment_id: str) -> float:
    """Seconds until a membership event of the pair is committed."""
    started = time.monotonic()
    consumer = AIOKafkaConsumer(
        bootstrap_servers=cluster.bootstrap, isolation_level="read_committed"
    )
    await consumer.start()
    try:
        tp = TopicPartition(cluster.topic("membership"), 0)
        consumer.assign([tp])
        await consumer.seek_to_beginning(tp)
        while time.monotonic() - started < 120:
            fetched = await consumer.getmany(timeout_ms=200)
            for messages in fetched.values():
                for m in messages:
                    body = orjson.loads(m.value)
                    if body["profile_id"] == profile_id and body["segment_id"] == segment_id:
                        return time.monotonic() - started
        raise AssertionError(f"no transition of {profile_id} in {segment_id}")
    finally:
        await consumer.stop()


def test_a_long_history_keeps_the_partition_fast(kafka_bootstrap: str, tmp_path: Path) -> None:
    cluster = WorkerCluster(kafka_bootstrap, tmp_path, partitions=1)
    now = int(time.time() * 1_000_000)
    records = _records(now)

    async def scenario() -> tuple[float, float, list[dict[str, Any]], list[dict[str, Any]]]:
        await cluster.create_topics()
        cluster.start("w1")
        cluster.wait_ready("w1")
        await apply_segments(cluster, DEFINITIONS)
        await asyncio.sleep(2)
        await cluster.produce(records)
        await _wait_for(cluster, "big", "heavy")
        await cluster.produce(
            [
                {
                    "id": "o1",
                    "type": "profile.updated",
                    "profile_id": "other",
                    "at": format_instant(now),
                    "traits": {"plan": "pro"},
                }
            ]
        )
        other = await _wait_for(cluster, "other", "pro")
        await cluster.produce(
            [
                {
                    "id": "b-pro",
                    "type": "profile.updated",
                    "profile_id": "big",
                    "at": format_instant(now),
                    "traits": {"plan": "pro"},
                }
            ]
        )
        big = await _wait_for(cluster, "big", "pro")
        memberships = await cluster.memberships()
        cluster.kill("w1")
        cluster.start("w2", store="fresh")
        url = cluster.wait_ready("w2")
        with urllib.request.urlopen(f"{url}/api/profiles/big?activity=0", timeout=30) as r:
            restored = json.loads(r.read())
        return other, big, memberships, restored["segments"]

    try:
        other, big, memberships, restored = asyncio.run(scenario())
    finally:
        cluster.stop_all()
    assert other < LATENCY_S, f"another profile's transition took {other:.1f}s"
    assert big < LATENCY_S, f"the big profile's own transition took {big:.1f}s"
    assert_exactly_once(memberships)
    replay_lines = [orjson.dumps(r) for r in records]
    replayed = run_replay(DEFINITIONS, replay_lines).memberships
    live_big = {p for p in final_members(memberships) if p[0] == "big" and p[1] != "pro"}
    assert live_big == final_members(replayed)
    assert {("big", s) for s in ("viewers", "heavy", "product-fan")} <= live_big
    assert {s["id"] for s in restored} == {s for _, s in live_big} | {"pro"}


async def _changelog(cluster: WorkerCluster) -> list[tuple[bytes, bytes | None]]:
    """Every committed changelog record, in offset order."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=cluster.bootstrap, isolation_level="read_committed"
    )
    await consumer.start()
    try:
        tp = TopicPartition(cluster.settings.topics.changelog, 0)
        consumer.assign([tp])
        await consumer.seek_to_beginning(tp)
        end = (await consumer.end_offsets([tp]))[tp]
        records = []
        while await consumer.position(tp) < end:
            for m in (await consumer.getmany(tp, timeout_ms=500)).get(tp, []):
                records.append((m.key, m.value))
        return records
    finally:
        await consumer.stop()


def test_deleting_a_long_history_writes_little_and_the_sweep_drops_it(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    """A profile with 3,000 events is deleted: the deletion's transaction writes a few
    records, not a tombstone per event; the sweep then tombstones every key of the old
    generation on the changelog (so compaction drops them), and a worker restored on an
    empty disk serves the profile as deleted."""
    cluster = WorkerCluster(kafka_bootstrap, tmp_path, partitions=1)
    now = int(time.time() * 1_000_000)
    records = _records(now)[:3000]

    async def scenario() -> tuple[list[Any], list[Any], int]:
        await cluster.create_topics()
        cluster.start("w1")
        cluster.wait_ready("w1")
        await apply_segments(cluster, DEFINITIONS)
        await asyncio.sleep(2)
        await cluster.produce(records)
        await _wait_for(cluster, "big", "heavy")
        marker = {
            "id": "o1",
            "type": "profile.updated",
            "profile_id": "other",
            "at": format_instant(now),
            "traits": {"plan": "pro"},
        }
        await cluster.produce([marker])
        await _wait_for(cluster, "other", "pro")
        # The marker (profiles topic) can overtake big's last events (activity topic): the
        # worker interleaves its input topics. Wait until every one is on the changelog.
        waited = time.monotonic()
        while True:
            before = await _changelog(cluster)
            stored = {k for k, _ in before if k[:1] == b"e" and profile_of_key(k) == "big"}
            if len(stored) >= 3000 or time.monotonic() - waited > 60:
                break
            await asyncio.sleep(0.5)
        deletion = {"id": "del", "type": "profile.deleted", "profile_id": "big"}
        await cluster.produce([deletion | {"at": format_instant(now)}])
        started = time.monotonic()
        while time.monotonic() - started < 60:
            after = await _changelog(cluster)
            if not any(k[:1] == b"w" for k, v in after[len(before) :] if v is None):
                await asyncio.sleep(1)
                continue
            break
        cluster.kill("w1")
        cluster.start("w2", store="fresh")
        url = cluster.wait_ready("w2")
        try:
            urllib.request.urlopen(f"{url}/api/profiles/big?activity=0", timeout=30)
            status = 200
        except urllib.error.HTTPError as exc:
            status = exc.code
            exc.close()
        return before, after, status

    try:
        before, after, status = asyncio.run(scenario())
    finally:
        cluster.stop_all()
    big = [(k, v) for k, v in before if profile_of_key(k) == "big"]
    old_keys = {k for k, _ in big if k[:1] in (b"e", b"t")}
    assert len({k for k in old_keys if k[:1] == b"e"}) == 3000
    added = after[len(before) :]
    tombstoned = {k for k, v in added if v is None}
    # Every old key of the profile got its tombstone (from the sweep, not the deletion).
    assert old_keys <= tombstoned
    mark = next(i for i, (k, v) in enumerate(added) if k[:1] == b"w" and v is not None)
    deletion_records = [r for r in added[: mark + 1] if profile_of_key(r[0]) == "big"]
    assert len(deletion_records) <= 4, deletion_records
    assert status == 404
