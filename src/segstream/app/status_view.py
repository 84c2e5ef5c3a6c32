"""What `segstream segments list` shows: each segment, building or ready, and its members."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from segstream.app.readers import committed_reader
from segstream.app.segment_writer import SegmentState, read_topic_to_end
from segstream.app.settings import WorkerSettings
from segstream.errors import SegstreamError
from segstream.schemas.jsontext import loads_exact

__all__ = ["SegmentRow", "partition_counts", "read_status_rows", "segment_rows"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SegmentRow:
    """One defined segment as the workers report it.

    `rejected`: the segment's latest record in the segments topic has no effect (SPEC §4.3),
    for this reason; its `version` is that record's, and workers keep what came before it.
    """

    id: str
    name: str
    description: str | None
    version: int
    status: Literal["building", "ready", "rejected"]
    members: int
    rejected: str | None = None

    def as_json(self) -> dict[str, Any]:
        """The row as a JSON object (`description` null when there is none)."""
        row: dict[str, Any] = {
            "id": self.id,
            "name": self.name,
            "description": self.description,
            "version": self.version,
            "status": self.status,
            "members": self.members,
        }
        if self.rejected is not None:
            row["rejected"] = self.rejected
        return row


def segment_rows(
    definitions: Mapping[str, Mapping[str, Any]],
    statuses: Mapping[int, Mapping[str, Any]],
    partitions: int,
    rejected: Mapping[str, tuple[int, str]] | None = None,
) -> list[SegmentRow]:
    """Rows for the current `definitions`, from the latest status of each input partition.

    Ready only when every partition 0..partitions-1 reports the current version ready;
    members are summed over the partitions' entries at the current version. A segment whose
    latest record was `rejected` (version, reason) is shown as rejected, with the reason.
    """
    rejected = rejected or {}
    rows: list[SegmentRow] = []
    for segment_id in sorted(definitions.keys() | rejected.keys()):
        definition = definitions.get(segment_id, {})
        version = definition.get("version", 0)
        ready = True
        members = 0
        for partition in range(partitions):
            entry = _entry(statuses.get(partition), segment_id)
            if entry is None or entry.get("version") != version:
                # Missing, or still at an older version: its members do not count yet.
                ready = False
                continue
            if entry.get("ready") is not True:
                ready = False
            counted = entry.get("members")
            if type(counted) is int:
                members += counted
        description = definition.get("description")
        status: Literal["building", "ready", "rejected"] = "ready" if ready else "building"
        reason = None
        if segment_id in rejected:
            version, reason = rejected[segment_id]
            status = "rejected"
        rows.append(
            SegmentRow(
                id=segment_id,
                name=str(definition.get("name", "")),
                description=description if isinstance(description, str) else None,
                version=version,
                status=status,
                members=members,
                rejected=reason,
            )
        )
    return rows


def _entry(status: Mapping[str, Any] | None, segment_id: str) -> Mapping[str, Any] | None:
    segments = status.get("segments") if status is not None else None
    entry = segments.get(segment_id) if isinstance(segments, dict) else None
    return entry if isinstance(entry, dict) else None


def _read_status(key: bytes | None, value: bytes | None) -> tuple[int, dict[str, Any]] | None:
    """(input partition, status) of one status record; None for one that is not usable."""
    if value is None:
        return None
    try:
        status = loads_exact(value)
    except ValueError:
        log.warning("skipping a status record that is not JSON")
        return None
    if not isinstance(status, dict):
        return None
    partition = status.get("partition")
    if type(partition) is not int:
        try:
            partition = int(key or b"")
        except ValueError:
            return None
    return partition, status


async def partition_counts(settings: WorkerSettings, names: list[str]) -> dict[str, int]:
    """How many partitions each topic has; SegstreamError names the first one missing."""
    from aiokafka.admin import AIOKafkaAdminClient

    # A consumer's own metadata only learns of topics it is assigned, and asking it about an
    # unknown topic retries for the whole request timeout; the admin client just answers.
    admin = AIOKafkaAdminClient(**settings.client_kwargs())
    await admin.start()
    try:
        described = await admin.describe_topics(names)
    finally:
        await admin.close()
    counts = {
        topic["topic"]: len(topic["partitions"])
        for topic in described
        if topic["error_code"] == 0 and topic["partitions"]
    }
    for name in names:
        if name not in counts:
            raise SegstreamError(f"topic {name} does not exist: create the topics first")
    return counts


async def read_status_rows(settings: WorkerSettings) -> list[SegmentRow]:
    """Read the segments and status topics to their ends and build the rows."""
    from aiokafka import TopicPartition

    topics = settings.topics
    counts = await partition_counts(settings, [topics.segments, topics.status, topics.profiles])
    consumer = committed_reader(settings)
    await consumer.start()
    try:
        segments_tp = TopicPartition(topics.segments, 0)
        status_tp = TopicPartition(topics.status, 0)
        consumer.assign([segments_tp, status_tp])
        await consumer.seek_to_beginning(segments_tp, status_tp)
        records = await read_topic_to_end(consumer, [segments_tp, status_tp])
    finally:
        await consumer.stop()
    state = SegmentState(history_retention=settings.history_retention)
    statuses: dict[int, dict[str, Any]] = {}
    for record in records:
        if record.topic == topics.segments:
            state.read(record.value, record.key)
            continue
        parsed = _read_status(record.key, record.value)
        if parsed is not None:
            statuses[parsed[0]] = parsed[1]
    # The inputs' real partition count, not the setting: those are the partitions workers own.
    return segment_rows(
        state.definitions, statuses, counts[topics.profiles], rejected=state.rejected
    )
