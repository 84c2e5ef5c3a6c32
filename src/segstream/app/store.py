"""One input partition's RocksDB store: profile states, partition meta, and derived indexes.

Key layout (one rocksdict DB per partition, three column families):

    default  p<profile id>                 a profile's head                   changelogged
             e, d, t + lp(profile id)...   its history, dedupe ring, timers   changelogged
             w<profile id>                 old generations to sweep           changelogged
                                           (`segstream.state.layout`, format 2)
    meta     m<name>                       partition meta (catalogue, backfills)  changelogged
             \\0changelog-offset            last changelog offset applied
             \\0format                      the store's format (absent: format 1)
    derived  n<profile id>                 next due instant, 8 bytes   (rebuilt on restore)
             s<segment id>\\0<profile id>   entered instant, 8 bytes: the member index
             i lp(path) lp(key) <profile id>  empty: the guard index (docs/state.md)
    meta     \\0gindex \\0gbuild             the guard index's built paths and build queue
                                           (local, like the derived keys they describe)

Each key's family follows from its first byte (`_family`), so callers use one key space.
Keeping the derived indexes and the metadata out of the profile data means scans of one never
step over the other, and each family has its own memtables and files.

The store serves committed data only: a transaction (`segstream.app.transaction`) holds its
own writes and hands them to `write` after the Kafka commit, together with the changelog offset
they reach. The derived keys are recomputed from the old and new state of each profile written.
"""

from __future__ import annotations

import heapq
import shutil
from collections.abc import Collection, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rocksdict import BlockBasedOptions, Cache, Options, Rdict, ReadOptions, WriteBatch

from segstream.rules.compile import index_keys
from segstream.rules.operators import terminals
from segstream.schemas.jsontext import dumps, loads_exact
from segstream.state.layout import (
    FORMAT,
    HEAD_PREFIX,
    SWEEP_PREFIX,
    Records,
    head_format,
    head_key,
    head_parts,
)

__all__ = [
    "FORMAT_KEY",
    "OFFSET_KEY",
    "IndexStep",
    "PartitionStore",
    "ProfileWrite",
    "meta_key",
    "profile_key",
]

OFFSET_KEY = b"\x00changelog-offset"
FORMAT_KEY = b"\x00format"
_PROFILE = HEAD_PREFIX
_META = b"m"
_DUE = b"n"
_MEMBER = b"s"
_GUARD = b"i"
_SEP = b"\x00"
#: The guard index's paths: built (a list of paths) and being built (a list of [path, cursor]),
#: local to this store like the index keys themselves (never changelogged).
GINDEX_KEY = b"\x00gindex"
GBUILD_KEY = b"\x00gbuild"
_DERIVED_FIRST = (_DUE, _MEMBER, _GUARD)

#: A trait path as the registry's guards name it.
TraitPath = tuple[str, ...]
_META_FAMILY = "meta"
_DERIVED_FAMILY = "derived"


def profile_key(profile_id: str) -> bytes:
    """The store (and changelog) key of a profile's head."""
    return head_key(profile_id)


def meta_key(name: str) -> bytes:
    """The store (and changelog) key of a partition meta entry."""
    return _META + name.encode()


def _prefix_end(prefix: bytes) -> bytes | None:
    """The first key after every key that starts with `prefix` (None: there is none)."""
    trimmed = prefix.rstrip(b"\xff")
    if not trimmed:
        return None
    return trimmed[:-1] + bytes([trimmed[-1] + 1])


def _member_key(segment_id: str, profile_id: str) -> bytes:
    return _MEMBER + segment_id.encode() + _SEP + profile_id.encode()


def _lp(data: bytes) -> bytes:
    return len(data).to_bytes(4, "big") + data


def guard_path_prefix(parts: TraitPath) -> bytes:
    """The guard index's prefix of one trait path."""
    return _GUARD + _lp(dumps(list(parts)))


def guard_key_bytes(key: tuple[str, Any]) -> bytes:
    """An index key (`rules.compile.index_key`) as bytes, equal exactly when the keys are
    (`1`, `1.0` and `-0.0`/`0` are one key there, as they are in the guards' sets)."""
    kind, value = key
    if kind == "s":
        text = value
    elif kind == "b":
        text = "1" if value else "0"
    elif isinstance(value, float) and not value.is_integer():
        text = repr(value)
    else:
        text = str(int(value))
    return _lp((kind + text).encode())


