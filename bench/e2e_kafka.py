"""Kafka plumbing for bench/e2e.py: the broker, loading input, offsets, the passthrough ceiling,
paced producing and reading membership output with its latencies.

Nothing here knows about segstream's engine; the worker is a separate process (bench/e2e.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import subprocess
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from segstream.timefmt import format_instant, parse_datetime

ROOT = Path(__file__).resolve().parent.parent
KAFKA_SCRIPT = ROOT / "deploy" / "kafka-local" / "kafka.sh"


# -- the broker ------------------------------------------------------------------------------
def free_ports(count: int) -> list[int]:
    """`count` distinct free TCP ports on 127.0.0.1."""
    probes = [socket.socket(socket.AF_INET, socket.SOCK_STREAM) for _ in range(count)]
    try:
        for probe in probes:
            probe.bind(("127.0.0.1", 0))
        return [int(probe.getsockname()[1]) for probe in probes]
    finally:
        for probe in probes:
            probe.close()


class Broker:
    """SEGSTREAM_KAFKA_BOOTSTRAP if set, else a broker of deploy/kafka-local/kafka.sh on free
    ports with its data under `data_dir` (stopped by `stop()`)."""

    def __init__(self, data_dir: Path, heap: str = "1g") -> None:
        self.data_dir = data_dir
        self.heap = heap
        self.env: dict[str, str] | None = None
        self.bootstrap = os.environ.get("SEGSTREAM_KAFKA_BOOTSTRAP", "")
        self.log_dir: Path | None = None

    def start(self) -> str:
        if self.bootstrap:
            return self.bootstrap
        for attempt in range(3):
            # A second try covers a port taken meanwhile or a failed storage format.
            try:
                return self._start(self.data_dir / f"try{attempt}")
            except RuntimeError as exc:
                failure = str(exc)
        raise SystemExit(failure)

    def _start(self, data_dir: Path) -> str:
        self.data_dir = data_dir
        port, controller = free_ports(2)
        self.env = {
            **os.environ,
            "SEGSTREAM_KAFKA_DATA": str(self.data_dir),
            "SEGSTREAM_KAFKA_PORT": str(port),
            "SEGSTREAM_KAFKA_CONTROLLER_PORT": str(controller),
            "SEGSTREAM_KAFKA_HEAP": self.heap,
        }
        started = subprocess.run(
            ["bash", str(KAFKA_SCRIPT), "start"],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
        if started.returncode != 0:
            self.stop()
            raise RuntimeError(f"kafka.sh start failed:\n{started.stderr}")
        self.bootstrap = started.stdout.strip().splitlines()[-1]
        self.log_dir = self.data_dir / "logs"
        return self.bootstrap

    def pid(self) -> int | None:
        pid_file = self.data_dir / "kafka.pid"
        return int(pid_file.read_text()) if pid_file.exists() else None

    def stop(self) -> None:
        if self.env is not None:
            subprocess.run(
                ["bash", str(KAFKA_SCRIPT), "stop"],
                env=self.env,
                capture_output=True,
                check=False,
                timeout=90,
            )
            self.env = None

    def topic_bytes(self, topic: str) -> int | None:
        """Bytes on disk of a topic's partitions (own broker only)."""
        if self.log_dir is None:
            return None
        total = 0
        for part in self.log_dir.glob(f"{topic}-*"):
            if part.name.rsplit("-", 1)[0] != topic:
                continue
            total += sum(f.stat().st_size for f in part.iterdir() if f.suffix == ".log")
        return total


# -- topics, loading and offsets --------------------------------------------------------------
def route(line: bytes) -> tuple[bool, bytes]:
    """(is a profile event, key) of one generated input line."""
    record = orjson.loads(line)
    return str(record["type"]).startswith("profile."), str(record["profile_id"]).encode()


