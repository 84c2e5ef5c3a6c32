"""Keyed insight entries: each profile's membership timeline and each segment's size history.

Two key kinds of their own, beside the profile layout of `segstream.state.layout` (they never
touch its keys or the head), written in the partition transaction and changelogged like every
other key (a restore applies them as they come):

    h lp(pid) slot (1 byte)                  timeline ring: the n-th transition of a profile
                                             (n counted over its life) in slot n % 100:
                                             [n, entered, segment, version, seq, at, cause]
    g lp(segment) res (1 byte) u64(start)    size bucket of one partition: [entered, left,
                                             members at the end], res `h` (hour) or `m` (minute)

`n` is the sum of the profile's per-segment transition counts (`seqs`, in the head), so the
ring needs no counter of its own. A profile's deletion tombstones its ring (the timeline is
personal data, forgotten with the profile): the timeline starts again at its next existence.
Size buckets older than the retention are deleted when a segment opens a new bucket.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any, Protocol

from segstream.schemas.jsontext import dumps, loads_exact
from segstream.timefmt import DAY, HOUR, MINUTE

__all__ = [
    "MINUTE_RETENTION",
    "RESOLUTIONS",
    "TIMELINE_KEPT",
    "SizeBucket",
    "Transition",
    "read_size_history",
    "read_timeline",
    "size_records",
    "timeline_records",
]

#: Transitions each profile's timeline keeps.
TIMELINE_KEPT = 100
#: Per-minute buckets are kept for the last day (hourly ones for the configured retention).
MINUTE_RETENTION = DAY
#: Resolution name -> (key byte, bucket length).
RESOLUTIONS = {"hour": (b"h", HOUR), "minute": (b"m", MINUTE)}

_RESOLUTION_CODES = tuple(RESOLUTIONS.values())
_TIMELINE = b"h"
_SIZE = b"g"
_OFFSET = 1 << 63

Records = list[tuple[bytes, bytes | None]]
#: Reads the committed value of a key (None when absent).
Get = Callable[[bytes], bytes | None]
#: Committed (key, value) pairs under a prefix, in key order.
Scan = Callable[[bytes], Iterable[tuple[bytes, bytes]]]


class Transition(Protocol):
    """What a membership change carries (engine.membership.MembershipChange)."""

    @property
    def profile_id(self) -> str: ...
    @property
    def segment_id(self) -> str: ...
    @property
    def segment_version(self) -> int: ...
    @property
    def seq(self) -> int: ...
    @property
    def entered(self) -> bool: ...
    @property
    def at(self) -> int: ...
    @property
    def cause(self) -> dict[str, str]: ...


def _lp(text: str) -> bytes:
    raw = text.encode()
    return len(raw).to_bytes(4, "big") + raw


def _u64(value: int) -> bytes:
    return (value + _OFFSET).to_bytes(8, "big")


def _timeline_prefix(profile_id: str) -> bytes:
    return _TIMELINE + _lp(profile_id)


# -- timeline ------------------------------------------------------------------------------------
def timeline_records(
    profile_id: str, changes: list[Transition], total_after: int
) -> Iterator[tuple[bytes, bytes | None]]:
    """The ring entries of one profile's transitions of one batch, in order; `total_after` is
    its transition count after them. A deletion among them clears the ring first."""
    prefix = _timeline_prefix(profile_id)
    start = 0
    for i, change in enumerate(changes):
        if change.cause.get("kind") == "profile_deleted":
            start = i + 1
    if start:
        yield from ((prefix + bytes([slot]), None) for slot in range(TIMELINE_KEPT))
    first = total_after - len(changes)
    for i in range(start, len(changes)):
        c = changes[i]
        number = first + i
        entry = [number, c.entered, c.segment_id, c.segment_version, c.seq, c.at, c.cause]
        yield prefix + bytes([number % TIMELINE_KEPT]), dumps(entry)


def read_timeline(profile_id: str, scan: Scan) -> list[dict[str, Any]]:
    """A profile's kept transitions, newest first (times as microseconds)."""
    entries = [loads_exact(value) for _key, value in scan(_timeline_prefix(profile_id))]
    entries.sort(key=lambda e: e[0], reverse=True)
    return [
        {
            "number": number,
            "type": "segment.entered" if entered else "segment.left",
            "segment_id": segment,
            "segment_version": version,
            "seq": seq,
            "at": at,
            "cause": cause,
        }
        for number, entered, segment, version, seq, at, cause in entries
    ]


