"""Insight answers from one owned partition: explain, timeline, size history, overlap parts."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

from segstream.api.errors import invalid
from segstream.api.local import WorkerView, owned_store
from segstream.app.store import PartitionStore, profile_key
from segstream.app.task import PartitionTask
from segstream.engine.explain import explain_condition, next_change_by_time
from segstream.rules import validate_definition
from segstream.rules.analyze import analyze_condition, transitively_time_dependent
from segstream.rules.compile import EvaluationContext
from segstream.rules.references import draft_definitions
from segstream.state.insight import read_size_history, read_timeline
from segstream.state.layout import head_of, load_profile
from segstream.state.profile import ProfileState
from segstream.timefmt import format_instant

__all__ = [
    "explain_partition",
    "overlap_partition",
    "size_history_partition",
    "timeline_partition",
]

#: Member ids read from the index between two yields to the event loop (overlap).
_CHUNK = 1000


def _iso(us: int | None) -> str | None:
    return format_instant(us) if us is not None else None


def _load(store: PartitionStore, profile_id: str) -> tuple[ProfileState, int | None] | None:
    raw = store.get(profile_key(profile_id))
    if raw is None:
        return None
    state = load_profile(profile_id, raw, store.scan, for_update=False)
    if not state.exists:
        return None
    return state, head_of(raw)[2]


async def explain_partition(
    worker: WorkerView,
    partition: int,
    profile_id: str,
    now: int,
    segment_id: str | None = None,
    draft: dict[str, Any] | None = None,
) -> dict[str, Any] | None:
    """The explanation of one segment (`segment_id`), of a draft definition, or — with
    neither — of every segment the profile is in or that time alone would bring it into.
    None when the profile does not exist; a KeyError for an unknown segment."""
    owner, store = owned_store(worker, partition)
    loaded = _load(store, profile_id)
    if loaded is None:
        return None
    state, next_due = loaded
    definitions: Mapping[str, Any] = owner.registry.definitions()
    body: dict[str, Any] = {
        "profile_id": profile_id,
        "partition": partition,
        "evaluated_at": format_instant(now),
    }
    if draft is not None:
        problems = validate_definition(
            draft,
            draft_definitions(draft, definitions),
            history_retention=owner.registry.retention,
        )
        if problems:
            raise invalid("invalid_definition", problems)
        with_draft = {**definitions, draft["id"]: draft}
        body["segment"] = _explain_one(
            owner, profile_id, state, next_due, draft, with_draft, now, True
        )
        return body
    if segment_id is not None:
        if segment_id not in definitions:
            raise KeyError(segment_id)
        body["segment"] = _explain_one(
            owner, profile_id, state, next_due, definitions[segment_id], definitions, now, False
        )
        return body
    found = []
    for sid in sorted(definitions):
        one = _explain_one(
            owner, profile_id, state, next_due, definitions[sid], definitions, now, False
        )
        if one["member"] or one["truth"] or one["enters_at"] is not None:
            found.append(one)
    body["segments"] = found
    return body


def _explain_one(
    owner: PartitionTask,
    profile_id: str,
    state: ProfileState,
    next_due: int | None,
    definition: Mapping[str, Any],
    definitions: Mapping[str, Any],
    now: int,
    draft: bool,
) -> dict[str, Any]:
    sid: str = definition["id"]
    retention = owner.registry.retention
    tree = explain_condition(definition["condition"], EvaluationContext(state, now, retention))
    truth = bool(tree["truth"])
    installed = owner.registry.segments.get(sid)
    entered = state.members.get(sid) if installed is not None else None
    member = entered is not None
    alone = next_change_by_time(definitions, sid, state, now, retention)
    facts = {s: analyze_condition(d["condition"]) for s, d in definitions.items()}
    agreement = "current"
    due_since = None
    if draft:
        agreement = "draft"
    elif truth != member:
        job = owner.jobs.pending(sid)
        if job is not None and not job.covers(profile_id):
            agreement = "backfill_pending"
        elif next_due is not None and next_due <= now:
            agreement = "timer_due"
            due_since = next_due
        else:
            agreement = "pending"
    change_at = _iso(alone.at)
    leaves_at = change_at if alone.entered is False else None
    enters_at = change_at if alone.entered is True else None
    if agreement == "timer_due":
        # The change is decided at the due instant (its `at`), only not emitted yet.
        leaves_at = _iso(due_since) if member else leaves_at
        enters_at = _iso(due_since) if not member else enters_at
    return {
        "segment_id": sid,
        "segment_name": definition.get("name"),
        "segment_version": installed.version if installed is not None else None,
        "draft": draft,
        "truth": truth,
        "member": member,
        "entered_at": _iso(entered),
        "agreement": agreement,
        "due_since": _iso(due_since),
        "leaves_at": leaves_at,
        "enters_at": enters_at,
        "time_dependent": transitively_time_dependent(facts[sid], facts),
        "time": alone.as_json(),
        "condition": tree,
    }


def timeline_partition(
    worker: WorkerView, partition: int, profile_id: str
) -> list[dict[str, Any]] | None:
    """A profile's kept transitions, newest first; None when the id was never seen."""
    _owner, store = owned_store(worker, partition)
    if store.get(profile_key(profile_id)) is None:
        return None
    entries = read_timeline(profile_id, store.scan)
    for entry in entries:
        entry["at"] = format_instant(entry["at"])
    return entries


def size_history_partition(
    worker: WorkerView, partition: int, segment_id: str, resolution: str, since: int
) -> dict[str, Any]:
    """One partition's size buckets of a segment, and its committed member count now."""
    owner, store = owned_store(worker, partition)
    buckets = read_size_history(segment_id, resolution, since, store.scan)
    return {
        "members": owner.members.get(segment_id, 0),
        "buckets": [[b.start, b.entered, b.left, b.members] for b in buckets],
    }


async def overlap_partition(
    worker: WorkerView, partition: int, segments: list[str]
) -> dict[str, Any]:
    """Member counts of each segment and of each pair, from one partition's member index."""
    _owner, store = owned_store(worker, partition)
    sets: list[set[str]] = []
    for sid in segments:
        members: set[str] = set()
        cursor: str | None = None
        while batch := store.members_after(sid, cursor, _CHUNK):
            members.update(batch)
            cursor = batch[-1]
            await asyncio.sleep(0)
        sets.append(members)
    pairs = [
        [i, j, len(sets[i] & sets[j])] for i in range(len(sets)) for j in range(i + 1, len(sets))
    ]
    return {"sizes": [len(s) for s in sets], "pairs": pairs}
