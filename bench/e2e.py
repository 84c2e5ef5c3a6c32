"""End-to-end benchmark on a real broker: segstream workers against a bare aiokafka ceiling.

Run: `python bench/e2e.py` or `make bench` (the issue's full size: 100k profiles / 1M events for
throughput and latency, 1M profiles / 2M events for the backfill; about 25 minutes on 2 cores),
or smaller,
e.g. `--profiles 20000 --events 200000 --backfill-profiles 100000 --backfill-events 200000`.
It starts its own broker (deploy/kafka-local/kafka.sh, free ports, data in the work dir)
unless SEGSTREAM_KAFKA_BOOTSTRAP is set, and stops everything it started.

Phases, one run:
 1. ceiling: a bare aiokafka passthrough in this process (consume batches, orjson decode and
    encode, produce, commit) over the pre-loaded generated input;
 2. segstream: one `segstream worker` (default settings) with the generator's 1,000 segments
    over the same input, timed until the group's committed offsets reach the input's end;
    then two workers (fresh application id and topics; same input topics);
 3. latency (SPEC §6): on the one-worker application, after adding a 20-second-window segment
    (its backfill over the stored profiles is timed too), live generated events at half the
    one-worker throughput; event-caused membership records give the latency, timer-caused
    ones the timer lag;
 4. backfill: a second workload is loaded and ingested by one worker (one probe segment), then
    a new segment is added and timed until `ready` (status topic) while probe events flow;
 5. footprint: RocksDB bytes per profile, worker RSS, changelog bytes per input event, and a
    restore (a worker on an empty disk, timed until /readyz);
 6. with `--py-spy`: py-spy samples the one-worker run of phase 2, the first latency run and
    the backfill. Off by default: on 2 cores the profiler's own CPU slowed the runs it watched
    (session 8: p99 307 ms with it at 1,250/s, 113 ms without it at 1,306/s in the same run).
Prints a table and, last, one JSON object; throughputs are also given as ratios to the
ceiling of the same run.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import orjson

from e2e_kafka import (
    Broker,
    GroupProgress,
    MembershipProbe,
    cpu_seconds,
    du,
    end_offsets,
    load,
    paced_send,
    partitions_of,
    passthrough,
    rss_bytes,
    set_group_offsets,
)
from segstream.app.settings import WorkerSettings
from segstream.app.status_view import read_status_rows
from segstream.app.topics import TopicSpec, create_topics, topic_specs
from segstream.generate import generate_workload, write_workload

BIN = Path(sys.executable).parent
SEGSTREAM = str(BIN / "segstream")
PY_SPY = shutil.which("py-spy", path=str(BIN)) or shutil.which("py-spy")

#: Phase 3: a segment whose members leave 20 s after their last page view (timers).
TIMER_SEGMENT: dict[str, Any] = {
    "id": "bench-recent-viewers",
    "name": "Viewed a page in the last 20 seconds",
    "condition": {"event": "page.viewed", "within": "20s"},
}
#: Phase 4: probe events toggle this trait, so each one causes exactly one transition.
PROBE_SEGMENT: dict[str, Any] = {
    "id": "bench-probe",
    "name": "Probe flag set",
    "condition": {"trait": "custom.bench_probe", "op": "eq", "value": True},
}
#: Phase 4: the new segment whose backfill is timed. An `or` has no guard, so every profile
#: is evaluated, history included.
BACKFILL_SEGMENT: dict[str, Any] = {
    "id": "bench-backfill",
    "name": "Pro plan or three page views in 30 days",
    "condition": {
        "or": [
            {"trait": "custom.plan", "op": "eq", "value": "pro"},
            {"event": "page.viewed", "within": "30d", "count": {"op": "gte", "value": 3}},
        ]
    },
}


def say(text: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {text}", file=sys.stderr, flush=True)


class App:
    """One segstream application (id, topics, store dirs) and its worker processes."""

    def __init__(
        self, bootstrap: str, workdir: Path, name: str, inputs: tuple[str, str], partitions: int
    ) -> None:
        self.name = name
        self.dir = workdir / name
        self.dir.mkdir(parents=True, exist_ok=True)
        self.env = {
            **os.environ,
            "SEGSTREAM_KAFKA_BOOTSTRAP": bootstrap,
            "SEGSTREAM_TOPIC_PREFIX": name,
            "SEGSTREAM_APP_ID": name,
            "SEGSTREAM_TOPIC_PROFILES": inputs[0],
            "SEGSTREAM_TOPIC_ACTIVITY": inputs[1],
            "SEGSTREAM_PARTITIONS": str(partitions),
            "SEGSTREAM_WEB_PORT": "0",
            "SEGSTREAM_LOG_LEVEL": "info",
        }
        self.settings = WorkerSettings.from_env(self.env)
        self.inputs = inputs
        self.partitions = partitions
        self.processes: dict[str, subprocess.Popen[bytes]] = {}
        #: Per worker, the `--processes` of its last start (each child logs its own web port).
        self.children: dict[str, int] = {}

    async def create_topics(self) -> None:
        await create_topics(self.settings.client_kwargs(), topic_specs(self.settings))

    def apply(self, definitions: list[dict[str, Any]], label: str) -> float:
        path = self.dir / f"{label}.json"
        path.write_bytes(orjson.dumps(definitions))
        started = time.monotonic()
        subprocess.run(
            [SEGSTREAM, "segments", "apply", str(path)],
            env=self.env,
            check=True,
            stdout=subprocess.DEVNULL,
        )
        return time.monotonic() - started

    def start(self, worker: str, processes: int = 1) -> int:
        """Start `segstream worker` (with `processes` > 1: `--processes N`, whose supervisor's
        pid this returns; its children's web ports are logged like one worker's)."""
        env = {
            **self.env,
            "SEGSTREAM_STORE_DIR": str(self.store(worker)),
            "SEGSTREAM_WORKER_ID": worker,
        }
        with (self.dir / f"{worker}.log").open("ab") as log:
            command = [SEGSTREAM, "worker", *(["--processes", str(processes)] * (processes > 1))]
            process = subprocess.Popen(command, env=env, stdout=log, stderr=log)
        self.processes[worker] = process
        self.children[worker] = processes
        return process.pid

    def store(self, worker: str) -> Path:
        return self.dir / f"store-{worker}"

    def webs(self, worker: str) -> list[str]:
        """The web addresses of the worker's last start (one per `--processes` child)."""
        text = (self.dir / f"{worker}.log").read_text(errors="replace")
        found = re.findall(r"web listening on (http://[0-9.]+:[0-9]+)", text)
        return [str(url) for url in found[-self.children.get(worker, 1) :]]

    def web(self, worker: str) -> str | None:
        found = self.webs(worker)
        return found[-1] if found else None

    def metrics(self, worker: str) -> dict[str, float]:
        """The worker's /metrics samples (name{labels} -> value), summed over its
        `--processes` children (each serves its own partitions' metrics)."""
        samples: dict[str, float] = {}
        for url in self.webs(worker):
            with urllib.request.urlopen(f"{url}/metrics", timeout=10) as response:
                text = response.read().decode()
            for line in text.splitlines():
                if line and not line.startswith("#"):
                    name, _, value = line.rpartition(" ")
                    samples[name] = samples.get(name, 0.0) + float(value)
        return samples

    def stop(self) -> None:
        for worker, process in list(self.processes.items()):
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(60)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(10)
            del self.processes[worker]

    async def wait_http_ready(self, worker: str, timeout: float) -> None:
        """Wait until the worker's /readyz answers 200."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            url = self.web(worker)
            if url is not None:
                try:
                    with urllib.request.urlopen(f"{url}/readyz", timeout=2) as response:
                        if response.status == 200:
                            return
                except OSError:
                    pass
            await asyncio.sleep(0.25)
        raise SystemExit(f"{self.name}/{worker} not ready after {timeout}s")

    async def rows(self) -> dict[str, Any]:
        return {row.id: row for row in await read_status_rows(self.settings)}

    async def wait_all_ready(self, ids: set[str], timeout: float) -> float:
        """Seconds until every segment in `ids` is reported ready."""
        started = time.monotonic()
        while time.monotonic() - started < timeout:
            try:
                rows = await self.rows()
            except Exception:
                rows = {}
            if all(i in rows and rows[i].status == "ready" for i in ids):
                return time.monotonic() - started
            await asyncio.sleep(0.5)
        raise SystemExit(f"segments not ready after {timeout}s; see {self.dir}")

    async def wait_ready(self, segment_id: str, version: int, timeout: float) -> float:
        """Seconds until the status topic says `segment_id` at `version` is ready."""
        started = time.monotonic()
        while time.monotonic() - started < timeout:
            try:
                row = (await self.rows()).get(segment_id)
            except Exception:
                row = None
            if row is not None and row.version >= version and row.status == "ready":
                return time.monotonic() - started
            await asyncio.sleep(0.25)
        raise SystemExit(f"{segment_id} not ready after {timeout}s; see {self.dir}")


class PySpy:
    """py-spy sampling a worker process until stopped; summarises the top frames."""

    def __init__(self, pid: int, out: Path, rate: int, children: bool = False) -> None:
        self.out = out
        self.process = subprocess.Popen(
            [
                *(PY_SPY or "py-spy", "record", "--pid", str(pid), "--rate", str(rate)),
                *("--nonblocking", "--format", "raw", "--output", str(out)),
                *(["--subprocesses"] if children else []),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    def stop(self) -> dict[str, Any]:
        self.process.send_signal(signal.SIGINT)
        try:
            self.process.wait(60)
        except subprocess.TimeoutExpired:
            self.process.kill()
        return summarise_profile(self.out)


def _frame(text: str) -> str:
    # py-spy raw frames: "function (path/to/file.py:123)"; keep the function and the file.
    name, _, where = text.partition(" (")
    path = where.rstrip(")").rsplit(":", 1)[0]
    for marker in ("site-packages/", "src/", "lib/python3.11/"):
        if marker in path:
            path = path.split(marker, 1)[1]
            break
    return f"{name} ({path})"


def summarise_profile(path: Path, top: int = 15) -> dict[str, Any]:
    """Self and inclusive sample shares per function from py-spy's raw (collapsed) output."""
    if not path.exists():
        return {}
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    total = 0
    for line in path.read_text(errors="replace").splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = [_frame(f) for f in stack.split(";")]
        total += count
        own[frames[-1]] += count
        for frame in set(frames):
            inclusive[frame] += count
    if not total:
        return {}

    def share(counter: Counter[str]) -> list[list[Any]]:
        return [[name, round(100 * n / total, 1)] for name, n in counter.most_common(top)]

    return {"samples": total, "self_pct": share(own), "inclusive_pct": share(inclusive)}


