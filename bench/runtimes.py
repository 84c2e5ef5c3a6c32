"""Native runtime vs Faust runtime, measured in one run on one broker (docs/runtimes.md).

Run: `python bench/runtimes.py` or `make faust-check` (reduced sizes by default: the machine is
shared; flags scale it). It starts its own broker unless SEGSTREAM_KAFKA_BOOTSTRAP is set.

For each runtime (`segstream worker` and `segstream worker --runtime faust`), on topics of its
own, with the same generated workload and segments:
 1. bulk throughput: one worker, segments applied, the input produced as fast as possible;
    timed from the first committed offset to the group's committed offsets at the end;
 2. latency: live events at `--rate` (1,250/s) for `--latency-seconds`, then at `--own-share`
    (half) of the runtime's own bulk rate; SPEC §6 latency of event-caused membership
    records (receipt minus the input's Kafka timestamp);
 3. restore: the worker stops, a new one starts on an empty store; seconds until /readyz;
 4. kill -9: a fresh application, a smaller workload with broad segments, the worker killed
    twice mid-stream (the second life without its store); membership records compared with
    replay: lost transitions and repeated records.
Prints a table and, last, one JSON object. `uptime` load is reported before and after.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import orjson

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent / "tests" / "integration")]

from faust_harness import FaustCluster, without_repeats  # noqa: E402
from test_faust_runtime import BROAD, broad_workload, wait_consumed  # noqa: E402
from test_worker_e2e import apply_segments, final_members, wait_applied  # noqa: E402
from worker_harness import WorkerCluster  # noqa: E402

from e2e_kafka import (  # noqa: E402
    Broker,
    GroupProgress,
    MembershipProbe,
    end_offsets,
    load,
    paced_send,
    partitions_of,
)
from segstream.engine.replay import run_replay  # noqa: E402
from segstream.generate import generate_workload, time_independent  # noqa: E402
from segstream.timefmt import parse_datetime  # noqa: E402


def say(text: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {text}", flush=True)


def load_average() -> str:
    return Path("/proc/loadavg").read_text().split(" ", 3)[:3].__str__()


def cluster_for(runtime: str, bootstrap: str, tmp: Path, partitions: int) -> WorkerCluster:
    cls = FaustCluster if runtime == "faust" else WorkerCluster
    return cls(bootstrap, tmp, partitions=partitions)


def group_of(cluster: WorkerCluster, runtime: str) -> str:
    return f"{cluster.settings.app_id}-faust" if runtime == "faust" else cluster.settings.app_id


async def bulk_and_latency(
    runtime: str, bootstrap: str, tmp: Path, args: argparse.Namespace
) -> dict[str, Any]:
    cluster = cluster_for(runtime, bootstrap, tmp / f"{runtime}-bulk", args.partitions)
    (tmp / f"{runtime}-bulk").mkdir(parents=True, exist_ok=True)
    workload = generate_workload(
        profiles=args.profiles,
        events=args.events,
        segments=args.segments,
        seed=5,
        live_start=time.time_ns() // 1000,
        rate=4000,
    )
    definitions = time_independent(list(workload.definitions())) + BROAD
    lines = [orjson.dumps(r) for r in workload.records()]
    await cluster.create_topics()
    result: dict[str, Any] = {}
    try:
        cluster.start("w1")
        cluster.wait_ready("w1", timeout=120)
        await apply_segments(cluster, definitions)
        await wait_applied(cluster, {d["id"] for d in definitions}, timeout=120)
        say(f"{runtime}: bulk: {len(lines)} records, {len(definitions)} segments")
        tps = partitions_of([cluster.topic("profiles"), cluster.topic("activity")], args.partitions)
        loading = asyncio.create_task(
            load(bootstrap, lines, cluster.topic("profiles"), cluster.topic("activity"))
        )
        started = time.monotonic()
        first: float | None = None
        async with GroupProgress(bootstrap, group_of(cluster, runtime), tps) as progress:
            while True:
                done = await progress.committed()
                if done and first is None:
                    first = time.monotonic()
                if done >= len(lines):
                    break
                if time.monotonic() - started > args.timeout:
                    raise SystemExit(f"{runtime}: {done}/{len(lines)} after {args.timeout}s")
                await asyncio.sleep(0.25)
        await loading
        seconds = time.monotonic() - started
        result["bulk"] = {
            "records": len(lines),
            "seconds": round(seconds, 2),
            "events_per_s": round(len(lines) / seconds),
        }
        say(f"{runtime}: bulk {result['bulk']}")

        # Latency at --rate (1,250/s), then at a share of this runtime's own bulk rate: the
        # tail of the workload again, new ids, `at` = when sent.
        own = max(1.0, result["bulk"]["events_per_s"] * args.own_share)
        result["latency"] = await latency(cluster, lines, args.rate, "L-", bootstrap, args)
        say(f"{runtime}: latency at {args.rate:.0f}/s {result['latency']}")
        result["latency_own"] = await latency(cluster, lines, own, "O-", bootstrap, args)
        say(f"{runtime}: latency at {own:.0f}/s {result['latency_own']}")

        # Restore: a new worker on an empty store.
        cluster.stop("w1", timeout=60)
        changelogs = (
            [f"{group_of(cluster, runtime)}-{t}-changelog" for t in ("profiles", "meta")]
            if runtime == "faust"
            else [cluster.settings.topics.changelog]
        )
        ends = await end_offsets(bootstrap, partitions_of(changelogs, args.partitions))
        result["changelog_records"] = sum(ends.values())
        began = time.monotonic()
        cluster.start("restore")
        cluster.wait_ready("restore", timeout=args.timeout)
        result["restore_s"] = round(time.monotonic() - began, 2)
        say(f"{runtime}: restore to ready {result['restore_s']} s")
    finally:
        cluster.stop_all()
    return result


async def latency(
    cluster: WorkerCluster,
    lines: list[bytes],
    rate: float,
    prefix: str,
    bootstrap: str,
    args: argparse.Namespace,
) -> dict[str, Any]:
    """Live events at `rate` for --latency-seconds; SPEC §6 latency of event-caused records."""
    count = int(rate * args.latency_seconds) + 1
    live = []
    for line in lines[-count:]:
        record = orjson.loads(line)
        record["id"] = f"{prefix}{record['id']}"
        kind = "profiles" if str(record["type"]).startswith("profile.") else "activity"
        live.append((cluster.topic(kind), str(record["profile_id"]).encode(), record))
    probe = MembershipProbe(bootstrap, cluster.topic("membership"), args.partitions)
    await probe.start()
    sent = await paced_send(bootstrap, live, rate, args.latency_seconds, probe)
    await probe.quiet(seconds=5.0, timeout=args.drain_timeout)
    await probe.stop()
    summary = probe.summary()
    return {
        "sent": sent,
        "event_latency_ms": summary["event_latency_ms"],
        "membership_records": summary["membership_records"],
    }


async def kill_twice(
    runtime: str, bootstrap: str, tmp: Path, args: argparse.Namespace
) -> dict[str, Any]:
    path = tmp / f"{runtime}-kill"
    path.mkdir(parents=True, exist_ok=True)
    cluster = cluster_for(runtime, bootstrap, path, args.partitions)
    definitions, records = broad_workload(args.kill_profiles, args.kill_events, 20)
    expected = run_replay(
        definitions,
        [orjson.dumps(r).decode() for r in records],
        until=max(parse_datetime(r["at"]) for r in records),
    ).memberships
    third = len(records) // 3
    await cluster.create_topics()
    try:
        cluster.start("w1")
        cluster.wait_ready("w1", timeout=120)
        await apply_segments(cluster, definitions)
        await wait_applied(cluster, {d["id"] for d in definitions}, timeout=120)
        await cluster.produce(records[:third])
        await asyncio.sleep(0.4)
        cluster.kill("w1")
        cluster.start("w2", store="w1")
        cluster.wait_ready("w2", timeout=120)
        await cluster.produce(records[third : 2 * third])
        await asyncio.sleep(0.4)
        cluster.kill("w2")
        cluster.start("w3")
        cluster.wait_ready("w3", timeout=120)
        await cluster.produce(records[2 * third :])
        await wait_consumed(cluster, timeout=args.timeout)
        live = await cluster.memberships(until_quiet=4, timeout=args.timeout)
    finally:
        cluster.stop_all()
    broad = {d["id"] for d in BROAD}
    unique, repeats = without_repeats(live)
    expected_ids = {m["id"] for m in expected if m["segment_id"] in broad}
    live_ids = {m["id"] for m in unique if m["segment_id"] in broad}
    outcome = {
        "records": len(live),
        "expected_transitions": len(expected_ids),
        "lost": len(expected_ids - live_ids),
        "unexpected": len(live_ids - expected_ids),
        "repeated": repeats,
        "final_members_equal": final_members(unique) == final_members(expected),
    }
    say(f"{runtime}: kill -9 x2 {outcome}")
    return outcome


async def run(args: argparse.Namespace) -> dict[str, Any]:
    work = Path(args.work or tempfile.mkdtemp(prefix="segstream-runtimes-"))
    broker = Broker(work / "kafka")
    bootstrap = broker.start()
    os.environ["SEGSTREAM_KAFKA_BOOTSTRAP"] = bootstrap
    result: dict[str, Any] = {"load_before": load_average(), "args": vars(args)}
    try:
        for runtime in args.runtimes.split(","):
            result[runtime] = await bulk_and_latency(runtime, bootstrap, work, args)
            result[runtime]["kill_9"] = await kill_twice(runtime, bootstrap, work, args)
    finally:
        broker.stop()
    result["load_after"] = load_average()
    return result


def report(result: dict[str, Any]) -> None:
    rows = [
        ("bulk events/s", lambda r: r["bulk"]["events_per_s"]),
        ("latency p50 ms", lambda r: r["latency"]["event_latency_ms"]["p50"]),
        ("latency p99 ms", lambda r: r["latency"]["event_latency_ms"]["p99"]),
        ("latency rate sent/s", lambda r: r["latency"]["sent"]["rate"]),
        ("own-share rate sent/s", lambda r: r["latency_own"]["sent"]["rate"]),
        ("  latency p50 ms", lambda r: r["latency_own"]["event_latency_ms"]["p50"]),
        ("  latency p99 ms", lambda r: r["latency_own"]["event_latency_ms"]["p99"]),
        ("restore s (empty store)", lambda r: r["restore_s"]),
        ("  changelog records", lambda r: r["changelog_records"]),
        ("kill -9 x2: lost", lambda r: r["kill_9"]["lost"]),
        ("kill -9 x2: repeated", lambda r: r["kill_9"]["repeated"]),
    ]
    runtimes = [r for r in ("native", "faust") if r in result]
    print(f"{'':28}" + "".join(f"{r:>14}" for r in runtimes))
    for label, pick in rows:
        print(f"{label:28}" + "".join(f"{pick(result[r])!s:>14}" for r in runtimes))
    if len(runtimes) == 2:
        ratio = result["native"]["bulk"]["events_per_s"] / result["faust"]["bulk"]["events_per_s"]
        print(f"bulk throughput ratio native/faust: {ratio:.1f}")
    print(f"load before {result['load_before']}, after {result['load_after']}")
    print(json.dumps(result, default=str))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runtimes", default="native,faust")
    parser.add_argument("--partitions", type=int, default=2)
    parser.add_argument("--profiles", type=int, default=1000)
    parser.add_argument("--events", type=int, default=20000)
    parser.add_argument("--segments", type=int, default=100)
    parser.add_argument("--rate", type=float, default=1250)
    parser.add_argument("--latency-seconds", type=float, default=15)
    parser.add_argument("--own-share", type=float, default=0.5, help="of the bulk rate")
    parser.add_argument("--drain-timeout", type=float, default=180)
    parser.add_argument("--kill-profiles", type=int, default=120)
    parser.add_argument("--kill-events", type=int, default=2400)
    parser.add_argument("--timeout", type=float, default=600)
    parser.add_argument("--work", default=None)
    report(asyncio.run(run(parser.parse_args())))


if __name__ == "__main__":
    main()
