"""What one partition transaction sends, and the proof that every send succeeded.

A `RecordCollector` gathers a batch's membership events (each with its current-membership
record, SPEC §6.1) and dead letters in the order they arise, hands them and the changelog
records to the partition's transactional producer, and `confirm()`s every delivery before the
caller may commit: aiokafka would commit a transaction whose records the broker rejected. A
rejection caused by a record itself (too large, invalid) raises `SendRejected` naming the topic
and key, so the caller can isolate what produced it; any other failure (the broker away,
fencing, timeouts) propagates as it is.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from segstream.app.members_topic import members_record
from segstream.app.metrics import WorkerMetrics
from segstream.app.settings import TopicNames
from segstream.engine.membership import MembershipChange
from segstream.errors import InvalidRecord
from segstream.schemas.jsontext import dumps

__all__ = ["RecordCollector", "Rejected", "SendRejected", "wall_us"]


#: How long the other deliveries of a failed transaction may take to settle.
SETTLE_S = 2.0


def wall_us() -> int:
    """The wall clock in microseconds since the epoch."""
    return time.time_ns() // 1000


def _record_errors() -> tuple[type[BaseException], ...]:
    """aiokafka errors that mean "the broker (or the client) will never take this record"."""
    from aiokafka import errors

    names = (
        "MessageSizeTooLargeError",
        "RecordTooLargeError",
        "RecordListTooLargeError",
        "InvalidRecordError",
        "CorruptRecordError",
        "CorruptRecordException",
        "UnsupportedForMessageFormatError",
    )
    found = (getattr(errors, name, None) for name in names)
    return tuple(e for e in found if isinstance(e, type) and issubclass(e, BaseException))


@dataclass(frozen=True, slots=True)
class Rejected:
    """One record of a transaction that the broker (or the client) refused."""

    topic: str
    #: Which of the partition's outputs: changelog, membership, members, deadletter (or other).
    kind: str
    key: bytes | None
    size: int


class SendRejected(Exception):
    """Records of the transaction can never be written; the transaction must not commit.

    `rejected` lists them largest first. The broker refuses a whole produce batch, so the
    records of the same batch that are fine are listed with the one at fault.
    """

    def __init__(self, rejected: list[Rejected], cause: BaseException) -> None:
        self.rejected = sorted(rejected, key=lambda r: -r.size)
        first = self.rejected[0]
        self.topic = first.topic
        self.kind = first.kind
        self.key = first.key
        self.cause = cause
        super().__init__(f"{first.topic}: {type(cause).__name__}: {cause}")


@dataclass(frozen=True, slots=True)
class _Outgoing:
    topic: str
    key: bytes | None
    value: bytes | None
    headers: list[tuple[str, bytes]]
    #: Another partition of the same topic (a misrouted input record moved, SPEC §2).
    partition: int | None = None
    timestamp_ms: int | None = None


_NO_HEADERS: list[tuple[str, bytes]] = []


@dataclass(frozen=True, slots=True)
class _SentBatch:
    """A produce batch handed to the producer, with its records (key, value) for a report."""

    topic: str
    records: Sequence[tuple[bytes | None, bytes | None]]
    future: asyncio.Future[Any]


def _estimate(key: bytes | None, value: bytes | None, headers: list[tuple[str, bytes]]) -> int:
    from aiokafka.record.default_records import DefaultRecordBatchBuilder

    size: int = DefaultRecordBatchBuilder.estimate_size_in_bytes(key, value, headers)
    return size


def _too_large(size: int, limit: int) -> BaseException:
    from aiokafka.errors import MessageSizeTooLargeError

    error: BaseException = MessageSizeTooLargeError(
        f"the record is about {size} bytes, larger than the producer's max_request_size ({limit})"
    )
    return error


class RecordCollector:
    """The records of one partition transaction, sent in order and confirmed before commit."""

    def __init__(self, topics: TopicNames, partition: int, metrics: WorkerMetrics) -> None:
        self._topics = topics
        self._partition = partition
        self._metrics = metrics
        self._pending: list[_Outgoing] = []
        self._sent: list[_SentBatch] = []
        self._changes: list[MembershipChange] = []
        self._dead_letters: list[str] = []  # their kinds, counted once committed
        self._moved: list[str] = []  # topics of the misrouted records moved, likewise

    @property
    def changes(self) -> list[MembershipChange]:
        """Every transition collected so far."""
        return self._changes

    def membership(self, changes: list[MembershipChange], source_timestamp_ms: int | None) -> None:
        """Membership events (SPEC §6) of these transitions, stamped with the wall clock, each
        followed by the current-membership record that mirrors it (SPEC §6.1)."""
        if not changes:
            return
        metrics = self._metrics
        emitted = wall_us()
        for change in changes:
            record = dumps(change.to_record(emitted))
            self._pending.append(
                _Outgoing(self._topics.membership, change.profile_id.encode(), record, [])
            )
            key, value = members_record(change)
            self._pending.append(_Outgoing(self._topics.members, key, value, []))
            self._changes.append(change)
            if change.cause.get("kind") == "timer":
                metrics.timer_lag(max(0, emitted - change.at) / 1e6)
        if source_timestamp_ms is not None:
            metrics.end_to_end(max(0.0, emitted / 1e6 - source_timestamp_ms / 1e3))

    def current_members(self, records: list[tuple[bytes, bytes]]) -> None:
        """Current-membership records that mirror no transition of this transaction (the
        topic's seeding, `segstream.app.members_topic`)."""
        topic = self._topics.members
        self._pending.extend(_Outgoing(topic, key, value, []) for key, value in records)

    def dead_letter(
        self, message: Any, topic: str, error: InvalidRecord, *, keep_value: bool = True
    ) -> None:
        """The record, as it was read, to the dead-letter topic with the SPEC §7 headers."""
        headers = [
            ("segstream.error.kind", error.kind.encode()),
            ("segstream.error.message", error.message.encode("utf-8", "backslashreplace")),
            ("segstream.source.topic", topic.encode()),
            ("segstream.source.partition", str(message.partition).encode()),
            ("segstream.source.offset", str(message.offset).encode()),
        ]
        value = message.value if keep_value else None
        self._pending.append(_Outgoing(self._topics.deadletter, message.key, value, headers))
        self._dead_letters.append(error.kind)

    def move(
        self, topic: str, message: Any, partition: int, headers: list[tuple[str, bytes]]
    ) -> None:
        """The record, unchanged but for `headers`, to `partition` of its own topic (counted
        once the transaction commits)."""
        self._moved.append(topic)
        self._pending.append(
            _Outgoing(topic, message.key, message.value, headers, partition, message.timestamp)
        )

    async def send(self, producer: Any, changelog: Sequence[tuple[bytes, bytes | None]]) -> None:
        """Hand every collected record, then the changelog records, to the producer.

        Records go as one produce batch per topic partition (aiokafka's `create_batch` /
        `send_batch`, in order within each), not one `send` each: the keyed layout writes
        several changelog records per event, and a future per record (made, resolved, awaited)
        was the worker's largest single cost (py-spy, docs/performance.md). A batch that is
        full is sent and the next one started, so no batch grows past the producer's
        `max_batch_size`; a record larger than `max_request_size` is refused here, before it
        goes anywhere, as `send` would.
        """
        pending, self._pending = self._pending, []
        groups: dict[tuple[str, int], list[_Outgoing]] = {}
        for record in pending:
            target = self._partition if record.partition is None else record.partition
            groups.setdefault((record.topic, target), []).append(record)
        for (topic, partition), records in groups.items():
            await self._send_batches(
                producer,
                topic,
                partition,
                [(r.key, r.value) for r in records],
                [(r.headers, r.timestamp_ms) for r in records],
            )
        if changelog:
            await self._send_batches(producer, self._topics.changelog, self._partition, changelog)

    async def _send_batches(
        self,
        producer: Any,
        topic: str,
        partition: int,
        records: Sequence[tuple[bytes | None, bytes | None]],
        extras: Sequence[tuple[list[tuple[str, bytes]], int | None]] | None = None,
    ) -> None:
        """`records` (key, value) in order, with `extras` (headers, timestamp ms or None for
        now) per record when they have any (the changelog has none: its records are many)."""
        # The producer's own limit, so that a record too large for any request is refused
        # here with its key (aiokafka checks it in `send`, not in `send_batch`).
        limit: int = getattr(producer, "_max_request_size", 1 << 62) - 1024
        builder = producer.create_batch()
        start = 0
        headers: list[tuple[str, bytes]] = _NO_HEADERS
        timestamp_ms: int | None = None
        for index, (key, value) in enumerate(records):
            if extras is not None:
                headers, timestamp_ms = extras[index]
            rough = len(key or b"") + len(value or b"")
            if extras is not None:
                rough += sum(len(name) + len(v) + 8 for name, v in headers)
            if rough > limit and _estimate(key, value, headers) > limit + 1024:
                exc = _too_large(rough, limit + 1024)
                raise SendRejected([self._rejected_item(topic, key, value)], exc) from exc
            added = builder.append(timestamp=timestamp_ms, key=key, value=value, headers=headers)
            if added is not None:
                continue
            # Full: send what it holds; an empty batch always takes its first record.
            await self._submit(producer, builder, topic, partition, records[start:index])
            start = index
            builder = producer.create_batch()
            builder.append(timestamp=timestamp_ms, key=key, value=value, headers=headers)
        if start < len(records):
            await self._submit(producer, builder, topic, partition, records[start:])

    async def _submit(
        self,
        producer: Any,
        builder: Any,
        topic: str,
        partition: int,
        records: Sequence[tuple[bytes | None, bytes | None]],
    ) -> None:
        # Closed: nothing else is appended to it, and the sender takes it at once instead of
        # waiting out the producer's linger (5 ms per transaction at low load).
        builder.close()
        future = await producer.send_batch(builder, topic, partition=partition)
        self._sent.append(_SentBatch(topic, records, future))

    async def confirm(self) -> int | None:
        """Wait for every delivery; returns the last changelog offset written (None: none).

        Raises `SendRejected` for a record the broker will never take, or the delivery's
        own error for anything else. Either way the transaction must be aborted.
        """
        futures = [sent.future for sent in self._sent]
        # `wait`, not `gather`: cancelling this (a partition closing, shutdown) must not cancel
        # the deliveries (aiokafka's shielded batch futures), or a later failure of one would
        # go unretrieved; `abandon` retrieves them all.
        first: BaseException | None = None
        if futures:
            done, _ = await asyncio.wait(futures, return_when=asyncio.FIRST_EXCEPTION)
            first = next((e for f in done if not f.cancelled() and (e := f.exception())), None)
        if first is not None:
            # The broker fails a whole produce batch at once, and the caller tells its
            # records apart: let the others settle (briefly: an idempotent producer retries
            # a transport error without end).
            await asyncio.wait(futures, timeout=SETTLE_S)
            self._retrieve_all()
            record_errors = _record_errors()
            refused = [
                (sent, sent.future.exception())
                for sent in self._sent
                if sent.future.done()
                and not sent.future.cancelled()
                and isinstance(sent.future.exception(), record_errors)
            ]
            if refused:
                cause = refused[0][1]
                assert cause is not None
                rejected = [
                    self._rejected_item(sent.topic, key, value)
                    for sent, _ in refused
                    for key, value in sent.records
                ]
                raise SendRejected(rejected, cause) from cause
            raise first
        offsets = [
            sent.future.result().offset + len(sent.records) - 1
            for sent in self._sent
            if sent.topic == self._topics.changelog
        ]
        return max(offsets) if offsets else None

    def abandon(self) -> None:
        """The transaction failed: its deliveries fail with it, quietly (one log line for the
        batch is the caller's, not "exception was never retrieved" for every record)."""
        self._retrieve_all()

    def committed(self) -> None:
        """After the commit: count the transitions and dead letters."""
        for kind in self._dead_letters:
            self._metrics.dead_letter(kind)
        for topic in self._moved:
            self._metrics.misrouted(topic)
        for change in self._changes:
            self._metrics.membership_change(change.segment_id, change.entered)

    def _rejected_item(self, topic: str, key: bytes | None, value: bytes | None) -> Rejected:
        size = len(key or b"") + len(value or b"")
        return Rejected(topic, self._kind(topic), key, size)

    def _kind(self, topic: str) -> str:
        topics = self._topics
        return {
            topics.changelog: "changelog",
            topics.membership: "membership",
            topics.members: "members",
            topics.deadletter: "deadletter",
        }.get(topic, "other")

    def _retrieve_all(self) -> None:
        for sent in self._sent:
            sent.future.add_done_callback(_retrieve_exception)


def _retrieve_exception(future: asyncio.Future[Any]) -> None:
    if not future.cancelled():
        future.exception()