def generated_definitions(path: Path, count: int) -> list[dict[str, Any]]:
    definitions: list[dict[str, Any]] = orjson.loads(path.read_bytes())
    return definitions[:count]


async def prime(
    app: App,
    workers: int,
    definitions: list[dict[str, Any]],
    ends: dict[Any, int],
    timeout: float,
    processes: int = 1,
) -> float:
    """Install the segments before the input is read: the group starts at the input's end,
    the workers apply the definitions on empty stores and report them ready, stop, and the
    group is rewound to the input's start. Returns the seconds it took."""
    started = time.monotonic()
    bootstrap = app.settings.bootstrap
    await set_group_offsets(bootstrap, app.name, ends)
    for i in range(workers):
        app.start(f"w{i + 1}", processes)
    app.apply(definitions, "segments")
    await app.wait_all_ready({d["id"] for d in definitions}, timeout)
    app.stop()
    await set_group_offsets(bootstrap, app.name, dict.fromkeys(ends, 0))
    return time.monotonic() - started


async def run_throughput(
    app: App,
    workers: int,
    total: int,
    tps: list[Any],
    timeout: float,
    py_spy: tuple[Path, int] | None = None,
    processes: int = 1,
) -> dict[str, Any]:
    """Start `workers` workers (each `--processes N` when `processes` > 1) and time them until
    the committed offsets reach `total`."""
    launched = time.monotonic()
    pids = [app.start(f"w{i + 1}", processes) for i in range(workers)]
    spy = PySpy(pids[0], *py_spy) if py_spy and PY_SPY else None
    series: list[tuple[float, int]] = []
    rss_peak = dict.fromkeys(pids, 0)
    cpu_at_first: float | None = None
    async with GroupProgress(app.settings.bootstrap, app.name, tps) as progress:
        done = 0
        while done < total:
            if time.monotonic() - launched > timeout:
                raise SystemExit(f"{app.name}: {done}/{total} after {timeout}s; see {app.dir}")
            for pid in pids:
                rss, _hwm = rss_bytes(pid)
                rss_peak[pid] = max(rss_peak[pid], rss)
            for worker, process in app.processes.items():
                if process.poll() is not None:
                    raise SystemExit(f"{app.name}/{worker} exited; see {app.dir}/{worker}.log")
            done = await progress.committed()
            if done > 0 and cpu_at_first is None:
                cpu_at_first = sum(cpu_seconds(pid) for pid in _with_children(pids))
            series.append((time.monotonic() - launched, done))
            await asyncio.sleep(0.25)
    cpu = sum(cpu_seconds(pid) for pid in _with_children(pids)) - (cpu_at_first or 0.0)
    profile = spy.stop() if spy else {}
    first = next(((t, n) for t, n in series if n > 0), series[-1])
    last_t = series[-1][0]
    seconds = last_t - first[0]
    rate = (total - first[1]) / seconds if seconds > 0 else float("nan")
    return {
        "workers": workers,
        "records": total,
        "seconds": round(seconds, 2),
        "startup_s": round(first[0], 2),
        "wall_s": round(last_t, 2),
        "events_per_s": round(rate),
        "rss_peak_bytes": sorted(rss_peak.values(), reverse=True),
        "cpu_s": round(cpu, 2),
        # From the first commit on, as the rate: the workers' CPU per event they committed.
        "cpu_us_per_event": round(cpu / (total - first[1]) * 1e6, 1) if total > first[1] else None,
        "pids": pids,
        "profile": profile,
    }


