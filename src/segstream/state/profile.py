"""The state kept for one profile: traits, activity history, memberships, counters, timers."""

from __future__ import annotations

from bisect import bisect_right, insort
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from segstream.timefmt import MAX_INSTANT

__all__ = ["SEEN_IDS_KEPT", "ProfileState", "StoredEvent"]

#: How many recent event ids a profile remembers for de-duplication (SPEC §3.3).
SEEN_IDS_KEPT = 1000


@dataclass(slots=True)
class StoredEvent:
    """One activity event in a profile's history."""

    at: int
    order: int  # arrival number within the profile: breaks ties between equal `at`
    id: str
    type: str
    properties: dict[str, Any]


@dataclass(slots=True)
class ProfileState:
    """Everything segstream remembers about one profile id (also after its deletion)."""

    exists: bool = False
    traits: dict[str, Any] = field(default_factory=dict)
    #: Activity history by event type, each list in event order (`at`, then arrival).
    events: dict[str, list[StoredEvent]] = field(default_factory=dict)
    next_order: int = 0
    seen: deque[str] = field(default_factory=lambda: deque(maxlen=SEEN_IDS_KEPT))
    seen_set: set[str] = field(default_factory=set)
    #: Current memberships: segment id -> instant the profile entered it.
    members: dict[str, int] = field(default_factory=dict)
    #: Transitions so far per segment id, over the pair's whole life.
    seqs: dict[str, int] = field(default_factory=dict)
    #: Pending re-evaluations, sorted: (due instant, trigger key).
    timers: list[tuple[int, str]] = field(default_factory=list)

    # -- de-duplication -------------------------------------------------------------------
    def has_seen(self, event_id: str) -> bool:
        """True when `event_id` is among the last ids this profile remembers."""
        return event_id in self.seen_set

    def remember(self, event_id: str) -> None:
        """Remember an event id, forgetting the oldest beyond SEEN_IDS_KEPT."""
        if len(self.seen) == SEEN_IDS_KEPT:
            self.seen_set.discard(self.seen[0])
        self.seen.append(event_id)
        self.seen_set.add(event_id)

    # -- history ------------------------------------------------------------------------
    def add_event(
        self, at: int, event_id: str, type_: str, properties: dict[str, Any]
    ) -> StoredEvent:
        """Insert an event into the history of its type, keeping event order."""
        event = StoredEvent(at, self.next_order, event_id, type_, properties)
        self.next_order += 1
        history = self.events.setdefault(type_, [])
        if not history or history[-1].at <= at:
            history.append(event)
        else:
            history.insert(bisect_right(history, at, key=lambda e: e.at), event)
        return event

    def find_events(self, type_: str, event_id: str) -> list[StoredEvent]:
        """The stored events of a type with an id (ids repeat only beyond the dedupe window)."""
        return [e for e in self.events.get(type_, ()) if e.id == event_id]

    def drop_expired(self, horizon: int) -> None:
        """Forget events with `at <= horizon`: no condition can see them any more."""
        for type_ in list(self.events):
            history = self.events[type_]
            if history and history[0].at <= horizon:
                kept = [e for e in history if e.at > horizon]
                if kept:
                    self.events[type_] = kept
                else:
                    del self.events[type_]

    # -- timers -------------------------------------------------------------------------
    def schedule(self, due: int, key: str) -> None:
        """Ask for a re-evaluation at `due` (idempotent). An instant beyond 9999-12-31 is
        never reached (SPEC §3.3): no timer."""
        if due > MAX_INSTANT:
            return
        entry = (due, key)
        i = bisect_right(self.timers, entry)
        if i and self.timers[i - 1] == entry:
            return
        insort(self.timers, entry)

    @property
    def next_due(self) -> int | None:
        """The earliest pending re-evaluation, if any."""
        return self.timers[0][0] if self.timers else None

    def pop_due(self, due: int) -> list[str]:
        """Remove and return the trigger keys of the timers due exactly at `due`."""
        keys = []
        while self.timers and self.timers[0][0] == due:
            keys.append(self.timers.pop(0)[1])
        return keys

    # -- deletion -----------------------------------------------------------------------
    def forget(self, deletion_id: str) -> None:
        """Forget the profile (SPEC §3.1): only the counters and the deletion's id remain."""
        self.exists = False
        self.traits = {}
        self.events = {}
        self.members = {}
        self.timers = []
        self.seen.clear()
        self.seen_set.clear()
        self.remember(deletion_id)
