"""What a partition reports on the status topic: per segment its version, readiness (no
backfill pending) and member count. Shared by the native and the Faust runtime."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from segstream.engine.backfill import BackfillQueue
from segstream.engine.registry import SegmentRegistry

__all__ = ["partition_status"]


def partition_status(
    partition: int, registry: SegmentRegistry, jobs: BackfillQueue, members: Mapping[str, int]
) -> dict[str, Any]:
    """The status record's value for one partition."""
    segments = {}
    for sid, segment in registry.segments.items():
        job = jobs.pending(sid)
        segments[sid] = {
            "version": segment.version,
            "members": members.get(sid, 0),
            "ready": job is None,
            "backfill_done": job.done if job is not None else None,
            "backfill_total": job.total if job is not None else None,
        }
    return {"partition": partition, "segments": segments}
