"""Segment writes (SPEC §4.3): the one transactional writer of the segments topic."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Literal, TypeVar

import orjson

from segstream.app.readers import committed_reader
from segstream.app.settings import WorkerSettings
from segstream.errors import Problem, SegstreamError
from segstream.rules import condition_fingerprint, validate_definition
from segstream.schemas.jsontext import loads_exact
from segstream.schemas.vocabulary import SEGMENT_ID

__all__ = [
    "Applied",
    "Outcome",
    "SegmentState",
    "SegmentWriter",
    "UnknownSegment",
    "WriterGaveUp",
    "read_topic_to_end",
    "segment_record_bytes",
]

log = logging.getLogger(__name__)

Outcome = Literal["created", "changed", "renamed", "unchanged", "rejected"]
_T = TypeVar("_T")

# A fenced writer starts over (SPEC §4.3); two writers fencing each other in a loop is
# possible in theory, so the number of fresh starts is bounded.
MAX_ATTEMPTS = 6
_RETRY_PAUSE_S = 0.2
# Reading a topic to its end: how long one fetch waits, and how long the whole read may take
# (records below the end are all decided, so only an unreachable broker makes it last).
_FETCH_TIMEOUT_MS = 500
READ_DEADLINE_S = 60.0


class UnknownSegment(SegstreamError):
    """A deletion named a segment id that is not currently defined."""

    def __init__(self, segment_id: str) -> None:
        self.segment_id = segment_id
        super().__init__(f"there is no segment '{segment_id}' to delete")


class WriterGaveUp(SegstreamError):
    """The writer was fenced on every attempt: another writer keeps taking over."""


@dataclass(frozen=True)
class Applied:
    """What `SegmentWriter.apply` did with one definition (`label`: its id, or `[index]`)."""

    label: str
    outcome: Outcome
    version: int | None = None
    problems: tuple[Problem, ...] = ()


@dataclass
class SegmentState:
    """The segments topic as read so far: current records by id and each id's last version."""

    definitions: dict[str, dict[str, Any]] = field(default_factory=dict)
    last_versions: dict[str, int] = field(default_factory=dict)

    def copy(self) -> SegmentState:
        """A copy that planning may change without touching what was read."""
        return SegmentState(dict(self.definitions), dict(self.last_versions))

    def read(self, value: bytes | None) -> None:
        """Take one record of the segments topic; records that are not ours are skipped."""
        if value is None:
            return
        try:
            record = loads_exact(value)
        except ValueError:
            log.warning("skipping a segments-topic record that is not JSON")
            return
        segment_id = record.get("id") if isinstance(record, dict) else None
        version = record.get("version") if isinstance(record, dict) else None
        if not isinstance(segment_id, str) or type(version) is not int:
            log.warning("skipping a segments-topic record without id and version")
            return
        assert isinstance(record, dict)
        self.last_versions[segment_id] = max(version, self.last_versions.get(segment_id, 0))
        if record.get("deleted") is True:
            self.definitions.pop(segment_id, None)
        else:
            self.definitions[segment_id] = record

    def plan_upsert(
        self, index: int, raw: object, history_retention: int
    ) -> tuple[Applied, dict[str, Any] | None]:
        """Validate `raw` against the current definitions and version it; updates this state."""
        label = _label(index, raw)
        problems = validate_definition(raw, self.definitions, history_retention=history_retention)
        if problems:
            return Applied(label, "rejected", problems=tuple(problems)), None
        assert isinstance(raw, dict)
        segment_id: str = raw["id"]
        current = self.definitions.get(segment_id)
        record: dict[str, Any] = {"id": segment_id, "name": raw["name"]}
        # A null description is the same as none (SPEC §2), so it is not written.
        if raw.get("description") is not None:
            record["description"] = raw["description"]
        record["condition"] = raw["condition"]
        outcome: Outcome
        if current is None:
            outcome = "created"
            version = self.last_versions.get(segment_id, 0) + 1
        elif condition_fingerprint(current.get("condition")) != condition_fingerprint(
            raw["condition"]
        ):
            outcome = "changed"
            version = self.last_versions.get(segment_id, 0) + 1
        else:
            version = current["version"]
            same_text = current.get("name") == record["name"] and current.get(
                "description"
            ) == record.get("description")
            if same_text:
                return Applied(segment_id, "unchanged", version), None
            outcome = "renamed"
        record["version"] = version
        self.definitions[segment_id] = record
        self.last_versions[segment_id] = version
        return Applied(segment_id, outcome, version), record

    def plan_delete(self, segment_id: str) -> dict[str, Any]:
        """The deletion marker for `segment_id` (keeps its last version); updates this state."""
        if segment_id not in self.definitions:
            raise UnknownSegment(segment_id)
        del self.definitions[segment_id]
        return {"id": segment_id, "deleted": True, "version": self.last_versions[segment_id]}


