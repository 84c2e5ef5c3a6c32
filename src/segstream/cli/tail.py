"""`segstream tail`: follow the membership topic (SPEC §6) as readable lines or raw JSON."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import click

from segstream.cli.segments import load_settings, run_kafka
from segstream.schemas.jsontext import loads_exact

if TYPE_CHECKING:
    from segstream.app.settings import WorkerSettings

__all__ = ["describe_event", "tail"]

# How often --counts prints the member counts while events keep coming.
COUNTS_EVERY_S = 2.0
_POLL_MS = 500


def describe_event(event: dict[str, Any]) -> str:
    """One membership event as a line: time, +/-, profile, segment@version#seq, cause."""
    sign = {"segment.entered": "+", "segment.left": "-"}.get(str(event.get("type")), "?")
    cause = event.get("cause")
    cause = cause if isinstance(cause, dict) else {}
    because = str(cause.get("kind", "?"))
    if "event_id" in cause:
        because += f" {cause['event_id']}"
    if "segment_id" in cause:
        because += f" (via {cause['segment_id']})"
    return (
        f"{event.get('at')} {sign} {event.get('profile_id')} "
        f"{event.get('segment_id')}@{event.get('segment_version')}#{event.get('seq')} {because}"
    )


@dataclass
class _Follower:
    """What tail has seen: printed events and, with --counts, each segment's members."""

    as_json: bool
    counting: bool
    printed: int = 0
    members: dict[str, set[str]] = field(default_factory=dict)
    counts_changed: bool = False
    counts_printed: bool = False

    def take(self, value: bytes | None, show: bool) -> None:
        """Count one record and, when `show`, print it."""
        if value is None:
            return
        try:
            event = loads_exact(value)
        except ValueError:
            event = None
        if not isinstance(event, dict):
            if show:
                click.echo(value.decode("utf-8", "replace") if self.as_json else "(not JSON)")
                self.printed += 1
            return
        if self.counting:
            self._count(event)
        if show:
            click.echo(value.decode("utf-8", "replace") if self.as_json else describe_event(event))
            self.printed += 1

    def _count(self, event: dict[str, Any]) -> None:
        # Sets rather than +1/-1, so that a duplicate delivery cannot skew a count.
        segment, profile = event.get("segment_id"), event.get("profile_id")
        if not isinstance(segment, str) or not isinstance(profile, str):
            return
        members = self.members.setdefault(segment, set())
        if event.get("type") == "segment.entered":
            members.add(profile)
        elif event.get("type") == "segment.left":
            members.discard(profile)
        self.counts_changed = True

    def print_counts(self) -> None:
        """One line of member counts (to stderr with --json, so stdout stays JSON lines)."""
        self.counts_changed = False
        self.counts_printed = True
        listed = " ".join(f"{seg}={len(who)}" for seg, who in sorted(self.members.items()))
        click.echo(f"members: {listed or '(none yet)'}", err=self.as_json)


async def _follow(
    settings: WorkerSettings,
    follower: _Follower,
    from_beginning: bool,
    max_events: int | None,
    timeout: float | None,
) -> None:
    from aiokafka import TopicPartition

    from segstream.app.readers import committed_reader
    from segstream.app.status_view import partition_counts

    topic = settings.topics.membership
    counts = await partition_counts(settings, [topic])
    deadline = None if timeout is None else time.monotonic() + timeout
    consumer = committed_reader(settings)
    await consumer.start()
    try:
        partitions = [TopicPartition(topic, p) for p in range(counts[topic])]
        consumer.assign(partitions)
        ends = await consumer.end_offsets(partitions)
        # Counts need the whole topic; lines are printed only from the chosen start.
        print_from = {tp: 0 for tp in partitions} if from_beginning else ends
        if from_beginning or follower.counting:
            await consumer.seek_to_beginning(*partitions)
        else:
            await consumer.seek_to_end(*partitions)
        # With --counts, the first line of counts comes as soon as the backlog is counted.
        backlog = follower.counting
        last_counts = time.monotonic()
        while max_events is None or follower.printed < max_events:
            wait_ms = _POLL_MS
            if deadline is not None:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                wait_ms = max(1, min(wait_ms, int(left * 1000)))
            batches = await consumer.getmany(timeout_ms=wait_ms)
            for tp, messages in batches.items():
                for message in messages:
                    if max_events is not None and follower.printed >= max_events:
                        break
                    follower.take(message.value, show=message.offset >= print_from[tp])
            if backlog and await _reached(consumer, ends):
                backlog = False
                follower.print_counts()
                last_counts = time.monotonic()
            elif (
                follower.counting
                and not backlog
                and follower.counts_changed
                and time.monotonic() - last_counts >= COUNTS_EVERY_S
            ):
                follower.print_counts()
                last_counts = time.monotonic()
    finally:
        await consumer.stop()


async def _reached(consumer: Any, ends: dict[Any, int]) -> bool:
    """True when the consumer's position is at or past `ends` on every partition."""
    for tp, end in ends.items():
        if await consumer.position(tp) < end:
            return False
    return True


@click.command()
@click.option("--from-beginning", is_flag=True, help="Start at the oldest event, not the newest.")
@click.option("--json", "as_json", is_flag=True, help="Print each event's raw JSON line.")
@click.option(
    "--counts",
    is_flag=True,
    help="Also keep each segment's members (counted over the whole topic) and print them "
    f"every {COUNTS_EVERY_S:g} s and at the end.",
)
@click.option("--max", "max_events", type=click.IntRange(min=1), help="Stop after N events.")
@click.option(
    "--timeout",
    type=click.FloatRange(min=0, min_open=True),
    help="Stop after this many seconds.",
)
def tail(
    from_beginning: bool,
    as_json: bool,
    counts: bool,
    max_events: int | None,
    timeout: float | None,
) -> None:
    """Print membership events as they are committed (settings from SEGSTREAM_* variables)."""
    settings = load_settings()
    follower = _Follower(as_json=as_json, counting=counts)
    interrupted = False
    try:
        run_kafka(settings, _follow(settings, follower, from_beginning, max_events, timeout))
    except KeyboardInterrupt:
        interrupted = True
    if counts and (follower.counts_changed or not follower.counts_printed):
        follower.print_counts()
    if interrupted:
        raise SystemExit(130)
