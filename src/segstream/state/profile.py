"""The state kept for one profile: traits, activity history, memberships, counters, timers.

A profile is stored as keyed parts (`segstream.state.layout`): a small head, one entry per
stored event, the de-duplication ids in a ring of SEEN_IDS_KEPT slots, and one entry per timer.
In memory the head is always loaded; the history of an event type is read through `loader`
only as far back as a read needs it (`history_after`: from a window's start), so evaluating a
leaf reads only its type and its window. While a `journal` is attached, every change is
recorded by key, so that a transaction writes only what changed.

A partly loaded type keeps, in `loaded`, exactly its events with `at` above its bound in
`partial`; below the bound the store is the truth, and two rules keep it so without merging
the journal into reads: an insert first loads down to its own `at` (the journal puts only
loaded events), and expiry moves `oldest` past every event it deletes (reads start at
`oldest`, so they never see an event the journal deleted).
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right, insort
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Protocol

from segstream.timefmt import MAX_INSTANT

__all__ = [
    "SEEN_IDS_KEPT",
    "EventKey",
    "HistoryLoader",
    "Journal",
    "ProfileState",
    "StoredEvent",
]

#: How many recent event ids a profile remembers for de-duplication (SPEC §3.3).
SEEN_IDS_KEPT = 1000

#: A stored event's identity in the history: (type, at, arrival order).
EventKey = tuple[str, int, int]


@dataclass(slots=True)
class StoredEvent:
    """One activity event in a profile's history."""

    at: int
    order: int  # arrival number within the profile: breaks ties between equal `at`
    id: str
    type: str
    properties: dict[str, Any]


@dataclass(slots=True)
class Journal:
    """The keyed changes made to a loaded profile since it was loaded or last committed."""

    #: Events put (the event) or deleted (None), latest change per key.
    events: dict[EventKey, StoredEvent | None] = field(default_factory=dict)
    #: Timers added (True) or removed (False), latest change per timer.
    timers: dict[tuple[int, str], bool] = field(default_factory=dict)
    #: `seen_total` when the journal started: ids remembered from here on are new.
    seen_from: int = 0
    #: The generation when the journal started: a deletion since then moved to a new one.
    generation: int = 0

    def empty(self, seen_total: int) -> bool:
        """True when nothing but possibly the head changed."""
        return not self.events and not self.timers and seen_total == self.seen_from


class HistoryLoader(Protocol):
    """Reads one profile's stored (committed) history."""

    def events(
        self, type_: str, start: int, end: int | None, limit: int | None = None
    ) -> list[StoredEvent]:
        """Stored events of a type with `start <= at <= end` (None: no end), in event order,
        at most `limit` of them."""

    def event(self, type_: str, at: int, order: int) -> StoredEvent | None:
        """The stored event with this key, if any."""


def _at(event: StoredEvent) -> int:
    return event.at