def _label(index: int, raw: object) -> str:
    """The definition's id, or its index in the request when it has no usable id."""
    if isinstance(raw, dict):
        segment_id = raw.get("id")
        if isinstance(segment_id, str) and SEGMENT_ID.fullmatch(segment_id):
            return segment_id
    return f"[{index}]"


def segment_record_bytes(record: dict[str, Any]) -> bytes:
    """The record as JSON; numbers keep their form, so `1` and `1.0` stay different."""
    try:
        return orjson.dumps(record)
    except orjson.JSONEncodeError:
        # Integers beyond 64 bits are valid JSON that orjson refuses; the stdlib writes them.
        return json.dumps(
            record, separators=(",", ":"), ensure_ascii=False, allow_nan=False
        ).encode()


async def read_topic_to_end(consumer: Any, partitions: Sequence[Any]) -> list[Any]:
    """Every record of the assigned `partitions` from the consumer's position to their end."""
    ends: dict[Any, int] = await consumer.end_offsets(list(partitions))
    records: list[Any] = []
    pending = [tp for tp in partitions if await consumer.position(tp) < ends[tp]]
    deadline = time.monotonic() + READ_DEADLINE_S
    while pending:
        if time.monotonic() > deadline:
            names = ", ".join(sorted({tp.topic for tp in pending}))
            raise SegstreamError(f"could not read {names} to the end in {READ_DEADLINE_S:g} s")
        batches = await consumer.getmany(*pending, timeout_ms=_FETCH_TIMEOUT_MS)
        for messages in batches.values():
            records.extend(messages)
        # Transaction markers take offsets too; the position moves past them without records.
        pending = [tp for tp in pending if await consumer.position(tp) < ends[tp]]
    return records


def _is_fenced(exc: BaseException) -> bool:
    from aiokafka.errors import InvalidProducerEpoch, ProducerFenced

    return isinstance(exc, ProducerFenced | InvalidProducerEpoch)


class _HandledFencing(logging.Filter):
    """Drops asyncio's "never retrieved" reports of a fencing the writer already handled."""

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        if error is None or not _is_fenced(error):
            return True
        return "never retrieved" not in record.getMessage()


_FENCING_FILTER = _HandledFencing()


