"""The keyed layout of profile state (store format 2): a head, history entries, a dedupe ring
and timers, each its own key, so that one event writes O(event + head) bytes.

Keys (`lp(s)` is the UTF-8 of `s` prefixed by its length as 4 bytes: unambiguous for any
profile id, U+0000 included; `u64(x)` is x + 2**63 as 8 big-endian bytes: sorts as integers):

    p<profile id>                              head: [2, exists, traits, next_order, members,
                                               seqs, oldest-at per type, seen total, seen
                                               base, next due, version, generation]
    e lp(pid) gen(g) lp(type) u64(at) u64(order)   one stored event: [id, properties]
    d lp(pid) slot (2 bytes)                   dedupe ring: u64(number) + id
    t lp(pid) gen(g) u64(due) <trigger key>    one pending timer (empty value)
    w<profile id>                              generations below this one await the sweep
                                               (ASCII number, then a space and the key to
                                               resume from, when a sweep stopped inside)

`gen(g)` is empty for generation 0 (so the keys of a store written before generations are
generation 0's) and 0xFF + g as 4 big-endian bytes after it: no lp(type) or u64(due) starts
with 0xFF, so the keys stay unambiguous, and every older generation's keys sort before
`gen(g)`. A deletion moves the profile to a new generation: the old history and timers are
never read again and `sweep_records` deletes them later, a few hundred keys at a time.

The head is bounded by the traits and the number of segments (and event types); the history
grows only by entries of its own. Heads of format 1 (the whole state in one value) are found
by `head_format` and converted by `from_old_state`; a format-2 head of 11 fields (written
before generations) is generation 0.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Container, Iterable, Iterator
from typing import Any, Protocol

from segstream.schemas.jsontext import dumps, loads_exact
from segstream.state.profile import SEEN_IDS_KEPT, Journal, ProfileState, StoredEvent

__all__ = [
    "FORMAT",
    "HEAD_PREFIX",
    "PROFILE_PREFIXES",
    "SWEEP_PREFIX",
    "Records",
    "commit_journal",
    "encode_head",
    "event_timer_key",
    "from_old_state",
    "head_format",
    "head_key",
    "head_of",
    "head_parts",
    "load_dedupe",
    "load_profile",
    "parse_event_timer",
    "profile_of_key",
    "profile_records",
    "sweep_key",
    "sweep_records",
]

#: The store and changelog format this module writes.
FORMAT = 2

HEAD_PREFIX = b"p"
_EVENT = b"e"
_SEEN = b"d"
_TIMER = b"t"
_SWEEP = b"w"
#: First byte of the sweep marks.
SWEEP_PREFIX = _SWEEP
#: First bytes of every key that belongs to one profile.
PROFILE_PREFIXES = (HEAD_PREFIX, _EVENT, _SEEN, _TIMER, _SWEEP)
#: Keys of old generations deleted per sweep (one transaction's share).
SWEEP_BATCH = 500
_OFFSET = 1 << 63

Records = list[tuple[bytes, bytes | None]]


class Scan(Protocol):
    """Reads stored (key, value) pairs whose keys start with `prefix`, in key order, from
    the first key at or after `start` (lazily: a reader stops where it likes)."""

    def __call__(self, prefix: bytes, start: bytes = b"") -> Iterable[tuple[bytes, bytes]]: ...


def _lp(text: str) -> bytes:
    raw = text.encode()
    return len(raw).to_bytes(4, "big") + raw


def _u64(value: int) -> bytes:
    return (value + _OFFSET).to_bytes(8, "big")


def _int(raw: bytes) -> int:
    return int.from_bytes(raw, "big") - _OFFSET


def head_key(profile_id: str) -> bytes:
    """The store (and changelog) key of a profile's head."""
    return HEAD_PREFIX + profile_id.encode()


def _gen(generation: int) -> bytes:
    return b"\xff" + generation.to_bytes(4, "big") if generation else b""


def _event_key(owner: bytes, type_: str, at: int, order: int) -> bytes:
    """`owner`: lp(pid) + gen(g)."""
    return _EVENT + owner + _lp(type_) + _u64(at) + _u64(order)


