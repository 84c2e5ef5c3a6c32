"""Live records first (docs/performance.md, "Live records first"): a large backfill running on
a partition delays a live event on the same partition by at most one backfill slice and one
transaction's commit, and the backfill still finishes while the events flow.

The delay measured is the worker's: `emitted_at` of the event's membership record (the
processing clock when its record was applied) minus the record's Kafka timestamp, so the
event's own transaction and the test's consumer are not in it. The backfill's effect is that
delay during the backfill over the same delay just before it, in the same run, compared at
the 95th percentile (with ~100 events before the backfill, p99 is their second largest delay:
on a shared machine that is one slow broker round trip, not the backfill; p99 and max are
printed).
`SEGSTREAM_LIVE_FIRST_PROFILES` sets the stored profiles (default 20,000).
"""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiokafka import AIOKafkaProducer
from test_timers_and_backfill import (
    LIVE,
    MembershipTail,
    percentile,
    scrape,
    wait_consumed,
    wait_ready_rows,
)
from test_worker_e2e import apply_segments, assert_exactly_once
from worker_harness import WorkerCluster

from segstream.app.status_view import read_status_rows
from segstream.timefmt import format_instant, parse_datetime

pytestmark = pytest.mark.kafka

#: Enough for the backfill to outlast the 1 s skipped at its start by a few seconds even on
#: an idle machine (20,000 took 1.33 s there: 7 live events during it, CI, session 17).
PROFILES = int(os.environ.get("SEGSTREAM_LIVE_FIRST_PROFILES", "50000"))
#: The documented bound: one slice (SEGSTREAM_BACKFILL_SLICE_S, default 50 ms of evaluation)
#: plus one transaction (its writes, sends and broker round trips), whose duration is taken
#: from the worker's own `segstream_batch_duration_seconds` during the backfill (its p95
#: bucket bound): on a 2-core machine shared with the broker and other work it varies by 10x.
SLICE_S = 0.05
RATE = 40.0
#: An unguarded `or`: its backfill evaluates every stored profile.
WIDE = {
    "id": "wide",
    "name": "Tier 1 or low score",
    "condition": {
        "or": [
            {"trait": "tier", "op": "eq", "value": 1},
            {"trait": "score", "op": "lt", "value": 30},
        ]
    },
}


def _wall_us() -> int:
    return time.time_ns() // 1000


