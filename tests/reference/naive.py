"""A naive, slow reference of `segstream replay` (SPEC §3-§8), written from the SPEC alone.

After every record and at every instant where a condition could change with time alone (a
superset of the real due instants), every segment is re-evaluated for every profile and the
differences are emitted. Nothing from segstream.engine, segstream.state or the rule compiler
is used: only the record parser, the definition validator and segstream.timefmt.
"""

from __future__ import annotations

import copy
import json
import time
from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from segstream.errors import InvalidRecord
from segstream.rules import validate_definition
from segstream.schemas.events import parse_input_record
from segstream.timefmt import DAY, date_start, format_instant, parse_datetime, utc_date

from .conditions import (
    EvaluationContext,
    StoredEvent,
    condition_holds,
    durations_in,
    instants_in,
    referenced_segments,
    uses_anniversaries,
)

MAX_RECORD_BYTES = 1024 * 1024
REMEMBERED_IDS = 1000


@dataclass
class ReplayResult:
    """What a replay produced: membership events in emission order and what was rejected."""

    memberships: list[dict[str, Any]] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    rejected_segments: list[int] = field(default_factory=list)
    rejected_lines: list[int] = field(default_factory=list)


@dataclass
class SegmentDefinition:
    """A currently defined segment: the submitted definition and its assigned version."""

    raw: dict[str, Any]
    version: int
    fingerprint: str

    @property
    def condition(self) -> dict[str, Any]:
        return self.raw["condition"]  # type: ignore[no-any-return]


@dataclass
class Profile:
    """Everything known about one existing profile."""

    traits: dict[str, Any] = field(default_factory=dict)
    events: list[StoredEvent] = field(default_factory=list)


class RejectedRecord(Exception):
    """A record (or definition) that has no effect at all; the message says why."""


def condition_fingerprint(condition: object) -> str:
    """The condition exactly as submitted, keys sorted (`true`, `1` and `1.0` all differ)."""
    return json.dumps(condition, sort_keys=True, ensure_ascii=False, separators=(",", ":"))


def deep_merge(target: dict[str, Any], patch: dict[str, Any]) -> None:
    """Merge `patch` into `target` in place: objects key by key, null deletes, else replace."""
    for key, value in patch.items():
        if value is None:
            target.pop(key, None)
        elif isinstance(value, dict):
            base = target.get(key)
            merged: dict[str, Any] = dict(base) if isinstance(base, dict) else {}
            deep_merge(merged, value)
            target[key] = merged
        else:
            target[key] = value


def _reject_constant(name: str) -> None:
    raise ValueError(f"{name} is not JSON")


def _parse_record(line: str) -> dict[str, Any]:
    if len(line.encode("utf-8", "surrogatepass")) > MAX_RECORD_BYTES:
        raise RejectedRecord("too_large: the record is over 1 MiB")
    try:
        record = json.loads(line, parse_constant=_reject_constant)
    except (ValueError, RecursionError) as exc:
        raise RejectedRecord(f"invalid_json: {exc}") from None
    if not isinstance(record, dict):
        raise RejectedRecord("schema: the record is not a JSON object")
    return record


def _parse_at(record: dict[str, Any]) -> int:
    try:
        return parse_datetime(record.get("at"))  # type: ignore[arg-type]
    except ValueError as exc:
        raise RejectedRecord(f"schema: at: {exc}") from None


def _transition_cause(kind: str, **extra: str) -> dict[str, str]:
    return {"kind": kind, **extra}


