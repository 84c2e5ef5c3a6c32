"""Timers and backfills on the real worker (SPEC §5): due changes within 1 s of their instant,
also across a restart; a backfill over many stored profiles that keeps events flowing and
survives kill -9 mid-way; dependents following an edited or deleted referenced segment.

`SEGSTREAM_BACKFILL_PROFILES` sets how many stored profiles the backfill test creates
(default 20,000; the issue's figure is 100,000).
"""

from __future__ import annotations

import asyncio
import os
import random
import re
import time
import urllib.request
from collections import defaultdict
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from test_worker_e2e import apply_segments, assert_exactly_once, final_members
from worker_harness import WorkerCluster

from segstream.app.segment_writer import SegmentWriter
from segstream.app.status_view import read_status_rows
from segstream.engine.replay import run_replay
from segstream.timefmt import format_instant, parse_datetime

pytestmark = pytest.mark.kafka

SECOND = 1_000_000
BACKFILL_PROFILES = int(os.environ.get("SEGSTREAM_BACKFILL_PROFILES", "20000"))


def wall_us() -> int:
    return time.time_ns() // 1000


# -- helpers ---------------------------------------------------------------------------------
async def wait_consumed(cluster: WorkerCluster, timeout: float = 300) -> None:
    """Until the worker group has committed every input record produced so far."""
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
            committed = await admin.list_consumer_group_offsets(cluster.settings.app_id)
            if all(
                end[tp] == 0 or (tp in committed and committed[tp].offset >= end[tp])
                for tp in parts
            ):
                return
            await asyncio.sleep(0.5)
        raise AssertionError("the worker did not consume its input in time")
    finally:
        await admin.close()
        await consumer.stop()


async def latest_status(cluster: WorkerCluster) -> dict[int, dict[str, Any]]:
    """The latest status record of each input partition (the status topic has ONE
    partition: `WorkerCluster.read` would wait for a second one that does not exist)."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=cluster.bootstrap, isolation_level="read_committed"
    )
    await consumer.start()
    try:
        tp = TopicPartition(cluster.topic("status"), 0)
        consumer.assign([tp])
        await consumer.seek_to_beginning(tp)
        end = (await consumer.end_offsets([tp]))[tp]
        latest: dict[int, dict[str, Any]] = {}
        while await consumer.position(tp) < end:
            for message in (await consumer.getmany(tp, timeout_ms=500)).get(tp, []):
                status = orjson.loads(message.value)
                latest[status["partition"]] = status["segments"]
        return latest
    finally:
        await consumer.stop()


async def status_of(cluster: WorkerCluster, segment: str) -> dict[int, Any]:
    """Each partition's latest status entry for one segment (None: not there)."""
    return {p: segs.get(segment) for p, segs in (await latest_status(cluster)).items()}


