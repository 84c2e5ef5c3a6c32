"""Answers from the partitions this worker owns: preview, member pages and profiles."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Any, Protocol

from segstream.api.errors import ApiError, invalid
from segstream.app.settings import WorkerSettings
from segstream.app.store import PartitionStore, profile_key
from segstream.app.task import PartitionTask
from segstream.engine.registry import CompiledSegment, SegmentRegistry
from segstream.rules import condition_fingerprint, validate_definition
from segstream.rules.compile import EvaluationContext
from segstream.rules.references import draft_definitions
from segstream.state.layout import load_profile
from segstream.state.profile import ProfileState
from segstream.timefmt import format_instant

__all__ = [
    "PreviewPart",
    "WorkerView",
    "members_after",
    "owned_store",
    "preview_partition",
    "profile_view",
]

#: Most profiles evaluated between two yields to the event loop ...
_CHUNK = 500
#: ... and most seconds: live records and probes wait at most about this long for a preview.
_SLICE_S = 0.02


class WorkerView(Protocol):
    """What the API needs of the worker process."""

    settings: WorkerSettings
    partitions: dict[int, PartitionTask]


def owned_store(worker: WorkerView, partition: int) -> tuple[PartitionTask, PartitionStore]:
    """The partition's worker and store when this process owns it, ready; else a 503."""
    owner = worker.partitions.get(partition)
    if owner is None or not owner.ready or owner.store is None:
        raise ApiError(
            503,
            "partition_unavailable",
            f"partition {partition} is not served here now (moving between workers?); retry",
            headers={"Retry-After": "1"},
        )
    return owner, owner.store


def _still_owned(worker: WorkerView, partition: int, store: PartitionStore) -> None:
    if owned_store(worker, partition)[1] is not store:
        raise ApiError(
            503,
            "partition_unavailable",
            f"partition {partition} moved during the request; retry",
            headers={"Retry-After": "1"},
        )


@dataclass
class PreviewPart:
    """A draft evaluated over some partitions."""

    profiles: int = 0
    matching: int = 0
    enter: int = 0
    leave: int = 0
    sample: list[str] = field(default_factory=list)

    def add(self, other: PreviewPart, sample: int) -> None:
        """Fold another part into this one (sample kept to `sample` ids)."""
        self.profiles += other.profiles
        self.matching += other.matching
        self.enter += other.enter
        self.leave += other.leave
        self.sample.extend(other.sample[: max(0, sample - len(self.sample))])

    def as_json(self) -> dict[str, Any]:
        """The part as JSON."""
        return {
            "profiles": self.profiles,
            "matching": self.matching,
            "enter": self.enter,
            "leave": self.leave,
            "sample": self.sample,
        }


def _compile_draft(owner: PartitionTask, draft: dict[str, Any]) -> CompiledSegment:
    """The draft checked against the partition's current definitions (a cycle through them
    is a 422) and compiled alone in a throwaway registry: a `segment` reference reads the
    profile's memberships, so the draft needs no other segment installed, and a preview
    costs the draft's size, not the number of segments."""
    problems = validate_definition(
        draft,
        draft_definitions(draft, owner.registry.definitions()),
        history_retention=owner.registry.retention,
    )
    if problems:
        raise invalid("invalid_definition", problems)
    registry = SegmentRegistry(owner.registry.retention)
    sid: str = draft["id"]
    version = owner.registry.versions.get(sid, 0) + 1
    return registry.install(draft, version, condition_fingerprint(draft["condition"]))


async def preview_partition(
    worker: WorkerView, partition: int, draft: dict[str, Any], now: int, sample: int
) -> PreviewPart:
    """Evaluate a validated draft for every profile of one owned partition at `now`."""
    owner, store = owned_store(worker, partition)
    compiled = _compile_draft(owner, draft)
    sid = compiled.id
    retention = owner.registry.retention
    part = PreviewPart()
    cursor: str | None = None
    while ids := store.profile_ids_after(cursor, _CHUNK):
        deadline = time.monotonic() + _SLICE_S
        for pid in ids:
            cursor = pid
            state = _state(store, pid)
            if state is not None:
                part.profiles += 1
                matches = bool(compiled.run(EvaluationContext(state, now, retention)))
                member = sid in state.members
                if matches:
                    part.matching += 1
                    if len(part.sample) < sample:
                        part.sample.append(pid)
                part.enter += matches and not member
                part.leave += member and not matches
            if time.monotonic() > deadline:
                break
        await asyncio.sleep(0)
        _still_owned(worker, partition, store)
    return part


def _state(store: PartitionStore, profile_id: str) -> ProfileState | None:
    raw = store.get(profile_key(profile_id))
    if raw is None:
        return None
    state = load_profile(profile_id, raw, store.scan, for_update=False)
    return state if state.exists else None


def members_after(
    worker: WorkerView, partition: int, segment_id: str, after: str | None, limit: int
) -> list[str]:
    """Up to `limit` members of a segment in one owned partition, after `after`."""
    return owned_store(worker, partition)[1].members_after(segment_id, after, limit)


def profile_view(
    worker: WorkerView, partition: int, profile_id: str, activity: int
) -> dict[str, Any] | None:
    """A profile's traits, recent activity and current segments; None when it does not exist."""
    owner, store = owned_store(worker, partition)
    state = _state(store, profile_id)
    if state is None:
        return None
    events = sorted(
        (e for history in state.events.values() for e in history),
        key=lambda e: (e.at, e.order),
        reverse=True,
    )
    segments = [
        {"id": sid, "entered_at": format_instant(at)}
        for sid, at in sorted(state.members.items())
        if sid in owner.registry.segments
    ]
    return {
        "id": profile_id,
        "partition": partition,
        "traits": state.traits,
        "activity_total": len(events),
        "activity": [
            {"id": e.id, "type": e.type, "at": format_instant(e.at), "properties": e.properties}
            for e in events[:activity]
        ],
        "segments": segments,
    }
