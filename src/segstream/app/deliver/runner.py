"""One destination: its own consumer group on the membership topic, batches, commits.

Offsets are committed only after the batch that holds the events before them got a 2xx (or
went to the dead-letter topic), so a crash at any point repeats events, never skips one.
Batches go out one at a time, each partition's events in offset order, so the events of one
(profile, segment) pair arrive in the order they were produced.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from typing import Any

import orjson

from segstream.app.deliver.metrics import DeliverMetrics
from segstream.app.deliver.sender import Blocked, WebhookSender
from segstream.app.deliver.settings import DeliverSettings
from segstream.app.deliver.signing import load_secrets
from segstream.timefmt import parse_instant

__all__ = ["DestinationRunner", "batch_body", "group_id", "message_id"]

log = logging.getLogger(__name__)

#: How long a blocked destination waits before it looks again.
BLOCKED_PAUSE_S = 5.0
#: How often progress over events the destination does not want is committed.
IDLE_COMMIT_S = 1.0
_TRANSITIONS = {"segment.entered": "entered", "segment.left": "left"}


def group_id(app_id: str, record: dict[str, Any]) -> str:
    """The destination's consumer group: a re-created destination gets a new one."""
    return f"{app_id}-deliver-{record['id']}-{record['created_version']}"


def message_id(record: dict[str, Any], positions: list[tuple[int, int]]) -> str:
    """The batch's `webhook-id`: the same for every attempt, and for the same events again
    after a restart when they form the same batch (receivers dedupe by event `id` anyway)."""
    text = f"{record['id']}/{record['created_version']}/" + ",".join(
        f"{p}:{o}" for p, o in positions
    )
    return "msg_" + hashlib.sha256(text.encode()).hexdigest()[:32]


def batch_body(destination_id: str, values: list[bytes]) -> bytes:
    """`{"destination_id": ID, "events": [...]}` with each event's bytes as produced."""
    return (
        b'{"destination_id":'
        + orjson.dumps(destination_id)
        + b',"events":['
        + b",".join(values)
        + b"]}"
    )


