"""One input partition under the Faust runtime: the pure engine over that partition's tables.

The Faust agent hands each record of partition `p` (an input event, a segment control record or
a tick, in the order read) to `FaustPartition.handle`, which runs the engine and returns a
`Step`: the records to produce (membership events, dead letters) and the table writes (profile
states, partition meta entries). The agent produces the records, waits until the broker has
acknowledged every one of them, and only then writes the tables (RocksDB and changelog). So the
state that marks an event seen never exists without the output it caused: a crash in between
replays the event and repeats its transitions (same `id`), it never loses one.

Nothing here imports Faust: the tables are reached through `PartitionTables`, which the Faust
shell implements over the partition's RocksDB database (and a dict in the unit tests).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol

from segstream.app.collector import RecordCollector, wall_us
from segstream.app.internal_records import control_segment_record, stored_segment_record
from segstream.app.metrics import WorkerMetrics
from segstream.app.settings import WorkerSettings
from segstream.engine.backfill import BackfillJob, BackfillQueue
from segstream.engine.membership import MembershipChange
from segstream.engine.processor import SegmentEngine
from segstream.engine.registry import SegmentRegistry
from segstream.engine.status import partition_status
from segstream.errors import InvalidDefinition, InvalidRecord
from segstream.rules import condition_fingerprint
from segstream.schemas.events import decode_key, parse_input_record
from segstream.schemas.jsontext import dumps
from segstream.state.codec import decode_profile, encode_profile
from segstream.state.due_index import DueIndex
from segstream.state.profile import ProfileState
from segstream.timefmt import HOUR

__all__ = ["TICK_KEY", "FaustPartition", "PartitionTables", "Step"]

log = logging.getLogger("segstream.faust.partition")

#: Key of a tick record on the control topic (segment control records carry the segment id).
TICK_KEY = b"tick"
#: A tick's backfill slice stops after this much evaluation (checked every BACKFILL_STEP).
BACKFILL_SLICE_S = 0.1
BACKFILL_STEP = 200
#: Meta entries: the backfill queue, each segment's definition and last version seen.
JOBS = "jobs"
SEGMENT = "seg:"
VERSION = "ver:"


class PartitionTables(Protocol):
    """The partition's two tables: profile states by id, and the partition's meta entries."""

    def profile(self, profile_id: str) -> bytes | None:
        """The stored state of a profile (`encode_profile` bytes), or None."""

    def profile_items(self) -> Iterable[tuple[str, bytes]]:
        """Every stored profile of the partition (to rebuild the due index)."""

    def profile_ids_after(self, cursor: str | None, limit: int) -> list[str]:
        """Up to `limit` stored profile ids after `cursor`, in key order."""

    def meta_items(self) -> Iterable[tuple[str, bytes]]:
        """Every meta entry of the partition (name, value)."""

    def write(self, profiles: dict[str, bytes], meta: dict[str, bytes]) -> None:
        """Write profile states and meta entries (an empty value deletes a meta entry)."""


@dataclass
class Step:
    """What handling one record decided: records to produce, then tables to write."""

    collector: RecordCollector
    profiles: dict[str, bytes] = field(default_factory=dict)
    meta: dict[str, bytes] = field(default_factory=dict)
    changes: list[MembershipChange] = field(default_factory=list)


class _StepProfiles:
    """The engine's profile store for one step: the step's own states first, then the table."""

    def __init__(self, tables: PartitionTables) -> None:
        self._tables = tables
        self.loaded: dict[str, ProfileState] = {}
        self.dirty: set[str] = set()

    def get(self, profile_id: str) -> ProfileState | None:
        state = self.loaded.get(profile_id)
        if state is None:
            raw = self._tables.profile(profile_id)
            if raw is None:
                return None
            state = self.loaded[profile_id] = decode_profile(raw)
        return state

    def put(self, profile_id: str, state: ProfileState) -> None:
        self.loaded[profile_id] = state
        self.dirty.add(profile_id)

    def profile_ids(self) -> Iterator[str]:
        cursor: str | None = None
        while batch := self._tables.profile_ids_after(cursor, 1000):
            yield from batch
            cursor = batch[-1]


class FaustPartition:
    """The in-memory side of one partition (registry, due index, backfills, clock), loaded
    from its tables when the partition's first record arrives after an assignment."""

    def __init__(
        self,
        partition: int,
        settings: WorkerSettings,
        metrics: WorkerMetrics,
        tables: PartitionTables,
        control_topic: str,
        skipped: set[str] | None = None,
    ) -> None:
        self.partition = partition
        self.control_topic = control_topic
        #: Profiles whose timer or backfill step raised: no timers, backfills pass them over
        #: (kept by the caller across reloads, as the native worker keeps them per task).
        self.skipped: set[str] = skipped if skipped is not None else set()
        self.settings = settings
        self.metrics = metrics
        self.tables = tables
        self.now = 0
        self.registry = SegmentRegistry(settings.history_retention)
        self.due = DueIndex()
        self.jobs = BackfillQueue()
        self.members: dict[str, int] = {}
        self._load()

    # -- loading -----------------------------------------------------------------------------
    def _load(self) -> None:
        started = time.monotonic()
        registry = SegmentRegistry(self.settings.history_retention)
        versions: dict[str, int] = {}
        jobs = BackfillQueue()
        for name, value in self.tables.meta_items():
            if not value:
                continue
            if name.startswith(SEGMENT):
                record = stored_segment_record(
                    self.partition, value, self.settings.history_retention, self.metrics
                )
                if record is None:
                    continue
                try:
                    registry.install(
                        _definition(record),
                        record["version"],
                        condition_fingerprint(record["condition"]),
                    )
                except InvalidDefinition as exc:
                    log.warning(
                        "partition %d: stored segment not installed: %s", self.partition, exc
                    )
            elif name.startswith(VERSION):
                versions[name[len(VERSION) :]] = int(value)
            elif name == JOBS:
                jobs = BackfillQueue.decode(value)
        for sid, version in versions.items():
            registry.versions[sid] = max(registry.versions.get(sid, 0), version)
        due = DueIndex()
        members: dict[str, int] = {}
        for profile_id, raw in self.tables.profile_items():
            state = decode_profile(raw)
            if profile_id not in self.skipped:
                due.set(profile_id, state.next_due)
            for sid in state.members:
                members[sid] = members.get(sid, 0) + 1
        self.registry, self.jobs, self.due, self.members = registry, jobs, due, members
        log.info(
            "partition %d loaded in %.2fs: %d segments, %d timers, %d backfills",
            self.partition,
            time.monotonic() - started,
            len(registry.segments),
            len(due),
            len(jobs.jobs),
        )

    # -- handling one record -----------------------------------------------------------------
    def handle(self, topic: str, message: Any) -> Step:
        """Run the engine on one record of this partition (see the module docstring).

        Due timers fire first, as in the native worker. The in-memory state moves on at once;
        if this raises, or the caller cannot complete the step, the caller must drop this
        object (and load anew). A `ProfileProcessingError` names a profile whose timer or
        backfill step failed: the caller adds it to `skipped` and handles the record again.
        """
        collector = RecordCollector(self.settings.topics, self.partition, self.metrics)
        step = Step(collector)
        profiles = _StepProfiles(self.tables)
        engine = SegmentEngine(self.registry, profiles, self.due)
        self.now = max(self.now, wall_us())
        self._emit(step, engine.fire_due(self.now), None)
        if topic == self.control_topic:
            if message.key == TICK_KEY:
                self._tick(step, engine)
            else:
                self._control(step, engine, message)
        else:
            self._input(step, engine, topic, message)
        for profile_id in profiles.dirty:
            step.profiles[profile_id] = encode_profile(profiles.loaded[profile_id])
        return step

    def committed(self, step: Step) -> None:
        """After the step's output was acknowledged and its tables written: count it."""
        step.collector.committed()
        for change in step.changes:
            self.members[change.segment_id] = self.members.get(change.segment_id, 0) + (
                1 if change.entered else -1
            )

    def _emit(
        self, step: Step, changes: list[MembershipChange], source_timestamp_ms: int | None
    ) -> None:
        if changes:
            step.changes.extend(changes)
            step.collector.membership(changes, source_timestamp_ms)

    def _input(self, step: Step, engine: SegmentEngine, topic: str, message: Any) -> None:
        now = self.now
        try:
            event = parse_input_record(message.value or b"", key=decode_key(message.key))
            if event.at > now + HOUR:
                raise InvalidRecord(
                    "future_timestamp", "'at' is more than 1 hour ahead of the processing clock"
                )
        except InvalidRecord as exc:
            self.metrics.consumed(topic, "invalid")
            step.collector.dead_letter(message, topic, exc)
            return
        self.metrics.consumed(topic, event.type)
        if engine.is_duplicate(event):
            return
        started = time.perf_counter()
        changes = self.jobs.catch_up(engine, event.profile_id, now)
        changes.extend(engine.apply(event, now))
        self.metrics.processing(time.perf_counter() - started)
        self._emit(step, changes, message.timestamp)

    def _tick(self, step: Step, engine: SegmentEngine) -> None:
        if not self.jobs:
            return
        left = self.settings.backfill_batch
        stop = time.monotonic() + BACKFILL_SLICE_S
        changes: list[MembershipChange] = []
        while self.jobs and left > 0:
            batch = min(left, BACKFILL_STEP)
            changes.extend(
                self.jobs.advance(
                    engine, self.tables.profile_ids_after, batch, self.now, self.skipped
                )
            )
            left -= batch
            if time.monotonic() >= stop:
                break
        self._emit(step, changes, None)
        step.meta[JOBS] = self.jobs.encode() if self.jobs else b""

    def _control(self, step: Step, engine: SegmentEngine, message: Any) -> None:
        record = control_segment_record(
            self.partition, message, self.settings.history_retention, self.metrics
        )
        if record is None:
            return
        sid: str = record["id"]
        version: int = record["version"]
        jobs = self.jobs
        if jobs.jobs:
            # A pending pass evaluates with the registry's current definitions: finish every
            # pending backfill before another change comes in (the native worker does this
            # for related segments only; here changes are rare and partitions small).
            while jobs:
                self._emit(
                    step,
                    jobs.advance(engine, self.tables.profile_ids_after, 10_000, self.now),
                    None,
                )
        profile_count = sum(1 for _ in _ids(self.tables))
        if record.get("deleted"):
            removed = engine.remove_segment(sid, version)
            step.meta[VERSION + sid] = str(version).encode()
            if removed is not None:
                step.meta[SEGMENT + sid] = b""
                jobs.add(BackfillJob(sid, "segment_deleted", removed, total=profile_count))
        else:
            definition = _definition(record)
            kind = engine.install_segment(
                definition, condition_fingerprint(definition["condition"]), version
            )
            current = self.registry.segments.get(sid)
            if current is not None and current.version == version:
                step.meta[SEGMENT + sid] = dumps(record)
                step.meta[VERSION + sid] = str(version).encode()
            if kind is not None:
                jobs.add(BackfillJob(sid, kind, version, total=profile_count))
        step.meta[JOBS] = jobs.encode() if jobs else b""

    # -- status ------------------------------------------------------------------------------
    def status(self) -> dict[str, Any]:
        """This partition's segment versions, readiness and member counts (status topic)."""
        return partition_status(self.partition, self.registry, self.jobs, self.members)


def _ids(tables: PartitionTables) -> Iterator[str]:
    cursor: str | None = None
    while batch := tables.profile_ids_after(cursor, 1000):
        yield from batch
        cursor = batch[-1]


def _definition(record: dict[str, Any]) -> dict[str, Any]:
    return {k: record[k] for k in ("id", "name", "description", "condition") if k in record}
