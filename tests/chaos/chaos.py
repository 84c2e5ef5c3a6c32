"""Chaos harness: real workers and a real broker of its own, killed and restarted at random.

One *round* (a fresh application: topic prefix and consumer group) on the harness's broker:

    A  segments S1 are written; events part 1 are produced, paced, while chaos runs
    B  once part 1 is committed: segments S2 are created, one S1 segment is edited and two are
       deleted (backfills over every profile, in small slices) while chaos runs
    C  once S2 is applied everywhere: events part 2, paced, while chaos runs
    D  chaos stops; both workers stop, one comes back with an EMPTY store and alone owns every
       partition (full restore from the changelog, timed); events part 3

Chaos actions (seeded `random.Random`, each printed with its time): kill -9 of a worker (its
store wiped or kept), SIGTERM + restart, kill -9 while the worker restores, a member leaving
the two-worker group for a while and coming back, and a restart of the broker itself.

Verification, against `segstream replay` on the same input (every record of a profile goes
to one input topic, so its order is defined): per (profile, segment) the read_committed
output must be seq 1..n, strictly alternating, ids unique, and equal to replay's sequence for
that pair (type, cause, segment version, seq) — which also catches a lost *last* transition —
and the final memberships must equal replay's.

Run: `python tests/chaos/chaos.py --duration 600 [--seed N]` (`make chaos`); the test suite
runs one short round (tests/chaos/test_chaos.py).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "integration"))

from worker_harness import WorkerCluster

from segstream.app.segment_writer import SegmentWriter
from segstream.engine.replay import run_replay
from segstream.generate import generate_workload, time_independent
from segstream.rules import analyze_condition
from segstream.timefmt import parse_datetime

REPO_ROOT = Path(__file__).resolve().parent.parent.parent
KAFKA_SCRIPT = REPO_ROOT / "deploy" / "kafka-local" / "kafka.sh"
WORKERS = ("w1", "w2")
_WEB = re.compile(r"web listening on (http://[0-9.]+:[0-9]+)")
_READY = re.compile(
    r"partition (\d+) ready in ([0-9.]+)s: \d+ segments, \d+ timers, (\d+) backfills"
)
_RESTORE_METRIC = re.compile(r"^segstream_restore_duration_seconds_(count|sum) (\S+)$", re.M)
_STARTED = re.compile(r"worker \S+ started")
_RESTORED = re.compile(r"partition (\d+): restored (\d+) changelog records")


def say(message: str) -> None:
    """Print a timestamped harness line (flushed: pytest -s and make chaos show progress)."""
    print(f"[chaos {time.strftime('%H:%M:%S')}] {message}", flush=True)


# -- the harness's own broker ----------------------------------------------------------------
def _free_ports(count: int) -> list[int]:
    probes = [socket.socket(socket.AF_INET, socket.SOCK_STREAM) for _ in range(count)]
    try:
        for probe in probes:
            probe.bind(("127.0.0.1", 0))
        return [int(probe.getsockname()[1]) for probe in probes]
    finally:
        for probe in probes:
            probe.close()


class LocalBroker:
    """A broker of deploy/kafka-local/kafka.sh that this harness may restart at will."""

    def __init__(self, data_dir: Path) -> None:
        port, controller = _free_ports(2)
        self.env = {
            **os.environ,
            "SEGSTREAM_KAFKA_DATA": str(data_dir),
            "SEGSTREAM_KAFKA_PORT": str(port),
            "SEGSTREAM_KAFKA_CONTROLLER_PORT": str(controller),
        }
        self.bootstrap = f"127.0.0.1:{port}"

    def _run(self, command: str) -> None:
        done = subprocess.run(
            ["bash", str(KAFKA_SCRIPT), command],
            env=self.env,
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode != 0:
            raise RuntimeError(f"kafka.sh {command} failed:\n{done.stderr}")

    def start(self) -> None:
        self._run("start")

    def stop(self) -> None:
        self._run("stop")

    def restart(self) -> None:
        self._run("restart")


# -- workload ---------------------------------------------------------------------------------
@dataclass
class Workload:
    """What one round writes, and replay's answer for it."""

    s1: list[dict[str, Any]]
    s2: list[dict[str, Any]]
    deleted: list[str]
    waves: list[tuple[list[dict[str, Any]], list[str]]]
    parts: list[list[dict[str, Any]]]
    expected: list[dict[str, Any]]


