"""The segment catalogue as the segments topic says it is, and what each partition still lacks.

Every worker reads the segments topic (one partition, read_committed) from the beginning and
keeps the latest record per segment id. For each partition it owns it compares that with the
versions the partition has applied (its registry) and sends the missing records as control
records to that partition, in topic order; a partition applies a record only if it is newer
than what it has, so repeats (after a restart or a rebalance) are harmless.
"""

from __future__ import annotations

import time
from typing import Any

import orjson

from segstream.app.readers import committed_reader
from segstream.app.settings import WorkerSettings
from segstream.engine.registry import SegmentRegistry

__all__ = ["SegmentCatalogue"]

State = tuple[int, bool]  # (version, deleted)
RESEND_AFTER_S = 10.0


def _state(record: dict[str, Any]) -> State:
    return int(record["version"]), bool(record.get("deleted"))


def applied_state(registry: SegmentRegistry, segment_id: str) -> State | None:
    """What a partition has applied for a segment id."""
    segment = registry.segments.get(segment_id)
    if segment is not None:
        return segment.version, False
    version = registry.versions.get(segment_id)
    return (version, True) if version is not None else None


class SegmentCatalogue:
    """The segments topic, followed continuously."""

    def __init__(self, settings: WorkerSettings) -> None:
        self.settings = settings
        self.records: dict[str, dict[str, Any]] = {}  # in topic order of their last write
        self._requested: dict[int, dict[str, tuple[State, float]]] = {}
        self._consumer: Any = None

    async def start(self) -> None:
        """Start reading the segments topic from its beginning."""
        from aiokafka import TopicPartition

        self._consumer = committed_reader(self.settings)
        await self._consumer.start()
        tp = TopicPartition(self.settings.topics.segments, 0)
        self._consumer.assign([tp])
        await self._consumer.seek_to_beginning(tp)

    async def stop(self) -> None:
        """Stop reading."""
        if self._consumer is not None:
            await self._consumer.stop()

    async def poll(self) -> bool:
        """Read what arrived (waits up to 0.5 s); True when a record changed the catalogue."""
        fetched = await self._consumer.getmany(timeout_ms=500)
        changed = False
        for messages in fetched.values():
            for message in messages:
                if message.value is None:
                    continue
                try:
                    record = orjson.loads(message.value)
                    _state(record)
                    segment_id = record["id"]
                except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
                    continue
                self.records.pop(segment_id, None)
                self.records[segment_id] = record
                changed = True
        return changed

    def forget_requests(self, partition: int) -> None:
        """A partition was (re)opened: whatever was requested before may be lost."""
        self._requested.pop(partition, None)

    def missing(self, partition: int, registry: SegmentRegistry) -> list[dict[str, Any]]:
        """Records the partition has not applied and was not sent recently, in topic order.

        A record sent but still not applied after RESEND_AFTER_S is sent again (a lost send
        costs a delay, never a version): applying is idempotent.
        """
        requested = self._requested.setdefault(partition, {})
        now = time.monotonic()
        out = []
        for segment_id, record in self.records.items():
            wanted = _state(record)
            if wanted == applied_state(registry, segment_id):
                continue
            sent = requested.get(segment_id)
            if sent is not None and sent[0] == wanted and now - sent[1] < RESEND_AFTER_S:
                continue
            requested[segment_id] = (wanted, now)
            out.append(record)
        return out
