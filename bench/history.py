"""History benchmark (issue 19): does a profile's past slow down its present?

Run: `python bench/history.py` (the issue's size: 100 profiles, H in 10/100/1,000/10,000,
30,000 further events, median of 3 runs), or smaller, e.g.
`--profiles 20 --histories 10,1000,10000 --events 10000 --runs 1`.
It starts its own broker (deploy/kafka-local/kafka.sh) unless SEGSTREAM_KAFKA_BOOTSTRAP is set.

Per history length H, one application with one partition and the generator's 1,000 segments:
 1. load: `profiles` profiles with H `page.viewed` events each (`at` spread over the 365 days
    before now, out of order), ingested by one worker (batches of 2,000: loading is not timed);
 2. measure (`runs` times): the worker stopped, `events` further events for those profiles
    (`at` = now) are produced, the worker restarts with SEGSTREAM_MAX_BATCH_RECORDS=100 and is
    timed until its committed offsets reach the end; the changelog records those events wrote
    are read back: Σ (key + value) ÷ events;
 3. footprint: the mean input event, the mean stored head, RocksDB bytes per profile.
Prints one line per H and, last, one JSON object with the ratios to H = 10 and the targets.
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

import orjson
from aiokafka import AIOKafkaConsumer, TopicPartition

from e2e import App, generated_definitions, say, store_footprint
from e2e_kafka import Broker, GroupProgress, du, end_offsets, load, partitions_of
from segstream.generate import generate_workload, write_workload
from segstream.timefmt import DAY, format_instant


def _view(pid: str, eid: str, at: int, rng: random.Random) -> bytes:
    n = rng.randrange(100_000)
    return orjson.dumps(
        {
            "id": eid,
            "type": "page.viewed",
            "profile_id": pid,
            "at": format_instant(at),
            "properties": {"url": f"https://shop.example/p/{n:06d}", "path": f"/p/{n:06d}"},
        }
    )


def history_lines(profiles: int, history: int, now: int, seed: int) -> list[bytes]:
    rng = random.Random(seed)
    lines = []
    for p in range(profiles):
        pid = f"h{p:04d}"
        lines.append(
            orjson.dumps(
                {
                    "id": f"{pid}-t",
                    "type": "profile.updated",
                    "profile_id": pid,
                    "at": format_instant(now - 365 * DAY + DAY),
                    "traits": {"plan": rng.choice(["free", "pro"]), "country": "DE"},
                }
            )
        )
        for i in range(history):
            at = now - rng.randrange(DAY, 364 * DAY)
            lines.append(_view(pid, f"{pid}-h{i}", at, rng))
    return lines


def further_lines(profiles: int, count: int, run: int, seed: int) -> list[bytes]:
    rng = random.Random(seed + 1000 + run)
    now = int(time.time() * 1_000_000)
    return [_view(f"h{rng.randrange(profiles):04d}", f"m{run}-{i}", now, rng) for i in range(count)]


async def committed_until(app: App, tps: list[Any], total: int, timeout: float) -> float:
    """Seconds from the first committed record of this run to `total` committed."""
    launched = time.monotonic()
    first: tuple[float, int] | None = None
    async with GroupProgress(app.settings.bootstrap, app.name, tps) as progress:
        done = await progress.committed()
        start_done = done
        while done < total:
            if time.monotonic() - launched > timeout:
                raise SystemExit(f"{app.name}: {done}/{total} after {timeout}s; see {app.dir}")
            for worker, process in app.processes.items():
                if process.poll() is not None:
                    raise SystemExit(f"{app.name}/{worker} exited; see {app.dir}/{worker}.log")
            await asyncio.sleep(0.2)
            done = await progress.committed()
            if first is None and done > start_done:
                first = (time.monotonic(), done)
    if first is None or first[1] >= total:  # all of it between two polls: time the launch
        first = (launched, start_done)
    seconds = time.monotonic() - first[0]
    return (total - first[1]) / seconds if seconds > 0 else float("nan")


async def changelog_bytes(app: App, start: int) -> tuple[int, int]:
    """(records, Σ key + value) of the changelog's partition 0 from offset `start`."""
    tp = TopicPartition(app.settings.topics.changelog, 0)
    consumer = AIOKafkaConsumer(
        bootstrap_servers=app.settings.bootstrap,
        isolation_level="read_committed",
        max_partition_fetch_bytes=16 * 1024 * 1024,
    )
    await consumer.start()
    try:
        consumer.assign([tp])
        end = (await consumer.end_offsets([tp]))[tp]
        consumer.seek(tp, start)
        records = size = 0
        while await consumer.position(tp) < end:
            fetched = await consumer.getmany(tp, timeout_ms=500, max_records=10_000)
            for m in fetched.get(tp, []):
                records += 1
                size += len(m.key or b"") + len(m.value or b"")
        return records, size
    finally:
        await consumer.stop()


