"""Replay (SPEC §5.1, §8): the engine over files, without Kafka, under the event clock."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from segstream.engine.membership import MembershipChange
from segstream.engine.processor import SegmentEngine
from segstream.engine.registry import SegmentRegistry
from segstream.errors import InvalidRecord
from segstream.rules import condition_fingerprint, validate_definition
from segstream.schemas.events import parse_input_record
from segstream.schemas.jsontext import loads_exact
from segstream.state.due_index import DueIndex
from segstream.state.profile import ProfileState
from segstream.timefmt import DAY, parse_datetime

__all__ = ["MemoryProfileStore", "ReplayResult", "ReplaySession", "run_replay"]

DEFAULT_RETENTION = 365 * DAY


class MemoryProfileStore:
    """Profile states in a dict, in order of first appearance."""

    def __init__(self) -> None:
        self.profiles: dict[str, ProfileState] = {}

    def get(self, profile_id: str) -> ProfileState | None:
        """The state of a profile id, or None."""
        return self.profiles.get(profile_id)

    def put(self, profile_id: str, state: ProfileState) -> None:
        """Store a profile's state (the same object: nothing to copy in memory)."""
        self.profiles[profile_id] = state

    def profile_ids(self) -> Iterable[str]:
        """Every profile id seen."""
        return self.profiles.keys()


@dataclass
class ReplayResult:
    """What a replay produced: membership events and the records it rejected."""

    memberships: list[dict[str, Any]] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    rejected_segments: list[int] = field(default_factory=list)
    rejected_lines: list[int] = field(default_factory=list)


class ReplaySession:
    """Feeds segment definitions and record lines through one engine, in order."""

    def __init__(self, *, history_retention: int = DEFAULT_RETENTION) -> None:
        self.retention = history_retention
        self.registry = SegmentRegistry(history_retention)
        self.store = MemoryProfileStore()
        self.engine = SegmentEngine(self.registry, self.store, DueIndex())
        self.now: int | None = None

    # -- definitions file -------------------------------------------------------------------
    def define(self, definition: object) -> list[str]:
        """Apply one definition of SEGMENTS.json; returns its problems (applied when none)."""
        problems = validate_definition(
            definition, self.registry.definitions(), history_retention=self.retention
        )
        if problems:
            return [str(p) for p in problems]
        assert isinstance(definition, dict)
        fingerprint = condition_fingerprint(definition["condition"])
        # Before the first record there are no profiles: nothing to backfill, no clock.
        self.engine.upsert_segment(definition, fingerprint, self.now or 0)
        return []

    # -- records ---------------------------------------------------------------------------
    def feed(self, line: str | bytes) -> list[MembershipChange]:
        """Apply one record line; raises InvalidRecord when it is rejected (no effect)."""
        try:
            value = loads_exact(line)
        except ValueError as exc:
            raise InvalidRecord("invalid_json", f"not valid JSON: {exc}") from None
        kind = value.get("type") if isinstance(value, dict) else None
        if kind == "segment.upserted":
            return self._segment_upserted(value)
        if kind == "segment.deleted":
            return self._segment_deleted(value)
        event = parse_input_record(value)
        if self.engine.is_duplicate(event):
            return []
        changes = self._advance(event.at)
        changes.extend(self.engine.apply(event, self._now()))
        return changes

    def finish(self, until: int | None) -> list[MembershipChange]:
        """Fire the timers due at or before `until` (SPEC §5.1 `--until`)."""
        if until is None:
            return []
        return self._advance(until, move_clock=False)

    def _now(self) -> int:
        assert self.now is not None
        return self.now

    def _advance(self, t: int, *, move_clock: bool = True) -> list[MembershipChange]:
        changes = self.engine.fire_due(t)
        if move_clock:
            self.now = t if self.now is None else max(self.now, t)
        return changes

    def _segment_upserted(self, record: dict[str, Any]) -> list[MembershipChange]:
        at = _record_time(record)
        definition = record.get("segment")
        problems = validate_definition(
            definition, self.registry.definitions(), history_retention=self.retention
        )
        if problems:
            raise InvalidRecord("schema", "; ".join(str(p) for p in problems))
        assert isinstance(definition, dict)
        fingerprint = condition_fingerprint(definition["condition"])
        changes = self._advance(at)
        changes.extend(self.engine.upsert_segment(definition, fingerprint, self._now()))
        return changes

    def _segment_deleted(self, record: dict[str, Any]) -> list[MembershipChange]:
        at = _record_time(record)
        sid = record.get("segment_id")
        if not isinstance(sid, str) or sid not in self.registry.segments:
            raise InvalidRecord("schema", f"segment_id {sid!r} is not a defined segment")
        changes = self._advance(at)
        changes.extend(self.engine.delete_segment(sid, self._now()))
        return changes


def _record_time(record: dict[str, Any]) -> int:
    try:
        return parse_datetime(record.get("at"))  # type: ignore[arg-type]
    except ValueError as exc:
        raise InvalidRecord("schema", f"at: {exc}") from None


def replay_lines(
    session: ReplaySession,
    lines: Iterable[str | bytes],
    on_problem: Callable[[int, str], None],
) -> Iterator[MembershipChange]:
    """Feed lines (numbered from 1), yielding changes and reporting rejected lines."""
    for number, line in enumerate(lines, 1):
        try:
            changes = session.feed(line)
        except InvalidRecord as exc:
            on_problem(number, f"{exc.kind}: {exc.message}")
            continue
        except Exception as exc:
            # A defect (SPEC §3.3 `internal`): reported, and processing goes on (§8).
            on_problem(number, f"internal: {type(exc).__name__}: {exc}")
            continue
        yield from changes


def run_replay(
    segments: Sequence[object],
    lines: Iterable[str | bytes],
    *,
    until: int | None = None,
    history_retention: int = DEFAULT_RETENTION,
) -> ReplayResult:
    """Replay in memory and collect everything (tests and small files)."""
    result = ReplayResult()
    session = ReplaySession(history_retention=history_retention)
    for index, definition in enumerate(segments):
        problems = session.define(definition)
        if problems:
            result.rejected_segments.append(index)
            result.problems.extend(f"segments[{index}]: {p}" for p in problems)

    def rejected(number: int, reason: str) -> None:
        result.rejected_lines.append(number)
        result.problems.append(f"line {number}: {reason}")

    changes = list(replay_lines(session, lines, rejected))
    changes.extend(session.finish(until))
    emitted_at = time.time_ns() // 1000
    result.memberships = [c.to_record(emitted_at) for c in changes]
    return result
