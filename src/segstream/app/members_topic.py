"""The current-membership topic (SPEC §6.1): its records, and its seeding on upgrade.

Every membership event a partition emits is mirrored, in the same transaction and to the same
partition, by one record keyed `segment_id/profile_id`: the membership while the profile is a
member, a tombstone once it left. Read from the beginning (read_committed), the compacted topic
holds exactly the current members; then followed, every later change.

A deployment that ran before this topic existed has members the topic never saw. Each
partition seeds them once from its member index, in transactions of SEED_BATCH records: the
seeding cursor and, at the end, the marker `members-topic` are partition meta (changelogged),
written in the transaction that writes the records, so a crash mid-seed resumes after the
last committed slice and a restored store knows it was seeded. A new partition (empty store)
writes the marker in its first seeding transaction, which has no records.
"""

from __future__ import annotations

import logging
from typing import Any

from segstream.app.store import PartitionStore, meta_key, profile_key
from segstream.engine.membership import MembershipChange
from segstream.engine.registry import SegmentRegistry
from segstream.schemas.jsontext import dumps
from segstream.state.layout import load_profile
from segstream.timefmt import format_instant

__all__ = [
    "SEEDED",
    "SEED_BATCH",
    "SEED_CURSOR",
    "members_key",
    "members_record",
    "members_value",
    "seed_slice",
]

log = logging.getLogger("segstream.members")

#: Partition meta: present once the partition's members were written to the topic.
SEEDED = "members-topic"
#: Partition meta: the last (segment id, profile id) seeded, while seeding is under way.
SEED_CURSOR = "members-topic-cursor"
#: Members written per seeding transaction.
SEED_BATCH = 5000


def members_key(segment_id: str, profile_id: str) -> bytes:
    """`segment_id/profile_id`, UTF-8 (segment ids have no `/`, so the first one splits)."""
    return f"{segment_id}/{profile_id}".encode()


def members_value(
    segment_id: str, profile_id: str, version: int, entered_at: int, seq: int
) -> bytes:
    """The value of a current membership (schemas/current-membership.schema.json)."""
    return dumps(
        {
            "segment_id": segment_id,
            "profile_id": profile_id,
            "segment_version": version,
            "entered_at": format_instant(entered_at),
            "seq": seq,
        }
    )


def members_record(change: MembershipChange) -> tuple[bytes, bytes | None]:
    """(key, value) mirroring a transition: the membership it starts, or a tombstone."""
    key = members_key(change.segment_id, change.profile_id)
    if not change.entered:
        return key, None
    value = members_value(
        change.segment_id, change.profile_id, change.segment_version, change.at, change.seq
    )
    return key, value


def seed_slice(
    store: PartitionStore, registry: SegmentRegistry, limit: int = SEED_BATCH
) -> tuple[list[tuple[bytes, bytes]], dict[str, bytes | None]]:
    """The next up to `limit` members of the store's member index to write, and the meta
    entries the same transaction must write (the new cursor, or the marker when done).

    A seeded membership carries the `seq` and entered instant the profile holds for it, and
    the segment's installed version (the store keeps no version per membership).
    """
    raw_cursor = store.get(meta_key(SEED_CURSOR))
    after: tuple[str, str] | None = None
    if raw_cursor is not None:
        segment_id, _, profile_id = raw_cursor.decode().partition("\x00")
        after = (segment_id, profile_id)
    records: list[tuple[bytes, bytes]] = []
    last: tuple[str, str] | None = None
    for segment_id, profile_id, entered in store.member_entries_from(after):
        if len(records) >= limit:
            break
        last = (segment_id, profile_id)
        record = _seed_record(store, registry, segment_id, profile_id, entered)
        if record is not None:
            records.append(record)
    else:
        return records, {SEED_CURSOR: None, SEEDED: b"1"}
    assert last is not None
    return records, {SEED_CURSOR: f"{last[0]}\x00{last[1]}".encode()}


def _seed_record(
    store: PartitionStore,
    registry: SegmentRegistry,
    segment_id: str,
    profile_id: str,
    entered: int,
) -> tuple[bytes, bytes] | None:
    segment = registry.segments.get(segment_id)
    raw = store.get(profile_key(profile_id))
    if segment is None or raw is None:
        # A deleted segment's members leave it (and get tombstones) by its deletion pass.
        return None
    state: Any = load_profile(profile_id, raw, store.scan, for_update=False)
    seq = state.seqs.get(segment_id, 0)
    if seq < 1:
        return None
    value = members_value(segment_id, profile_id, segment.version, entered, seq)
    return members_key(segment_id, profile_id), value
