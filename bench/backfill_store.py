"""Time a backfill of the benchmark's unguarded `or` segment over a real RocksDB store.

Builds (or reuses) a partition store of N profiles shaped like the benchmark's (traits with
`custom.plan`, ~10 events each over 60 days, mostly `page.viewed`, their ids in the dedupe
ring, a timer or two), then runs the backfill the way a worker's slices do (a transaction per
2,000 profiles: advance, prepare, flush), without Kafka. Prints one JSON line.

    .venv/bin/python bench/backfill_store.py --profiles 100000 --store /tmp/bf-store

`--no-event-timers` builds the store without event timers (as e2e.py's backfill workload,
ingested with a trait-only probe segment, leaves it). `--segment guarded` backfills a
guarded segment instead (`custom.tier eq gold`, ~5 % of the profiles, and 3 page views in
30 days); with `--index` the guard index's build pass runs first (timed on its own,
transactions of 5,000 heads) and the backfill walks the index (docs/state.md "Guard
index"); without it, every head, as before.
"""

from __future__ import annotations

import argparse
import cProfile
import hashlib
import json
import os
import pstats
import random
import shutil
import time
from pathlib import Path
from typing import Any

from e2e import BACKFILL_SEGMENT
from segstream.app.store import PartitionStore, ProfileWrite
from segstream.app.transaction import PartitionState, PartitionTransaction
from segstream.engine.backfill import BackfillJob, BackfillQueue
from segstream.engine.processor import SegmentEngine
from segstream.engine.registry import SegmentRegistry
from segstream.rules import condition_fingerprint
from segstream.state.layout import event_timer_key, profile_records
from segstream.state.profile import ProfileState
from segstream.timefmt import DAY

NOW = 1_800_000_000_000_000
RETENTION = 365 * DAY
#: The same segment as bench/e2e.py's backfill phase (an unguarded `or`).
SEGMENT = BACKFILL_SEGMENT
TYPES = ["page.viewed"] * 6 + ["product.viewed", "link.clicked", "cart.added", "app.opened"]
PLANS = ["free", "free", "free", "trial", "pro"]
#: A guarded segment whose guard about 5 % of the profiles meet.
GUARDED = {
    "id": "gold-viewers",
    "name": "Gold tier with three page views in 30 days",
    "condition": {
        "and": [
            {"trait": "custom.tier", "op": "eq", "value": "gold"},
            {"event": "page.viewed", "within": "30d", "count": {"op": "gte", "value": 3}},
        ]
    },
}
INDEX_STEP = 5000


def _tier(n: int) -> str:
    # Not from the profile's random stream, which stays as it was before the tier existed.
    return "gold" if (n * 2654435761) % 100 < 5 else "basic"


def build(store: PartitionStore, profiles: int, event_timers: bool = True) -> None:
    rng = random.Random(20)  # test data, not security
    batch: list[ProfileWrite] = []
    for n in range(profiles):
        pid = f"u-{n:08d}"
        state = ProfileState(exists=True)
        state.traits = {
            "email": f"{pid}@example.com",
            "custom": {"plan": rng.choice(PLANS), "score": rng.randrange(100), "tier": _tier(n)},
            "country": "DE",
        }
        for i in range(rng.randrange(4, 17)):
            at = NOW - rng.randrange(60 * DAY)
            type_ = rng.choice(TYPES)
            event = state.add_event(at, f"{pid}-e{i}", type_, {"url": f"/p/{rng.randrange(500)}"})
            state.remember(f"{pid}-e{i}")
            if not event_timers:
                continue
            # The timers the other segments of a real store leave: every event's retention
            # exit, and a 7-day window's exit of the page views.
            key = event_timer_key(type_, event.at, event.order)
            state.schedule(at + RETENTION, key)
            if type_ == "page.viewed" and at + 7 * DAY > NOW:
                state.schedule(at + 7 * DAY, key)
        state.schedule(NOW + rng.randrange(1, 30 * DAY), "s")
        batch.append(ProfileWrite(pid, profile_records(pid, state, None), state.next_due, {}, {}))
        if len(batch) == 2000:
            store.write(batch, {}, None)
            batch = []
    store.write(batch, {}, None)


def build_index(store: PartitionStore, registry: SegmentRegistry) -> tuple[float, int]:
    """The guard index's build pass for the registry's guard paths, as a worker's slices run
    it (a transaction per INDEX_STEP heads); its seconds and the heads it read."""
    store.sync_index(registry.guard_paths)
    partition = PartitionState(registry, now=NOW)
    heads = 0
    started = time.perf_counter()
    while store.index_building() is not None:
        txn = PartitionTransaction(store, partition, lambda: registry)
        heads += txn.index_step(INDEX_STEP)
        txn.prepare()
        txn.flush(None)
    return time.perf_counter() - started, heads


