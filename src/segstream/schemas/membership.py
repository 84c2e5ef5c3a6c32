"""Pydantic model of membership events (SPEC §6): the source of truth for their JSON Schema."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, StrictInt, StrictStr, StringConstraints
from pydantic.json_schema import SkipJsonSchema

from segstream.schemas.types import DateTimeText, SegmentIdText, StrictModel

# Output times: UTC with `Z` and 0-6 fractional digits (SPEC §6).
UtcTimeText = Annotated[
    DateTimeText,
    StringConstraints(
        pattern=r"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,6})?Z$"
    ),
]

__all__ = [
    "Cause",
    "CurrentMembership",
    "EventCause",
    "MembershipEvent",
    "PlainCause",
    "SegmentUpdatedCause",
]


class EventCause(StrictModel):
    """Caused by an input record: an event, or a profile's deletion."""

    kind: Literal["event", "profile_deleted"]
    event_id: Annotated[StrictStr, StringConstraints(min_length=1, max_length=128)]


class SegmentUpdatedCause(StrictModel):
    """A definition changed; `segment_id` names it on a dependent segment's transitions."""

    kind: Literal["segment_updated"]
    segment_id: SegmentIdText | SkipJsonSchema[None] = None


class PlainCause(StrictModel):
    """A timer, or the segment's own creation or deletion."""

    kind: Literal["timer", "segment_created", "segment_deleted"]


Cause = Annotated[EventCause | SegmentUpdatedCause | PlainCause, Field(discriminator="kind")]


class MembershipEvent(StrictModel):
    """`segment.entered` / `segment.left` for one (profile, segment) pair."""

    id: Annotated[StrictStr, StringConstraints(min_length=1)]
    type: Literal["segment.entered", "segment.left"]
    profile_id: Annotated[StrictStr, StringConstraints(min_length=1, max_length=256)]
    segment_id: SegmentIdText
    segment_version: Annotated[StrictInt, Field(ge=1)]
    seq: Annotated[StrictInt, Field(ge=1)]
    at: UtcTimeText
    emitted_at: UtcTimeText
    cause: Cause


class CurrentMembership(StrictModel):
    """A value of the current-membership topic (SPEC §6.1), keyed `segment_id/profile_id`:
    the pair is a member; a tombstone (null value) says it left. `seq` and `entered_at` are
    those of the `segment.entered` that started the membership."""

    segment_id: SegmentIdText
    profile_id: Annotated[StrictStr, StringConstraints(min_length=1, max_length=256)]
    segment_version: Annotated[StrictInt, Field(ge=1)]
    entered_at: UtcTimeText
    seq: Annotated[StrictInt, Field(ge=1)]