def _seen_key(lp_pid: bytes, number: int) -> bytes:
    return _SEEN + lp_pid + (number % SEEN_IDS_KEPT).to_bytes(2, "big")


def _timer_key(owner: bytes, due: int, key: str) -> bytes:
    return _TIMER + owner + _u64(due) + key.encode()


def sweep_key(profile_id: str) -> bytes:
    """The key of a profile's sweep mark (its value: the generation whose elders go)."""
    return _SWEEP + profile_id.encode()


def profile_of_key(key: bytes) -> str | None:
    """The profile id a store or changelog key belongs to (None for other keys)."""
    if key[:1] in (HEAD_PREFIX, _SWEEP):
        return key[1:].decode(errors="replace")
    if key[:1] in (_EVENT, _SEEN, _TIMER) and len(key) >= 5:
        size = int.from_bytes(key[1:5], "big")
        return key[5 : 5 + size].decode(errors="replace")
    return None


def head_format(raw: bytes) -> int:
    """The format number a stored head starts with (1: the old whole-state blob)."""
    end = raw.find(b",")
    return int(raw[1:end]) if raw[:1] == b"[" and end > 1 else 0


# -- writing ------------------------------------------------------------------------------------
def encode_head(state: ProfileState) -> bytes:
    """A profile's head."""
    return dumps(
        [
            FORMAT,
            int(state.exists),
            state.traits,
            state.next_order,
            state.members,
            state.seqs,
            state.oldest,
            state.seen_total,
            state.seen_base,
            state.next_due,
            state.version,
            state.generation,
        ]
    )


def _event_value(event: StoredEvent) -> bytes:
    return dumps([event.id, event.properties])


def _seen_records(lp_pid: bytes, state: ProfileState, first: int) -> Iterator[tuple[bytes, bytes]]:
    total = state.seen_total
    seen = state.seen
    start = max(first, total - len(seen))
    offset = total - len(seen)
    for number in range(start, total):
        yield _seen_key(lp_pid, number), _u64(number) + seen[number - offset].encode()


# Versions below this are written the same by the fast encoder and the stdlib one.
_SPLICE_LIMIT = 2**63


def profile_records(profile_id: str, state: ProfileState, stored_head: bytes | None) -> Records:
    """The records that bring the stored form of a profile to `state`: everything for a state
    without a journal (new), else what its journal recorded; empty when nothing changed.
    Bumps `state.version` when it writes; `commit_journal` after the commit starts afresh."""
    journal = state.journal
    head = encode_head(state)
    if journal is not None and journal.empty(state.seen_total) and head == stored_head:
        return []
    # The head with the version bumped: its last two items are the version and the
    # generation (integers, written compactly), so only that tail is written again. Where
    # the tail is not that (a version past the fast encoder's 64-bit range), encode again.
    tail = b",%d,%d]" % (state.version, state.generation)
    state.version += 1
    if head.endswith(tail) and state.version < _SPLICE_LIMIT:
        head = head[: -len(tail)] + b",%d,%d]" % (state.version, state.generation)
    else:
        head = encode_head(state)
    records: Records = [(head_key(profile_id), head)]
    lp_pid = _lp(profile_id)
    owner = lp_pid + _gen(state.generation)
    if journal is None:
        assert not state.partial, "a state written whole has all its history loaded"
        for history in state.loaded.values():
            for e in history:
                records.append((_event_key(owner, e.type, e.at, e.order), _event_value(e)))
        records.extend((_timer_key(owner, due, key), b"") for due, key in state.timers)
        records.extend(_seen_records(lp_pid, state, 0))
        return records
    if state.generation != journal.generation:
        # Deleted: the old generations' entries stay until the sweep deletes them.
        records.append((sweep_key(profile_id), str(state.generation).encode()))
    for (type_, at, order), event in journal.events.items():
        key = _event_key(owner, type_, at, order)
        records.append((key, _event_value(event) if event is not None else None))
    for (due, key_), present in journal.timers.items():
        records.append((_timer_key(owner, due, key_), b"" if present else None))
    records.extend(_seen_records(lp_pid, state, journal.seen_from))
    return records