async def load(
    bootstrap: str, lines: Iterable[bytes], profiles_topic: str, activity_topic: str
) -> dict[str, Any]:
    """Produce every line to its input topic (keyed by profile id); returns counts and time."""
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap,
        linger_ms=20,
        max_batch_size=512 * 1024,
        acks="all",
        enable_idempotence=True,
    )
    await producer.start()
    started = time.monotonic()
    sent = 0
    pending: list[Any] = []
    previous: list[Any] = []
    try:
        for line in lines:
            is_profile, key = route(line)
            topic = profiles_topic if is_profile else activity_topic
            pending.append(await producer.send(topic, key=key, value=line))
            sent += 1
            if len(pending) >= 20_000:
                await asyncio.gather(*previous)
                previous, pending = pending, []
        await asyncio.gather(*previous, *pending)
    finally:
        await producer.stop()
    seconds = time.monotonic() - started
    return {"records": sent, "seconds": round(seconds, 2), "records_per_s": round(sent / seconds)}


def partitions_of(topics: Sequence[str], partitions: int) -> list[TopicPartition]:
    return [TopicPartition(t, p) for t in topics for p in range(partitions)]


async def end_offsets(bootstrap: str, tps: list[TopicPartition]) -> dict[TopicPartition, int]:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap)
    await consumer.start()
    try:
        return dict(await consumer.end_offsets(tps))
    finally:
        await consumer.stop()


async def set_group_offsets(
    bootstrap: str, group: str, offsets: dict[TopicPartition, int], timeout: float = 60
) -> None:
    """Commit `offsets` for a consumer group that has no active member (retried while the
    last members are still leaving)."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False
    )
    await consumer.start()
    try:
        consumer.assign(list(offsets))
        deadline = time.monotonic() + timeout
        while True:
            try:
                await consumer.commit(offsets)
                return
            except Exception:
                if time.monotonic() > deadline:
                    raise
                await asyncio.sleep(1.0)
    finally:
        await consumer.stop()


class GroupProgress:
    """Polls a consumer group's committed offsets on the input partitions."""

    def __init__(self, bootstrap: str, group: str, tps: list[TopicPartition]) -> None:
        self.admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
        self.group = group
        self.tps = tps

    async def __aenter__(self) -> GroupProgress:
        await self.admin.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.admin.close()

    async def committed(self) -> int:
        try:
            offsets = await self.admin.list_consumer_group_offsets(self.group, partitions=self.tps)
        except Exception:  # the group's coordinator not there yet
            return 0
        return sum(max(0, o.offset) for o in offsets.values())


# -- the ceiling: a bare aiokafka passthrough ----------------------------------------------------
async def passthrough(
    bootstrap: str,
    inputs: Sequence[str],
    output: str,
    group: str,
    total: int,
    max_records: int,
    timeout_s: float,
) -> dict[str, Any]:
    """Consume batches, decode and re-encode each value with orjson, produce it to `output`
    (same partition), commit the offsets after each batch is acknowledged."""
    consumer = AIOKafkaConsumer(
        *inputs,
        bootstrap_servers=bootstrap,
        group_id=group,
        isolation_level="read_committed",
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        max_poll_records=max_records,
        fetch_max_bytes=8 * 1024 * 1024,
        max_partition_fetch_bytes=4 * 1024 * 1024,
    )
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap,
        enable_idempotence=True,
        acks="all",
        linger_ms=5,
        max_batch_size=512 * 1024,
    )
    await producer.start()
    await consumer.start()
    launched = time.monotonic()
    first = 0.0
    done = 0
    try:
        deadline = time.monotonic() + timeout_s
        while done < total and time.monotonic() < deadline:
            fetched = await consumer.getmany(timeout_ms=100, max_records=max_records)
            if not fetched:
                continue
            if not first:
                first = time.monotonic()
            futures = []
            for tp, messages in fetched.items():
                for message in messages:
                    value = orjson.dumps(orjson.loads(message.value))
                    futures.append(
                        await producer.send(
                            output, key=message.key, value=value, partition=tp.partition
                        )
                    )
                done += len(messages)
            await asyncio.gather(*futures)
            await consumer.commit({tp: m[-1].offset + 1 for tp, m in fetched.items()})
        finished = time.monotonic()
    finally:
        await consumer.stop()
        await producer.stop()
    seconds = finished - first if first else float("nan")
    return {
        "records": done,
        "seconds": round(seconds, 2),
        "startup_s": round(first - launched, 2) if first else None,
        "events_per_s": round(done / seconds) if first else 0,
    }