def test_a_backfill_delays_a_live_event_by_at_most_one_slice_and_a_commit(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    cluster = WorkerCluster(
        kafka_bootstrap, tmp_path, partitions=1, SEGSTREAM_BACKFILL_SLICE_S=str(SLICE_S)
    )
    start_at = format_instant(_wall_us() - 60_000_000)
    stored = [
        {
            "id": f"s{i}",
            "type": "profile.updated",
            "profile_id": f"p{i:06d}",
            "at": start_at,
            "traits": {"tier": i % 4, "score": (i * 7) % 100},
        }
        for i in range(PROFILES)
    ]
    sent: dict[str, tuple[float, int]] = {}  # event id -> (monotonic sent, Kafka timestamp ms)
    figures: dict[str, Any] = {"profiles": PROFILES}

    async def live(stop: asyncio.Event) -> None:
        producer = AIOKafkaProducer(bootstrap_servers=cluster.bootstrap, linger_ms=0)
        await producer.start()
        try:
            i = 0
            while not stop.is_set():
                pid = f"p{(i * 7919) % PROFILES:06d}"
                record = {
                    "id": f"live{i}",
                    "type": "profile.updated",
                    "profile_id": pid,
                    "at": format_instant(_wall_us()),
                    "traits": {"live": True, "n": i},
                }
                meta = await producer.send_and_wait(
                    cluster.topic("profiles"), key=pid.encode(), value=orjson.dumps(record)
                )
                sent[record["id"]] = (time.monotonic(), meta.timestamp)
                i += 1
                await asyncio.sleep(1 / RATE)
        finally:
            await producer.stop()

    async def scenario() -> tuple[float, float, float]:
        await cluster.create_topics()
        cluster.start("w1")
        url = cluster.wait_ready("w1")
        await apply_segments(cluster, [LIVE])
        await wait_ready_rows(cluster, {"live"})
        await cluster.produce(stored)
        await wait_consumed(cluster, timeout=max(300, PROFILES / 50))
        tail = MembershipTail(cluster)
        await tail.start()
        stop = asyncio.Event()
        stream = asyncio.create_task(live(stop))
        await asyncio.sleep(6)  # the baseline: live events alone
        created = time.monotonic()
        batches_before = _histogram(await asyncio.to_thread(scrape, url))
        await apply_segments(cluster, [WIDE])
        saw_building = False
        while True:
            rows = {r.id: r for r in await read_status_rows(cluster.settings)}
            saw_building |= "wide" in rows and rows["wide"].status == "building"
            if "wide" in rows and rows["wide"].status == "ready":
                break
            assert time.monotonic() - created < max(300, PROFILES / 20), "backfill too slow"
            await asyncio.sleep(0.25)
        done = time.monotonic()
        batches = _histogram(await asyncio.to_thread(scrape, url))
        figures["transaction_p95_s"] = _bucket_quantile(batches, batches_before, 0.95)
        stop.set()
        await stream
        await asyncio.sleep(3)
        await tail.stop()
        assert saw_building, "the backfill was over before it was seen running"
        tail_records = [m for _, m in tail.received]
        for m in tail_records:
            event_id = m["cause"].get("event_id")
            if m["segment_id"] == "live" and event_id in sent:
                figures.setdefault("delays", {})[event_id] = (
                    parse_datetime(m["emitted_at"]) / 1000 - sent[event_id][1]
                ) / 1000
        assert_exactly_once(tail_records)
        return created, done, done - created

    try:
        created, done, backfill_s = asyncio.run(scenario())
    finally:
        cluster.stop_all()
    delays: dict[str, float] = figures.pop("delays", {})
    assert set(delays) == set(sent), "every live event gives a `live` entered"
    before = [d for e, d in delays.items() if sent[e][0] < created]
    during = [d for e, d in delays.items() if created + 1 <= sent[e][0] < done]
    figures.update(
        backfill_s=round(backfill_s, 2),
        profiles_per_s=round(PROFILES / backfill_s),
        before_n=len(before),
        before_p95_s=round(percentile(before, 0.95), 3),
        before_p99_s=round(percentile(before, 0.99), 3),
        during_n=len(during),
        during_p50_s=round(percentile(during, 0.5), 3),
        during_p95_s=round(percentile(during, 0.95), 3),
        during_p99_s=round(percentile(during, 0.99), 3),
        during_max_s=round(max(during), 3),
        load=os.getloadavg(),
    )
    print("live-first figures:", figures)
    assert len(during) >= 20, figures
    extra = percentile(during, 0.95) - percentile(before, 0.95)
    assert extra <= SLICE_S + figures["transaction_p95_s"], figures


def _histogram(exposition: str) -> dict[float, float]:
    """Cumulative bucket counts of segstream_batch_duration_seconds."""
    buckets: dict[float, float] = {}
    for line in exposition.splitlines():
        if line.startswith("segstream_batch_duration_seconds_bucket{"):
            bound = line.split('le="', 1)[1].split('"', 1)[0]
            buckets[float(bound)] = float(line.rsplit(" ", 1)[1])
    return buckets


def _bucket_quantile(after: dict[float, float], before: dict[float, float], q: float) -> float:
    """The upper bound of the bucket holding quantile `q` of the observations in between."""
    total = after[float("inf")] - before.get(float("inf"), 0.0)
    for bound in sorted(after):
        if after[bound] - before.get(bound, 0.0) >= q * total:
            return bound
    return float("inf")
