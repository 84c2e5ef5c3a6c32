"""Plans who does what when, and merges every profile's records into one time-ordered stream."""

from __future__ import annotations

import heapq
import random
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from typing import Any

from segstream.generate.activity import MAX_GAP, MAX_SESSION, SessionBuilder
from segstream.generate.catalogue import Catalogue
from segstream.generate.profiles import Persona, PersonaFactory
from segstream.timefmt import DAY, HOUR, MINUTE, SECOND, format_instant, utc_date

__all__ = ["TimelineOptions", "timeline_records"]

# Session kinds in the plan.
_FIRST, _ACTIVITY, _CHANGE, _DELETE = 0, 1, 2, 3
# Sessions start at least this long before the span ends, so that even the longest one
# (MAX_SESSION events, MAX_GAP apart) still ends inside the span.
_TAIL = MAX_SESSION * MAX_GAP + HOUR


@dataclass(frozen=True, slots=True)
class TimelineOptions:
    """What to plan: counts, the span of event times, and the shares of late and duplicate ids."""

    profiles: int
    events: int
    start: int
    span: int
    late_share: float = 0.0
    duplicate_share: float = 0.0
    live_start: int | None = None
    rate: float = 1000.0


class _InstantText:
    """`format_instant` with the date part cached: records are written nearly in time order."""

    __slots__ = ("_day", "_prefix")

    def __init__(self) -> None:
        self._day = -1
        self._prefix = ""

    def __call__(self, us: int) -> str:
        day, rest = divmod(us, DAY)
        if day != self._day:
            self._day = day
            self._prefix = format_instant(day * DAY)[:11]  # "YYYY-MM-DDT"
        hours, rest = divmod(rest, HOUR)
        minutes, rest = divmod(rest, MINUTE)
        seconds, fraction = divmod(rest, SECOND)
        text = f"{self._prefix}{hours:02d}:{minutes:02d}:{seconds:02d}"
        if fraction:
            return f"{text}.{fraction:06d}".rstrip("0") + "Z"
        return text + "Z"


class _PlannedRecord:
    """A record waiting in the merge heap; `record` is filled in when it is first written."""

    __slots__ = ("at", "body", "profile_id", "record", "type")

    def __init__(self, kind: str, profile_id: str, at: int, body: dict[str, Any]) -> None:
        self.type = kind
        self.profile_id = profile_id
        self.at = at
        self.body = body
        self.record: dict[str, Any] | None = None


def _millis(us: int) -> int:
    # Producers usually stamp events in whole milliseconds.
    return us - us % 1000