def backfill(
    store: PartitionStore, budget: int, segment: dict[str, Any] = SEGMENT, index: bool = False
) -> tuple[float, float, int, int, float]:
    registry = SegmentRegistry(RETENTION)
    partition = PartitionState(registry, now=NOW)
    engine: SegmentEngine | None = None
    kind = None
    partition.jobs = BackfillQueue()
    entered = evaluated = 0
    indexing = 0.0
    started = time.perf_counter()
    cpu = time.process_time()
    while True:
        txn = PartitionTransaction(store, partition, lambda: registry)
        if engine is None:
            engine = SegmentEngine(registry, txn, txn.due)
            kind = engine.install_segment(segment, condition_fingerprint(segment["condition"]))
            assert kind is not None
            partition.jobs.add(BackfillJob(segment["id"], kind, 1))
            if index:
                indexing, _heads = build_index(store, registry)
                started = time.perf_counter()
                cpu = time.process_time()
                continue
        else:
            engine.bind(txn, txn.due)
        if not partition.jobs:
            break
        job = partition.jobs.jobs[0]
        before = job.done
        # (The code before this session had no read-ahead of heads: the store's walk.)
        walk = getattr(txn, "profile_ids_after", store.profile_ids_after)
        walk_of = getattr(txn, "backfill_walk", None) if index else None
        changes = partition.jobs.advance(engine, walk, budget, NOW, (), walk_of)
        evaluated += job.done - before
        entered += sum(1 for c in changes if c.entered)
        txn.membership(changes)
        txn.prepare()
        txn.flush(None)
    return time.perf_counter() - started, time.process_time() - cpu, evaluated, entered, indexing


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--profiles", type=int, default=100_000)
    parser.add_argument("--store", type=Path, default=Path("/tmp/bf-store"))
    parser.add_argument("--copy-to", type=Path, default=None, help="run on a copy here")
    parser.add_argument("--budget", type=int, default=2000)
    parser.add_argument("--profile-out", type=Path, default=None, help="cProfile stats file")
    parser.add_argument("--segment", choices=["or", "guarded"], default="or")
    parser.add_argument("--index", action="store_true", help="build and walk the guard index")
    parser.add_argument(
        "--no-event-timers",
        action="store_true",
        help="build events without timers (no other segment uses them: e2e.py's backfill "
        "workload, ingested with a trait-only probe segment)",
    )
    args = parser.parse_args()
    fresh = not args.store.exists()
    if not fresh and args.copy_to is not None:
        # The backfill writes memberships: time it on a copy, so that runs compare.
        shutil.rmtree(args.copy_to, ignore_errors=True)
        shutil.copytree(args.store, args.copy_to)
        args.store = args.copy_to
    store = PartitionStore(args.store, block_cache_bytes=64 << 20, write_buffer_bytes=64 << 20)
    if fresh:
        t0 = time.perf_counter()
        build(store, args.profiles, event_timers=not args.no_event_timers)
        print(f"built {args.profiles} profiles in {time.perf_counter() - t0:.1f}s", flush=True)
        store.close()
        return  # run again to time the backfill on the reopened store
    if args.profile_out is not None:
        profiler = cProfile.Profile()
        profiler.enable()
    segment = GUARDED if args.segment == "guarded" else SEGMENT
    took, cpu, evaluated, entered, indexing = backfill(store, args.budget, segment, args.index)
    if args.profile_out is not None:
        profiler.disable()
        profiler.dump_stats(args.profile_out)
        pstats.Stats(str(args.profile_out)).sort_stats("tottime").print_stats(25)
    members = hashlib.sha256()
    timers = 0
    for key, _value in store.scan(b"s"):
        members.update(key)
    for _key, _value in store.scan(b"t"):
        timers += 1
    print(
        json.dumps(
            {
                "segment": args.segment,
                "index": args.index,
                "index_build_seconds": round(indexing, 2),
                "members_sha256": members.hexdigest()[:16],
                "timers": timers,
                "profiles": evaluated,
                "entered": entered,
                "seconds": round(took, 2),
                "profiles_per_s": round(evaluated / took),
                "cpu_seconds": round(cpu, 2),
                "profiles_per_cpu_s": round(evaluated / cpu),
                "load": os.getloadavg(),
            }
        )
    )


if __name__ == "__main__":
    main()