def _count(event: str, op: str, value: Any) -> dict[str, Any]:
    return {"event": event, "count": {"op": op, "value": value}}


# Broad segments whose members come and go often (the generated ones are selective).
BROAD_S1: list[dict[str, Any]] = [
    {"id": "chaos-female", "condition": {"trait": "gender", "op": "eq", "value": "female"}},
    {"id": "chaos-mobile", "condition": {"trait": "device.type", "op": "eq", "value": "mobile"}},
    {"id": "chaos-views", "condition": _count("product.viewed", "between", [2, 4])},
    {"id": "chaos-few-pages", "condition": _count("page.viewed", "lt", 3)},
    {"id": "chaos-free", "condition": {"trait": "custom.plan", "op": "eq", "value": "free"}},
    {
        "id": "chaos-cart",
        "condition": {"event": "cart.added", "sum": "price", "op": "gt", "value": 150},
    },
    {
        "id": "chaos-female-views",
        "condition": {"and": [{"segment": "chaos-female"}, {"segment": "chaos-views"}]},
    },
    {"id": "chaos-not-female", "condition": {"not": {"segment": "chaos-female"}}},
    {
        "id": "chaos-mobile-or-cart",
        "condition": {"or": [{"segment": "chaos-mobile"}, {"segment": "chaos-cart"}]},
    },
]
BROAD_S2: list[dict[str, Any]] = [
    {"id": "chaos-pages", "condition": _count("page.viewed", "between", [3, 6])},
    {"id": "chaos-buyer", "condition": _count("order.purchased", "gte", 1)},
    {"id": "chaos-desktop", "condition": {"trait": "device.type", "op": "eq", "value": "desktop"}},
    {
        "id": "chaos-pages-free",
        "condition": {"and": [{"segment": "chaos-pages"}, {"segment": "chaos-free"}]},
    },
    # An edit: chaos-views gets a new condition (version 2).
    {"id": "chaos-views", "condition": _count("product.viewed", "between", [3, 7])},
]


def make_workload(seed: int, profiles: int, events: int, segments: int) -> Workload:
    workload = generate_workload(
        profiles=profiles,
        events=events,
        segments=segments,
        seed=seed,
        live_start=time.time_ns() // 1000,
        rate=4000,
        duplicate_share=0.02,
    )
    definitions = time_independent(list(workload.definitions()))
    half = len(definitions) * 2 // 3
    broad_s1 = [{"name": d["id"], **d} for d in BROAD_S1]
    broad_s2 = [{"name": d["id"], **d} for d in BROAD_S2]
    s1, s2 = definitions[:half] + broad_s1, definitions[half:] + broad_s2
    referenced = {s for d in definitions for s in analyze_condition(d["condition"]).segments}
    # Deletions: a segment others reference (dependents re-evaluate) and one nobody does.
    deleted = ["chaos-female"]
    deleted += [d["id"] for d in reversed(definitions[:half]) if d["id"] not in referenced][:1]
    records = list(workload.records())
    cut1, cut2 = len(records) * 5 // 10, len(records) * 9 // 10
    parts = [records[:cut1], records[cut1:cut2], records[cut2:]]
    last_at = max(parse_datetime(r["at"]) for r in records)
    at = parts[0][-1]["at"]
    waves = _waves(s2, deleted, {d["id"] for d in s1})
    changes = []
    for upserts, deletions in waves:
        changes += [{"type": "segment.upserted", "at": at, "segment": d} for d in upserts]
        changes += [{"type": "segment.deleted", "at": at, "segment_id": s} for s in deletions]
    lines = [orjson.dumps(r) for r in parts[0] + changes + parts[1] + parts[2]]
    result = run_replay(s1, lines, until=last_at)
    assert not result.rejected_segments, result.problems[:5]
    return Workload(s1, s2, deleted, waves, parts, result.memberships)