class DestinationRunner:
    """Delivers the membership topic to one destination until stopped."""

    def __init__(
        self,
        record: dict[str, Any],
        settings: DeliverSettings,
        metrics: DeliverMetrics,
        session: Any,
        producer: Any,
    ) -> None:
        self.record = record
        self.id: str = record["id"]
        self.generation: int = record["created_version"]
        self.settings = settings
        self.metrics = metrics
        self.producer = producer
        self.sender = WebhookSender(session, settings, metrics, self._keys)
        self.group_id = group_id(settings.worker.app_id, record)
        self._consumer: Any = None
        self._pending: list[Any] = []
        self._offsets: dict[Any, int] = {}
        self._epoch = 0
        self._task: asyncio.Task[None] | None = None

    def update(self, record: dict[str, Any]) -> None:
        """Take a changed definition (same generation): URL, filters and batching apply from
        the next batch on."""
        self.record = record

    def start(self) -> None:
        """Run in a task of its own."""
        self.metrics.add_destination(self.id)
        self._task = asyncio.create_task(self._run(), name=f"deliver-{self.id}")

    async def stop(self) -> None:
        """Stop (a batch in flight is dropped uncommitted: it is sent again later)."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            try:
                await task
            except asyncio.CancelledError:
                pass
            except Exception:
                log.exception("destination %s stopped with an error", self.id)
        self.metrics.forget_destination(self.id)

    def _keys(self) -> list[bytes]:
        return load_secrets(self.record["secret"], self.settings.secrets_dir)

    async def _run(self) -> None:
        while True:
            try:
                await self._consume()
            except asyncio.CancelledError:
                raise
            except Exception:
                # A broker outage or a bug: start the consumer again; nothing was committed
                # past what was delivered.
                log.exception("destination %s: delivery failed; restarting it", self.id)
                await asyncio.sleep(2.0)

    async def _consume(self) -> None:
        from aiokafka import AIOKafkaConsumer

        worker = self.settings.worker
        consumer = AIOKafkaConsumer(
            **worker.client_kwargs(),
            group_id=self.group_id,
            client_id=f"{worker.worker_id}-deliver-{self.id}",
            isolation_level="read_committed",
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            session_timeout_ms=int(worker.session_timeout_s * 1000),
            heartbeat_interval_ms=int(worker.heartbeat_interval_s * 1000),
        )
        await consumer.start()
        self._consumer = consumer
        try:
            consumer.subscribe([worker.topics.membership], listener=_Positions(self))
            await self._loop(consumer)
        finally:
            self._consumer = None
            self._pending, self._offsets = [], {}
            await consumer.stop()

    async def _loop(self, consumer: Any) -> None:
        first_at: float | None = None
        last_commit = time.monotonic()
        seen = self._epoch
        while True:
            if seen != self._epoch:
                # A rebalance came (during a fetch, a send or a commit): what was pending is
                # forgotten, and everything after the last commit is read again, in order.
                seen = self._epoch
                first_at = None
                await self._rewind(consumer)
                continue
            batching = self.record["batch"]
            max_events, linger = batching["max_events"], batching["max_linger_ms"] / 1000
            now = time.monotonic()
            wait = 0.5 if first_at is None else max(0.0, first_at + linger - now)
            room = max(1, max_events - len(self._pending))
            fetched = await consumer.getmany(timeout_ms=int(wait * 1000), max_records=room)
            if seen != self._epoch:
                continue  # this fetch may straddle the rebalance: dropped, read again
            for tp, messages in fetched.items():
                for message in messages:
                    self._offsets[tp] = message.offset + 1
                    if self._wanted(message.value):
                        self._pending.append(message)
            now = time.monotonic()
            if self._pending and first_at is None:
                first_at = now
            if self._pending and (
                len(self._pending) >= max_events or now >= (first_at or now) + linger
            ):
                await self._flush(consumer)
                first_at = None
                last_commit = time.monotonic()
            elif not self._pending and self._offsets and now - last_commit >= IDLE_COMMIT_S:
                await self._commit(consumer, seen)
                last_commit = now
            await self._update_lag(consumer)

    def _wanted(self, value: bytes | None) -> bool:
        if value is None:
            return False
        try:
            event = orjson.loads(value)
        except orjson.JSONDecodeError:
            log.warning("destination %s: skipping a membership record that is not JSON", self.id)
            return False
        if not isinstance(event, dict):
            return False
        segments = self.record.get("segments")
        if segments is not None and event.get("segment_id") not in segments:
            return False
        return _TRANSITIONS.get(str(event.get("type"))) in self.record["transitions"]

    async def _flush(self, consumer: Any) -> None:
        batch = self._pending
        if not batch:
            return
        epoch = self._epoch
        record = self.record
        positions = [(m.partition, m.offset) for m in batch]
        mid = message_id(record, positions)
        body = batch_body(self.id, [m.value for m in batch])
        while True:
            try:
                outcome = await self.sender.send(self.id, record["url"], mid, body)
                break
            except Blocked as exc:
                self.metrics.set_failing(self.id, True)
                log.error("destination %s is blocked: %s", self.id, exc)
                await asyncio.sleep(BLOCKED_PAUSE_S)
                record = self.record  # a fix may have come in meanwhile
        if outcome.delivered:
            now = time.time()
            self.metrics.delivered(self.id, len(batch), [now - m.timestamp / 1000 for m in batch])
        else:
            await self._dead_letter(mid, body, batch, outcome.attempts, outcome.reason)
        self.metrics.set_failing(self.id, False)
        await self._commit(consumer, epoch)

    async def _dead_letter(
        self, mid: str, body: bytes, batch: list[Any], attempts: int, reason: str
    ) -> None:
        spans: dict[int, tuple[int, int]] = {}
        for m in batch:
            low, _ = spans.get(m.partition, (m.offset, m.offset))
            spans[m.partition] = (low, m.offset)
        headers = [
            ("segstream.destination.id", self.id.encode()),
            ("segstream.destination.version", str(self.record["version"]).encode()),
            ("segstream.webhook.id", mid.encode()),
            ("segstream.error.reason", reason.encode()),
            ("segstream.error.attempts", str(attempts).encode()),
            ("segstream.source.topic", self.settings.worker.topics.membership.encode()),
            (
                "segstream.source.offsets",
                ",".join(f"{p}:{lo}-{hi}" for p, (lo, hi) in sorted(spans.items())).encode(),
            ),
        ]
        await self.producer.send_and_wait(
            self.settings.worker.topics.destination_deadletter,
            key=self.id.encode(),
            value=body,
            headers=headers,
        )
        self.metrics.dead_lettered(self.id, len(batch))
        log.error(
            "destination %s: batch %s (%d events) dead-lettered after %d attempts (%s); "
            "order per pair is broken for these events",
            self.id,
            mid,
            len(batch),
            attempts,
            reason,
        )

    async def _commit(self, consumer: Any, epoch: int) -> None:
        """Commit the offsets after what was delivered, unless a rebalance came in between
        (then the partitions restart from the last commit: these events are sent again)."""
        from aiokafka.errors import CommitFailedError, IllegalStateError, KafkaError

        offsets, self._offsets, self._pending = self._offsets, {}, []
        if not offsets or epoch != self._epoch:
            return
        try:
            await consumer.commit(offsets)
        except (CommitFailedError, IllegalStateError, KafkaError) as exc:
            log.warning("destination %s: commit failed (%s); events will repeat", self.id, exc)

    async def _update_lag(self, consumer: Any) -> None:
        lag = 0
        for tp in consumer.assignment():
            end = consumer.last_stable_offset(tp)
            if end is None:
                end = consumer.highwater(tp)
            if end is None:
                continue
            lag += max(end - await consumer.position(tp), 0)
        self.metrics.set_lag(self.id, lag + len(self._pending))

    async def on_revoked(self) -> None:
        """Partitions go back to the group: forget what is not committed.

        It does not wait for a batch in flight (its commit would wait for this rebalance);
        that batch's offsets are not committed, so its events are sent again, after it.
        """
        self._epoch += 1
        self._pending, self._offsets = [], {}

    async def _rewind(self, consumer: Any) -> None:
        """Every assigned partition back to its committed offset (or the start)."""
        self._pending, self._offsets = [], {}
        fresh = []
        for tp in consumer.assignment():
            committed = await consumer.committed(tp)
            if committed is None:
                fresh.append(tp)
            else:
                consumer.seek(tp, committed)
        if fresh:
            await self.seek_start(consumer, fresh)

    async def seek_start(self, consumer: Any, partitions: list[Any]) -> None:
        """Partitions the group never committed start at the destination's start."""
        fresh = [tp for tp in partitions if await consumer.committed(tp) is None]
        if not fresh:
            return
        start = self.record.get("start", "creation")
        offsets = self.record.get("start_offsets")
        if start == "creation" and offsets is not None:
            for tp in fresh:
                if tp.partition < len(offsets):
                    consumer.seek(tp, offsets[tp.partition])
                else:
                    await consumer.seek_to_beginning(tp)
        elif start in ("creation", "earliest"):
            await consumer.seek_to_beginning(*fresh)
        else:
            ms = parse_instant(start) // 1000
            found = await consumer.offsets_for_times({tp: ms for tp in fresh})
            for tp in fresh:
                hit = found.get(tp)
                if hit is None:
                    await consumer.seek_to_end(tp)
                else:
                    consumer.seek(tp, hit.offset)
        log.info(
            "destination %s: partitions %s start at %s",
            self.id,
            sorted(tp.partition for tp in fresh),
            start,
        )


def _listener_base() -> Any:
    from aiokafka import ConsumerRebalanceListener

    return ConsumerRebalanceListener


class _Positions(_listener_base()):  # type: ignore[misc]
    """Rebalance hooks: drop uncommitted work on revocation; seek fresh partitions."""

    def __init__(self, runner: DestinationRunner) -> None:
        self.runner = runner

    async def on_partitions_revoked(self, revoked: Any) -> None:
        await self.runner.on_revoked()

    async def on_partitions_assigned(self, assigned: Any) -> None:
        consumer = self.runner._consumer
        if consumer is not None:
            await self.runner.seek_start(consumer, list(assigned))