def _with_children(pids: list[int]) -> list[int]:
    """`pids` and their children: a `--processes` supervisor's CPU is its workers'."""
    found = list(pids)
    for pid in pids:
        with contextlib.suppress(OSError):
            found += [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    return found


def slowest_over(
    samples: dict[str, float],
    before: dict[str, float],
    histogram: str,
    labels: dict[str, str],
    count: float,
) -> float | None:
    """The highest bucket bound (s) of a histogram's series (`labels`) that some of the
    `count` observations between two scrapes exceeded: a lower bound of the slowest one."""
    bounds = []
    for key, value in samples.items():
        name, _, rest = key.partition("{")
        if name != f"{histogram}_bucket":
            continue
        found = dict(re.findall(r'(\w+)="([^"]*)"', rest))
        bound = found.pop("le", "+Inf")
        if found == labels and bound != "+Inf" and value - before.get(key, 0.0) < count:
            bounds.append(float(bound))
    return max(bounds, default=None)


def batch_stats(samples: dict[str, float], before: dict[str, float]) -> dict[str, Any]:
    """Transactions, records per transaction and mean transaction time between two scrapes."""

    def delta(name: str) -> float:
        return samples.get(name, 0.0) - before.get(name, 0.0)

    committed = delta('segstream_transactions_total{outcome="committed"}')
    consumed = sum(
        v - before.get(k, 0.0)
        for k, v in samples.items()
        if k.startswith("segstream_events_consumed_total{")
    )
    seconds = delta("segstream_batch_duration_seconds_sum")
    batches = delta("segstream_batch_duration_seconds_count")
    full = 'segstream_gc_pause_seconds_{}{{generation="2"}}'
    full_gcs = delta(full.format("count"))
    # The highest bucket bound some full collection exceeded (a pause of every partition).
    longest = slowest_over(
        samples, before, "segstream_gc_pause_seconds", {"generation": "2"}, full_gcs
    )
    # Per broker step of a transaction: mean ms and the highest bucket bound a step exceeded.
    steps: dict[str, dict[str, float | None]] = {}
    for step in ("begin", "send", "offsets", "deliveries", "commit"):
        name = f'segstream_transaction_step_seconds_{{}}{{{{step="{step}"}}}}'
        count = delta(name.format("count"))
        if not count:
            continue
        slowest = slowest_over(
            samples, before, "segstream_transaction_step_seconds", {"step": step}, count
        )
        steps[step] = {
            "mean_ms": round(1000 * delta(name.format("sum")) / count, 1),
            "slowest_over_ms": None if slowest is None else round(1000 * slowest, 1),
        }
    # How late the worker's loop ran its 10 ms probe: what a broker answer waited for the loop.
    lag_count = delta("segstream_event_loop_lag_seconds_count")
    lag_slowest = slowest_over(samples, before, "segstream_event_loop_lag_seconds", {}, lag_count)
    loop_lag = {
        "mean_ms": round(1000 * delta("segstream_event_loop_lag_seconds_sum") / lag_count, 1)
        if lag_count
        else None,
        "slowest_over_ms": None if lag_slowest is None else round(1000 * lag_slowest, 1),
    }
    return {
        "transactions": int(committed),
        "steps": steps,
        "loop_lag": loop_lag,
        "input_records_per_transaction": round(consumed / committed, 1) if committed else None,
        "mean_transaction_ms": round(1000 * seconds / batches, 1) if batches else None,
        "full_gcs": int(full_gcs),
        "full_gc_ms": round(1000 * delta(full.format("sum")), 1),
        "longest_full_gc_over_ms": None if longest is None else round(1000 * longest, 1),
    }


async def phase_restore(app: App, timeout: float) -> dict[str, Any]:
    """Start a worker on an empty store dir and time it until /readyz (all partitions restored
    from the changelog), then stop it."""
    started = time.monotonic()
    pid = app.start("restore")
    await app.wait_http_ready("restore", timeout)
    seconds = time.monotonic() - started
    rss = rss_bytes(pid)[0]
    app.stop()
    log = (app.dir / "restore.log").read_text(errors="replace")
    records = sum(int(n) for n in re.findall(r"restored (\d+) changelog records", log))
    return {
        "seconds_to_ready": round(seconds, 2),
        "changelog_records": records,
        "records_per_s": round(records / seconds) if seconds else None,
        "rss_bytes": rss,
        "store_bytes": du(app.store("restore")),
    }


async def add_timer_segment(app: App, timeout: float) -> dict[str, Any]:
    """Add the 20 s window segment and time its backfill over the stored profiles."""
    say("latency: adding the 20 s window segment (backfill over the stored profiles)")
    started = time.monotonic()
    app.apply([TIMER_SEGMENT], "timer-segment")
    await app.wait_ready(TIMER_SEGMENT["id"], 1, timeout=timeout)
    return {"ready_s": round(time.monotonic() - started, 2)}


async def phase_latency(
    app: App,
    args: argparse.Namespace,
    rate: float,
    events_path: Path,
    prefix: str,
    seconds: float | None = None,
    quiet_s: float = 25.0,
) -> dict[str, Any]:
    """Live events at `rate` for `seconds`: SPEC §6 latency of event-caused records, timer lag,
    and whether the lag stayed flat (`lag_flat`)."""
    seconds = args.latency_seconds if seconds is None else seconds
    # The tail of the loaded workload again (steady-state activity of stored profiles), with
    # new ids and `at` set when sent.
    count = int(rate * seconds) + 1
    records = []
    for line in events_path.read_bytes().splitlines()[-count:]:
        record = orjson.loads(line)
        record["id"] = f"{prefix}{record['id']}"
        topic = app.inputs[0] if str(record["type"]).startswith("profile.") else app.inputs[1]
        records.append((topic, str(record["profile_id"]).encode(), record))
    probe = MembershipProbe(app.settings.bootstrap, app.settings.topics.membership, app.partitions)
    await probe.start()
    before = app.metrics("w1")
    say(f"latency: {len(records)} live events at {rate:.0f}/s for {seconds}s")
    spy = None
    if args.py_spy and PY_SPY and prefix == "L0-":
        spy = PySpy(app.processes["w1"].pid, app.dir / "py-spy-latency.txt", args.py_spy_rate)
    sent = await paced_send(app.settings.bootstrap, records, rate, seconds, probe)
    profile = spy.stop() if spy else {}
    # Drained: the group has committed every input record sent (a gap in the output is not
    # enough: a worker far behind can be silent for seconds in one big transaction).
    drain_s, drained = await wait_drained(app, args.drain_timeout)
    # The window's timers fire 20 s after the events: `quiet_s` 25 waits for them.
    await probe.quiet(seconds=quiet_s, timeout=120.0)
    await probe.stop()
    after = app.metrics("w1")
    flat, trend = lag_trend(probe.event_ms, drain_s)
    return {
        "rate": round(rate),
        "sent": sent,
        "drain_after_send_s": round(drain_s, 1),
        "drained": drained,
        "lag_flat": flat,
        "lag_trend_ms": trend,
        **probe.summary(),
        "batches": batch_stats(after, before),
        "profile": profile,
    }


#: Lag is flat when the median latency of a run's last third is at most this factor of its
#: first third's (plus FLAT_SLACK_MS), and the worker drains within FLAT_DRAIN_S of the last send.
FLAT_FACTOR = 1.25
FLAT_SLACK_MS = 50.0
FLAT_DRAIN_S = 3.0


def lag_trend(latencies_ms: list[float], drain_s: float) -> tuple[bool, dict[str, Any]]:
    """Whether latency stayed flat through a paced run (in arrival order, by thirds)."""
    third = len(latencies_ms) // 3
    if third < 10:
        return False, {"n": len(latencies_ms)}
    first = sorted(latencies_ms[:third])[third // 2]
    last = sorted(latencies_ms[-third:])[third // 2]
    flat = last <= first * FLAT_FACTOR + FLAT_SLACK_MS and drain_s <= FLAT_DRAIN_S
    return flat, {"first_third_p50": round(first, 1), "last_third_p50": round(last, 1)}


async def wait_drained(app: App, timeout: float) -> tuple[float, bool]:
    """Seconds until the group committed every input record produced so far (or timeout)."""
    started = time.monotonic()
    tps = partitions_of(app.inputs, app.partitions)
    target = sum((await end_offsets(app.settings.bootstrap, tps)).values())
    async with GroupProgress(app.settings.bootstrap, app.name, tps) as progress:
        while time.monotonic() - started < timeout:
            if await progress.committed() >= target:
                return time.monotonic() - started, True
            await asyncio.sleep(0.25)
    return time.monotonic() - started, False


async def phase_curve(
    app: App, args: argparse.Namespace, throughput: float, events_path: Path
) -> dict[str, Any]:
    """The latency curve: the highest paced rate whose lag stays flat for --flat-seconds
    (doubling from --flat-start, then bisecting --flat-steps times), then full latency runs at
    --latency-rates and at --curve-shares of that highest rate."""
    search: list[dict[str, Any]] = []
    index = 0

    async def trial(rate: float) -> bool:
        nonlocal index
        # A run of 20 s or more has timer records (the window segment's, 20 s after each
        # event) until 20 s after its last send: a short quiet then waits for all of them, so
        # the next run does not start under this one's timers.
        run = await phase_latency(
            app, args, rate, events_path, f"F{index}-", seconds=args.flat_seconds, quiet_s=3.0
        )
        index += 1
        search.append(
            {
                "rate": run["rate"],
                "flat": run["lag_flat"],
                "trend_ms": run["lag_trend_ms"],
                "p99_ms": run["event_latency_ms"]["p99"],
                "drain_s": run["drain_after_send_s"],
            }
        )
        say(f"flat-lag search at {rate:.0f}/s: {search[-1]}")
        return bool(run["lag_flat"])

    low, high = 0.0, 0.0
    rate = args.flat_start or max(100.0, throughput * 0.25)
    while rate <= throughput * 1.5:
        if not await trial(rate):
            high = rate
            break
        low = rate
        rate *= 2
    if high:
        for _ in range(args.flat_steps):
            middle = (low + high) / 2
            if await trial(middle):
                low = middle
            else:
                high = middle
    highest = low
    runs = []
    plan = [(r, "rate") for r in args.latency_rates] + [
        (highest * share, f"{share} x highest") for share in args.curve_shares if highest
    ]
    for i, (rate, label) in enumerate(plan):
        quiet = 5.0 if args.latency_seconds >= 20 else 25.0
        run = await phase_latency(app, args, rate, events_path, f"L{i}-", quiet_s=quiet)
        run["share"] = label
        runs.append(run)
        say(f"latency at {rate:.0f}/s ({label}): {run['event_latency_ms']}")
    return {"highest_flat_rate": round(highest), "search": search, "runs": runs}


async def phase_backfill(
    bootstrap: str,
    broker: Broker,
    workdir: Path,
    args: argparse.Namespace,
    run_id: str,
    rate: float,
    apps: list[App],
) -> dict[str, Any]:
    """Ingest a big workload (one probe segment), then time a new segment's backfill."""
    say(f"backfill: generating {args.backfill_profiles} profiles / {args.backfill_events} events")
    workload = generate_workload(
        profiles=args.backfill_profiles,
        events=args.backfill_events,
        segments=0,
        seed=args.seed + 2,
    )
    summary = write_workload(workload, workdir / "workload-backfill")
    lines = summary.events_path.read_bytes().splitlines()
    ids = list(dict.fromkeys(orjson.loads(line)["profile_id"] for line in lines[:200_000]))
    inputs = (f"{run_id}-big.profiles", f"{run_id}-big.activity")
    app = App(bootstrap, workdir, f"{run_id}-bf", inputs, args.partitions)
    apps.append(app)
    await app.create_topics()
    loaded = await load(bootstrap, lines, *inputs)
    del lines
    say(f"backfill: loaded {loaded}")
    tps = partitions_of(inputs, args.partitions)
    total = sum((await end_offsets(bootstrap, tps)).values())
    processes = args.backfill_processes
    ends = await end_offsets(bootstrap, tps)
    await prime(app, 1, [PROBE_SEGMENT], ends, args.timeout, processes=processes)
    ingest = await run_throughput(app, 1, total, tps, args.timeout, processes=processes)
    say(f"backfill: ingested at {ingest['events_per_s']}/s")
    probe = MembershipProbe(bootstrap, app.settings.topics.membership, app.partitions)
    await probe.start()
    toggles: dict[str, bool] = {}
    counter = 0

    def probe_events() -> Any:
        nonlocal counter
        while True:
            profile_id = ids[counter % len(ids)]
            counter += 1
            value = not toggles.get(profile_id, False)
            toggles[profile_id] = value
            record = {
                "id": f"probe-{counter}",
                "type": "profile.updated",
                "profile_id": profile_id,
                "at": "",
                "traits": {"custom": {"bench_probe": value}},
            }
            yield inputs[0], profile_id.encode(), record

    # A probe warm-up: latency before the backfill starts, for comparison.
    pid = app.processes["w1"].pid

    def cpu_now() -> float:
        return sum(cpu_seconds(p) for p in _with_children([pid]))

    # The machine is shared: what the broker and this load generator (probe producer and
    # consumer) took in each probe window, beside the worker's share.
    broker_pid = broker.pid()

    def others_now() -> tuple[float, float]:
        broker_s = cpu_seconds(broker_pid) if broker_pid else 0.0
        return broker_s, cpu_seconds(os.getpid())

    samples_before, cpu_before, clock_before = app.metrics("w1"), cpu_now(), time.monotonic()
    others_before = others_now()
    quiet = await paced_send(bootstrap, probe_events(), rate, 10.0, probe)
    await probe.quiet(2.0, 10.0)
    baseline_summary = probe.summary()
    baseline = baseline_summary["event_latency_ms"]
    samples_started, cpu_started = app.metrics("w1"), cpu_now()
    # The worker's CPU share (of one core) in each probe window: is it busy with the probe?
    before_s = time.monotonic() - clock_before
    cpu_share_before = (cpu_started - cpu_before) / before_s
    others_started = others_now()
    others_share_before = [
        (b - a) / before_s for a, b in zip(others_before, others_started, strict=True)
    ]
    probe.event_ms.clear()
    probe.event_sent_ms.clear()
    ready: dict[str, float] = {}

    async def watch() -> None:
        with contextlib.suppress(SystemExit):  # not ready within --backfill-timeout
            ready["s"] = await app.wait_ready(
                BACKFILL_SEGMENT["id"], 1, timeout=args.backfill_timeout
            )

    say("backfill: adding the new segment")
    started = time.monotonic()
    app.apply([BACKFILL_SEGMENT], "backfill-segment")
    watcher = asyncio.create_task(watch())
    rss_peak = 0

    def rss_now() -> int:
        # A `--processes` supervisor's footprint is its children's.
        return sum(rss_bytes(p)[0] for p in _with_children([pid]))

    async def sample_rss() -> None:
        nonlocal rss_peak
        while not watcher.done():
            rss_peak = max(rss_peak, rss_now())
            await asyncio.sleep(0.5)

    sampler = asyncio.create_task(sample_rss())
    spy = (
        PySpy(pid, app.dir / "py-spy-backfill.txt", args.py_spy_rate, children=processes > 1)
        if args.py_spy and PY_SPY
        else None
    )
    during = await paced_send(
        bootstrap, probe_events(), rate, args.timeout, probe, stop=watcher.done
    )
    await watcher
    await sampler
    profile = spy.stop() if spy else {}
    backfill_s = time.monotonic() - started
    metrics = app.metrics("w1")
    cpu_share_during = (cpu_now() - cpu_started) / backfill_s
    others_share_during = [
        (b - a) / backfill_s for a, b in zip(others_started, others_now(), strict=True)
    ]
    await probe.quiet(2.0, 10.0)
    await probe.stop()
    during_summary = probe.summary()
    rss_after = rss_now()
    app.stop()
    footprint = store_footprint(app.store("w1"))
    profiles = footprint.get("profiles") or args.backfill_profiles
    remaining = metrics.get(
        f'segstream_backfill_remaining_profiles{{segment="{BACKFILL_SEGMENT["id"]}"}}', 0.0
    )
    finished = "s" in ready
    done = profiles - (0 if finished else remaining)
    rate_bf = done / backfill_s if backfill_s else 0.0
    return {
        "profiles": profiles,
        "events": total,
        "load": loaded,
        "backfill_ready": finished,
        "backfill_done_profiles": round(done),
        "backfill_projected_s": round(profiles / rate_bf, 1) if rate_bf else None,
        "ingest": {k: ingest[k] for k in ("events_per_s", "seconds", "rss_peak_bytes")},
        "backfill_s": round(backfill_s, 2),
        "backfill_profiles_per_s": round(rate_bf),
        "probe_rate": round(rate),
        "probe_before": {
            "sent": quiet,
            "event_latency_ms": baseline,
            "event_latency_by_2s": baseline_summary["event_latency_by_2s"],
            "batches": batch_stats(samples_started, samples_before),
            "worker_cpu_share": round(cpu_share_before, 2),
            "broker_cpu_share": round(others_share_before[0], 2),
            "bench_cpu_share": round(others_share_before[1], 2),
        },
        "probe_during": {
            "sent": during,
            "event_latency_ms": during_summary["event_latency_ms"],
            "event_latency_by_2s": during_summary["event_latency_by_2s"],
            "batches": batch_stats(metrics, samples_started),
            "worker_cpu_share": round(cpu_share_during, 2),
            "broker_cpu_share": round(others_share_during[0], 2),
            "bench_cpu_share": round(others_share_during[1], 2),
        },
        "worker_processes": processes,
        "worker_rss_bytes": rss_after,
        "worker_rss_peak_during_backfill_bytes": rss_peak,
        "store": footprint,
        "store_bytes_per_profile": round(footprint["bytes"] / profiles) if profiles else None,
        "changelog_bytes_per_event": _per(broker.topic_bytes(app.settings.topics.changelog), total),
        "timer_lag_metric_count": metrics.get("segstream_timer_lag_seconds_count"),
        "profile": profile,
    }


async def passthrough_topic(app: App, name: str) -> str:
    """The ceiling's output topic, partitioned like the inputs."""
    await create_topics(app.settings.client_kwargs(), [TopicSpec(name, app.partitions)])
    return name


def _per(value: int | None, count: int) -> float | None:
    return round(value / count, 1) if value is not None and count else None


def store_footprint(path: Path) -> dict[str, Any]:
    """Bytes on disk of a (closed) worker store, and its keys by kind."""
    from rocksdict import AccessType, Options, Rdict

    result: dict[str, Any] = {"bytes": du(path)}
    kinds: Counter[str] = Counter()
    value_bytes: Counter[str] = Counter()
    # One worker's partitions, or each `--processes` child's (`process-<i>/partition-*`).
    for db in sorted([*path.glob("partition-*"), *path.glob("process-*/partition-*")]):
        store = Rdict(str(db), Options(raw_mode=True), access_type=AccessType.read_only())
        try:
            it = store.iter()
            it.seek_to_first()
            while it.valid():
                key: bytes = it.key()
                kind = chr(key[0]) if key[:1].isalpha() else "other"
                kinds[kind] += 1
                value_bytes[kind] += len(key) + len(it.value())
                it.next()
        finally:
            store.close()
    result["profiles"] = kinds.get("p", 0)
    result["keys"] = dict(kinds)
    result["logical_bytes"] = dict(value_bytes)
    if kinds.get("p"):
        result["profile_state_bytes_mean"] = round(value_bytes["p"] / kinds["p"])
    return result


async def run(args: argparse.Namespace) -> dict[str, Any]:
    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="segstream-e2e-"))
    workdir.mkdir(parents=True, exist_ok=True)
    run_id = f"e2e{uuid.uuid4().hex[:6]}"
    broker = Broker(workdir / "kafka")
    apps: list[App] = []
    result: dict[str, Any] = {
        "workload": {
            "profiles": args.profiles,
            "events": args.events,
            "segments": args.segments,
            "segment_templates": args.segment_templates,
            "partitions": args.partitions,
            "seed": args.seed,
            "flat_seconds": args.flat_seconds,
            "latency_seconds": args.latency_seconds,
            "reduced": args.reduced,
            "load_average_at_start": os.getloadavg(),
            "backfill_profiles": args.backfill_profiles,
            "backfill_events": args.backfill_events,
        },
        "workdir": str(workdir),
    }
    try:
        bootstrap = broker.start()
        say(f"broker {bootstrap}; work dir {workdir}")
        say(f"generating {args.profiles} profiles / {args.events} events / {args.segments} seg.")
        workload = generate_workload(
            profiles=args.profiles,
            events=args.events,
            segments=args.segments,
            seed=args.seed,
            # Only when asked: so that this script can drive older code (its worker and
            # generator from another virtualenv) whose generator has no such option.
            **({"segment_templates": args.segment_templates} if args.segment_templates else {}),
        )
        summary = write_workload(workload, workdir / "workload")
        definitions = generated_definitions(summary.segments_path, args.segments)
        inputs = (f"{run_id}-in.profiles", f"{run_id}-in.activity")
        apps.append(App(bootstrap, workdir, f"{run_id}-w1", inputs, args.partitions))
        one = apps[-1]
        await one.create_topics()  # the input topics too, with the worker's configs
        lines = summary.events_path.read_bytes().splitlines()
        result["load"] = await load(bootstrap, lines, *inputs)
        del lines
        tps = partitions_of(inputs, args.partitions)
        total = sum((await end_offsets(bootstrap, tps)).values())
        say(f"loaded {result['load']}")

        # 1. The ceiling.
        ceiling = await passthrough(
            bootstrap,
            inputs,
            await passthrough_topic(one, f"{run_id}-passthrough.out"),
            f"{run_id}-passthrough",
            total,
            2000,
            args.timeout,
        )
        result["ceiling"] = ceiling
        say(f"ceiling: {ceiling}")
        base = ceiling["events_per_s"]

        # 2. One worker.
        ends = await end_offsets(bootstrap, tps)
        result["prime_s"] = round(await prime(one, 1, definitions, ends, args.timeout), 2)
        spy = (workdir / "py-spy-w1.txt", args.py_spy_rate) if args.py_spy else None
        single = await run_throughput(one, 1, total, tps, args.timeout, spy)
        profile = single.pop("profile")
        single["ratio_to_ceiling"] = round(single["events_per_s"] / base, 3)
        result["one_worker"] = single
        result["profile"] = profile
        say(f"one worker: {single}")
        pid = single["pids"][0]
        metrics = one.metrics("w1")
        result["one_worker"]["end_to_end_metric"] = {
            "count": metrics.get("segstream_end_to_end_latency_seconds_count"),
            "mean_ms": round(
                1000
                * metrics.get("segstream_end_to_end_latency_seconds_sum", 0)
                / max(1, metrics.get("segstream_end_to_end_latency_seconds_count", 0)),
                1,
            ),
        }
        result["one_worker"]["batches"] = batch_stats(metrics, {})
        changelog = broker.topic_bytes(one.settings.topics.changelog)
        membership = broker.topic_bytes(one.settings.topics.membership)

        rss_after_ingest = rss_bytes(pid)[0]
        one.stop()
        footprint = store_footprint(one.store("w1"))
        profiles = footprint.get("profiles") or args.profiles
        result["footprint"] = {
            "profiles": profiles,
            "store": footprint,
            "store_bytes_per_profile": round(footprint["bytes"] / profiles),
            "worker_rss_peak_ingest_bytes": single["rss_peak_bytes"][0],
            "worker_rss_after_ingest_bytes": rss_after_ingest,
            "changelog_bytes": changelog,
            "changelog_bytes_per_event": _per(changelog, total),
            "membership_bytes_per_event": _per(membership, total),
        }

        # 2b. Two workers, a fresh application over the same input.
        if args.two_workers:
            apps.append(App(bootstrap, workdir, f"{run_id}-w2", inputs, args.partitions))
            two = apps[-1]
            await two.create_topics()
            await prime(two, 2, definitions, ends, args.timeout)
            double = await run_throughput(two, 2, total, tps, args.timeout)
            double.pop("profile")
            double["ratio_to_ceiling"] = round(double["events_per_s"] / base, 3)
            double["ratio_to_one_worker"] = round(
                double["events_per_s"] / single["events_per_s"], 3
            )
            result["two_workers"] = double
            say(f"two workers: {double}")
            two.stop()

        # 2c. One `segstream worker --processes N` (a fresh application, same input).
        if args.worker_processes > 1:
            n = args.worker_processes
            apps.append(App(bootstrap, workdir, f"{run_id}-p{n}", inputs, args.partitions))
            multi = apps[-1]
            await multi.create_topics()
            await prime(multi, 1, definitions, ends, args.timeout, processes=n)
            supervised = await run_throughput(multi, 1, total, tps, args.timeout, processes=n)
            supervised.pop("profile")
            supervised.pop("rss_peak_bytes")  # the supervisor's, not its children's
            supervised["processes"] = n
            supervised["ratio_to_ceiling"] = round(supervised["events_per_s"] / base, 3)
            supervised["ratio_to_one_worker"] = round(
                supervised["events_per_s"] / single["events_per_s"], 3
            )
            result["worker_processes"] = supervised
            say(f"--processes {n}: {supervised}")
            multi.stop()

        # 5b. Recovery: a worker with an empty disk restores the stores from the changelog.
        result["restore"] = await phase_restore(one, args.timeout)
        say(f"restore: {result['restore']}")

        # 3. Latency: the one-worker application again (restarted on its store), live events
        # at shares of its measured throughput (the first share is the half); none
        # with --latency-shares "".
        rate = single["events_per_s"] * (args.latency_shares or [0.5])[0]
        if args.curve:
            pid = one.start("w1")
            await one.wait_http_ready("w1", args.timeout)
            result["timer_segment"] = await add_timer_segment(one, args.timeout)
            curve = await phase_curve(one, args, single["events_per_s"], summary.events_path)
            result["latency"] = curve.pop("runs")
            result["curve"] = curve
            rss, hwm = rss_bytes(pid)
            result["footprint"]["worker_rss_after_latency_bytes"] = rss
            result["footprint"]["worker_rss_hwm_latency_bytes"] = hwm
            one.stop()
        elif args.latency_shares:
            pid = one.start("w1")
            await one.wait_http_ready("w1", args.timeout)
            result["timer_segment"] = await add_timer_segment(one, args.timeout)
            result["latency"] = []
            for i, share in enumerate(args.latency_shares):
                run = await phase_latency(
                    one, args, single["events_per_s"] * share, summary.events_path, f"L{i}-"
                )
                run["share"] = share
                result["latency"].append(run)
                say(f"latency at {share}: {run['event_latency_ms']}")
            rss, hwm = rss_bytes(pid)
            result["footprint"]["worker_rss_after_latency_bytes"] = rss
            result["footprint"]["worker_rss_hwm_latency_bytes"] = hwm
            one.stop()

        # 4. Backfill over the big workload (probe events at the same rate as phase 3).
        if args.backfill_profiles:
            result["backfill"] = await phase_backfill(
                bootstrap, broker, workdir, args, run_id, args.backfill_rate or rate, apps
            )
    finally:
        for app in apps:
            app.stop()
        broker.stop()
        # A clean run logs no error; any is counted here (see the logs in --workdir).
        result["worker_log_errors"] = {
            log.relative_to(workdir).as_posix(): n
            for app in apps
            for log in sorted(app.dir.glob("*.log"))
            if (n := log.read_text(errors="replace").count('"level":"error"'))
        }
        if not args.keep and not args.workdir:
            shutil.rmtree(workdir, ignore_errors=True)
    return result


def mib(value: float | None) -> str:
    return f"{value / 1048576:.0f} MiB" if value else "-"


def report(result: dict[str, Any]) -> None:
    ceiling = result["ceiling"]
    one, two = result["one_worker"], result.get("two_workers")
    supervised = result.get("worker_processes")
    w = result["workload"]
    print()
    print(
        f"workload: {w['profiles']} profiles, {w['events']} events, {w['segments']} segments, "
        f"{w['partitions']} partitions (seed {w['seed']})"
    )
    print(f"{'run':<34} {'events/s':>9} {'ratio':>6} {'seconds':>8} {'start-up s':>10}")
    for label, r in (
        ("ceiling: aiokafka passthrough", ceiling),
        ("segstream, 1 worker", one),
        ("segstream, 2 workers", two),
        (f"segstream, --processes {(supervised or {}).get('processes')}", supervised),
    ):
        if r is None:
            continue
        ratio = r["events_per_s"] / ceiling["events_per_s"]
        print(
            f"{label:<34} {r['events_per_s']:>9} {ratio:>6.2f} {r['seconds']:>8} "
            f"{r['startup_s'] or 0:>10}"
        )
    print()
    print(f"{'latency (ms)':<40} {'n':>7} {'p50':>7} {'p95':>7} {'p99':>7} {'max':>7}")
    rows = []
    for lat in result.get("latency", []):
        label = f"event -> membership @ {lat['rate']}/s ({lat['share']})"
        rows.append((label, lat["event_latency_ms"]))
        rows.append(
            (f"  second half of the run @ {lat['rate']}/s", lat["event_latency_second_half_ms"])
        )
        rows.append((f"  timer lag received @ {lat['rate']}/s", lat["timer_lag_received_ms"]))
        rows.append((f"  timer lag emitted_at @ {lat['rate']}/s", lat["timer_lag_emitted_ms"]))
    if "backfill" in result:
        bf = result["backfill"]
        rows.append(
            (f"probe @ {bf['probe_rate']}/s, no backfill", bf["probe_before"]["event_latency_ms"])
        )
        rows.append(
            (
                f"probe @ {bf['probe_rate']}/s, during backfill",
                bf["probe_during"]["event_latency_ms"],
            )
        )
    if "curve" in result:
        curve = result["curve"]
        print(
            f"highest paced rate with flat lag ({result['workload'].get('flat_seconds')} s runs):"
            f" {curve['highest_flat_rate']}/s; tried "
            + ", ".join(
                f"{t['rate']}/s {'flat' if t['flat'] else 'growing'}" for t in curve["search"]
            )
        )
    for label, p in rows:
        print(
            f"{label:<40} {p['n']:>7} {p['p50'] or '-':>7} {p['p95'] or '-':>7} "
            f"{p['p99'] or '-':>7} {p['max'] or '-':>7}"
        )
    for lat in result.get("latency", []):
        b = lat["batches"]
        print(
            f"batches @ {lat['rate']}/s: {b['transactions']} transactions, "
            f"{b['input_records_per_transaction']} records and {b['mean_transaction_ms']} ms "
            f"each; drained {lat['drain_after_send_s']} s after the last send; "
            f"{b.get('full_gcs', '-')} full GCs ({b.get('full_gc_ms', '-')} ms, longest over "
            f"{b.get('longest_full_gc_over_ms', '-')} ms)"
        )
    f = result["footprint"]
    print()
    print(
        f"footprint ({f['profiles']} profiles): store {f['store_bytes_per_profile']} B/profile, "
        f"state value {f['store'].get('profile_state_bytes_mean')} B/profile; changelog "
        f"{f['changelog_bytes_per_event']} B/input event; worker RSS "
        f"{mib(f['worker_rss_peak_ingest_bytes'])} peak in ingest, "
        f"{mib(f.get('worker_rss_after_latency_bytes'))} after the latency run"
    )
    if "restore" in result:
        r = result["restore"]
        print(
            f"restore on an empty disk: {r['changelog_records']} changelog records in "
            f"{r['seconds_to_ready']} s to ready ({r['records_per_s']}/s incl. start-up)"
        )
    if "backfill" in result:
        bf = result["backfill"]
        if not bf["backfill_ready"]:
            print(
                f"backfill NOT ready after {bf['backfill_s']} s: {bf['backfill_done_profiles']} "
                f"of {bf['profiles']} done, projected {bf['backfill_projected_s']} s in all"
            )
        print(
            f"backfill ({bf.get('worker_processes', 1)} worker process(es)): "
            f"{bf['profiles']} profiles in {bf['backfill_s']} s "
            f"({bf['backfill_profiles_per_s']}/s); store {bf['store_bytes_per_profile']} "
            f"B/profile; RSS {mib(bf['worker_rss_bytes'])}; ingest "
            f"{bf['ingest']['events_per_s']} events/s (1 probe segment)"
        )
    if result.get("profile"):
        print()
        print(f"py-spy, one worker ({result['profile']['samples']} samples), self %:")
        for name, pct in result["profile"]["self_pct"][:12]:
            print(f"  {pct:>5}  {name}")
        print("inclusive %:")
        for name, pct in result["profile"]["inclusive_pct"][:15]:
            print(f"  {pct:>5}  {name}")
    if result.get("worker_log_errors"):
        print(f"\nERRORS in worker logs: {result['worker_log_errors']}")
    print()
    print(f"load average at the end: {os.getloadavg()}")
    print(json.dumps(result))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--profiles", type=int, default=100_000)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--segments", type=int, default=1000)
    parser.add_argument(
        "--segment-templates",
        type=int,
        default=0,
        help="draw the segments from the generator's first N templates only (40: the mix "
        "before rule language v1.2, run D's; 0: all)",
    )
    parser.add_argument("--partitions", type=int, default=4)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--latency-seconds", type=float, default=60.0)
    parser.add_argument(
        "--latency-shares",
        default="0.5",
        help="input rates of the latency runs, as shares of the one-worker throughput",
    )
    parser.add_argument("--backfill-profiles", type=int, default=1_000_000, help="0: skip")
    parser.add_argument("--backfill-events", type=int, default=2_000_000)
    parser.add_argument(
        "--backfill-processes",
        type=int,
        default=1,
        help="the backfill phase's worker as `segstream worker --processes N`",
    )
    parser.add_argument(
        "--backfill-timeout",
        type=float,
        default=240.0,
        help="stop waiting for the backfill after this many seconds (its rate and the time "
        "it would take are then projected from the worker's remaining-profiles gauge)",
    )
    parser.add_argument(
        "--backfill-rate", type=float, default=0.0, help="probe events/s (default: phase 3's)"
    )
    parser.add_argument(
        "--curve",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="the latency curve (flat-lag search, --latency-rates, --curve-shares) instead of "
        "--latency-shares",
    )
    parser.add_argument("--latency-rates", default="1250,2500", help="events/s of the curve")
    parser.add_argument("--curve-shares", default="0.5,0.75", help="shares of the highest rate")
    parser.add_argument("--flat-seconds", type=float, default=60.0)
    parser.add_argument("--flat-start", type=float, default=0.0, help="events/s (0: auto)")
    parser.add_argument("--flat-steps", type=int, default=3, help="bisection steps")
    parser.add_argument("--two-workers", action=argparse.BooleanOptionalAction, default=True)
    parser.add_argument(
        "--worker-processes",
        type=int,
        default=1,
        help="also time one `segstream worker --processes N` over the same input (N > 1)",
    )
    parser.add_argument(
        "--drain-timeout",
        type=float,
        default=180.0,
        help="after a paced run, most seconds to wait for the worker to catch up",
    )
    parser.add_argument(
        "--reduced",
        action="store_true",
        help="the reduced size that fits in 10 minutes: 20k profiles / 200k events, backfill "
        "100k profiles / 200k events, 20 s latency and 25 s flat-lag runs (one bisection), "
        "one worker only",
    )
    parser.add_argument(
        "--py-spy",
        action=argparse.BooleanOptionalAction,
        default=False,
        help="profile the bulk run, the first latency run and the backfill (a profiler on 2 "
        "cores slows what it watches: its runs' figures are not the measured ones)",
    )
    parser.add_argument("--py-spy-rate", type=int, default=50)
    parser.add_argument("--timeout", type=float, default=1200.0, help="per phase, seconds")
    parser.add_argument("--workdir", help="keep everything here (default: a temporary dir)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary work dir")
    args = parser.parse_args()
    if args.reduced:
        args.profiles, args.events = 20_000, 200_000
        args.backfill_profiles, args.backfill_events = 100_000, 200_000
        args.latency_seconds, args.flat_seconds, args.flat_steps = 20.0, 25.0, 1
        args.drain_timeout = min(args.drain_timeout, 60.0)
        args.two_workers = False
        args.backfill_timeout = min(args.backfill_timeout, 120.0)
    args.latency_shares = [float(x) for x in args.latency_shares.split(",") if x]
    args.latency_rates = [float(x) for x in args.latency_rates.split(",") if x]
    args.curve_shares = [float(x) for x in args.curve_shares.split(",") if x]
    if args.curve and not args.backfill_rate:
        args.backfill_rate = 1250.0  # the "live events at 1,250/s during a backfill"
    if args.backfill_profiles and args.backfill_events < args.backfill_profiles:
        parser.error("--backfill-events must be at least --backfill-profiles")
    report(asyncio.run(run(args)))


if __name__ == "__main__":
    main()