def _waves(
    s2: list[dict[str, Any]], deleted: list[str], s1_ids: set[str]
) -> list[tuple[list[dict[str, Any]], list[str]]]:
    """The segment changes in waves applied one after the other (each waits until every
    partition finished the previous one's backfills): a new segment never comes in the same
    wave as one it references, edits come last, deletions after them. Overlapping backfills
    of dependent segments give causes that differ from replay's (see docs/guarantees.md)."""
    new = {d["id"] for d in s2}
    level: dict[str, int] = {}
    edits = [d for d in s2 if d["id"] in s1_ids]
    edit_ids = {d["id"] for d in edits}
    for d in s2:
        if d["id"] in edit_ids:
            continue
        refs = analyze_condition(d["condition"]).segments
        level[d["id"]] = 1 + max((level.get(r, -1) for r in refs if r in new), default=-1)
    waves: list[tuple[list[dict[str, Any]], list[str]]] = []
    for n in range(max(level.values(), default=-1) + 1):
        waves.append(([d for d in s2 if level.get(d["id"]) == n], []))
    waves.append((edits, []))
    waves.append(([], deleted))
    return [w for w in waves if w[0] or w[1]]


def topic_of(record: dict[str, Any]) -> str:
    """Every record of a profile goes to one input topic (so its order is defined)."""
    return "profiles" if sum(record["profile_id"].encode()) % 2 else "activity"


