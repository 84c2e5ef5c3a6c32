"""`segstream produce`: send a replay events file (SPEC §8) to the input topics, paced."""

from __future__ import annotations

import asyncio
import signal
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from segstream.cli.segments import load_settings, run_kafka
from segstream.schemas.jsontext import loads_exact

if TYPE_CHECKING:
    from segstream.app.segment_writer import SegmentWriter
    from segstream.app.settings import WorkerSettings

__all__ = ["produce"]

PROFILE_TYPES = ("profile.updated", "profile.deleted")
SEGMENT_TYPES = ("segment.upserted", "segment.deleted")
# Delivery futures are awaited in groups: often enough to report a failure soon, rarely
# enough that the producer can batch (one await per send would send one record per request).
# The group awaited is the one before the current, so sending never stops to wait.
_GATHER_EVERY = 2000
_GATHER_AFTER_S = 1.0
_LINGER_MS = 20
_BATCH_BYTES = 256 * 1024
# Pacing sleeps only when this far ahead, so that high rates do not sleep per record.
_MIN_SLEEP_S = 0.002


@dataclass
class _Counts:
    """What has been sent so far (kept outside the coroutine for the Ctrl-C summary)."""

    profiles: int = 0
    activity: int = 0
    segment_changes: int = 0
    segment_rejected: int = 0
    started: float = 0.0

    @property
    def records(self) -> int:
        return self.profiles + self.activity

    def summary(self) -> str:
        seconds = max(time.monotonic() - self.started, 1e-9)
        text = (
            f"produced {self.records} records ({self.profiles} profile, {self.activity} "
            f"activity) in {seconds:.1f} s ({self.records / seconds:.0f} records/s)"
        )
        if self.segment_changes or self.segment_rejected:
            text += f"; applied {self.segment_changes} segment changes"
            if self.segment_rejected:
                text += f", rejected {self.segment_rejected}"
        return text


def _route(value: bytes) -> tuple[str | None, bytes | None]:
    """(event type, key) of one line; a line that is not an object keeps no key."""
    try:
        event = loads_exact(value)
    except ValueError:
        return None, None
    if not isinstance(event, dict):
        return None, None
    kind = event.get("type")
    profile_id = event.get("profile_id")
    key = profile_id.encode() if isinstance(profile_id, str) else None
    return (kind if isinstance(kind, str) else None), key


class _Sender:
    """Sends lines to their topics, paced, and applies the segment changes among them."""

    def __init__(self, settings: WorkerSettings, producer: Any, rate: float, counts: _Counts):
        self.settings = settings
        self.producer = producer
        self.rate = rate
        self.counts = counts
        self.pending: list[asyncio.Future[Any]] = []
        self.previous: list[asyncio.Future[Any]] = []
        self.last_gather = time.monotonic()
        self.writer: SegmentWriter | None = None

    async def line(self, number: int, value: bytes) -> None:
        kind, key = _route(value)
        if kind in SEGMENT_TYPES:
            # Records before a segment change reach the broker before it, as in the file.
            await self.gather(everything=True)
            await self.segment_change(number, loads_exact(value))
            return
        await self.pace()
        topics = self.settings.topics
        if kind in PROFILE_TYPES:
            topic = topics.profiles
            self.counts.profiles += 1
        else:
            # Activity and anything unreadable: the worker dead-letters what is invalid.
            topic = topics.activity
            self.counts.activity += 1
        self.pending.append(await self.producer.send(topic, key=key, value=value))
        if (
            len(self.pending) >= _GATHER_EVERY
            or time.monotonic() - self.last_gather >= _GATHER_AFTER_S
        ):
            await self.gather(everything=False)

    async def pace(self) -> None:
        if self.rate <= 0:
            return
        due = self.counts.started + self.counts.records / self.rate
        ahead = due - time.monotonic()
        if ahead >= _MIN_SLEEP_S:
            await asyncio.sleep(ahead)

    async def gather(self, *, everything: bool) -> None:
        """Wait for the previous group (and with `everything`, the current one too)."""
        done, self.previous = self.previous, self.pending
        self.pending = []
        if everything:
            done, self.previous = done + self.previous, []
        self.last_gather = time.monotonic()
        if done:
            await asyncio.gather(*done)

    async def segment_change(self, number: int, record: dict[str, Any]) -> None:
        from segstream.app.segment_writer import SegmentWriter, UnknownSegment

        if self.writer is None:
            self.writer = SegmentWriter(self.settings)
            await self.writer.__aenter__()
        if record.get("type") == "segment.deleted":
            segment_id = record.get("segment_id")
            try:
                await self.writer.delete(str(segment_id))
            except UnknownSegment as exc:
                self.counts.segment_rejected += 1
                click.echo(f"line {number}: {exc}", err=True)
                return
            self.counts.segment_changes += 1
            return
        (applied,) = await self.writer.apply([record.get("segment")])
        if applied.outcome == "rejected":
            self.counts.segment_rejected += 1
            for problem in applied.problems:
                click.echo(f"line {number}: {applied.label}: {problem}", err=True)
            return
        self.counts.segment_changes += 1

    async def close(self) -> None:
        if self.writer is not None:
            await self.writer.close()


async def _produce_file(settings: WorkerSettings, path: Path, rate: float, counts: _Counts) -> None:
    from aiokafka import AIOKafkaProducer

    producer = AIOKafkaProducer(
        **settings.client_kwargs(),
        enable_idempotence=True,
        acks="all",
        linger_ms=_LINGER_MS,
        max_batch_size=_BATCH_BYTES,
        # Oversize records (up to the topics' limit) must reach the worker to be dead-lettered.
        max_request_size=settings.input_max_message_bytes,
    )
    # `make run` stops the producer with SIGTERM: stop as on Ctrl-C (asyncio.run cancels the
    # main task), so that what was sent is flushed and the summary printed.
    main_task = asyncio.current_task()
    assert main_task is not None
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, main_task.cancel)
    try:
        await producer.start()
    except BaseException:
        await producer.stop()  # a refused start (credentials, TLS) leaves connections to close
        raise
    sender = _Sender(settings, producer, rate, counts)
    try:
        counts.started = time.monotonic()
        with path.open("rb") as lines:
            for number, raw in enumerate(lines, 1):
                value = raw.rstrip(b"\r\n")
                if value.strip():
                    await sender.line(number, value)
        await sender.gather(everything=True)
    finally:
        try:
            await sender.close()
        finally:
            await producer.stop()


@click.command()
@click.argument("events_file", metavar="EVENTS.jsonl", type=click.Path(dir_okay=False))
@click.option(
    "--rate",
    type=click.FloatRange(min=0),
    default=0.0,
    show_default=True,
    help="Records per second, steady; 0 sends as fast as possible.",
)
def produce(events_file: str, rate: float) -> None:
    """Send each line of EVENTS.jsonl to its input topic, keyed by profile id.

    Profile events go to the profiles topic, all others to the activity topic, each line's
    bytes unchanged; segment.upserted/segment.deleted lines are written as segment changes.
    """
    path = Path(events_file)
    if not path.is_file():
        raise click.BadParameter(f"{events_file} is not a file", param_hint="EVENTS.jsonl")
    settings = load_settings()
    counts = _Counts(started=time.monotonic())
    try:
        run_kafka(settings, _produce_file(settings, path, rate, counts))
    except (KeyboardInterrupt, asyncio.CancelledError):
        click.echo(counts.summary() + " (interrupted)")
        raise SystemExit(130) from None
    click.echo(counts.summary())