@dataclass(slots=True)
class ProfileState:
    """Everything segstream remembers about one profile id (also after its deletion)."""

    exists: bool = False
    traits: dict[str, Any] = field(default_factory=dict)
    next_order: int = 0
    seen: deque[str] = field(default_factory=lambda: deque(maxlen=SEEN_IDS_KEPT))
    seen_set: set[str] = field(default_factory=set)
    #: Ids remembered over the profile's life; id number n lives in ring slot n % 1000.
    seen_total: int = 0
    #: Ids numbered below this were forgotten by a deletion.
    seen_base: int = 0
    #: Current memberships: segment id -> instant the profile entered it.
    members: dict[str, int] = field(default_factory=dict)
    #: Transitions so far per segment id, over the pair's whole life.
    seqs: dict[str, int] = field(default_factory=dict)
    #: Pending re-evaluations, sorted: (due instant, trigger key).
    timers: list[tuple[int, str]] = field(default_factory=list)
    #: Per event type with stored events: the earliest `at` (part of the head).
    oldest: dict[str, int] = field(default_factory=dict)
    #: Loaded histories by event type, each list in event order (`at`, then arrival).
    loaded: dict[str, list[StoredEvent]] = field(default_factory=dict)
    #: Partly loaded types: `loaded[type]` holds exactly the events with `at` above this.
    partial: dict[str, int] = field(default_factory=dict)
    #: Reads stored history (None: everything is in `loaded`).
    loader: HistoryLoader | None = field(default=None, compare=False)
    journal: Journal | None = field(default=None, compare=False)
    #: Bumped by every committed write (a cached copy is current while it matches).
    version: int = 0
    #: Bumped by every deletion: history and timers are stored under the generation, so a
    #: deletion leaves the old entries behind unread instead of deleting each one.
    generation: int = 0

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
        self.seen_total += 1

    # -- history ------------------------------------------------------------------------
    @property
    def has_history(self) -> bool:
        """True when any event is stored."""
        return bool(self.oldest)

    def history(self, type_: str) -> list[StoredEvent]:
        """The stored events of a type in event order (loads them all; do not mutate)."""
        return self._covering(type_, None)

    def history_after(self, type_: str, low: int) -> list[StoredEvent]:
        """The stored events of a type in event order, holding at least every one with
        `at > low` (loaded from there on use; do not mutate). What a window reads."""
        return self._covering(type_, low)

    def _covering(self, type_: str, low: int | None) -> list[StoredEvent]:
        found = self.loaded.get(type_)
        if found is not None:
            bound = self.partial.get(type_)
            if bound is None or (low is not None and low >= bound):
                return found
        elif type_ not in self.oldest or self.loader is None:
            return []
        else:
            bound = None
        first = self.oldest[type_]
        start = first if low is None else max(low + 1, first)
        assert self.loader is not None
        if found is None:
            # Nothing loaded: from `start` to the end, none of it changed by the journal.
            found = self.loaded[type_] = self.loader.events(type_, start, None)
        elif bound is not None:
            found[:0] = self.loader.events(type_, start, bound)
        if start <= first:
            self.partial.pop(type_, None)
        else:
            self.partial[type_] = start - 1
        return found

    @property
    def events(self) -> dict[str, list[StoredEvent]]:
        """Every type's history (loads them all: for views and tests, not the engine)."""
        return {type_: self.history(type_) for type_ in sorted(self.oldest)}

    def add_event(
        self, at: int, event_id: str, type_: str, properties: dict[str, Any]
    ) -> StoredEvent:
        """Insert an event into the history of its type, keeping event order."""
        event = StoredEvent(at, self.next_order, event_id, type_, properties)
        self.next_order += 1
        history = self._covering(type_, at - 1)
        if type_ not in self.loaded:
            history = self.loaded[type_] = []
        if not history or history[-1].at <= at:
            history.append(event)
        else:
            history.insert(bisect_right(history, at, key=_at), event)
        first = self.oldest.get(type_)
        if first is None or at < first:
            self.oldest[type_] = at
        if self.journal is not None:
            self.journal.events[(type_, at, event.order)] = event
        return event

    def find_event(self, type_: str, at: int, order: int) -> StoredEvent | None:
        """The stored event of a type with this `at` and arrival order, if still kept (one
        point read when it is not loaded)."""
        first = self.oldest.get(type_)
        if first is None or at < first:
            return None
        history = self.loaded.get(type_)
        bound = self.partial.get(type_)
        if history is None or (bound is not None and at <= bound):
            return self.loader.event(type_, at, order) if self.loader is not None else None
        i = bisect_left(history, at, key=_at)
        while i < len(history) and history[i].at == at:
            if history[i].order == order:
                return history[i]
            i += 1
        return None

    def drop_expired(self, horizon: int) -> None:
        """Forget events with `at <= horizon`: no condition can see them any more. Reads
        only the expired events (to delete them) and the first one kept."""
        for type_, first in list(self.oldest.items()):
            if first > horizon:
                continue
            history = self.loaded.get(type_)
            bound = self.partial.get(type_) if history is not None else None
            if history is None or bound is not None:
                # The stored part below the loaded one (all of it when nothing is loaded).
                top = horizon if bound is None else min(horizon, bound)
                assert self.loader is not None
                self._deleted(self.loader.events(type_, first, top))
                if bound is not None and horizon >= bound:
                    del self.partial[type_]  # what is left is all loaded
                    bound = None
            if history is not None:
                cut = bisect_right(history, horizon, key=_at)
                self._deleted(history[:cut])
                del history[:cut]
            if bound is not None or history is None:
                # Stored events may remain between the horizon and the loaded part.
                assert self.loader is not None
                kept = self.loader.events(type_, horizon + 1, bound, 1)
                if kept:
                    self.oldest[type_] = kept[0].at
                    continue
            if history:
                self.oldest[type_] = history[0].at
            else:
                del self.oldest[type_]
                self.loaded.pop(type_, None)
                self.partial.pop(type_, None)

    def _deleted(self, events: list[StoredEvent]) -> None:
        if self.journal is not None:
            for e in events:
                self.journal.events[(e.type, e.at, e.order)] = None

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
        if self.journal is not None:
            self.journal.timers[entry] = True

    @property
    def next_due(self) -> int | None:
        """The earliest pending re-evaluation, if any."""
        return self.timers[0][0] if self.timers else None

    def pop_due(self, due: int) -> list[str]:
        """Remove and return the trigger keys of the timers due exactly at `due`."""
        n = 0
        timers = self.timers
        while n < len(timers) and timers[n][0] == due:
            n += 1
        popped = timers[:n]
        del timers[:n]
        if self.journal is not None:
            for entry in popped:
                self.journal.timers[entry] = False
        return [key for _, key in popped]

    # -- deletion -----------------------------------------------------------------------
    def forget(self, deletion_id: str) -> None:
        """Forget the profile (SPEC §3.1): only the counters and the deletion's id remain."""
        self.exists = False
        self.traits = {}
        # A new generation: the history and timers of the old one are no longer read (a
        # sweep deletes them later, `segstream.state.layout`), so nothing here reads them,
        # and the journal's changes to them will never be read either.
        self.generation += 1
        self.oldest = {}
        self.loaded = {}
        self.partial = {}
        self.members = {}
        if self.journal is not None:
            self.journal.events.clear()
            self.journal.timers.clear()
        self.timers = []
        self.seen.clear()
        self.seen_set.clear()
        self.seen_base = self.seen_total
        self.remember(deletion_id)