# -- size history --------------------------------------------------------------------------------
@dataclass(slots=True)
class SizeBucket:
    """One segment's transitions in one bucket of one partition."""

    start: int
    entered: int = 0
    left: int = 0
    members: int = 0

    def as_json(self) -> list[int]:
        """The stored value."""
        return [self.entered, self.left, self.members]


def _size_prefix(segment_id: str, resolution: bytes) -> bytes:
    return _SIZE + _lp(segment_id) + resolution


def size_records(
    changes: Iterable[Transition],
    members_before: dict[str, int],
    get: Get,
    scan: Scan,
    retention: int,
) -> Records:
    """The size buckets a batch's transitions change (both resolutions), with deletions of the
    buckets that fall out of the retention whenever a segment opens a new bucket.
    `members_before`: each segment's member count in the partition before the batch."""
    counts = dict(members_before)
    buckets: dict[bytes, SizeBucket] = {}
    opened: set[bytes] = set()
    # (segment, resolution, bucket start) -> bucket: keys are built once per bucket, not per
    # transition (a backfill batch brings thousands into one bucket).
    current: dict[tuple[str, bytes, int], SizeBucket] = {}
    prefixes: dict[tuple[str, bytes], bytes] = {}
    for change in changes:
        sid = change.segment_id
        count = counts[sid] = counts.get(sid, 0) + (1 if change.entered else -1)
        at = change.at
        for code, length in _RESOLUTION_CODES:
            start = at - at % length
            bucket = current.get((sid, code, start))
            if bucket is None:
                prefix = prefixes.get((sid, code))
                if prefix is None:
                    prefix = prefixes[sid, code] = _size_prefix(sid, code)
                key = prefix + _u64(start)
                bucket = buckets[key] = current[sid, code, start] = _stored_bucket(key, start, get)
                if bucket.entered + bucket.left == 0:
                    opened.add(key)
            if change.entered:
                bucket.entered += 1
            else:
                bucket.left += 1
            bucket.members = count
    records: Records = []
    for key, bucket in buckets.items():
        if key in opened:
            records.extend(_expired(key, bucket.start, scan, retention))
        records.append((key, dumps(bucket.as_json())))
    return records


def _stored_bucket(key: bytes, start: int, get: Get) -> SizeBucket:
    raw = get(key)
    if raw is None:
        return SizeBucket(start)
    entered, left, members = loads_exact(raw)
    return SizeBucket(start, entered, left, members)


def _expired(
    key: bytes, start: int, scan: Scan, retention: int
) -> Iterator[tuple[bytes, bytes | None]]:
    """Deletions of the buckets of `key`'s segment and resolution older than the retention."""
    prefix = key[:-8]
    keep = MINUTE_RETENTION if prefix.endswith(RESOLUTIONS["minute"][0]) else retention
    cutoff = start - keep
    for old, _ in scan(prefix):
        if int.from_bytes(old[-8:], "big") - _OFFSET >= cutoff:
            return
        yield old, None


def read_size_history(segment_id: str, resolution: str, since: int, scan: Scan) -> list[SizeBucket]:
    """One partition's buckets of a segment at a resolution from `since` on, oldest first,
    with the last bucket before `since` first (members carried into the range), if any."""
    code, _length = RESOLUTIONS[resolution]
    prefix = _size_prefix(segment_id, code)
    found: list[SizeBucket] = []
    before: SizeBucket | None = None
    for key, value in scan(prefix):
        start = int.from_bytes(key[-8:], "big") - _OFFSET
        entered, left, members = loads_exact(value)
        bucket = SizeBucket(start, entered, left, members)
        if start < since:
            before = bucket
        else:
            found.append(bucket)
    return ([before] if before is not None else []) + found