async def wait_ready_rows(cluster: WorkerCluster, ids: set[str], timeout: float = 60) -> None:
    """Until `segstream segments list` shows every segment in `ids` ready at its current
    version."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        rows = {r.id: r for r in await read_status_rows(cluster.settings)}
        if all(i in rows and rows[i].status == "ready" for i in ids):
            return
        await asyncio.sleep(0.3)
    raise AssertionError(f"{ids} not ready in time")


def ready_instants(log: str) -> list[int]:
    """When each partition became ready (log time, µs), in log order."""
    out = []
    for line in log.splitlines():
        try:
            entry = orjson.loads(line)
        except orjson.JSONDecodeError:
            continue
        if re.match(r"partition \d+ ready in", entry.get("msg", "")):
            out.append(parse_datetime(entry["ts"]))
    return out


def scrape(url: str) -> str:
    with urllib.request.urlopen(f"{url}/metrics", timeout=5) as response:
        return str(response.read().decode())


def metric(text: str, name: str, labels: str = "") -> float | None:
    """One sample of a Prometheus text exposition."""
    pattern = re.escape(name) + (r"\{" + re.escape(labels) + r"\}" if labels else "") + r" (\S+)"
    found = re.search("^" + pattern + "$", text, re.M)
    return float(found.group(1)) if found else None


class MembershipTail:
    """A read_committed consumer of the membership topic, from its end, that notes when each
    record arrived (the SPEC §6 end-to-end clock)."""

    def __init__(self, cluster: WorkerCluster) -> None:
        self.cluster = cluster
        self.received: list[tuple[float, dict[str, Any]]] = []
        self._task: asyncio.Task[None] | None = None
        self._consumer: Any = None

    async def start(self) -> None:
        self._consumer = AIOKafkaConsumer(
            bootstrap_servers=self.cluster.bootstrap, isolation_level="read_committed"
        )
        await self._consumer.start()
        parts = [
            TopicPartition(self.cluster.topic("membership"), p)
            for p in range(self.cluster.partitions)
        ]
        self._consumer.assign(parts)
        await self._consumer.seek_to_end(*parts)
        for tp in parts:  # resolve the positions now, before anything new is produced
            await self._consumer.position(tp)
        self._task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        while True:
            fetched = await self._consumer.getmany(timeout_ms=100)
            now = time.time()
            for messages in fetched.values():
                for message in messages:
                    self.received.append((now, orjson.loads(message.value)))

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        await self._consumer.stop()


async def loop_stalls(stop: asyncio.Event, stalls: list[float]) -> None:
    """How late this test's own event loop wakes up (a stall here delays the live sends)."""
    while not stop.is_set():
        t = time.monotonic()
        await asyncio.sleep(0.02)
        stalls.append(time.monotonic() - t - 0.02)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def pairs_of(memberships: Iterable[dict[str, Any]], segments: set[str]) -> dict[Any, list[Any]]:
    out: dict[Any, list[Any]] = defaultdict(list)
    for m in memberships:
        if m["segment_id"] in segments:
            out[(m["profile_id"], m["segment_id"])].append(m["type"])
    return dict(out)


# -- timers -------------------------------------------------------------------------------------
CART_5S = {
    "id": "cart-5s",
    "name": "Added to cart in the last 5 s",
    "condition": {"event": "cart.added", "within": "5s"},
}


def _cart(profile: str, event_id: str, at: int) -> dict[str, Any]:
    return {
        "id": event_id,
        "type": "cart.added",
        "profile_id": profile,
        "at": format_instant(at),
        "properties": {"product_id": "sku-1", "quantity": 1, "price": 9.5},
    }


