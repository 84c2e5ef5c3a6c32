"""What the API knows of the cluster: definitions, partition statuses and their owners."""

from __future__ import annotations

import asyncio
from typing import Any

from segstream.app.readers import committed_reader
from segstream.app.segment_writer import SegmentState, read_topic_to_end
from segstream.app.settings import WorkerSettings
from segstream.app.status_view import SegmentRow, partition_counts, segment_rows
from segstream.schemas.jsontext import dumps, loads_exact

__all__ = ["ClusterView", "partition_for"]


def partition_for(profile_id: str, partitions: int) -> int:
    """The input partition of a profile id: aiokafka's default partitioner (murmur2)."""
    from aiokafka.partitioner import murmur2

    return (int(murmur2(profile_id.encode())) & 0x7FFFFFFF) % partitions


class ClusterView:
    """The segments and status topics, read to their end on demand (read_committed)."""

    def __init__(self, settings: WorkerSettings) -> None:
        self.settings = settings
        self.state = SegmentState(history_retention=settings.history_retention)
        self.statuses: dict[int, dict[str, Any]] = {}
        self._partitions: int | None = None
        self._consumer: Any = None
        self._lock = asyncio.Lock()

    async def partitions(self) -> int:
        """How many input partitions there are (the profiles topic's partition count)."""
        if self._partitions is None:
            profiles = self.settings.topics.profiles
            self._partitions = (await partition_counts(self.settings, [profiles]))[profiles]
        return self._partitions

    async def refresh(self) -> None:
        """Read what was committed to the segments and status topics since the last read."""
        async with self._lock:
            if self._consumer is None:
                self._consumer = await self._start()
            consumer = self._consumer
            parts = sorted(consumer.assignment(), key=lambda tp: tp.topic)
            for record in await read_topic_to_end(consumer, parts):
                if record.topic == self.settings.topics.segments:
                    self.state.read(record.value, record.key)
                else:
                    self._status(record.key, record.value)

    def note_written(self, record: dict[str, Any]) -> None:
        """Take a record this worker just committed, before its markers make it readable."""
        self.state.read(dumps(record))

    async def _start(self) -> Any:
        from aiokafka import TopicPartition

        topics = self.settings.topics
        consumer = committed_reader(self.settings)
        try:
            await consumer.start()
            parts = [TopicPartition(topics.segments, 0), TopicPartition(topics.status, 0)]
            consumer.assign(parts)
            await consumer.seek_to_beginning(*parts)
        except BaseException:
            await consumer.stop()
            raise
        return consumer

    def _status(self, key: bytes | None, value: bytes | None) -> None:
        if value is None:
            return
        try:
            status = loads_exact(value)
        except ValueError:
            return
        if isinstance(status, dict) and type(status.get("partition")) is int:
            self.statuses[status["partition"]] = status

    async def close(self) -> None:
        """Stop reading."""
        consumer, self._consumer = self._consumer, None
        if consumer is not None:
            await consumer.stop()

    @property
    def definitions(self) -> dict[str, dict[str, Any]]:
        """Current definitions (records with their version) by id."""
        return self.state.definitions

    def owner_url(self, partition: int) -> str | None:
        """The web URL of the worker that last reported the partition."""
        url = self.statuses.get(partition, {}).get("web")
        return url if isinstance(url, str) and url else None

    def rows(self, partitions: int) -> list[SegmentRow]:
        """Segment rows: status building|ready and members, as `segments list` shows them."""
        return segment_rows(
            self.state.definitions, self.statuses, partitions, rejected=self.state.rejected
        )