# -- report -----------------------------------------------------------------------------------
@dataclass
class Report:
    """What the rounds did and found."""

    rounds: int = 0
    records: int = 0
    transitions: int = 0
    expected: int = 0
    pairs: int = 0
    kills: int = 0
    kills_in_restore: int = 0
    wiped: int = 0
    graceful: int = 0
    leaves: int = 0
    broker_restarts: int = 0
    crashes: int = 0
    startup_without_broker: int = 0
    resumed_backfills: int = 0
    duplicates: int = 0
    gaps: int = 0
    mismatched_pairs: int = 0
    final_diff: int = 0
    #: Pairs where the current-membership topic (SPEC §6.1) disagrees with the transitions.
    members_topic_diff: int = 0
    restores: list[float] = field(default_factory=list)
    full_restores: list[tuple[float, int]] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    @property
    def anomalies(self) -> int:
        return (
            self.duplicates
            + self.gaps
            + self.mismatched_pairs
            + self.final_diff
            + self.members_topic_diff
        )

    def summary(self) -> str:
        restores = sorted(self.restores)
        median = restores[len(restores) // 2] if restores else 0.0
        full = ", ".join(f"{s:.2f}s/{n} records" for s, n in self.full_restores) or "-"
        return (
            f"rounds {self.rounds}; input records {self.records}; transitions checked "
            f"{self.transitions} (replay {self.expected}, {self.pairs} pairs); kill -9 survived "
            f"{self.kills} ({self.kills_in_restore} during restore, {self.wiped} with store "
            f"wiped); graceful restarts {self.graceful}; member leave/rejoin {self.leaves}; "
            f"broker restarts {self.broker_restarts}; unexpected worker exits {self.crashes} "
            f"(+{self.startup_without_broker} started while the broker was down); "
            f"partitions reopened mid-backfill {self.resumed_backfills}; "
            f"duplicates {self.duplicates}; gaps {self.gaps}; mismatched pairs "
            f"{self.mismatched_pairs}; final membership differences {self.final_diff}; "
            f"members topic differences {self.members_topic_diff}; "
            f"partition restores {len(restores)} (median {median:.2f}s, max "
            f"{max(restores, default=0.0):.2f}s); full restore with empty store: {full}"
        )


# -- one round ----------------------------------------------------------------------------------
class Round:
    """One application under chaos."""

    def __init__(
        self,
        broker: LocalBroker,
        tmp: Path,
        rng: random.Random,
        report: Report,
        seed: int,
        max_broker_restarts: int,
        fault_every: tuple[float, float],
        backfill_batch: int,
    ) -> None:
        self.broker = broker
        self.tmp = tmp
        self.rng = rng
        self.report = report
        self.seed = seed
        self.cluster = WorkerCluster(
            broker.bootstrap,
            tmp,
            partitions=4,
            SEGSTREAM_BACKFILL_BATCH=str(backfill_batch),
            SEGSTREAM_LOG_LEVEL="info",
        )
        self.broker_lock = asyncio.Lock()
        self.down: set[str] = set()  # workers the chaos keeps down on purpose
        self.t0 = time.monotonic()
        self.phase = ""
        self.broker_restarts = 0
        self.max_broker_restarts = max_broker_restarts
        self.fault_every = fault_every
        self.leaves = 0
        self.marks: dict[str, int] = {}  # where each worker's current life starts in its log
        self.lagging: dict[str, int] = {}  # the partitions behind at the last lag query

    def note(self, message: str) -> None:
        say(f"+{time.monotonic() - self.t0:6.1f}s {message}")

    # -- workers ----------------------------------------------------------------------------
    def start(self, name: str, wipe: bool = False) -> None:
        if wipe:
            shutil.rmtree(self.tmp / name, ignore_errors=True)
        log = self.tmp / f"{name}.log"
        self.marks[name] = log.stat().st_size if log.exists() else 0
        self.cluster.start(name)

    def reap(self) -> None:
        """Workers that exited on their own are counted and started again."""
        for name, process in list(self.cluster.processes.items()):
            if process.poll() is not None:
                life = self.cluster.log(name)[self.marks.get(name, 0) :]
                if "Unable to bootstrap" in life and not _STARTED.search(life):
                    # It started while the broker was restarting: the worker does not wait
                    # for a broker at start-up (a supervisor restarts it).
                    self.report.startup_without_broker += 1
                else:
                    self.report.crashes += 1
                    self.report.problems.append(f"{name} exited with {process.returncode}")
                self.note(f"{name} EXITED on its own ({process.returncode}); restarting it")
                del self.cluster.processes[name]
                self.start(name)
        for name in WORKERS:
            if name not in self.cluster.processes and name not in self.down:
                self.start(name)

    async def chaos(self, stop: asyncio.Event) -> None:
        """Random faults until `stop`."""
        rng = self.rng
        while not stop.is_set():
            try:
                await asyncio.wait_for(stop.wait(), rng.uniform(*self.fault_every))
                return
            except TimeoutError:
                pass
            self.reap()
            action = rng.choices(
                ["kill", "kill_restore", "term", "leave", "broker"], [5, 2, 2, 1, 1]
            )[0]
            if action == "broker" and self.broker_restarts >= self.max_broker_restarts:
                action = "kill"
            if self.phase == "B" and self.broker_restarts == 0:
                action = "broker"  # at least one broker restart per round, during backfills
            elif self.phase == "C" and self.leaves == 0:
                action = "leave"  # and at least one member leaving and coming back
            name = rng.choice(WORKERS)
            if action == "kill":
                wipe = rng.random() < 0.3
                self.cluster.kill(name)
                self.report.kills += 1
                self.report.wiped += wipe
                self.note(f"kill -9 {name}{' (store wiped)' if wipe else ''}")
                await asyncio.sleep(rng.uniform(0, 1.5))
                self.start(name, wipe)
            elif action == "kill_restore":
                self.cluster.kill(name)
                self.start(name, wipe=True)
                delay = rng.uniform(0.5, 3.0)
                await asyncio.sleep(delay)
                self.cluster.kill(name)
                self.report.kills += 2
                self.report.kills_in_restore += 1
                self.report.wiped += 1
                self.note(f"kill -9 {name}, restart with empty store, kill -9 after {delay:.1f}s")
                self.start(name)
            elif action == "term":
                code = await asyncio.to_thread(self.cluster.stop, name, 30)
                self.report.graceful += 1
                self.note(f"SIGTERM {name} (exit {code}), restart")
                self.start(name)
            elif action == "leave":
                self.cluster.kill(name)
                self.down.add(name)
                self.report.kills += 1
                self.report.leaves += 1
                self.leaves += 1
                away = rng.uniform(8.0, 14.0)
                self.note(f"kill -9 {name}, away {away:.1f}s (the other member takes over)")
                await asyncio.sleep(away)
                self.down.discard(name)
                self.start(name)
                self.note(f"{name} rejoins")
            else:
                async with self.broker_lock:
                    self.note("broker restart")
                    await asyncio.to_thread(self.broker.restart)
                    self.report.broker_restarts += 1
                    self.broker_restarts += 1
                    self.note("broker back")

    async def wait_ready_after(self, name: str, mark: int, timeout: float) -> None:
        """Until the worker started after log offset `mark` answers /readyz with 200."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = _WEB.findall(self.cluster.log(name)[mark:])
            if found:
                try:
                    with urllib.request.urlopen(f"{found[-1]}/readyz", timeout=2) as response:
                        if response.status == 200:
                            return
                except OSError:
                    pass
            await asyncio.sleep(0.2)
        raise AssertionError(f"worker {name} never became ready")

    # -- Kafka I/O --------------------------------------------------------------------------
    async def produce_paced(self, records: list[dict[str, Any]], seconds: float) -> None:
        chunks = max(1, int(seconds / 0.25))
        size = max(1, -(-len(records) // chunks))
        for i in range(0, len(records), size):
            async with self.broker_lock:
                await self._produce(records[i : i + size])
            await asyncio.sleep(0.25)
        self.report.records += len(records)

    async def _produce(self, records: list[dict[str, Any]]) -> None:
        producer = AIOKafkaProducer(
            bootstrap_servers=self.broker.bootstrap, enable_idempotence=True, linger_ms=5
        )
        await producer.start()
        try:
            futures = [
                await producer.send(
                    self.cluster.topic(topic_of(r)),
                    key=r["profile_id"].encode(),
                    value=orjson.dumps(r),
                )
                for r in records
            ]
            await asyncio.gather(*futures)
        finally:
            await producer.stop()

    async def _lag(self) -> int:
        """Records of the inputs and the control topic the group has not committed yet."""
        topics = [self.cluster.topic(n) for n in ("profiles", "activity", "control")]
        parts = [TopicPartition(t, p) for t in topics for p in range(self.cluster.partitions)]
        consumer = AIOKafkaConsumer(bootstrap_servers=self.broker.bootstrap)
        admin = AIOKafkaAdminClient(bootstrap_servers=self.broker.bootstrap)
        await consumer.start()
        await admin.start()
        try:
            ends = await consumer.end_offsets(parts)
            committed = await admin.list_consumer_group_offsets(self.cluster.settings.app_id)
        finally:
            await consumer.stop()
            await admin.close()
        self.lagging = {}
        for tp in parts:
            done = committed.get(tp)
            behind = ends[tp] - (done.offset if done is not None and done.offset >= 0 else 0)
            if behind:
                self.lagging[f"{tp.topic}[{tp.partition}]"] = behind
        return sum(self.lagging.values())

    async def wait_committed(self, timeout: float = 600) -> None:
        """Until the group has committed every input and control record (transactions)."""
        deadline = time.monotonic() + timeout
        lag = -1
        while time.monotonic() < deadline:
            try:
                async with self.broker_lock:
                    lag = await self._lag()
                if lag == 0:
                    return
            except Exception as exc:  # the broker restarting: ask again
                self.note(f"lag query failed: {exc!r}")
            await asyncio.sleep(1.0)
        raise AssertionError(
            f"the group still lags {lag} records after {timeout}s: {self.lagging}\n"
            + await self.stall_report()
        )

    async def stall_report(self) -> str:
        """What each live worker was doing: its tasks' awaits (SIGUSR1) and its log's end."""
        for process in self.cluster.processes.values():
            if process.poll() is None:
                process.send_signal(signal.SIGUSR1)
        await asyncio.sleep(2.0)
        parts = []
        for name in WORKERS:
            if (self.tmp / f"{name}.log").exists():
                tail = self.cluster.log(name)[-12000:]
                parts.append(f"--- {name} (log end) ---\n{tail}")
        return "\n".join(parts)

    async def status(self) -> dict[int, dict[str, Any]]:
        """The latest status of each input partition (the status topic read to its end)."""
        latest: dict[int, dict[str, Any]] = {}
        consumer = AIOKafkaConsumer(bootstrap_servers=self.broker.bootstrap)
        await consumer.start()
        try:
            tp = TopicPartition(self.cluster.topic("status"), 0)
            consumer.assign([tp])
            await consumer.seek_to_beginning(tp)
            end = (await consumer.end_offsets([tp]))[tp]
            while await consumer.position(tp) < end:
                for message in (await consumer.getmany(tp, timeout_ms=500)).get(tp, []):
                    status = orjson.loads(message.value)
                    latest[status["partition"]] = status["segments"]
        finally:
            await consumer.stop()
        return latest

    async def wait_segments(self, live: set[str], gone: set[str], timeout: float = 600) -> None:
        """Until every partition has every live segment ready and no deleted one."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                async with self.broker_lock:
                    latest = await self.status()
                if len(latest) == self.cluster.partitions and all(
                    all(s in segs and segs[s]["ready"] for s in live) and not gone & segs.keys()
                    for segs in latest.values()
                ):
                    return
            except Exception as exc:
                self.note(f"status read failed: {exc!r}")
            await asyncio.sleep(1.0)
        raise AssertionError(
            "segments were not applied on every partition in time\n" + await self.stall_report()
        )

    async def apply_segments(self, definitions: list[Any], deleted: list[str]) -> None:
        while True:
            try:
                async with self.broker_lock, SegmentWriter(self.cluster.settings) as writer:
                    results = await writer.apply(definitions)
                    rejected = [r for r in results if r.outcome == "rejected"]
                    assert not rejected, rejected
                    for segment_id in deleted:
                        await writer.delete(segment_id)
                return
            except AssertionError:
                raise
            except Exception as exc:
                self.note(f"segment write failed, again: {exc!r}")
                await asyncio.sleep(1.0)

    # -- the round --------------------------------------------------------------------------
    async def run(self, phase_s: float, profiles: int, events: int) -> None:
        report = self.report
        workload = make_workload(self.seed, profiles, events, segments=60)
        s1_ids = {d["id"] for d in workload.s1}
        all_ids = (s1_ids | {d["id"] for d in workload.s2}) - set(workload.deleted)
        self.note(
            f"round seed {self.seed}: {len(workload.s1)}+{len(workload.s2)} segments, "
            f"{len(workload.deleted)} deleted, records {[len(p) for p in workload.parts]}, "
            f"replay transitions {len(workload.expected)}"
        )
        await self.cluster.create_topics()
        for name in WORKERS:
            self.start(name)
        await asyncio.to_thread(self.cluster.wait_ready, "w1", 90)
        self.note("workers ready")
        await self.apply_segments(workload.s1, [])
        self.note("S1 written")
        await self.wait_segments(s1_ids, set())

        stop = asyncio.Event()
        chaos = asyncio.create_task(self.chaos(stop))
        try:
            self.phase = "A"
            self.note("phase A: events part 1")
            await self.produce_paced(workload.parts[0], phase_s)
            await self.wait_committed()
            self.note(f"phase B: segment changes in {len(workload.waves)} waves (backfills)")
            self.phase = "B"
            live_ids = set(s1_ids)
            for upserts, deletions in workload.waves:
                await self.apply_segments(upserts, deletions)
                live_ids = (live_ids | {d["id"] for d in upserts}) - set(deletions)
                await self.wait_segments(live_ids, set(deletions))
                await self.wait_committed()
            assert live_ids == all_ids
            self.phase = "C"
            self.note("phase C: events part 2")
            await self.produce_paced(workload.parts[1], phase_s)
        finally:
            stop.set()
            await chaos
        self.reap()
        await self.wait_committed()

        self.note("phase D: every worker stops; w1 alone, empty store, restores everything")
        for name in list(self.cluster.processes):
            await asyncio.to_thread(self.cluster.stop, name, 30)
        self.down = {"w2"}
        log_mark = len(self.cluster.log("w1"))
        started = time.monotonic()
        self.start("w1", wipe=True)
        await self.wait_ready_after("w1", log_mark, 180)
        elapsed = time.monotonic() - started
        tail = self.cluster.log("w1")[log_mark:]
        restored = sum(int(n) for _p, n in _RESTORED.findall(tail))
        slowest = max((float(s) for _p, s, _b in _READY.findall(tail)), default=0.0)
        report.full_restores.append((slowest, restored))
        self.note(
            f"w1 ready {elapsed:.2f}s after start; {restored} changelog records restored, "
            f"slowest partition {slowest:.2f}s"
        )
        url = _WEB.findall(self.cluster.log("w1")[log_mark:])[-1]
        with urllib.request.urlopen(f"{url}/metrics", timeout=5) as response:
            metrics = response.read().decode()
        exported = dict(_RESTORE_METRIC.findall(metrics))
        self.note(f"w1 exports segstream_restore_duration_seconds {exported}")
        assert exported.get("count") not in (None, "0.0"), "no restore duration exported"
        await self.produce_paced(workload.parts[2], 2.0)
        await self.wait_committed()
        live = await self.cluster.memberships(at_least=len(workload.expected), until_quiet=5)
        current = await self.cluster.read("members", until_quiet=3)
        for name in (*WORKERS, "w1"):
            if (self.tmp / f"{name}.log").exists():
                for _p, seconds, backfills in _READY.findall(self.cluster.log(name)):
                    report.restores.append(float(seconds))
                    report.resumed_backfills += int(backfills) > 0
        self.verify(live, workload.expected, current)
        report.rounds += 1

    def verify(
        self, live: list[dict[str, Any]], expected: list[dict[str, Any]], current: list[Any]
    ) -> None:
        report = self.report
        report.transitions += len(live)
        report.expected += len(expected)
        got: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
        want: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
        for m in live:
            got[(m["profile_id"], m["segment_id"])].append(m)
        for m in expected:
            want[(m["profile_id"], m["segment_id"])].append(m)
        report.pairs += len(want)
        ids = Counter(m["id"] for m in live)
        report.duplicates += sum(n - 1 for n in ids.values() if n > 1)

        def shape(m: dict[str, Any]) -> tuple[Any, ...]:
            return (m["type"], m["seq"], m["segment_version"], orjson.dumps(m["cause"]))

        for pair in got.keys() | want.keys():
            g, w = got.get(pair, []), want.get(pair, [])
            seqs = [m["seq"] for m in g]
            # Missing transitions: seqs absent from 1..n, and ones replay has beyond the end.
            have = set(seqs)
            top = max(len(w), max(have, default=0))
            report.gaps += sum(1 for s in range(1, top + 1) if s not in have)
            kinds = [m["type"] for m in g]
            alternating = all(
                k == ("segment.entered" if i % 2 == 0 else "segment.left")
                for i, k in enumerate(kinds)
            )
            if [shape(m) for m in g] != [shape(m) for m in w] or not alternating:
                report.mismatched_pairs += 1
                if len(report.problems) < 20:
                    report.problems.append(
                        f"{pair}: live {[shape(m) for m in g]} replay {[shape(m) for m in w]}"
                    )

        def final(events: list[dict[str, Any]]) -> set[tuple[str, str]]:
            last: dict[tuple[str, str], str] = {}
            for m in events:
                last[(m["profile_id"], m["segment_id"])] = m["type"]
            return {p for p, kind in last.items() if kind == "segment.entered"}

        report.final_diff += len(final(live) ^ final(expected))
        # The current-membership topic, read from the beginning (read_committed), holds
        # exactly the memberships the committed transitions imply.
        latest: dict[bytes, bytes | None] = {r.key: r.value for r in current}
        in_topic = {
            (key.decode().partition("/")[2], key.decode().partition("/")[0])
            for key, value in latest.items()
            if value is not None
        }
        diff = in_topic ^ final(live)
        report.members_topic_diff += len(diff)
        if diff and len(report.problems) < 20:
            report.problems.append(f"members topic differs for {sorted(diff)[:10]}")
        self.note(f"round verified: {report.summary()}")


async def run_chaos(
    tmp: Path,
    *,
    duration: float,
    seed: int,
    phase_s: float,
    profiles: int,
    events: int,
    max_broker_restarts: int = 3,
    fault_every: tuple[float, float] = (5.0, 12.0),
    backfill_batch: int = 50,
) -> Report:
    """`fault_every`: seconds between two faults (uniform); `backfill_batch`: profiles per
    backfill slice (small, so that faults land in the middle of backfills)."""
    """Rounds on one broker of its own until `duration` seconds have passed (at least one)."""
    report = Report()
    broker = LocalBroker(tmp / "kafka")
    say(f"seed {seed}; broker on {broker.bootstrap}; data under {tmp}")
    await asyncio.to_thread(broker.start)
    rng = random.Random(seed)
    started = time.monotonic()
    try:
        index = 0
        while index == 0 or time.monotonic() - started < duration:
            round_seed = rng.randrange(1 << 30)
            round_tmp = tmp / f"round-{index}"
            round_tmp.mkdir(parents=True, exist_ok=True)
            chaos_round = Round(
                broker,
                round_tmp,
                random.Random(round_seed),
                report,
                round_seed,
                max_broker_restarts,
                fault_every,
                backfill_batch,
            )
            try:
                await chaos_round.run(phase_s, profiles, events)
            finally:
                chaos_round.cluster.stop_all()
            index += 1
    finally:
        await asyncio.to_thread(broker.stop)
    say(f"SUMMARY: {report.summary()}")
    for problem in report.problems:
        say(f"problem: {problem}")
    return report


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--duration", type=float, default=float(os.environ.get("SEGSTREAM_CHAOS_DURATION", 600))
    )
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--phase", type=float, default=25.0, help="seconds per produce phase")
    parser.add_argument("--profiles", type=int, default=1500)
    parser.add_argument("--events", type=int, default=20000)
    parser.add_argument("--dir", type=Path, default=REPO_ROOT / ".run" / "chaos")
    args = parser.parse_args()
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(1 << 31)
    shutil.rmtree(args.dir, ignore_errors=True)
    args.dir.mkdir(parents=True)
    report = asyncio.run(
        run_chaos(
            args.dir,
            duration=args.duration,
            seed=seed,
            phase_s=args.phase,
            profiles=args.profiles,
            events=args.events,
        )
    )
    return 1 if report.anomalies or report.crashes or not report.rounds else 0


if __name__ == "__main__":
    sys.exit(main())
