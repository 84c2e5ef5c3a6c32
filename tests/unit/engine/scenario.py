"""Builders for engine scenarios: records as JSON lines and transitions as tuples."""

from __future__ import annotations

from typing import Any

import orjson

from segstream.engine.replay import run_replay
from segstream.timefmt import DAY, parse_instant

Transition = tuple[str, str, str, str, str]  # type, profile, segment, at, cause summary


def activity(eid: str, kind: str, pid: str, at: str, **props: Any) -> dict[str, Any]:
    """An activity event record."""
    return {"id": eid, "type": kind, "profile_id": pid, "at": at, "properties": props}


def traits(eid: str, pid: str, at: str, **values: Any) -> dict[str, Any]:
    """A profile.updated record."""
    return {"id": eid, "type": "profile.updated", "profile_id": pid, "at": at, "traits": values}


def deleted(eid: str, pid: str, at: str) -> dict[str, Any]:
    """A profile.deleted record."""
    return {"id": eid, "type": "profile.deleted", "profile_id": pid, "at": at}


def seg(sid: str, condition: dict[str, Any], name: str | None = None) -> dict[str, Any]:
    """A segment definition."""
    return {"id": sid, "name": name or sid, "condition": condition}


def upsert(at: str, definition: dict[str, Any]) -> dict[str, Any]:
    """A segment.upserted replay record."""
    return {"type": "segment.upserted", "at": at, "segment": definition}


def remove(at: str, sid: str) -> dict[str, Any]:
    """A segment.deleted replay record."""
    return {"type": "segment.deleted", "at": at, "segment_id": sid}


def summary(m: dict[str, Any]) -> Transition:
    """A compact, comparable form of a membership event."""
    cause = m["cause"]
    detail = cause.get("event_id") or cause.get("segment_id") or ""
    kind = "+" if m["type"] == "segment.entered" else "-"
    return (
        kind,
        m["profile_id"],
        f"{m['segment_id']}@{m['segment_version']}#{m['seq']}",
        m["at"],
        f"{cause['kind']}:{detail}" if detail else cause["kind"],
    )


def run(
    segments: list[dict[str, Any]],
    records: list[Any],
    *,
    until: str | None = None,
    retention_days: int = 365,
) -> list[Transition]:
    """Replay and return the transitions in emission order."""
    lines = [r if isinstance(r, str) else orjson.dumps(r).decode() for r in records]
    result = run_replay(
        segments,
        lines,
        until=parse_instant(until) if until else None,
        history_retention=retention_days * DAY,
    )
    return [summary(m) for m in result.memberships]
