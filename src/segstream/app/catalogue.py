"""The segment catalogue as the segments topic says it is, and what each partition still lacks.

Every worker reads the segments topic (one partition, read_committed) from the beginning and
keeps the latest record per segment id. For each partition it owns it compares that with the
versions the partition has applied (its registry) and sends the missing records as control
records to that partition, in topic order; a partition applies a record only if it is newer
than what it has, so repeats (after a restart or a rebalance) are harmless.

Each record is checked on its own first (SPEC §4.3, `segstream.rules.stored`): one with no
effect is skipped, logged and counted, and never reaches a partition.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from segstream.app.metrics import WorkerMetrics
from segstream.app.readers import committed_reader
from segstream.app.settings import WorkerSettings
from segstream.engine.registry import SegmentRegistry
from segstream.rules.stored import SkippedRecord, check_segment_record

__all__ = ["SegmentCatalogue"]

log = logging.getLogger("segstream.catalogue")

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

    def __init__(self, settings: WorkerSettings, metrics: WorkerMetrics | None = None) -> None:
        self.settings = settings
        self.metrics = metrics
        self.records: dict[str, dict[str, Any]] = {}  # in topic order of their last write
        self.last_versions: dict[str, int] = {}
        #: Segment ids whose latest record was skipped: (version, reason).
        self.rejected: dict[str, tuple[int, str]] = {}
        #: The current definitions (no deletion markers), for the cycle check.
        self._in_force: dict[str, dict[str, Any]] = {}
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
                checked = check_segment_record(
                    message.value,
                    key=message.key,
                    last_versions=self.last_versions,
                    history_retention=self.settings.history_retention,
                    defined=self._in_force,
                )
                if isinstance(checked, SkippedRecord):
                    self._skipped(message.offset, checked)
                    continue
                segment_id = checked.segment_id
                self.last_versions[segment_id] = checked.version
                self.rejected.pop(segment_id, None)
                self.records.pop(segment_id, None)
                self.records[segment_id] = checked.record
                if checked.deleted:
                    self._in_force.pop(segment_id, None)
                else:
                    self._in_force[segment_id] = checked.record
                changed = True
        return changed

    def _skipped(self, offset: int, checked: SkippedRecord) -> None:
        log.warning(
            "segments topic offset %d skipped (%s): %s",
            offset,
            checked.segment_id or "no usable id",
            checked.reason,
        )
        if self.metrics is not None:
            self.metrics.internal_record_skipped("segments")
        if checked.segment_id is not None and checked.version is not None:
            sid = checked.segment_id
            self.last_versions[sid] = max(checked.version, self.last_versions.get(sid, 0))
            self.rejected[sid] = (checked.version, checked.reason)

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