class NaiveReplay:
    """The whole replay state, kept in the most obvious form."""

    def __init__(self, history_retention: int) -> None:
        self.history_retention = history_retention
        self.segments: dict[str, SegmentDefinition] = {}
        self.last_version: dict[str, int] = {}
        self.profiles: dict[str, Profile] = {}
        self.remembered_ids: dict[str, deque[str]] = {}
        self.members: set[tuple[str, str]] = set()
        #: When each current membership began (the `at` of its segment.entered).
        self.entered: dict[tuple[str, str], int] = {}
        self.transition_count: dict[tuple[str, str], int] = {}
        self.now: int | None = None
        self.arrivals = 0
        self.result = ReplayResult()

    # ---- output -------------------------------------------------------------------------

    def _emit(
        self, profile_id: str, segment_id: str, version: int, entered: bool, cause: dict[str, str]
    ) -> None:
        pair = (profile_id, segment_id)
        assert self.now is not None
        if entered:
            self.members.add(pair)
            self.entered[pair] = self.now
        else:
            self.members.discard(pair)
            self.entered.pop(pair, None)
        seq = self.transition_count.get(pair, 0) + 1
        self.transition_count[pair] = seq
        assert self.now is not None
        self.result.memberships.append(
            {
                "id": f"{profile_id}/{segment_id}/{seq}",
                "type": "segment.entered" if entered else "segment.left",
                "profile_id": profile_id,
                "segment_id": segment_id,
                "segment_version": version,
                "seq": seq,
                "at": format_instant(self.now),
                "emitted_at": format_instant(time.time_ns() // 1000),
                "cause": dict(cause),
            }
        )

    # ---- evaluation ---------------------------------------------------------------------

    def _dependency_order(self) -> list[str]:
        """Defined segments, each after every defined segment it references."""
        order: list[str] = []
        placed: set[str] = set()

        def place(segment_id: str) -> None:
            if segment_id in placed:
                return
            placed.add(segment_id)
            for ref in sorted(referenced_segments(self.segments[segment_id].condition)):
                if ref in self.segments:
                    place(ref)
            order.append(segment_id)

        for segment_id in sorted(self.segments):
            place(segment_id)
        return order

    def _depends_on(self, segment_id: str, other: str) -> bool:
        """Whether `segment_id` refers to `other`, directly or through defined segments."""
        todo, seen = [segment_id], set[str]()
        while todo:
            refs = referenced_segments(self.segments[todo.pop()].condition)
            if other in refs:
                return True
            for ref in refs - seen:
                seen.add(ref)
                if ref in self.segments:
                    todo.append(ref)
        return False

    def _reevaluate(self, profile_ids: Iterable[str], cause_for: dict[str, dict[str, str]]) -> None:
        """Re-evaluate every segment for the given profiles at `now`; emit the differences.

        `cause_for` maps a segment id to its cause; the key "" is the cause of every other.
        """
        assert self.now is not None
        order = self._dependency_order()
        for profile_id in sorted(profile_ids):
            profile = self.profiles[profile_id]

            def is_member(segment_id: str, profile_id: str = profile_id) -> bool:
                return segment_id in self.segments and (profile_id, segment_id) in self.members

            def entered_at(segment_id: str, profile_id: str = profile_id) -> int | None:
                return self.entered.get((profile_id, segment_id))

            ctx = EvaluationContext(
                traits=profile.traits,
                events=profile.events,
                now=self.now,
                history_retention=self.history_retention,
                is_member=is_member,
                entered_at=entered_at,
            )
            for segment_id in order:
                segment = self.segments[segment_id]
                matches = condition_holds(segment.condition, ctx)
                if matches != ((profile_id, segment_id) in self.members):
                    cause = cause_for.get(segment_id, cause_for[""])
                    changed = cause.get("segment_id")
                    # Only dependents of a changed definition can change with it.
                    assert changed is None or self._depends_on(segment_id, changed), cause
                    self._emit(profile_id, segment_id, segment.version, matches, cause)

    # ---- timers -------------------------------------------------------------------------

    def _candidate_instants(self, after: int, upto: int) -> list[int]:
        """A superset of the instants in (after, upto] where any membership may change."""
        durations: set[int] = set()
        needs_midnights = False
        for segment in self.segments.values():
            durations |= durations_in(segment.condition)
            needs_midnights = needs_midnights or uses_anniversaries(segment.condition)
        candidates: set[int] = set()
        # A membership that has lasted D (for_at_least): at its start + D.
        candidates.update(start + d for start in self.entered.values() for d in durations)
        for profile in self.profiles.values():
            dated = instants_in(profile.traits)
            for event in profile.events:
                candidates.add(event.at + self.history_retention)
                candidates.update(event.at + d for d in durations)
                dated |= event.dated
            candidates |= dated
            candidates.update(v + d for v in dated for d in durations)
            candidates.update(v - d for v in dated for d in durations)  # within_next
            needs_midnights = needs_midnights or "birthdate" in profile.traits
        if needs_midnights:
            midnight = date_start(utc_date(after)) + DAY
            while midnight <= upto:
                candidates.add(midnight)
                midnight += DAY
        return sorted(c for c in candidates if after < c <= upto)

    def fire_timers(self, upto: int) -> None:
        """Fire, in due-time order, every instant <= `upto` not yet reached by the clock."""
        if self.now is None or upto <= self.now:
            return
        pending = self._candidate_instants(self.now, upto)
        while pending:
            instant = pending.pop(0)
            self.now = instant
            before = set(self.entered.items())
            self._reevaluate(list(self.profiles), {"": _transition_cause("timer")})
            # A membership that began just now is due again at its start + D (for_at_least).
            begun = {start for _, start in set(self.entered.items()) - before}
            if begun:
                later = {
                    start + d
                    for start in begun
                    for segment in self.segments.values()
                    for d in durations_in(segment.condition)
                }
                pending = sorted(set(pending) | {t for t in later if instant < t <= upto})

    def _advance_clock(self, at: int) -> None:
        self.fire_timers(at)
        self.now = at if self.now is None else max(self.now, at)

    # ---- segment changes ----------------------------------------------------------------

    def _defined_for_validation(self) -> dict[str, dict[str, Any]]:
        return {segment_id: segment.raw for segment_id, segment in self.segments.items()}

    def validate(self, raw: object) -> None:
        """Raise RejectedRecord unless `raw` is an acceptable definition right now."""
        problems = validate_definition(
            raw, self._defined_for_validation(), history_retention=self.history_retention
        )
        if problems:
            raise RejectedRecord("; ".join(str(problem) for problem in problems))
        if not isinstance(raw, dict):
            raise RejectedRecord("a definition is a JSON object")

    def upsert(self, raw: dict[str, Any]) -> None:
        """Create or edit a (validated) segment; re-evaluate only when the condition changed."""
        raw = copy.deepcopy(raw)  # the caller's object may change later; a definition may not
        segment_id = raw["id"]
        fingerprint = condition_fingerprint(raw["condition"])
        old = self.segments.get(segment_id)
        if old is not None and old.fingerprint == fingerprint:
            old.raw = raw  # name/description only: nothing is re-evaluated
            return
        version = self.last_version.get(segment_id, 0) + 1
        self.last_version[segment_id] = version
        self.segments[segment_id] = SegmentDefinition(raw, version, fingerprint)
        if self.now is None:
            return  # before the first record no profile exists
        own = "segment_updated" if old is not None else "segment_created"
        self._reevaluate(
            list(self.profiles),
            {
                segment_id: _transition_cause(own),
                "": _transition_cause("segment_updated", segment_id=segment_id),
            },
        )

    def delete_segment(self, segment_id: str) -> None:
        """Members leave (segment_deleted); dependents are re-evaluated (segment_updated)."""
        segment = self.segments.pop(segment_id)
        for profile_id in sorted(self.profiles):
            if (profile_id, segment_id) in self.members:
                self._emit(
                    profile_id,
                    segment_id,
                    segment.version,
                    False,
                    _transition_cause("segment_deleted"),
                )
        self._reevaluate(
            list(self.profiles),
            {"": _transition_cause("segment_updated", segment_id=segment_id)},
        )

    # ---- records ------------------------------------------------------------------------

    def apply_line(self, line: str) -> None:
        """Apply one line of EVENTS.jsonl; raise RejectedRecord when it has no effect."""
        record = _parse_record(line)
        kind = record.get("type")
        if kind == "segment.upserted":
            at = _parse_at(record)
            raw = record.get("segment")
            self.validate(raw)
            assert isinstance(raw, dict)
            self._advance_clock(at)
            self.upsert(raw)
        elif kind == "segment.deleted":
            at = _parse_at(record)
            segment_id = record.get("segment_id")
            if not isinstance(segment_id, str) or segment_id not in self.segments:
                raise RejectedRecord(f"segment.deleted: unknown segment {segment_id!r}")
            self._advance_clock(at)
            self.delete_segment(segment_id)
        else:
            self._apply_input_event(record)

    def _apply_input_event(self, record: dict[str, Any]) -> None:
        try:
            event = parse_input_record(record)
        except InvalidRecord as exc:
            raise RejectedRecord(str(exc)) from None
        remembered = self.remembered_ids.setdefault(event.profile_id, deque(maxlen=REMEMBERED_IDS))
        if event.id in remembered:
            return  # a duplicate: valid, but no effect at all (not even on the clock)
        self._advance_clock(event.at)
        profile_id = event.profile_id
        if event.type == "profile.deleted":
            self.remembered_ids[profile_id] = deque([event.id], maxlen=REMEMBERED_IDS)
            if profile_id in self.profiles:
                cause = _transition_cause("profile_deleted", event_id=event.id)
                for segment_id in self._dependency_order():
                    if (profile_id, segment_id) in self.members:
                        version = self.segments[segment_id].version
                        self._emit(profile_id, segment_id, version, False, cause)
                del self.profiles[profile_id]
            return
        remembered.append(event.id)
        profile = self.profiles.setdefault(profile_id, Profile())
        if event.type == "profile.updated":
            deep_merge(profile.traits, dict(event.traits or {}))
        else:
            if event.device is not None:
                deep_merge(profile.traits, {"device": dict(event.device)})
            self.arrivals += 1
            stored = StoredEvent(
                at=event.at,
                arrival=self.arrivals,
                type=event.type,
                event_id=event.id,
                properties=dict(event.properties or {}),
                dated=frozenset(instants_in(event.properties)),
            )
            profile.events.append(stored)
            profile.events.sort(key=lambda e: (e.at, e.arrival))
        self._reevaluate([profile_id], {"": _transition_cause("event", event_id=event.id)})


def naive_replay(
    segments: Sequence[object],
    lines: Iterable[str],
    *,
    until: int | None = None,
    history_retention: int = 365 * DAY,
) -> ReplayResult:
    """Replay SEGMENTS.json and EVENTS.jsonl with the event clock of SPEC §5.1, naively."""
    replay = NaiveReplay(history_retention)
    for index, raw in enumerate(segments):
        try:
            replay.validate(raw)
        except RejectedRecord as exc:
            replay.result.rejected_segments.append(index)
            replay.result.problems.append(f"segment [{index}]: {exc}")
            continue
        assert isinstance(raw, dict)
        replay.upsert(raw)
    for number, line in enumerate(lines, start=1):
        try:
            replay.apply_line(line)
        except RejectedRecord as exc:
            replay.result.rejected_lines.append(number)
            replay.result.problems.append(f"line {number}: {exc}")
    if until is not None:
        replay.fire_timers(until)
    return replay.result
