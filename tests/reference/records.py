"""Builders of EVENTS.jsonl lines and a comparable view of membership events, for tests."""

from __future__ import annotations

import json
from typing import Any


def line(record: object) -> str:
    """One JSON line (compact, as a producer would write it)."""
    return json.dumps(record, separators=(",", ":"))


def updated(event_id: str, profile_id: str, at: str, traits: dict[str, Any]) -> str:
    """A `profile.updated` line."""
    return line(
        {
            "id": event_id,
            "type": "profile.updated",
            "profile_id": profile_id,
            "at": at,
            "traits": traits,
        }
    )


def deleted(event_id: str, profile_id: str, at: str) -> str:
    """A `profile.deleted` line."""
    return line({"id": event_id, "type": "profile.deleted", "profile_id": profile_id, "at": at})


def activity(
    event_id: str,
    profile_id: str,
    at: str,
    kind: str,
    properties: dict[str, Any] | None = None,
    device: dict[str, Any] | None = None,
) -> str:
    """An activity event line, with `context.device` when given."""
    record: dict[str, Any] = {"id": event_id, "type": kind, "profile_id": profile_id, "at": at}
    if properties is not None:
        record["properties"] = properties
    if device is not None:
        record["context"] = {"device": device}
    return line(record)


def definition(segment_id: str, condition: dict[str, Any], name: str = "") -> dict[str, Any]:
    """A segment definition object."""
    return {"id": segment_id, "name": name or segment_id, "condition": condition}


def upserted(at: str, segment: dict[str, Any]) -> str:
    """A `segment.upserted` line."""
    return line({"type": "segment.upserted", "at": at, "segment": segment})


def segment_deleted(at: str, segment_id: str) -> str:
    """A `segment.deleted` line."""
    return line({"type": "segment.deleted", "at": at, "segment_id": segment_id})


def transition(event: dict[str, Any]) -> tuple[Any, ...]:
    """The comparable part of a membership event (id and emitted_at are left out)."""
    cause = event["cause"]
    return (
        event["profile_id"],
        event["segment_id"],
        event["seq"],
        event["type"].removeprefix("segment."),
        event["at"],
        cause["kind"],
        cause.get("event_id"),
        cause.get("segment_id"),
        event["segment_version"],
    )


def transitions(memberships: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    """Comparable transitions sorted by (profile, segment, seq)."""
    return sorted(transition(event) for event in memberships)
