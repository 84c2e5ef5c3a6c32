"""The check of one segments-topic record on its own (SPEC §4.3), for workers and readers.

A record has an effect only if it is JSON, not null, keyed by its `id`, has a positive integer
`version` not lower than the last one seen for that id, and is a deletion marker or a
definition that passes §4's syntax and limits. References are not checked against the topic's
other records (compaction may reorder what is left) except for cycles: a definition that
would close one among the definitions in force (`defined`, when the caller keeps them) is
skipped, and the registry refuses to install one anyway.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from segstream.rules.references import closing_cycle
from segstream.rules.validate import validate_definition
from segstream.schemas.jsontext import loads_exact
from segstream.schemas.vocabulary import SEGMENT_ID

__all__ = ["SegmentRecord", "SkippedRecord", "check_segment_record", "definition_of"]

_DEFINITION_KEYS = ("id", "name", "description", "condition")


@dataclass(frozen=True, slots=True)
class SegmentRecord:
    """A usable record: a definition (`record` holds it with its version) or a deletion."""

    segment_id: str
    version: int
    deleted: bool
    record: dict[str, Any]


@dataclass(frozen=True, slots=True)
class SkippedRecord:
    """A record with no effect, and why; `segment_id`/`version` when it had usable ones."""

    reason: str
    segment_id: str | None = None
    version: int | None = None


def definition_of(record: Mapping[str, Any]) -> dict[str, Any]:
    """The definition part of a segments-topic record (its version left out)."""
    return {k: record[k] for k in _DEFINITION_KEYS if k in record}


def check_segment_record(
    value: bytes | dict[str, Any] | None,
    *,
    key: bytes | object | None = ...,
    last_versions: Mapping[str, int],
    history_retention: int,
    defined: Mapping[str, Mapping[str, Any]] | None = None,
) -> SegmentRecord | SkippedRecord:
    """Check one record (`key=...`: no key to compare, as in a control record)."""
    if value is None:
        return SkippedRecord("a null value (segments are deleted by a marker, not a tombstone)")
    if isinstance(value, dict):
        record: Any = value
    else:
        try:
            # Lenient: a value beyond the limits is reported at its path, below.
            record = loads_exact(value, lenient=True)
        except ValueError as exc:
            return SkippedRecord(f"not JSON: {exc}")
    if type(record) is not dict:
        return SkippedRecord("not a JSON object")
    segment_id = record.get("id")
    if type(segment_id) is not str or SEGMENT_ID.fullmatch(segment_id) is None:
        return SkippedRecord("'id' is not a segment id")
    if key is not ... and key != segment_id.encode():
        return SkippedRecord("the record's key is not its id", segment_id)
    version = record.get("version")
    if type(version) is not int or version < 1:
        return SkippedRecord("'version' is not a positive integer", segment_id)
    last = last_versions.get(segment_id, 0)
    if version < last:
        return SkippedRecord(f"version {version} is lower than {last}, seen before", segment_id)
    if record.get("deleted") is True:
        extra = sorted(set(record) - {"id", "deleted", "version"})
        if extra:
            return SkippedRecord(
                f"a deletion marker has only id, deleted and version, not {', '.join(extra)}",
                segment_id,
                version,
            )
        return SegmentRecord(segment_id, version, True, record)
    extra = sorted(set(record) - {*_DEFINITION_KEYS, "version"})
    if extra:
        return SkippedRecord(f"unknown fields {', '.join(extra)}", segment_id, version)
    problems = validate_definition(
        definition_of(record), {}, history_retention=history_retention, check_references=False
    )
    if problems:
        return SkippedRecord("; ".join(str(p) for p in problems), segment_id, version)
    cycle = closing_cycle(segment_id, record["condition"], defined or {})
    if cycle is not None:
        return SkippedRecord(f"condition: {cycle}", segment_id, version)
    return SegmentRecord(segment_id, version, False, record)