def guard_keys(traits: Mapping[str, Any], parts: TraitPath) -> set[tuple[str, Any]]:
    """The index keys of a profile with these traits at a path (what the guard trie uses)."""
    return index_keys(terminals(traits, parts))


@dataclass(frozen=True, slots=True)
class ProfileWrite:
    """A profile's changed keys as one transaction commits them, with what its derived keys
    need. Traits None: `traits` from the head among the records (none there: unchanged),
    `traits_before` from the stored head (only read while a guard path is indexed)."""

    profile_id: str
    records: Records
    due: int | None
    members_before: dict[str, int]
    members: dict[str, int]
    traits_before: Mapping[str, Any] | None = None
    traits: Mapping[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class IndexStep:
    """A slice of the guard index's build pass, read from the committed heads and written
    with its transaction (`PartitionStore.write`)."""

    path: TraitPath
    start: str | None  # the build cursor it continues from
    cursor: str | None  # the last profile id it indexed
    keys: list[bytes]
    heads: int  # heads read
    finished: bool  # no head after `cursor`: the path is built


def _instant(us: int) -> bytes:
    return us.to_bytes(8, "big", signed=True)


class PartitionStore:
    """The RocksDB store of one input partition."""

    def __init__(self, path: Path, *, block_cache_bytes: int, write_buffer_bytes: int) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        options = Options(raw_mode=True)
        options.create_if_missing(True)
        table = BlockBasedOptions()
        table.set_block_cache(Cache(block_cache_bytes))
        options.set_block_based_table_factory(table)
        options.set_write_buffer_size(write_buffer_bytes)
        options.create_missing_column_families(True)
        families = {name: Options(raw_mode=True) for name in (_META_FAMILY, _DERIVED_FAMILY)}
        self._db = Rdict(str(path), options, column_families=families)
        self._closed = False
        self._meta = self._db.get_column_family(_META_FAMILY)
        self._derived = self._db.get_column_family(_DERIVED_FAMILY)
        self._handles = {
            _META_FAMILY: self._db.get_column_family_handle(_META_FAMILY),
            _DERIVED_FAMILY: self._db.get_column_family_handle(_DERIVED_FAMILY),
        }
        #: The guard index: built paths, and the paths being built with their cursors (the
        #: first one builds; see `index_step`).
        self._built: list[TraitPath] = [
            tuple(p) for p in loads_exact(self._meta.get(GINDEX_KEY) or b"[]")
        ]
        self._building: list[tuple[TraitPath, str | None]] = [
            (tuple(p), c) for p, c in loads_exact(self._meta.get(GBUILD_KEY) or b"[]")
        ]

    def _family(self, key: bytes) -> Rdict:
        first = key[:1]
        if first in (_META, _SEP):
            return self._meta
        if first in _DERIVED_FIRST:
            return self._derived
        return self._db

    def _handle(self, key: bytes) -> Any:
        first = key[:1]
        if first in (_META, _SEP):
            return self._handles[_META_FAMILY]
        if first in _DERIVED_FIRST:
            return self._handles[_DERIVED_FAMILY]
        return None

    @staticmethod
    def _put(batch: WriteBatch, handle: Any, key: bytes, value: bytes) -> None:
        if handle is None:
            batch.put(key, value)
        else:
            batch.put(key, value, handle)

    @staticmethod
    def _delete(batch: WriteBatch, handle: Any, key: bytes) -> None:
        if handle is None:
            batch.delete(key)
        else:
            batch.delete(key, handle)

    def close(self) -> None:
        """Close the DB (again: nothing).

        RocksDB lets go of the directory's lock only when nothing refers to the DB: not the
        column families, not their handles, not an iterator. The handles go with the close,
        and no iterator outlives the read that made it, so the lock goes now, not when the
        collector frees this object (a store another object still held kept the partition
        from opening again in this process: `lock hold by current process`)."""
        if self._closed:
            return
        self._closed = True
        self._handles.clear()
        self._meta.close()
        self._derived.close()
        self._db.close()

    @staticmethod
    def destroy(path: Path) -> None:
        """Delete a store directory (its contents are rebuilt from the changelog)."""
        shutil.rmtree(path, ignore_errors=True)

    # -- reads -------------------------------------------------------------------------------
    def get(self, key: bytes) -> bytes | None:
        """A committed value."""
        value: bytes | None = self._family(key).get(key)
        return value

    def changelog_offset(self) -> int | None:
        """The last changelog offset this store reflects."""
        raw = self._meta.get(OFFSET_KEY)
        return int(raw) if raw is not None else None

    def profile_ids_after(self, cursor: str | None, limit: int) -> list[str]:
        """Up to `limit` stored profile ids after `cursor`, in key order."""
        start = profile_key(cursor) + _SEP if cursor is not None else _PROFILE
        return [key[1:].decode() for key, _ in _walk(self._db, start, _PROFILE, limit)]

    def profile_heads_after(self, cursor: str | None, limit: int) -> list[tuple[str, bytes]]:
        """Up to `limit` (profile id, stored head) after `cursor`, in key order (one
        iterator: what a backfill walks)."""
        start = profile_key(cursor) + _SEP if cursor is not None else _PROFILE
        return [(key[1:].decode(), value) for key, value in _walk(self._db, start, _PROFILE, limit)]

    def count_profiles(self) -> int:
        """How many profiles the store holds (a key scan)."""
        return sum(1 for _ in self._prefix(_PROFILE))

    def scan_due(self) -> Iterator[tuple[str, int]]:
        """Every (profile id, next due instant) stored, to rebuild the in-memory index."""
        yield from (
            (k[1:].decode(), int.from_bytes(v, "big", signed=True)) for k, v in self._prefix(_DUE)
        )

    def scan_members(self) -> Iterator[tuple[str, str]]:
        """Every (segment id, profile id) membership stored."""
        for key, _ in self._prefix(_MEMBER):
            segment, _, profile = key[1:].partition(_SEP)
            yield segment.decode(), profile.decode()

    def members_after(self, segment_id: str, cursor: str | None, limit: int) -> list[str]:
        """Up to `limit` members of a segment after `cursor`, in key order."""
        prefix = _MEMBER + segment_id.encode() + _SEP
        start = prefix + cursor.encode() + _SEP if cursor is not None else prefix
        return [
            key[len(prefix) :].decode() for key, _ in _walk(self._derived, start, prefix, limit)
        ]

    def member_entries_from(self, after: tuple[str, str] | None) -> Iterator[tuple[str, str, int]]:
        """(segment id, profile id, entered instant) of every membership after `after`
        (a (segment id, profile id) pair), in key order."""
        start = _member_key(*after) + _SEP if after is not None else _MEMBER
        it = self._derived.iter()
        it.seek(start)
        while it.valid():
            key: bytes = it.key()
            if not key.startswith(_MEMBER):
                return
            segment, _, profile = key[1:].partition(_SEP)
            yield segment.decode(), profile.decode(), int.from_bytes(it.value(), "big", signed=True)
            it.next()

    def member_entries_after(
        self, segment_id: str, cursor: str | None, limit: int
    ) -> list[tuple[str, int]]:
        """Up to `limit` (member id, entered instant) of a segment after `cursor`, in key
        order (what an export reads)."""
        prefix = _MEMBER + segment_id.encode() + _SEP
        start = prefix + cursor.encode() + _SEP if cursor is not None else prefix
        return [
            (key[len(prefix) :].decode(), int.from_bytes(value, "big", signed=True))
            for key, value in _walk(self._derived, start, prefix, limit)
        ]

    # -- the guard index (docs/state.md "Guard index") ------------------------------------
    def indexed_paths(self) -> frozenset[TraitPath]:
        """The guard paths whose index is complete."""
        return frozenset(self._built)

    def index_building(self) -> tuple[TraitPath, str | None] | None:
        """The path the build pass is on and its cursor (None: nothing to build)."""
        return self._building[0] if self._building else None

    def sync_index(self, paths: Collection[TraitPath]) -> None:
        """Index exactly these guard paths: a path not yet indexed joins the build queue
        (its cursor at the start), and the keys of a path no longer wanted are deleted (one
        range delete; nothing reads them). Local, like the keys: one write batch."""
        wanted = set(paths)
        known = set(self._built) | {p for p, _ in self._building}
        if wanted == known:
            return
        batch = WriteBatch(raw_mode=True)
        derived = self._handles[_DERIVED_FAMILY]
        for parts in known - wanted:
            prefix = guard_path_prefix(parts)
            end = _prefix_end(prefix)
            assert end is not None
            batch.delete_range(prefix, end, derived)
        built = [p for p in self._built if p in wanted]
        building = [(p, c) for p, c in self._building if p in wanted]
        building.extend((p, None) for p in sorted(wanted - known))
        self._index_meta(batch, built, building)
        self._db.write(batch)
        self._built, self._building = built, building

    def _index_meta(
        self,
        batch: WriteBatch,
        built: list[TraitPath],
        building: list[tuple[TraitPath, str | None]],
    ) -> None:
        self._set(batch, GINDEX_KEY, dumps([list(p) for p in built]) if built else None)
        self._set(
            batch, GBUILD_KEY, dumps([[list(p), c] for p, c in building]) if building else None
        )

    def index_step(self, limit: int, previous: IndexStep | None = None) -> IndexStep | None:
        """The next `limit` heads of the build pass indexed (after `previous`, a step of the
        same transaction not written yet); None when nothing is being built."""
        if not self._building:
            return None
        path, cursor = self._building[0]
        keys: list[bytes] = []
        start = cursor
        if previous is not None and previous.path == path:
            if previous.finished:
                return previous
            cursor, start, keys = previous.cursor, previous.start, list(previous.keys)
        prefix = guard_path_prefix(path)
        heads = self.profile_heads_after(cursor, limit)
        for profile_id, raw in heads:
            traits = head_parts(raw)[3]
            if traits:
                pid = profile_id.encode()
                keys.extend(prefix + guard_key_bytes(k) + pid for k in guard_keys(traits, path))
        return IndexStep(
            path,
            start,
            heads[-1][0] if heads else cursor,
            keys,
            len(heads) + (previous.heads if previous is not None else 0),
            len(heads) < limit,
        )

    def guard_entries(self, parts: TraitPath, keys: Iterable[tuple[str, Any]], cap: int) -> int:
        """How many index entries these keys of a built path have (counting stops at `cap`)."""
        prefix = guard_path_prefix(parts)
        found = 0
        for key in keys:
            for _ in self._prefix(prefix + guard_key_bytes(key)):
                found += 1
                if found >= cap:
                    return found
        return found

    def guarded_ids_after(
        self,
        sources: Iterable[tuple[TraitPath, tuple[str, Any]] | str],
        cursor: str | None,
        limit: int,
        extra: Iterable[str] = (),
    ) -> list[str]:
        """Up to `limit` profile ids after `cursor`, in key order, that are under one of the
        sources — an index key of a built guard path, or (a string) a segment's member
        index — or in `extra`: one merge of their range scans, each id once."""
        after = cursor.encode() + _SEP if cursor is not None else b""
        streams: list[Iterator[bytes]] = []
        for source in sources:
            if isinstance(source, str):
                prefix = _MEMBER + source.encode() + _SEP
            else:
                prefix = guard_path_prefix(source[0]) + guard_key_bytes(source[1])
            streams.append(_suffixes(self._prefix(prefix, prefix + after), len(prefix)))
        streams.append(iter(sorted(p.encode() for p in extra if cursor is None or p > cursor)))
        found: list[str] = []
        last: bytes | None = None
        for pid in heapq.merge(*streams):
            if pid != last:
                found.append(pid.decode())
                last = pid
                if len(found) >= limit:
                    break
        return found

    def heads(self, profile_ids: list[str]) -> list[bytes | None]:
        """The stored heads of these profiles (one multi-get)."""
        if not profile_ids:
            return []
        found: list[bytes | None] = self._db.get([profile_key(p) for p in profile_ids]) or []
        return found

    def scan_guards(self) -> Iterator[tuple[bytes, bytes]]:
        """Every guard index entry (path and key prefix, profile id undecoded): for tests."""
        yield from self._prefix(_GUARD)

    def meta_items(self, prefix: str) -> Iterator[tuple[str, bytes]]:
        """Stored meta entries whose name starts with `prefix` (name without it, value)."""
        start = meta_key(prefix)
        for key, value in self._prefix(start):
            yield key[len(start) :].decode(), value

    def scan(self, prefix: bytes, start: bytes = b"") -> Iterator[tuple[bytes, bytes]]:
        """Committed (key, value) pairs whose keys start with `prefix`, in key order, from
        the first at or after `start` (one seek; read lazily)."""
        return self._prefix(prefix, start)

    def sweep_pending(self) -> bool:
        """True when deleted profiles' old generations await the sweep (one seek)."""
        return next(self._prefix(SWEEP_PREFIX), None) is not None

    def stored_format(self) -> int | None:
        """The format of the store's profile data: FORMAT, 1 (written before the keyed layout),
        or None when it holds no profile yet."""
        raw = self._meta.get(FORMAT_KEY)
        if raw is not None:
            return int(raw)
        for _key, value in self._prefix(_PROFILE):
            return head_format(value)
        return None

    def mark_format(self) -> None:
        """Record that the store holds the current format."""
        self._meta.put(FORMAT_KEY, str(FORMAT).encode())

    def _prefix(self, prefix: bytes, start: bytes = b"") -> Iterator[tuple[bytes, bytes]]:
        # RocksDB stops the iterator at the prefix's end (an upper bound), so each pair comes
        # from one call into rocksdict instead of four and a test: a profile's few keys (its
        # timers, its dedupe ring) cost a third of what a Python-stepped iterator did.
        options = ReadOptions()
        end = _prefix_end(prefix)
        if end is not None:
            options.set_iterate_upper_bound(end)
        # Raw mode: keys and values are bytes.
        items: Iterator[tuple[bytes, bytes]] = iter(
            self._family(prefix).items(from_key=max(prefix, start), read_opt=options)  # type: ignore[arg-type]
        )
        # A generator, so that `options` (which owns the bound the iterator reads) lives
        # as long as the iterator does.
        if end is not None:
            yield from items
        else:
            for key, value in items:
                if not key.startswith(prefix):
                    return
                yield key, value

    # -- writes ------------------------------------------------------------------------------
    def write(
        self,
        profiles: Iterable[ProfileWrite],
        meta: Mapping[bytes, bytes | None],
        changelog_offset: int | None,
        swept: Iterable[tuple[bytes, bytes | None]] = (),
        index: IndexStep | None = None,
    ) -> None:
        """Write a committed transaction: profile states with their derived keys, meta entries
        (None deletes), the sweep's tombstones, a step of the guard index's build pass, and
        the changelog offset they reach, in one RocksDB write batch."""
        batch = WriteBatch(raw_mode=True)
        built, building = self._built, self._building
        if index is not None and building and building[0][0] == index.path:
            # The build pass's keys first: the profiles written below that it indexed from
            # their committed heads then get their keys moved by the upkeep.
            derived = self._handles[_DERIVED_FAMILY]
            for key in index.keys:
                batch.put(key, b"", derived)
            if index.finished:
                built, building = [*built, index.path], building[1:]
            else:
                building = [(index.path, index.cursor), *building[1:]]
            self._index_meta(batch, built, building)
        indexed = self._maintained(built, building)
        for write in profiles:
            for key, value in write.records:
                self._set(batch, key, value)
            self._derive(batch, write.profile_id, write.due, write.members_before, write.members)
            if indexed:
                self._derive_guards(batch, write, indexed)
        for key, value in meta.items():
            self._set(batch, key, value)
        for key, value in swept:
            self._set(batch, key, value)
        if changelog_offset is not None:
            self._set(batch, OFFSET_KEY, str(changelog_offset).encode())
        self._db.write(batch)
        self._built, self._building = built, building

    def apply_changelog(
        self,
        records: Mapping[bytes, bytes | None] | Iterable[tuple[bytes, bytes | None]],
        offset: int,
    ) -> None:
        """Apply changelog records read during a restore, up to `offset` (pairs, or the last
        value per key): one multi-get for the heads' previous values (their derived keys),
        one write batch."""
        batch = WriteBatch(raw_mode=True)
        latest = records if isinstance(records, Mapping) else dict(records)
        heads = [key for key in latest if key[:1] == _PROFILE]
        olds: list[bytes | None] = (self._db.get(heads) if heads else None) or []
        indexed = self._maintained(self._built, self._building)
        for key, old_raw in zip(heads, olds, strict=True):
            value = latest[key]
            _, old, _, traits_before = head_parts(old_raw) if old_raw is not None else _NO_HEAD
            _, members, due, traits = head_parts(value) if value is not None else _NO_HEAD
            profile_id = key[1:].decode()
            self._derive(batch, profile_id, due, old, members)
            if indexed:
                self._guard_keys(batch, profile_id, traits_before, traits, indexed)
        meta_first = (_META, _SEP)
        put, delete = batch.put, batch.delete
        for key, value in latest.items():
            # Profile data (most records) goes to the default family; meta to its own.
            if key[:1] in meta_first:
                self._set(batch, key, value)
            elif value is None:
                delete(key)
            else:
                put(key, value)
        self._set(batch, OFFSET_KEY, str(offset).encode())
        self._db.write(batch)

    def _set(self, batch: WriteBatch, key: bytes, value: bytes | None) -> None:
        """Put (None: delete) a key in its column family."""
        handle = self._handle(key)
        if value is None:
            self._delete(batch, handle, key)
        else:
            self._put(batch, handle, key, value)

    def _derive(
        self,
        batch: WriteBatch,
        profile_id: str,
        due: int | None,
        before: dict[str, int],
        after: dict[str, int],
    ) -> None:
        derived = self._handles[_DERIVED_FAMILY]
        due_key = _DUE + profile_id.encode()
        if due is None:
            batch.delete(due_key, derived)
        else:
            batch.put(due_key, _instant(due), derived)
        for segment_id in before.keys() - after.keys():
            batch.delete(_member_key(segment_id, profile_id), derived)
        for segment_id, entered in after.items():
            if before.get(segment_id) != entered:
                batch.put(_member_key(segment_id, profile_id), _instant(entered), derived)

    @staticmethod
    def _maintained(
        built: list[TraitPath], building: list[tuple[TraitPath, str | None]]
    ) -> list[tuple[TraitPath, str | None]]:
        """The paths writes maintain, each with the last profile id it covers (None: all)."""
        indexed: list[tuple[TraitPath, str | None]] = [(p, None) for p in built]
        indexed.extend((p, c) for p, c in building if c is not None)
        return indexed

    def _derive_guards(
        self, batch: WriteBatch, write: ProfileWrite, indexed: list[tuple[TraitPath, str | None]]
    ) -> None:
        traits = write.traits
        if traits is None:
            head = next((v for k, v in write.records if k[:1] == _PROFILE), _UNCHANGED)
            if head is _UNCHANGED:
                return  # the head, and so the traits, did not change
            traits = head_parts(head)[3] if head is not None else {}
        before = write.traits_before
        if before is None:
            raw = self._db.get(profile_key(write.profile_id))
            before = head_parts(raw)[3] if raw is not None else {}
        self._guard_keys(batch, write.profile_id, before, traits, indexed)

    def _guard_keys(
        self,
        batch: WriteBatch,
        profile_id: str,
        before: Mapping[str, Any],
        after: Mapping[str, Any],
        indexed: list[tuple[TraitPath, str | None]],
    ) -> None:
        """Move a profile's guard index keys from its old traits to its new ones: a
        comparison per indexed path, writes only where its keys differ."""
        # Equal traits have equal keys on every path: most writes (activity) change no trait.
        if before is after or before == after:
            return
        derived = self._handles[_DERIVED_FAMILY]
        pid = profile_id.encode()
        for parts, covers in indexed:
            if covers is not None and profile_id > covers:
                continue  # ahead of the build pass, which indexes it when it gets there
            old = guard_keys(before, parts) if before else set()
            new = guard_keys(after, parts) if after else set()
            if old == new:
                continue
            prefix = guard_path_prefix(parts)
            for k in old - new:
                batch.delete(prefix + guard_key_bytes(k) + pid, derived)
            for k in new - old:
                batch.put(prefix + guard_key_bytes(k) + pid, b"", derived)


#: What a missing head contributes to the derived keys.
_NO_HEAD: tuple[bool, dict[str, int], int | None, dict[str, Any]] = (False, {}, None, {})
_UNCHANGED = b"\x00unchanged"


def _suffixes(items: Iterator[tuple[bytes, bytes]], start: int) -> Iterator[bytes]:
    for key, _ in items:
        yield key[start:]


def _walk(db: Any, start: bytes, prefix: bytes, limit: int) -> list[tuple[bytes, bytes]]:
    """Up to `limit` (key, value) of `db` from `start` on while the keys start with `prefix`:
    one iterator, no per-key lookups."""
    found: list[tuple[bytes, bytes]] = []
    it = db.iter()
    it.seek(start)
    while it.valid() and len(found) < limit:
        key: bytes = it.key()
        if not key.startswith(prefix):
            break
        found.append((key, it.value()))
        it.next()
    return found