# -- latency: paced input and the membership output ---------------------------------------------
def percentiles(values: list[float]) -> dict[str, float | int | None]:
    """n, p50, p95, p99 and max of `values` (milliseconds, rounded)."""
    if not values:
        return {"n": 0, "p50": None, "p95": None, "p99": None, "max": None}
    ordered = sorted(values)

    def pick(q: float) -> float:
        return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 1)

    return {
        "n": len(ordered),
        "p50": pick(0.50),
        "p95": pick(0.95),
        "p99": pick(0.99),
        "max": round(ordered[-1], 1),
    }


@dataclass
class MembershipProbe:
    """Reads the membership topic (read_committed) from its current end and measures, per
    record: SPEC §6 latency (receipt minus the causing input's Kafka timestamp) for
    event-caused records, and for timer-caused ones the lag behind their due instant `at`."""

    bootstrap: str
    topic: str
    partitions: int
    sent_ms: dict[str, int] = field(default_factory=dict)  # input event id -> Kafka timestamp
    event_ms: list[float] = field(default_factory=list)
    #: When each `event_ms` value was sent (Kafka timestamp, ms): the latency over the run.
    event_sent_ms: list[int] = field(default_factory=list)
    timer_recv_ms: list[float] = field(default_factory=list)
    timer_emit_ms: list[float] = field(default_factory=list)
    records: int = 0
    unmatched: int = 0
    by_kind: dict[str, int] = field(default_factory=dict)
    _task: asyncio.Task[None] | None = None
    _consumer: Any = None
    _stop: bool = False
    _last_record: float = 0.0

    async def start(self) -> None:
        self._consumer = AIOKafkaConsumer(
            bootstrap_servers=self.bootstrap,
            isolation_level="read_committed",
            fetch_max_wait_ms=20,
            fetch_max_bytes=16 * 1024 * 1024,
        )
        await self._consumer.start()
        tps = [TopicPartition(self.topic, p) for p in range(self.partitions)]
        self._consumer.assign(tps)
        await self._consumer.seek_to_end(*tps)
        for tp in tps:  # resolve the positions now: records after this point are measured
            await self._consumer.position(tp)
        self._task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        consumer = self._consumer
        while not self._stop:
            fetched = await consumer.getmany(timeout_ms=50, max_records=20_000)
            now_ms = time.time() * 1000
            for messages in fetched.values():
                for message in messages:
                    self._record(orjson.loads(message.value), now_ms)
            if fetched:
                self._last_record = time.monotonic()

    def _record(self, body: dict[str, Any], now_ms: float) -> None:
        self.records += 1
        cause = body.get("cause") or {}
        kind = cause.get("kind", "?")
        self.by_kind[kind] = self.by_kind.get(kind, 0) + 1
        if kind == "event":
            sent = self.sent_ms.get(cause.get("event_id", ""))
            if sent is None:
                self.unmatched += 1
            else:
                self.event_ms.append(now_ms - sent)
                self.event_sent_ms.append(sent)
        elif kind == "timer":
            due_ms = parse_datetime(body["at"]) / 1000
            self.timer_recv_ms.append(now_ms - due_ms)
            self.timer_emit_ms.append(parse_datetime(body["emitted_at"]) / 1000 - due_ms)

    async def quiet(self, seconds: float, timeout: float) -> None:
        """Wait until no record arrived for `seconds` (or `timeout`)."""
        deadline = time.monotonic() + timeout
        self._last_record = max(self._last_record, time.monotonic())
        while time.monotonic() < deadline and time.monotonic() - self._last_record < seconds:
            await asyncio.sleep(0.2)

    async def stop(self) -> None:
        self._stop = True
        if self._task is not None:
            with contextlib.suppress(Exception):
                await self._task
        await self._consumer.stop()

    def series(self, width_ms: int) -> list[list[float | int | None]]:
        """[seconds since the first send, n, p50, max] of the event latencies per `width_ms`
        of send time: where in a run its tail lies (a start transient, a pause, a trend)."""
        if not self.event_sent_ms:
            return []
        first = min(self.event_sent_ms)
        buckets: dict[int, list[float]] = {}
        for sent, latency in zip(self.event_sent_ms, self.event_ms, strict=True):
            buckets.setdefault((sent - first) // width_ms, []).append(latency)
        rows: list[list[float | int | None]] = []
        for index in sorted(buckets):
            p = percentiles(buckets[index])
            rows.append([index * width_ms / 1000, p["n"], p["p50"], p["max"]])
        return rows

    def second_half(self) -> list[float]:
        """The event latencies of the records sent in the second half of the run's send span:
        after a worker's start its caches are cold (every profile's first event reads and
        decodes its state from RocksDB), so a short run's tail is mostly its first seconds;
        reported beside the whole run's figures, never instead of them."""
        if not self.event_sent_ms:
            return []
        first, last = min(self.event_sent_ms), max(self.event_sent_ms)
        middle = (first + last) / 2
        return [
            latency
            for sent, latency in zip(self.event_sent_ms, self.event_ms, strict=True)
            if sent >= middle
        ]

    def summary(self) -> dict[str, Any]:
        return {
            "membership_records": self.records,
            "by_cause": dict(sorted(self.by_kind.items())),
            "event_latency_ms": percentiles(self.event_ms),
            "event_latency_second_half_ms": percentiles(self.second_half()),
            "event_latency_by_2s": self.series(2000),
            "unmatched_event_records": self.unmatched,
            "timer_lag_received_ms": percentiles(self.timer_recv_ms),
            "timer_lag_emitted_ms": percentiles(self.timer_emit_ms),
        }


async def paced_send(
    bootstrap: str,
    records: Iterable[tuple[str, bytes, dict[str, Any]]],
    rate: float,
    seconds: float,
    probe: MembershipProbe,
    stop: Callable[[], bool] | None = None,
) -> dict[str, Any]:
    """Send (topic, key, record) at `rate` records/s for at most `seconds` (or until `stop()`).
    Each record's `at` is set to the wall clock when it is sent and its Kafka timestamp is
    that same instant, remembered by event id for the probe."""
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, enable_idempotence=True, acks="all", linger_ms=1
    )
    await producer.start()
    iterator = iter(records)
    sent = 0
    pending: list[Any] = []
    started = time.monotonic()
    behind_max = 0.0
    exhausted = False
    try:
        while (
            not exhausted
            and time.monotonic() - started < seconds
            and not (stop is not None and stop())
        ):
            due = int((time.monotonic() - started) * rate) + 1
            behind_max = max(behind_max, (due - sent) / rate)
            while sent < due:
                item = next(iterator, None)
                if item is None:
                    exhausted = True
                    break
                topic, key, record = item
                now_us = time.time_ns() // 1000
                record["at"] = format_instant(now_us)
                probe.sent_ms[record["id"]] = now_us // 1000
                pending.append(
                    await producer.send(
                        topic, key=key, value=orjson.dumps(record), timestamp_ms=now_us // 1000
                    )
                )
                sent += 1
            if len(pending) > 5000:
                await asyncio.gather(*pending)
                pending = []
            await asyncio.sleep(0.002)
        await asyncio.gather(*pending)
    finally:
        await producer.stop()
    elapsed = time.monotonic() - started
    return {
        "sent": sent,
        "seconds": round(elapsed, 1),
        "rate": round(sent / elapsed),
        "target_rate": round(rate),
        "max_behind_s": round(behind_max, 3),
    }


def rss_bytes(pid: int) -> tuple[int, int]:
    """(VmRSS, VmHWM) of a process in bytes, 0 when it is gone."""
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0, 0
    values = {}
    for line in text.splitlines():
        name, _, rest = line.partition(":")
        if name in ("VmRSS", "VmHWM"):
            values[name] = int(rest.split()[0]) * 1024
    return values.get("VmRSS", 0), values.get("VmHWM", 0)


def cpu_seconds(pid: int) -> float:
    """User + system CPU time a process has used, 0.0 when it is gone: on a shared machine
    the CPU per event says what the code costs when wall-clock rates say how busy it was."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    # Fields 14 and 15 of proc(5) (utime, stime), counted after the command's ")".
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def du(path: Path) -> int:
    """Bytes of the files under `path`."""
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())
