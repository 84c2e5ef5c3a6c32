"""Segment writes (SPEC §4.3): the one transactional writer of the segments topic."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from segstream.app.settings import WorkerSettings
from segstream.app.single_writer import SingleWriter, WriterGaveUp, read_topic_to_end
from segstream.errors import Problem, SegstreamError
from segstream.rules import condition_fingerprint, validate_definition
from segstream.rules.stored import SkippedRecord, check_segment_record
from segstream.schemas.jsontext import dumps
from segstream.schemas.vocabulary import SEGMENT_ID
from segstream.timefmt import DAY

__all__ = [
    "Applied",
    "Outcome",
    "SegmentState",
    "SegmentWriter",
    "UnknownSegment",
    "WriterGaveUp",
    "read_topic_to_end",
    "segment_record_bytes",
]

log = logging.getLogger(__name__)

Outcome = Literal["created", "changed", "renamed", "unchanged", "rejected"]


class UnknownSegment(SegstreamError):
    """A deletion named a segment id that is not currently defined."""

    def __init__(self, segment_id: str) -> None:
        self.segment_id = segment_id
        super().__init__(f"there is no segment '{segment_id}' to delete")


@dataclass(frozen=True)
class Applied:
    """What `SegmentWriter.apply` did with one definition (`label`: its id, or `[index]`)."""

    label: str
    outcome: Outcome
    version: int | None = None
    problems: tuple[Problem, ...] = ()


@dataclass
class SegmentState:
    """The segments topic as read so far: current records by id and each id's last version.

    Each record is checked on its own as workers check it (SPEC §4.3); one with no effect is
    skipped, and when it was an id's latest version it is kept in `rejected` with the reason
    (`segments list` and the API show it), while the definition before it stays in force.
    """

    definitions: dict[str, dict[str, Any]] = field(default_factory=dict)
    last_versions: dict[str, int] = field(default_factory=dict)
    rejected: dict[str, tuple[int, str]] = field(default_factory=dict)
    history_retention: int = 365 * DAY

    def copy(self) -> SegmentState:
        """A copy that planning may change without touching what was read."""
        return SegmentState(
            dict(self.definitions),
            dict(self.last_versions),
            dict(self.rejected),
            self.history_retention,
        )

    def read(self, value: bytes | None, key: bytes | object | None = ...) -> None:
        """Take one record of the segments topic; records with no effect are skipped."""
        checked = check_segment_record(
            value,
            key=key,
            last_versions=self.last_versions,
            history_retention=self.history_retention,
            defined=self.definitions,
        )
        if isinstance(checked, SkippedRecord):
            log.warning(
                "skipping a segments-topic record (%s): %s",
                checked.segment_id or "no usable id",
                checked.reason,
            )
            if checked.segment_id is not None and checked.version is not None:
                sid = checked.segment_id
                self.last_versions[sid] = max(checked.version, self.last_versions.get(sid, 0))
                self.rejected[sid] = (checked.version, checked.reason)
            return
        segment_id = checked.segment_id
        self.rejected.pop(segment_id, None)
        self.last_versions[segment_id] = checked.version
        if checked.deleted:
            self.definitions.pop(segment_id, None)
        else:
            self.definitions[segment_id] = checked.record

    def plan_upsert(
        self, index: int, raw: object, history_retention: int
    ) -> tuple[Applied, dict[str, Any] | None]:
        """Validate `raw` against the current definitions and version it; updates this state."""
        label = _label(index, raw)
        problems = validate_definition(raw, self.definitions, history_retention=history_retention)
        if problems:
            return Applied(label, "rejected", problems=tuple(problems)), None
        assert isinstance(raw, dict)
        segment_id: str = raw["id"]
        current = self.definitions.get(segment_id)
        record: dict[str, Any] = {"id": segment_id, "name": raw["name"]}
        # A null description is the same as none (SPEC §2), so it is not written.
        if raw.get("description") is not None:
            record["description"] = raw["description"]
        record["condition"] = raw["condition"]
        outcome: Outcome
        if current is None:
            outcome = "created"
            version = self.last_versions.get(segment_id, 0) + 1
        elif condition_fingerprint(current.get("condition")) != condition_fingerprint(
            raw["condition"]
        ):
            outcome = "changed"
            version = self.last_versions.get(segment_id, 0) + 1
        else:
            version = current["version"]
            same_text = current.get("name") == record["name"] and current.get(
                "description"
            ) == record.get("description")
            if same_text:
                return Applied(segment_id, "unchanged", version), None
            outcome = "renamed"
        record["version"] = version
        self.definitions[segment_id] = record
        self.last_versions[segment_id] = version
        return Applied(segment_id, outcome, version), record

    def plan_delete(self, segment_id: str) -> dict[str, Any]:
        """The deletion marker for `segment_id` (keeps its last version); updates this state."""
        if segment_id not in self.definitions:
            raise UnknownSegment(segment_id)
        del self.definitions[segment_id]
        return {"id": segment_id, "deleted": True, "version": self.last_versions[segment_id]}


def _label(index: int, raw: object) -> str:
    """The definition's id, or its index in the request when it has no usable id."""
    if isinstance(raw, dict):
        segment_id = raw.get("id")
        if isinstance(segment_id, str) and SEGMENT_ID.fullmatch(segment_id):
            return segment_id
    return f"[{index}]"


def segment_record_bytes(record: dict[str, Any]) -> bytes:
    """The record as JSON; numbers keep their form, so `1` and `1.0` stay different."""
    return dumps(record)


class SegmentWriter(SingleWriter[SegmentState]):
    """The only way definitions enter the system: validated, versioned, written in transactions.

    One fixed transactional id per application, so that starting a writer fences any other.
    """

    what = "segment"

    def __init__(self, settings: WorkerSettings) -> None:
        super().__init__(
            settings,
            settings.topics.segments,
            f"{settings.app_id}-segments-writer",
            SegmentState(history_retention=settings.history_retention),
            segment_record_bytes,
        )

    async def read_definitions(self) -> tuple[dict[str, dict[str, Any]], dict[str, int]]:
        """Current definitions by id (records with their version) and last version by id."""
        state = await self._catch_up()
        return dict(state.definitions), dict(state.last_versions)

    async def apply(self, definitions: Sequence[object]) -> list[Applied]:
        """Validate and write each definition, in order; one transaction for the valid ones."""

        async def plan(state: SegmentState) -> tuple[list[Applied], list[dict[str, Any]]]:
            results: list[Applied] = []
            records: list[dict[str, Any]] = []
            for index, raw in enumerate(definitions):
                applied, record = state.plan_upsert(index, raw, self.settings.history_retention)
                results.append(applied)
                if record is not None:
                    records.append(record)
            return results, records

        return await self._write(plan)

    async def delete(self, segment_id: str) -> int:
        """Write the deletion marker of a defined segment; returns the version it keeps."""

        async def plan(state: SegmentState) -> tuple[int, list[dict[str, Any]]]:
            marker = state.plan_delete(segment_id)
            return marker["version"], [marker]

        return await self._write(plan)
