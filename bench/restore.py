"""Restore benchmark (issue 19): how fast a worker's partitions come back from the changelog.

Run: `python bench/restore.py` (100,000 profiles, ~10 events each, 4 partitions), or smaller,
e.g. `--profiles 20000`. It starts its own broker (deploy/kafka-local/kafka.sh) unless
SEGSTREAM_KAFKA_BOOTSTRAP is set.

 1. build: profile states with the generator's events (traits, `page.viewed`, orders...), a
    few memberships and timers each, written as the worker writes a new profile
    (`profile_records`: head, one entry per event, dedupe slots, timers), plus `--rewrites`
    later versions of each head (a changelog holds many until compaction);
 2. produce them to a 4-partition changelog topic (keyed by the worker's partitioning);
 3. restore: empty stores, `restore_store` of every partition side by side (as a worker opens
    its partitions), timed; `--runs` times, the median reported.
Prints records/s and, last, one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from e2e import say
from e2e_kafka import Broker
from segstream.app.restore import open_store, restore_store
from segstream.app.settings import WorkerSettings
from segstream.generate import generate_workload
from segstream.state.layout import encode_head, profile_records
from segstream.state.profile import ProfileState
from segstream.timefmt import parse_datetime


def build_records(profiles: int, events: int, rewrites: int, seed: int) -> list[list[Any]]:
    """Changelog records (key, value) per profile, in the order a worker would write them."""
    workload = generate_workload(profiles=profiles, events=events, segments=1000, seed=seed)
    rng = random.Random(seed)
    states: dict[str, ProfileState] = {}
    for record in workload.records():
        pid = record.get("profile_id")
        if not isinstance(pid, str):
            continue
        state = states.setdefault(pid, ProfileState(exists=True))
        at = parse_datetime(record["at"])
        if record["type"] == "profile.updated":
            state.traits.update(record.get("traits", {}))
        elif record["type"] != "profile.deleted":
            state.add_event(at, record["id"], record["type"], record.get("properties", {}))
        state.remember(record["id"])
    out = []
    for pid, state in states.items():
        state.members = {f"seg-{rng.randrange(1000):04d}": 1 for _ in range(rng.randrange(8))}
        for _ in range(rng.randrange(4)):
            state.schedule(rng.randrange(10**15, 2 * 10**15), f"e{rng.randrange(10**6)}")
        records = profile_records(pid, state, None)
        for _ in range(rewrites):
            state.version += 1
            records.append((records[0][0], encode_head(state)))
        out.append(records)
    return out


async def produce(bootstrap: str, topic: str, partitions: int, per_profile: list[Any]) -> int:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, partitions, 1)])
    finally:
        await admin.close()
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, linger_ms=20, max_batch_size=1 << 20, acks="all"
    )
    await producer.start()
    sent = 0
    try:
        pending = []
        for n, records in enumerate(per_profile):
            for key, value in records:
                pending.append(await producer.send(topic, value, key=key, partition=n % partitions))
                sent += 1
            if len(pending) > 20_000:
                await asyncio.gather(*pending)
                pending = []
        await asyncio.gather(*pending)
    finally:
        await producer.stop()
    return sent


async def restore_all(settings: WorkerSettings, partitions: int, root: Path) -> tuple[float, int]:
    stores = [open_store(settings, root / f"p{p}") for p in range(partitions)]
    started = time.perf_counter()
    done = await asyncio.gather(
        *(restore_store(settings, p, store) for p, store in enumerate(stores))
    )
    elapsed = time.perf_counter() - started
    for store, _ in done:
        store.close()
    return elapsed, sum(n for _, n in done)


async def run(args: argparse.Namespace) -> dict[str, Any]:
    work = Path(args.workdir or tempfile.mkdtemp(prefix="segstream-restore-"))
    broker = Broker(work / "kafka")
    bootstrap = broker.start()
    try:
        built = time.perf_counter()
        per_profile = build_records(args.profiles, args.profiles * 10, args.rewrites, args.seed)
        say(f"built {sum(map(len, per_profile))} records in {time.perf_counter() - built:.1f}s")
        app = f"restore-{uuid.uuid4().hex[:8]}"
        settings = WorkerSettings.from_env(
            {
                "SEGSTREAM_KAFKA_BOOTSTRAP": bootstrap,
                "SEGSTREAM_APP_ID": app,
                "SEGSTREAM_STORE_DIR": str(work / "stores"),
            }
        )
        sent = await produce(bootstrap, settings.topics.changelog, args.partitions, per_profile)
        del per_profile
        say(f"produced {sent} records")
        times = []
        for n in range(args.runs):
            elapsed, applied = await restore_all(settings, args.partitions, work / f"run{n}")
            assert applied == sent, (applied, sent)
            say(f"run {n + 1}: {applied} records in {elapsed:.2f}s = {applied / elapsed:,.0f}/s")
            times.append(elapsed)
        median = statistics.median(times)
        return {
            "profiles": args.profiles,
            "partitions": args.partitions,
            "records": sent,
            "seconds": times,
            "median_s": median,
            "records_per_s": sent / median,
        }
    finally:
        broker.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--profiles", type=int, default=100_000)
    parser.add_argument("--partitions", type=int, default=4)
    parser.add_argument("--rewrites", type=int, default=3, help="later head versions each")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--workdir")
    args = parser.parse_args()
    import json

    result = asyncio.run(run(args))
    print(json.dumps(result), file=sys.stdout)


if __name__ == "__main__":
    main()