def test_within_window_leaves_on_time_also_across_a_restart(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    cluster = WorkerCluster(kafka_bootstrap, tmp_path, partitions=2)
    last_cart: dict[str, int] = {}

    async def scenario() -> tuple[list[dict[str, Any]], str, int]:
        await cluster.create_topics()
        cluster.start("w1")
        url = cluster.wait_ready("w1")
        await apply_segments(cluster, [CART_5S])
        await wait_ready_rows(cluster, {"cart-5s"})

        # Live: one cart event each; some profiles get a second one 2 s later (the window
        # restarts from the last event).
        t0 = wall_us()
        live = [f"live-{i}" for i in range(12)]
        await cluster.produce(_cart(p, f"{p}-a", t0) for p in live)
        for p in live:
            last_cart[p] = t0
        await asyncio.sleep(2)
        t1 = wall_us()
        await cluster.produce(_cart(p, f"{p}-b", t1) for p in live[:4])
        for p in live[:4]:
            last_cart[p] = t1
        await asyncio.sleep(5 + 2)
        lag_metrics = scrape(url)

        # Across a restart: the profiles enter, the worker dies, their timers come due while
        # it is down, and the next life emits the leaves as soon as its partitions are ready.
        t2 = wall_us()
        restart = [f"down-{i}" for i in range(10)]
        await cluster.produce(_cart(p, f"{p}-a", t2) for p in restart)
        for p in restart:
            last_cart[p] = t2
        deadline = time.monotonic() + 4
        while time.monotonic() < deadline:  # until every entered is committed
            seen = await cluster.memberships(until_quiet=0.3, timeout=3)
            if {m["profile_id"] for m in seen} >= set(restart):
                break
        cluster.kill("w1")
        await asyncio.sleep(7)  # every `down-*` timer is now overdue
        restarted_at = wall_us()
        cluster.start("w1b", store="w1")
        cluster.wait_ready("w1b")
        await asyncio.sleep(3)
        memberships = await cluster.memberships(until_quiet=2)
        return memberships, lag_metrics, restarted_at

    try:
        memberships, lag_metrics, restarted_at = asyncio.run(scenario())
    finally:
        cluster.stop_all()
    assert_exactly_once(memberships)
    by_profile: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for m in memberships:
        by_profile[m["profile_id"]].append(m)
    assert set(by_profile) == set(last_cart)
    ready = [t for t in ready_instants(cluster.log("w1b")) if t >= restarted_at - SECOND]
    assert len(ready) == cluster.partitions, cluster.log("w1b")
    became_ready = max(ready)
    for profile, events in by_profile.items():
        assert [m["type"] for m in events] == ["segment.entered", "segment.left"], events
        entered, left = events
        assert entered["cause"]["kind"] == "event"
        assert left["cause"] == {"kind": "timer"}
        due = last_cart[profile] + 5 * SECOND
        assert parse_datetime(left["at"]) == due, (profile, left)
        emitted = parse_datetime(left["emitted_at"])
        if profile.startswith("live-"):
            assert 0 <= emitted - due <= SECOND, (profile, left)
        else:  # due while the worker was down: within 1 s of the partition becoming ready
            assert due < became_ready
            assert 0 <= emitted - became_ready <= SECOND, (profile, left, became_ready)
    # The histogram saw the live timers, all within a second.
    count = metric(lag_metrics, "segstream_timer_lag_seconds_count")
    within_1s = metric(lag_metrics, "segstream_timer_lag_seconds_bucket", 'le="1.0"')
    assert count is not None and count >= 12, lag_metrics
    assert within_1s == count


# -- backfill -----------------------------------------------------------------------------------
LIVE = {
    "id": "live",
    "name": "Touched live",
    "condition": {"trait": "live", "op": "eq", "value": True},
}
BIG = {
    "id": "big",
    "name": "Tier 1 or touched live",
    "condition": {
        "or": [
            {"trait": "tier", "op": "eq", "value": 1},
            {"trait": "live", "op": "eq", "value": True},
        ]
    },
}
BIG2 = {"id": "big2", "name": "Low score", "condition": {"trait": "score", "op": "lt", "value": 30}}


def _profile(i: int, at: str) -> dict[str, Any]:
    return {
        "id": f"u{i}",
        "type": "profile.updated",
        "profile_id": f"p{i:06d}",
        "at": at,
        "traits": {"tier": i % 4, "score": (i * 7) % 100},
    }


def test_backfill_over_stored_profiles_keeps_events_flowing_and_survives_kill_9(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    n = BACKFILL_PROFILES
    cluster = WorkerCluster(kafka_bootstrap, tmp_path, partitions=2)
    start_at = format_instant(wall_us() - 60 * SECOND)
    stored = [_profile(i, start_at) for i in range(n)]
    touched = random.Random(5).sample(range(n), k=min(n, 4000))
    live_events: list[dict[str, Any]] = []
    figures: dict[str, Any] = {"profiles": n}

    async def live_stream(stop: asyncio.Event, sent: dict[str, float], rate: float) -> None:
        """Profile updates at `rate`/s on stored profiles, each causing a `live` entered."""
        producer = AIOKafkaProducer(bootstrap_servers=cluster.bootstrap, linger_ms=0)
        await producer.start()
        try:
            while not stop.is_set() and len(live_events) < len(touched):
                i = touched[len(live_events)]
                record = {
                    "id": f"live{i}",
                    "type": "profile.updated",
                    "profile_id": f"p{i:06d}",
                    "at": format_instant(wall_us()),
                    "traits": {"live": True},
                }
                live_events.append(record)
                meta = await producer.send_and_wait(
                    cluster.topic("profiles"),
                    key=record["profile_id"].encode(),
                    value=orjson.dumps(record),
                )
                sent[record["id"]] = meta.timestamp / 1000
                await asyncio.sleep(1 / rate)
        finally:
            await producer.stop()

    async def scenario() -> list[dict[str, Any]]:
        await cluster.create_topics()
        cluster.start("w1")
        url = cluster.wait_ready("w1")
        await apply_segments(cluster, [LIVE])
        await wait_ready_rows(cluster, {"live"})
        loaded = time.monotonic()
        await cluster.produce(stored)
        await wait_consumed(cluster, timeout=max(300, n / 100))
        figures["load_s"] = round(time.monotonic() - loaded, 2)

        # Phase A: create `big` while events flow; measure their end-to-end latency.
        tail = MembershipTail(cluster)
        await tail.start()
        stop = asyncio.Event()
        sent: dict[str, float] = {}
        stream = asyncio.create_task(live_stream(stop, sent, rate=40))
        stalls: list[float] = []
        monitor = asyncio.create_task(loop_stalls(stop, stalls))
        await asyncio.sleep(1)
        created = time.monotonic()
        created_wall = time.time()
        await apply_segments(cluster, [BIG])
        saw_building = False
        while True:
            rows = {r.id: r for r in await read_status_rows(cluster.settings)}
            saw_building |= "big" in rows and rows["big"].status == "building"
            if "big" in rows and rows["big"].status == "ready":
                break
            assert time.monotonic() - created < max(300, n / 50), "backfill too slow"
            await asyncio.sleep(0.5)
        figures["backfill_s"] = round(time.monotonic() - created, 2)
        backfill_end = time.time()
        await asyncio.sleep(1)
        stop.set()
        await stream
        await monitor
        figures["test_loop_max_stall_s"] = round(max(stalls, default=0.0), 3)
        await asyncio.sleep(3)
        await tail.stop()
        first_seen: dict[str, float] = {}
        emitted: dict[str, float] = {}
        for received, m in tail.received:
            event_id = m["cause"].get("event_id")
            if event_id in sent and event_id not in first_seen:
                first_seen[event_id] = received
                emitted[event_id] = parse_datetime(m["emitted_at"]) / 1e6
        assert set(first_seen) == set(sent), "every live event gives a `live` entered"
        during = [first_seen[e] - sent[e] for e in sent if sent[e] <= backfill_end]
        figures["events_during_backfill"] = len(during)
        figures["p50_s"] = round(percentile(during, 0.5), 3)
        figures["p99_s"] = round(percentile(during, 0.99), 3)
        figures["max_s"] = round(max(during), 3)
        # (received - sent, emitted - sent, sent - creation) of the slowest events
        figures["slowest"] = sorted(
            (
                round(first_seen[e] - sent[e], 3),
                round(emitted[e] - sent[e], 3),
                round(sent[e] - created_wall, 3),
            )
            for e in sent
        )[-5:]
        assert saw_building
        assert metric(scrape(url), "segstream_backfill_remaining_profiles", 'segment="big"') == 0

        # Phase B: with small slices (so that the backfill takes a while and its progress is
        # seen), create `big2` and kill -9 the worker in the middle of its backfill. `big2`
        # is guarded (`score lt 30`: ~6,000 of 20,000 profiles walked by the guard index);
        # slices of 200 finished it between two polls on an idle machine (CI, session 17),
        # slices of 20 make it ~300 transactions.
        cluster.stop("w1")
        cluster.env["SEGSTREAM_BACKFILL_BATCH"] = "20"
        cluster.start("w2", store="w1")
        url = cluster.wait_ready("w2")
        await apply_segments(cluster, [BIG2])
        deadline = time.monotonic() + 120
        remaining: float | None = None
        progress: dict[int, Any] = {}
        while time.monotonic() < deadline:
            exposition = await asyncio.to_thread(scrape, url)
            remaining = metric(
                exposition, "segstream_backfill_remaining_profiles", 'segment="big2"'
            )
            progress = await status_of(cluster, "big2")
            if remaining and any(
                p is not None and not p["ready"] and 0 < p["backfill_done"] < p["backfill_total"]
                for p in progress.values()
            ):
                break
            await asyncio.sleep(0.2)
        else:
            raise AssertionError(f"no backfill progress seen: {remaining} {progress}")
        figures["killed_at"] = progress
        cluster.kill("w2")
        cluster.start("w3", store="w1")  # the same store: resume from the committed cursor
        cluster.wait_ready("w3", timeout=120)
        await wait_ready_rows(cluster, {"big2"}, timeout=max(300, n / 50))
        return await cluster.memberships(until_quiet=5, timeout=600)

    try:
        memberships = asyncio.run(scenario())
    finally:
        cluster.stop_all()
        print("backfill figures:", figures)
    assert figures["p99_s"] < 1.0, figures
    expected = run_replay(
        [LIVE],
        [orjson.dumps(r).decode() for r in stored]
        + [orjson.dumps({"type": "segment.upserted", "at": start_at, "segment": BIG}).decode()]
        + [orjson.dumps(r).decode() for r in live_events]
        + [orjson.dumps({"type": "segment.upserted", "at": start_at, "segment": BIG2}).decode()],
    )
    assert_exactly_once(memberships)
    assert final_members(memberships) == final_members(expected.memberships)
    # Every pair of the new segments went through exactly the transitions replay gives (one
    # `entered` each): nothing lost or repeated by the kill.
    wanted = {"big", "big2"}
    assert pairs_of(memberships, wanted) == pairs_of(expected.memberships, wanted)
    assert len(memberships) == len(expected.memberships)


# -- dependents ---------------------------------------------------------------------------------
BASE = {"id": "base", "name": "Tier 1", "condition": {"trait": "tier", "op": "eq", "value": 1}}
DEP = {"id": "dep", "name": "In base", "condition": {"segment": "base"}}
DEP2 = {
    "id": "dep2",
    "name": "In dep, with score",
    "condition": {"and": [{"segment": "dep"}, {"trait": "score", "op": "gte", "value": 50}]},
}
BASE_V2 = {**BASE, "condition": {"trait": "tier", "op": "in", "value": [2, 3]}}


def _key(m: dict[str, Any]) -> tuple[Any, ...]:
    return (m["type"], m["segment_version"], m["seq"], orjson.dumps(m["cause"]).decode())


def test_editing_and_deleting_a_referenced_segment_moves_its_dependents(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    cluster = WorkerCluster(kafka_bootstrap, tmp_path, partitions=2)
    at = format_instant(wall_us() - 10 * SECOND)
    profiles = [_profile(i, at) for i in range(400)]
    lines = [orjson.dumps(r).decode() for r in profiles] + [
        orjson.dumps({"type": "segment.upserted", "at": at, "segment": BASE_V2}).decode(),
        orjson.dumps({"type": "segment.deleted", "at": at, "segment_id": "base"}).decode(),
    ]
    expected = run_replay([BASE, DEP, DEP2], lines).memberships

    async def scenario() -> list[dict[str, Any]]:
        await cluster.create_topics()
        cluster.start("w1")
        cluster.wait_ready("w1")
        await apply_segments(cluster, [BASE, DEP, DEP2])
        await wait_ready_rows(cluster, {"base", "dep", "dep2"})
        await cluster.produce(profiles)
        await wait_consumed(cluster)
        await apply_segments(cluster, [BASE_V2])
        await wait_ready_rows(cluster, {"base", "dep", "dep2"})
        async with SegmentWriter(cluster.settings) as writer:
            await writer.delete("base")
        return await cluster.memberships(at_least=len(expected), until_quiet=4)

    try:
        live = asyncio.run(scenario())
    finally:
        cluster.stop_all()
    assert_exactly_once(live)

    def by_pair(ms: list[dict[str, Any]]) -> dict[Any, list[Any]]:
        out: dict[Any, list[Any]] = defaultdict(list)
        for m in ms:
            out[(m["profile_id"], m["segment_id"])].append(_key(m))
        return dict(out)

    assert by_pair(live) == by_pair(expected)
    edited = [m for m in live if m["cause"]["kind"] == "segment_updated"]
    assert {m["segment_id"] for m in edited} == {"base", "dep", "dep2"}
    assert all(m["cause"].get("segment_id") == "base" for m in edited if m["segment_id"] != "base")
    assert all("segment_id" not in m["cause"] for m in edited if m["segment_id"] == "base")
    deleted = [m for m in live if m["cause"]["kind"] == "segment_deleted"]
    assert deleted and {m["segment_id"] for m in deleted} == {"base"}
