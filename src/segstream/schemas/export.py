"""Writes the JSON Schema files of schemas/ from the pydantic models.

Run `python -m segstream.schemas.export [DIR]` (default: ./schemas) after changing a model;
a unit test fails while the files on disk differ from what this generates.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, Final

from pydantic import TypeAdapter

from segstream.schemas.destinations import DestinationDefinition, DestinationRecord
from segstream.schemas.input_models import InputEventModel
from segstream.schemas.membership import CurrentMembership, MembershipEvent
from segstream.schemas.segments import SegmentDefinition, SegmentRecord

__all__ = ["SCHEMA_FILES", "main", "render_schemas"]

_BASE_URI: Final = "https://segstream.dev/schemas/"

SCHEMA_FILES: Final[dict[str, tuple[str, Callable[[], dict[str, Any]]]]] = {
    "input-event.schema.json": (
        "An input event (SPEC §3): profile.updated, profile.deleted or an activity",
        lambda: TypeAdapter(InputEventModel).json_schema(),
    ),
    "segment-definition.schema.json": (
        "A segment definition as submitted (SPEC §4)",
        SegmentDefinition.model_json_schema,
    ),
    "segment-record.schema.json": (
        "A record of the segments topic (SPEC §4.3): a versioned definition or a deletion marker",
        lambda: TypeAdapter(SegmentRecord).json_schema(),
    ),
    "membership-event.schema.json": (
        "A membership event (SPEC §6): segment.entered or segment.left",
        MembershipEvent.model_json_schema,
    ),
    "current-membership.schema.json": (
        "A value of the current-membership topic (SPEC §6.1); a tombstone when the pair left",
        CurrentMembership.model_json_schema,
    ),
    "destination-definition.schema.json": (
        "A webhook destination as submitted (docs/destinations.md)",
        DestinationDefinition.model_json_schema,
    ),
    "destination-record.schema.json": (
        "A record of the destinations topic: a versioned destination or a deletion marker",
        lambda: TypeAdapter(DestinationRecord).json_schema(),
    ),
}


def render_schemas() -> dict[str, str]:
    """File name -> file text of every schema file, as the models define them now."""
    rendered = {}
    for name, (title, build) in SCHEMA_FILES.items():
        schema = {
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "$id": _BASE_URI + name,
            "title": title,
            **{key: value for key, value in build().items() if key != "title"},
        }
        rendered[name] = json.dumps(schema, indent=2, ensure_ascii=False, sort_keys=False) + "\n"
    return rendered


def main(argv: list[str] | None = None) -> int:
    """Write every schema file into the directory given (default ./schemas)."""
    args = sys.argv[1:] if argv is None else argv
    target = Path(args[0] if args else "schemas")
    target.mkdir(parents=True, exist_ok=True)
    for name, text in render_schemas().items():
        (target / name).write_text(text, encoding="utf-8")
        print(f"wrote {target / name}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