def sweep_records(
    scan: Scan, skip: Container[str], limit: int = SWEEP_BATCH
) -> tuple[Records, list[str]]:
    """Tombstones for up to `limit` stored keys of profiles' old generations (those with a
    sweep mark, except the profiles in `skip`), and the profiles whose sweep they finish
    (their marks' tombstones are among the records). A sweep that stops inside a profile
    rewrites its mark with the key to resume from, so the next one seeks there instead of
    stepping again over the tombstones it left."""
    records: Records = []
    finished: list[str] = []
    for mark, value in scan(_SWEEP):
        profile_id = mark[1:].decode()
        if profile_id in skip:
            continue
        generation, _, resume = value.partition(b" ")
        lp_pid = _lp(profile_id)
        current = _gen(int(generation))
        for first in (_EVENT, _TIMER):
            if resume[:1] == _TIMER and first == _EVENT:
                continue  # the events were swept already
            prefix = first + lp_pid
            end = prefix + current
            for key, _value in scan(prefix, resume if resume[:1] == first else b""):
                if key >= end:
                    break
                if len(records) >= limit:
                    records.append((mark, generation + b" " + key))
                    return records, finished
                records.append((key, None))
        if len(records) >= limit:
            # Done with its keys, but the budget is spent: the mark goes next time.
            records.append((mark, generation + b" " + _TIMER + lp_pid + current))
            break
        records.append((mark, None))
        finished.append(profile_id)
    return records, finished


def commit_journal(state: ProfileState) -> None:
    """After a committed write: the state's changes are stored; journal from here on."""
    state.journal = Journal(seen_from=state.seen_total, generation=state.generation)


def head_of(raw: bytes) -> tuple[bool, dict[str, int], int | None]:
    """What the derived indexes need from a stored head: exists, members, next due."""
    exists, members, due, _traits = head_parts(raw)
    return exists, members, due


def head_parts(raw: bytes) -> tuple[bool, dict[str, int], int | None, dict[str, Any]]:
    """`head_of` and the traits (what the guard index needs), from one decoding."""
    head = loads_exact(raw)
    if head[0] != FORMAT:
        raise ValueError(f"profile head of format {head[0]}, not {FORMAT}")
    return bool(head[1]), head[4], head[9], head[2]


# -- reading ------------------------------------------------------------------------------------
def _read_seen(lp_pid: bytes, base: int, total: int, scan: Scan) -> deque[str]:
    """A profile's dedupe ring, oldest id first."""
    numbered: list[tuple[int, str]] = []
    low = max(base, total - SEEN_IDS_KEPT)
    for _key, value in scan(_SEEN + lp_pid):
        number = _int(value[:8])
        if low <= number < total:
            numbered.append((number, value[8:].decode()))
    numbered.sort()
    return deque((i for _, i in numbered), maxlen=SEEN_IDS_KEPT)


def load_profile(
    profile_id: str,
    head_raw: bytes,
    scan: Scan,
    *,
    for_update: bool = True,
    dedupe: bool = True,
) -> ProfileState:
    """A profile's state from its stored head; its history loads per type on use (`scan`),
    its dedupe ring and timers at once (not at all without `for_update`: a read-only view for
    evaluation, which needs neither). Without `dedupe`, the ring is left unread (empty) for a
    state that applies no record (a backfill's evaluation, which may schedule timers and
    change memberships): `load_dedupe` reads it before a record is applied. The state
    journals its changes."""
    head = loads_exact(head_raw)
    if head[0] != FORMAT:
        raise ValueError(f"profile head of format {head[0]}, not {FORMAT}")
    (_, exists, traits, next_order, members, seqs, oldest, total, base, due, version) = head[:11]
    generation = head[11] if len(head) > 11 else 0
    lp_pid = _lp(profile_id)
    owner = lp_pid + _gen(generation)
    if for_update and dedupe:
        seen = _read_seen(lp_pid, base, total, scan)
    else:
        seen = deque(maxlen=SEEN_IDS_KEPT)
    timer_prefix = _TIMER + owner
    cut = len(timer_prefix)
    # The head's next due is its earliest timer, written with the timers in one write (and
    # one changelog transaction): none there, no timer keys, and no seek for them.
    timers = [
        (_int(key[cut : cut + 8]), key[cut + 8 :].decode())
        for key, _ in (scan(timer_prefix) if for_update and due is not None else ())
    ]

    return ProfileState(
        exists=bool(exists),
        traits=traits,
        next_order=next_order,
        seen=seen,
        seen_set=set(seen),
        seen_total=total,
        seen_base=base,
        members=members,
        seqs=seqs,
        timers=timers,
        oldest=oldest,
        loader=StoredHistory(owner, scan),
        journal=Journal(seen_from=total, generation=generation),
        version=version,
        generation=generation,
    )


