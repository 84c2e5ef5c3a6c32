"""schemas/*.json match the models; the record models accept what SPEC shows and no more."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from pydantic import TypeAdapter, ValidationError

from segstream.schemas.export import main, render_schemas
from segstream.schemas.membership import MembershipEvent
from segstream.schemas.segments import SegmentRecord

SCHEMAS_DIR = Path(__file__).resolve().parents[3] / "schemas"


@pytest.mark.parametrize("name", sorted(render_schemas()))
def test_schema_file_is_up_to_date(name: str) -> None:
    on_disk = (SCHEMAS_DIR / name).read_text(encoding="utf-8")
    assert on_disk == render_schemas()[name], (
        f"schemas/{name} is stale; run `python -m segstream.schemas.export`"
    )


def test_export_writes_every_file(tmp_path: Path) -> None:
    assert main([str(tmp_path)]) == 0
    written = sorted(p.name for p in tmp_path.iterdir())
    assert written == sorted(
        [
            "input-event.schema.json",
            "segment-definition.schema.json",
            "segment-record.schema.json",
            "membership-event.schema.json",
            "current-membership.schema.json",
            "destination-definition.schema.json",
            "destination-record.schema.json",
        ]
    )
    for path in tmp_path.iterdir():
        assert json.loads(path.read_text())["$schema"].endswith("2020-12/schema")


MEMBERSHIP = {
    "id": "deterministic id",
    "type": "segment.entered",
    "profile_id": "p1",
    "segment_id": "us-women",
    "segment_version": 2,
    "seq": 3,
    "at": "2026-11-28T10:00:00Z",
    "emitted_at": "2026-11-28T10:00:00.012Z",
    "cause": {"kind": "event", "event_id": "e42"},
}


@pytest.mark.parametrize(
    "cause",
    [
        {"kind": "event", "event_id": "e42"},
        {"kind": "profile_deleted", "event_id": "e43"},
        {"kind": "timer"},
        {"kind": "segment_created"},
        {"kind": "segment_deleted"},
        {"kind": "segment_updated"},
        {"kind": "segment_updated", "segment_id": "other"},
    ],
)
def test_membership_causes(cause: dict[str, Any]) -> None:
    MembershipEvent.model_validate({**MEMBERSHIP, "cause": cause})


@pytest.mark.parametrize(
    "change",
    [
        {"type": "segment.joined"},
        {"seq": 0},
        {"segment_version": True},
        {"at": "2026-11-28T12:00:00+02:00"},
        {"at": "2026-11-28T10:00:00.1234567Z"},
        {"emitted_at": "2026-11-28"},
        {"cause": {"kind": "event"}},
        {"cause": {"kind": "timer", "event_id": "e1"}},
        {"cause": {"kind": "segment_created", "segment_id": "x"}},
        {"cause": {"kind": "segment_updated", "segment_id": None}},
        {"cause": {"kind": "profile_deleted"}},
        {"extra": 1},
    ],
)
def test_invalid_membership_events(change: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        MembershipEvent.model_validate({**MEMBERSHIP, **change})


_RECORD: TypeAdapter[Any] = TypeAdapter(SegmentRecord)
DEFINITION = {
    "id": "us-women",
    "name": "Women from United States",
    "description": "optional",
    "condition": {
        "and": [
            {"trait": "gender", "op": "eq", "value": "female"},
            {"trait": "location.country", "op": "in", "value": ["US"]},
        ]
    },
}


@pytest.mark.parametrize(
    "record",
    [
        {**DEFINITION, "version": 1},
        {**DEFINITION, "description": None, "version": 7},
        {"id": "us-women", "deleted": True, "version": 3},
    ],
)
def test_segment_records(record: dict[str, Any]) -> None:
    _RECORD.validate_python(record)


@pytest.mark.parametrize(
    "record",
    [
        DEFINITION,
        {**DEFINITION, "version": 0},
        {**DEFINITION, "version": 1, "deleted": True},
        {"id": "us-women", "deleted": False, "version": 3},
        {"id": "us-women", "deleted": True},
        {"id": "us-women", "deleted": True, "version": 3, "name": "x"},
    ],
)
def test_invalid_segment_records(record: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        _RECORD.validate_python(record)