class SegmentWriter:
    """The only way definitions enter the system: validated, versioned, written in transactions.

    One fixed transactional id per application, so that starting a writer fences any other.
    """

    def __init__(self, settings: WorkerSettings) -> None:
        self.settings = settings
        self.topic = settings.topics.segments
        self.transactional_id = f"{settings.app_id}-segments-writer"
        self._producer: Any = None
        self._consumer: Any = None
        self._partition: Any = None
        self._state = SegmentState()

    async def __aenter__(self) -> SegmentWriter:
        # A fenced producer leaves futures in aiokafka's batches that only the garbage
        # collector sees; the fencing is handled here (start over), so asyncio need not shout.
        logging.getLogger("asyncio").addFilter(_FENCING_FILTER)
        try:
            await self._start_consumer()
            await self._start_producer()
        except BaseException:
            await self.close()
            raise
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.close()

    async def close(self) -> None:
        """Stop the producer and the consumer."""
        producer, consumer = self._producer, self._consumer
        self._producer = self._consumer = None
        if producer is not None:
            await producer.stop()
        if consumer is not None:
            await consumer.stop()

    async def _start_consumer(self) -> None:
        from aiokafka import TopicPartition

        self._consumer = committed_reader(self.settings)
        await self._consumer.start()
        if self.topic not in await self._consumer.topics():
            raise SegstreamError(f"topic {self.topic} does not exist: create the topics first")
        self._partition = TopicPartition(self.topic, 0)
        self._consumer.assign([self._partition])
        await self._consumer.seek_to_beginning(self._partition)

    async def _start_producer(self) -> None:
        from aiokafka import AIOKafkaProducer

        producer = AIOKafkaProducer(
            **self.settings.client_kwargs(),
            transactional_id=self.transactional_id,
            enable_idempotence=True,
            acks="all",
        )
        # start() runs InitProducerId: it fences any other writer and completes (or aborts)
        # the transaction a previous holder of the id left open.
        await producer.start()
        self._producer = producer

    async def _restart_producer(self) -> None:
        old, self._producer = self._producer, None
        if old is not None:
            try:
                await old.stop()
            except Exception:  # a fenced producer may fail to stop cleanly; it is dropped anyway
                log.debug("stopping a fenced producer failed", exc_info=True)
        await self._start_producer()

    async def _catch_up(self) -> SegmentState:
        """Read the committed records written since the last read; returns the state."""
        for message in await read_topic_to_end(self._consumer, [self._partition]):
            self._state.read(message.value)
        return self._state

    async def read_definitions(self) -> tuple[dict[str, dict[str, Any]], dict[str, int]]:
        """Current definitions by id (records with their version) and last version by id."""
        state = await self._catch_up()
        return dict(state.definitions), dict(state.last_versions)

    async def apply(self, definitions: Sequence[object]) -> list[Applied]:
        """Validate and write each definition, in order; one transaction for the valid ones."""

        def plan(state: SegmentState) -> tuple[list[Applied], list[dict[str, Any]]]:
            results: list[Applied] = []
            records: list[dict[str, Any]] = []
            for index, raw in enumerate(definitions):
                applied, record = state.plan_upsert(index, raw, self.settings.history_retention)
                results.append(applied)
                if record is not None:
                    records.append(record)
            return results, records

        return await self._write(plan)

    async def delete(self, segment_id: str) -> int:
        """Write the deletion marker of a defined segment; returns the version it keeps."""

        def plan(state: SegmentState) -> tuple[int, list[dict[str, Any]]]:
            marker = state.plan_delete(segment_id)
            return marker["version"], [marker]

        return await self._write(plan)

    async def _write(self, plan: Callable[[SegmentState], tuple[_T, list[dict[str, Any]]]]) -> _T:
        """Read to the end, plan against a copy, produce and commit; start over when fenced."""
        if self._producer is None:
            raise SegstreamError("the segment writer is not started (use `async with`)")
        for attempt in range(1, MAX_ATTEMPTS + 1):
            try:
                state = (await self._catch_up()).copy()
                result, records = plan(state)
                if records:
                    await self._commit(records)
                return result
            except Exception as exc:
                if not _is_fenced(exc):
                    raise
                log.info("segment writer fenced (attempt %d); starting over", attempt)
                await asyncio.sleep(_RETRY_PAUSE_S * attempt)
                await self._restart_producer()
        raise WriterGaveUp(f"another segment writer took over {MAX_ATTEMPTS} times in a row")

    async def _commit(self, records: list[dict[str, Any]]) -> None:
        producer = self._producer
        await producer.begin_transaction()
        try:
            futures = [
                await producer.send(
                    self.topic,
                    key=record["id"].encode(),
                    value=segment_record_bytes(record),
                    partition=0,
                )
                for record in records
            ]
            await asyncio.gather(*futures)
        except Exception as exc:
            # A fenced producer can do nothing more (not even abort); it is replaced.
            if not _is_fenced(exc):
                await producer.abort_transaction()
            raise
        await producer.commit_transaction()