async def changelog_end(app: App) -> int:
    tp = TopicPartition(app.settings.topics.changelog, 0)
    return (await end_offsets(app.settings.bootstrap, [tp]))[tp]


async def one_history(
    app: App, history: int, definitions: list[dict[str, Any]], args: argparse.Namespace
) -> dict[str, Any]:
    bootstrap = app.settings.bootstrap
    inputs = app.inputs
    app.env["SEGSTREAM_MAX_BATCH_RECORDS"] = "2000"
    await app.create_topics()
    tps = partitions_of(inputs, 1)
    # Segments first, on an empty store (no backfill), then the history.
    app.start("w1")
    app.apply(definitions, "segments")
    await app.wait_all_ready({d["id"] for d in definitions}, args.timeout)
    now = int(time.time() * 1_000_000)
    lines = history_lines(args.profiles, history, now, args.seed)
    event_bytes = statistics.mean(len(line) for line in lines[1 : history + 1] or lines)
    loaded = await load(bootstrap, lines, *inputs)
    total = sum((await end_offsets(bootstrap, tps)).values())
    started = time.monotonic()
    await committed_until(app, tps, total, args.timeout)
    say(f"H={history}: loaded {loaded['records']} in {time.monotonic() - started:.1f}s")
    rates = []
    per_event = []
    for run in range(args.runs):
        app.stop()
        app.env["SEGSTREAM_MAX_BATCH_RECORDS"] = "100"
        before = await changelog_end(app)
        more = further_lines(args.profiles, args.events, run, args.seed)
        await load(bootstrap, more, *inputs)
        total = sum((await end_offsets(bootstrap, tps)).values())
        app.start("w1")
        rate = await committed_until(app, tps, total, args.timeout)
        _records, size = await changelog_bytes(app, before)
        rates.append(rate)
        per_event.append(size / len(more))
        say(f"H={history} run {run + 1}: {rate:.0f} events/s, {size / len(more):.0f} B/event")
    app.stop()
    footprint = store_footprint(app.store("w1"))
    heads = footprint["logical_bytes"].get("p", 0) / max(1, footprint["keys"].get("p", 1))
    return {
        "history": history,
        "events_per_s": round(statistics.median(rates)),
        "runs": [round(r) for r in rates],
        "changelog_bytes_per_event": round(statistics.median(per_event)),
        "input_event_bytes": round(event_bytes),
        "head_bytes_mean": round(heads),
        "rocksdb_bytes_per_profile": round(du(app.store("w1")) / args.profiles),
        "logical_bytes_per_profile": round(
            sum(footprint["logical_bytes"].values()) / args.profiles
        ),
    }


async def run(args: argparse.Namespace) -> dict[str, Any]:
    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="segstream-history-"))
    workdir.mkdir(parents=True, exist_ok=True)
    broker = Broker(workdir / "kafka")
    run_id = f"hist{uuid.uuid4().hex[:6]}"
    apps: list[App] = []
    try:
        bootstrap = broker.start()
        say(f"broker {bootstrap}; work dir {workdir}")
        workload = generate_workload(profiles=10, events=10, segments=args.segments, seed=1)
        summary = write_workload(workload, workdir / "workload")
        definitions = generated_definitions(summary.segments_path, args.segments)
        results = []
        for index, history in enumerate(int(h) for h in args.histories.split(",") if h):
            name = f"{run_id}-{index}-h{history}"
            inputs = (f"{name}-in.profiles", f"{name}-in.activity")
            apps.append(App(bootstrap, workdir, name, inputs, 1))
            results.append(await one_history(apps[-1], history, definitions, args))
            print(orjson.dumps(results[-1]).decode(), flush=True)
    finally:
        for app in apps:
            app.stop()
        broker.stop()
    base = next((r for r in results if r["history"] == 10), None)
    for r in results:
        r["rate_ratio_to_10"] = round(r["events_per_s"] / base["events_per_s"], 3) if base else None
        bound = 2 * (r["input_event_bytes"] + r["head_bytes_mean"])
        r["changelog_bound_bytes"] = bound
        r["changelog_within_bound"] = r["changelog_bytes_per_event"] <= bound
    return {
        "workload": {
            "profiles": args.profiles,
            "events": args.events,
            "segments": args.segments,
            "runs": args.runs,
            "max_batch_records": 100,
        },
        "results": results,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--profiles", type=int, default=100)
    parser.add_argument("--histories", default="10,100,1000,10000")
    parser.add_argument("--events", type=int, default=30_000)
    parser.add_argument("--segments", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--seed", type=int, default=19)
    parser.add_argument("--timeout", type=float, default=3600)
    parser.add_argument("--workdir")
    args = parser.parse_args()
    result = asyncio.run(run(args))
    print(orjson.dumps(result).decode())
    sys.exit(0)


if __name__ == "__main__":
    main()
