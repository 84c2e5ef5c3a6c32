"""The one transactional writer of a compacted, one-partition topic of versioned records
(SPEC §4.3: the segments topic; the destinations topic follows the same protocol).

One fixed transactional id per application, so that starting a writer fences any other. A
write reads the topic to its end (read_committed), plans against a copy of the state it read,
produces the records and commits; a fenced writer starts over, a bounded number of times.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from types import TracebackType
from typing import Any, Generic, Protocol, Self, TypeVar

from segstream.app.readers import committed_reader
from segstream.app.settings import WorkerSettings
from segstream.errors import SegstreamError

__all__ = ["MAX_ATTEMPTS", "READ_DEADLINE_S", "SingleWriter", "WriterGaveUp", "read_topic_to_end"]

log = logging.getLogger(__name__)

_T = TypeVar("_T")

# A fenced writer starts over (SPEC §4.3); two writers fencing each other in a loop is
# possible in theory, so the number of fresh starts is bounded.
MAX_ATTEMPTS = 6
_RETRY_PAUSE_S = 0.2
# Reading a topic to its end: how long one fetch waits, and how long the whole read may take
# (records below the end are all decided, so only an unreachable broker makes it last).
_FETCH_TIMEOUT_MS = 500
READ_DEADLINE_S = 60.0


class WriterGaveUp(SegstreamError):
    """The writer was fenced on every attempt: another writer keeps taking over."""


class TopicState(Protocol):
    """What a writer knows of its topic: built by reading records, copied to plan against."""

    def read(self, value: bytes) -> None:
        """Take one record of the topic (in topic order)."""

    def copy(self) -> Self:
        """An independent copy."""


S = TypeVar("S", bound=TopicState)


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


class SingleWriter(Generic[S]):
    """The protocol above, for one topic; subclasses say what they plan and how records look."""

    #: What the records are, for messages ("segment", "destination").
    what = "record"

    def __init__(
        self,
        settings: WorkerSettings,
        topic: str,
        transactional_id: str,
        state: S,
        encode: Callable[[dict[str, Any]], bytes],
    ) -> None:
        self.settings = settings
        self.topic = topic
        self.transactional_id = transactional_id
        self._state = state
        self._encode = encode
        self._producer: Any = None
        self._consumer: Any = None
        self._partition: Any = None

    async def __aenter__(self) -> Self:
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

    async def _catch_up(self) -> S:
        """Read the committed records written since the last read; returns the state."""
        for message in await read_topic_to_end(self._consumer, [self._partition]):
            self._state.read(message.value)
        return self._state

    async def _write(self, plan: Callable[[S], Awaitable[tuple[_T, list[dict[str, Any]]]]]) -> _T:
        """Read to the end, plan against a copy, produce and commit; start over when fenced."""
        if self._producer is None:
            raise SegstreamError(f"the {self.what} writer is not started (use `async with`)")
        for attempt in range(1, MAX_ATTEMPTS + 1):
            try:
                state = (await self._catch_up()).copy()
                result, records = await plan(state)
                if records:
                    await self._commit(records)
                return result
            except Exception as exc:
                if not _is_fenced(exc):
                    raise
                log.info("%s writer fenced (attempt %d); starting over", self.what, attempt)
                await asyncio.sleep(_RETRY_PAUSE_S * attempt)
                await self._restart_producer()
        raise WriterGaveUp(f"another {self.what} writer took over {MAX_ATTEMPTS} times in a row")

    async def _commit(self, records: list[dict[str, Any]]) -> None:
        producer = self._producer
        await producer.begin_transaction()
        try:
            futures = [
                await producer.send(
                    self.topic,
                    key=record["id"].encode(),
                    value=self._encode(record),
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