def _plan(rng: random.Random, options: TimelineOptions) -> list[tuple[int, int, int, int]]:
    """Sessions as (start, profile index, kind, size), sorted; sizes add up to `events`."""
    n, start, span = options.profiles, options.start, options.span
    end = start + span
    latest_start = max(start, end - _TAIL)
    rest = options.events - n
    deletions = min(rest // 500, n // 50)
    changes = rest // 30
    activity = rest - deletions - changes

    # Most customers exist from early on; some sign up during the span.
    births = [_millis(start + int((latest_start - start) * rng.random() ** 2)) for _ in range(n)]
    # Log-normal activity levels: most profiles do little, a few heavy users do a lot.
    weights = [rng.lognormvariate(0.0, 1.3) for _ in range(n)]
    counts = [0] * n
    for index in rng.choices(range(n), weights=weights, k=activity):
        counts[index] += 1

    plan: list[tuple[int, int, int, int]] = []
    last = births[:]
    for index in range(n):
        birth, remaining = births[index], counts[index]
        size = min(remaining, 1 + int(rng.expovariate(1 / 3)), MAX_SESSION)
        plan.append((birth, index, _FIRST, size))
        last[index] = birth + SECOND + size * MAX_GAP
        remaining -= size
        while remaining:
            size = min(remaining, 1 + int(rng.expovariate(1 / 4)), MAX_SESSION)
            begin = _millis(birth + int((latest_start - birth) * rng.random()))
            plan.append((begin, index, _ACTIVITY, size))
            last[index] = max(last[index], begin + size * MAX_GAP)
            remaining -= size
    for _ in range(changes):
        index = rng.randrange(n)
        at = _millis(births[index] + MINUTE + int((latest_start - births[index]) * rng.random()))
        plan.append((at, index, _CHANGE, 1))
        last[index] = max(last[index], at)
    for index in rng.sample(range(n), deletions):
        # A deletion is the profile's last record, some time after everything else it did.
        after = min(last[index] + MAX_GAP, end)
        plan.append((_millis(after + int((end - after) * rng.random())), index, _DELETE, 1))
    plan.sort()
    return plan


def timeline_records(
    rng: random.Random, options: TimelineOptions, catalogue: Catalogue, reference: date
) -> Iterator[dict[str, Any]]:
    """Every input record in write order; times increase except for late and duplicate ones."""
    if options.events < options.profiles:
        raise ValueError("events must be at least profiles: every profile starts with an update")
    plan = _plan(rng, options)
    factory = PersonaFactory(rng, reference)
    builder = SessionBuilder(rng, catalogue)
    personas: list[Persona | None] = [None] * options.profiles
    heap: list[tuple[int, int, _PlannedRecord]] = []
    order = 0
    emitted = 0
    late, duplicate = options.late_share, options.duplicate_share
    live = options.live_start
    live_step = SECOND / options.rate
    instant_text = _InstantText()

    def push(entry: _PlannedRecord, when: int) -> None:
        nonlocal order
        order += 1
        heapq.heappush(heap, (when, order, entry))

    def emit(entry: _PlannedRecord, when: int) -> dict[str, Any]:
        nonlocal emitted
        record = entry.record
        if record is None:
            at = entry.at
            if live is not None:
                # Live: the write position sets the time; a late record keeps its lateness.
                at = live + int(emitted * live_step) - (when - entry.at)
            record = {"id": f"e{emitted + 1}", "type": entry.type, "profile_id": entry.profile_id}
            record["at"] = instant_text(at)
            record.update(entry.body)
            entry.record = record
        emitted += 1
        return record

    for begin, index, kind, size in plan:
        while heap and heap[0][0] < begin:
            when, _, entry = heapq.heappop(heap)
            yield emit(entry, when)
        persona = personas[index]
        if kind == _FIRST:
            persona, traits = factory.create(index, utc_date(begin))
            personas[index] = persona
            push(
                _PlannedRecord("profile.updated", persona.profile_id, begin, {"traits": traits}),
                begin,
            )
            begin += SECOND
        assert persona is not None
        if kind == _CHANGE:
            traits = factory.change(persona)
            push(
                _PlannedRecord("profile.updated", persona.profile_id, begin, {"traits": traits}),
                begin,
            )
            continue
        if kind == _DELETE:
            push(_PlannedRecord("profile.deleted", persona.profile_id, begin, {}), begin)
            continue
        previous: _PlannedRecord | None = None
        for offset, event_type, properties, context in builder.build(persona, size):
            at = begin + offset
            if previous is not None and duplicate and rng.random() < duplicate:
                # A redelivery: the very same record (same id) again, a little later.
                push(previous, at + _millis(int(rng.random() * MAX_GAP)))
                continue
            body: dict[str, Any] = {"properties": properties}
            if context is not None:
                body["context"] = context
            entry = _PlannedRecord(event_type, persona.profile_id, at, body)
            when = at
            if late and rng.random() < late:
                # Delivered late: written after records up to three hours newer.
                when = at + _millis(int(rng.uniform(MINUTE, 3 * HOUR)))
            push(entry, when)
            previous = entry
    while heap:
        when, _, entry = heapq.heappop(heap)
        yield emit(entry, when)