def load_dedupe(profile_id: str, state: ProfileState, scan: Scan) -> None:
    """Read the dedupe ring of a state `load_profile` loaded without it (and that remembered
    no id since: its ring is stored whole)."""
    assert state.journal is not None and state.journal.seen_from == state.seen_total
    seen = _read_seen(_lp(profile_id), state.seen_base, state.seen_total, scan)
    state.seen = seen
    state.seen_set = set(seen)


class StoredHistory:
    """A profile's stored history, read by ordered-key seeks (`HistoryLoader`)."""

    __slots__ = ("_owner", "_scan")

    def __init__(self, owner: bytes, scan: Scan) -> None:
        self._owner = owner  # lp(pid) + gen(g)
        self._scan = scan

    def events(
        self, type_: str, start: int, end: int | None, limit: int | None = None
    ) -> list[StoredEvent]:
        prefix = _EVENT + self._owner + _lp(type_)
        n = len(prefix)
        found: list[StoredEvent] = []
        if limit == 0:
            return found
        for key, value in self._scan(prefix, prefix + _u64(start)):
            at = _int(key[n : n + 8])
            if end is not None and at > end:
                break
            event_id, properties = loads_exact(value)
            found.append(StoredEvent(at, _int(key[n + 8 : n + 16]), event_id, type_, properties))
            if limit is not None and len(found) >= limit:
                break
        return found

    def event(self, type_: str, at: int, order: int) -> StoredEvent | None:
        key = _event_key(self._owner, type_, at, order)
        for _key, value in self._scan(key):
            event_id, properties = loads_exact(value)
            return StoredEvent(at, order, event_id, type_, properties)
        return None


def from_old_state(state: ProfileState) -> ProfileState:
    """A state decoded from format 1, made ready to write in this format (no journal: every
    part is written). Its dedupe ids are renumbered from 0; an event timer, which named the
    event by type and id, names each stored event of that type and id by `at` and order."""
    state.seen_total = len(state.seen)
    state.seen_base = 0
    state.oldest = {t: h[0].at for t, h in state.loaded.items() if h}
    timers: set[tuple[int, str]] = set()
    for due, key in state.timers:
        if key[:1] == "e" and EVENT_TIMER_SEP in key:
            type_, event_id = key[1:].split(EVENT_TIMER_SEP, 1)
            for e in state.loaded.get(type_, ()):
                if e.id == event_id:
                    timers.add((due, event_timer_key(type_, e.at, e.order)))
        else:
            timers.add((due, key))
    state.timers = sorted(timers)
    state.journal = None
    return state


#: Separates the parts of an event timer's trigger key.
EVENT_TIMER_SEP = "\x1f"


def event_timer_key(type_: str, at: int, order: int) -> str:
    """The trigger key of a timer on one stored event."""
    return f"e{type_}{EVENT_TIMER_SEP}{at}{EVENT_TIMER_SEP}{order}"


def parse_event_timer(key: str) -> tuple[str, int, int]:
    """(type, at, order) of an `event_timer_key`."""
    type_, at, order = key[1:].rsplit(EVENT_TIMER_SEP, 2)
    return type_, int(at), int(order)
