"""Records of the worker's own topics and store that may be junk: checked, skipped, counted.

Anything can be written to the control topic, and a partition's store may hold a definition
an older version accepted that SPEC v1.1 rejects (a `300000000d` window). Either is skipped
with a log line and a count (SPEC §4.3), never allowed to fail the partition's batch.
"""

from __future__ import annotations

import logging
from typing import Any

from segstream.app.metrics import WorkerMetrics
from segstream.rules.stored import SegmentRecord, SkippedRecord, check_segment_record
from segstream.schemas.jsontext import loads_exact

__all__ = ["control_segment_record", "stored_segment_record"]

log = logging.getLogger("segstream.partition")


def control_segment_record(
    partition: int, message: Any, history_retention: int, metrics: WorkerMetrics
) -> dict[str, Any] | None:
    """The segment record a control record carries, or None (skipped: logged and counted)."""
    try:
        body = loads_exact(message.value) if message.value is not None else None
    except ValueError:
        body = None
    checked: SegmentRecord | SkippedRecord
    if type(body) is not dict or body.get("kind") != "segment":
        checked = SkippedRecord("not a segment control record")
    else:
        checked = check_segment_record(
            body.get("record"), last_versions={}, history_retention=history_retention
        )
    if isinstance(checked, SkippedRecord):
        log.warning(
            "partition %d: control record at offset %s skipped: %s",
            partition,
            getattr(message, "offset", "?"),
            checked.reason,
        )
        metrics.internal_record_skipped("control")
        return None
    return checked.record


def stored_segment_record(
    partition: int, value: bytes, history_retention: int, metrics: WorkerMetrics
) -> dict[str, Any] | None:
    """A definition of the partition's store, or None when SPEC v1.1 rejects it (logged)."""
    checked = check_segment_record(value, last_versions={}, history_retention=history_retention)
    if isinstance(checked, SkippedRecord) or checked.deleted:
        reason = checked.reason if isinstance(checked, SkippedRecord) else "a deletion marker"
        log.warning(
            "partition %d: stored segment %s v%s not installed: %s",
            partition,
            checked.segment_id,
            checked.version,
            reason,
        )
        metrics.internal_record_skipped("segments")
        return None
    return checked.record
