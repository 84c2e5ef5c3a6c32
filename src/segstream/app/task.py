"""One input partition at work (Kafka Streams' StreamTask): its store, producer and engine.

Every batch of records of partition `p` (inputs and control records, in the order read) is one
Kafka transaction: membership events, dead letters and changelog records commit together, the
changelog's records holding the input positions the batch reaches (`positions`), and only then
does the `PartitionTransaction` write the store and publish its in-memory changes. A failed
batch rolls back, so the task can run it again at once (the isolation of a failing record does
that); a crash leaves output, positions and state consistent: the next owner restores the store
from the changelog and resumes at the positions it holds.

The consumer group's offsets are committed in a transaction too, but only every
`SEGSTREAM_GROUP_OFFSETS_INTERVAL_S` (and by an idle partition's tick): they are two more
broker round trips, each several loop turns, that every transaction paid for lag tools only
(docs/decisions/0002-input-positions-in-the-state.md). A worker resumes from them only for a
topic its partition's state holds no position for (written before positions were kept).

A task's life (`TaskState`, legal moves only)::

    CREATED ──open()──► RESTORING ──► RUNNING ──suspend()──► SUSPENDED ──open()──► RESTORING
       │                   │             │                       │
       └───────────────────┴─────────────┴────close()────────────┴──────────► CLOSED

SUSPENDED is where a task goes when its broker connection failed mid-transaction (or its open
did): what the broker committed is then unknown, so the next `open()` restores the store from
the changelog and reloads the in-memory state from it.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from segstream.app.collector import RecordCollector, wall_us
from segstream.app.internal_records import control_segment_record, stored_segment_record
from segstream.app.members_topic import SEEDED, seed_slice
from segstream.app.metrics import WorkerMetrics
from segstream.app.restore import open_store, restore_store
from segstream.app.routing import InputRouter
from segstream.app.settings import WorkerSettings
from segstream.app.store import PartitionStore, meta_key
from segstream.app.transaction import PROFILE_CACHE_SIZE, PartitionState, PartitionTransaction
from segstream.engine.backfill import BackfillJob, BackfillQueue
from segstream.engine.membership import MembershipChange
from segstream.engine.processor import SegmentEngine
from segstream.engine.registry import SegmentRegistry
from segstream.engine.status import partition_status
from segstream.errors import (
    InvalidDefinition,
    InvalidRecord,
    ProfileProcessingError,
    TransactionStalled,
)
from segstream.rules import analyze_condition, condition_fingerprint
from segstream.schemas.events import decode_key, parse_input_record
from segstream.schemas.jsontext import dumps, loads_exact
from segstream.timefmt import HOUR

__all__ = [
    "Isolation",
    "PartitionTask",
    "RecordFailed",
    "RecordKey",
    "TaskState",
]

log = logging.getLogger("segstream.partition")

#: A backfill slice checks its time (`backfill_slice_s`) every BACKFILL_STEP profiles.
BACKFILL_STEP = 50
#: Heads a step of the guard index's build pass reads; it takes BACKFILL_STEP of the slice's
#: SEGSTREAM_BACKFILL_BATCH (indexing a head costs a tenth of evaluating one, or less).
INDEX_STEP = 500
#: How long a failed producer may take to stop before it is left to the broker's fencing.
PRODUCER_STOP_TIMEOUT_S = 10.0
#: The longest one broker step of a partition transaction may take (see `_bounded`): well
#: over a broker restart (~10 s) and aiokafka's request timeout (40 s), under the
#: transaction timeout (60 s) after which the broker aborts it anyway.
TRANSACTION_WAIT_S = 45.0
_T = TypeVar("_T")

_JOBS = "jobs"
#: The input positions (next offset to read, by topic) the committed state reaches.
_POSITIONS = "positions"
_SEGMENT = "seg:"
_VERSION = "ver:"

#: A record by where it was read: (topic, partition, offset).
RecordKey = tuple[str, int, int]


class TaskState(enum.Enum):
    """Where a partition task is in its life."""

    CREATED = "created"
    RESTORING = "restoring"
    RUNNING = "running"
    SUSPENDED = "suspended"
    CLOSED = "closed"


_LEGAL: dict[TaskState, frozenset[TaskState]] = {
    TaskState.CREATED: frozenset({TaskState.RESTORING, TaskState.CLOSED}),
    TaskState.RESTORING: frozenset({TaskState.RUNNING, TaskState.SUSPENDED, TaskState.CLOSED}),
    TaskState.RUNNING: frozenset({TaskState.SUSPENDED, TaskState.CLOSED}),
    TaskState.SUSPENDED: frozenset({TaskState.RESTORING, TaskState.CLOSED}),
    TaskState.CLOSED: frozenset(),
}


class IllegalTaskState(RuntimeError):
    """A task was asked for a move its state does not allow (a bug in the caller)."""


class RecordFailed(Exception):
    """Parsing or applying one record raised: the record, not the batch, is at fault."""

    def __init__(self, key: RecordKey, cause: BaseException) -> None:
        self.key = key
        self.reason = f"processing failed: {type(cause).__name__}: {cause}"[:1000]
        super().__init__(f"{key[0]}[{key[1]}]@{key[2]}: {self.reason}")


@dataclass(frozen=True, slots=True)
class Isolation:
    """What to do instead of applying a record that failed its batch."""

    reason: str
    #: False when even the dead letter with the original value was rejected.
    keep_value: bool = True
    #: True when no dead letter could be written at all: skip the record (logged, counted).
    skip: bool = False


def record_key(message: Any) -> RecordKey:
    """Where a consumed record was read."""
    return (message.topic, message.partition, message.offset)


class PartitionTask:
    """The processing of one input partition, owned by this worker until revoked."""

    def __init__(
        self,
        partition: int,
        settings: WorkerSettings,
        metrics: WorkerMetrics,
        group_id: str,
        *,
        producer_factory: Callable[[], Any] | None = None,
    ) -> None:
        self.partition = partition
        self.settings = settings
        self.metrics = metrics
        self.group_id = group_id
        self.topics = settings.topics
        self.task_state = TaskState.CREATED
        self.store: PartitionStore | None = None
        self.producer: Any = None
        self.state = PartitionState(SegmentRegistry(settings.history_retention))
        #: Profiles whose timer or backfill step raised: backfills pass them over.
        self.skipped_profiles: set[str] = set()
        #: Evaluation time of the next tick's backfill slice (0: none); the ticker shares
        #: `settings.backfill_slice_s` between the partitions it gives a slice (app/priority.py).
        self.backfill_slice_s = settings.backfill_slice_s
        #: The same for a batch of records: 0 (none) unless the worker's LivePriority found
        #: the backfills owed their minimum share when it handed the batch over.
        self.records_slice_s = 0.0
        #: Seconds of evaluation the last backfill slice took (for LivePriority).
        self.slice_evaluated_s = 0.0
        #: The engine, kept with its caches as long as the registry it was made for.
        self.engine: SegmentEngine | None = None
        #: The offset of a control record waiting for the backfills it is related to (by
        #: references) to finish; the worker pauses the control partition meanwhile.
        self.parked_control: int | None = None
        self._parked_record: dict[str, Any] | None = None
        #: The next offset to read per input topic, as committed with the state (empty: the
        #: state holds none; the consumer group's committed offsets are the positions).
        self.positions: dict[str, int] = {}
        #: Positions committed with the state but not yet to the consumer group, and when the
        #: group's offsets were last committed (monotonic; -inf: not by this task yet).
        self._group_behind: dict[str, int] = {}
        self._group_committed_at = float("-inf")
        self._batch_profile_count: int | None = None
        #: Makes an unstarted transactional producer (tests give a fake one).
        self._producer_factory = producer_factory or self._new_producer
        #: Misrouted input records (SPEC §2) are moved to their murmur2 partition.
        self.router = InputRouter(partition, (self.topics.profiles, self.topics.activity), metrics)

    # -- what others read -------------------------------------------------------------------
    @property
    def ready(self) -> bool:
        """Restored and processing (the API and the status publisher read only then)."""
        return self.task_state is TaskState.RUNNING

    @property
    def registry(self) -> SegmentRegistry:
        """The committed segment versions of this partition."""
        return self.state.registry

    @property
    def jobs(self) -> BackfillQueue:
        """The pending backfills."""
        return self.state.jobs

    @property
    def members(self) -> dict[str, int]:
        """Committed members per segment in this partition."""
        return self.state.members

    def _move(self, target: TaskState) -> None:
        if target not in _LEGAL[self.task_state]:
            raise IllegalTaskState(
                f"partition {self.partition}: cannot go from {self.task_state.value} "
                f"to {target.value}"
            )
        self.task_state = target

    # -- lifecycle ---------------------------------------------------------------------------
    async def open(self) -> None:
        """Fence older owners, restore the store from the changelog, load the state from it."""
        self._move(TaskState.RESTORING)
        started = time.monotonic()
        self.metrics.set_restoring(self.partition, True)
        try:
            await self._release()
            # Initialising the transactional id fences a zombie owner and aborts its open
            # transaction, so the changelog's end is stable before the restore reads it.
            self.producer = await self._start_producer()
            await self.router.open(self.producer)
            # Held by the task from here on, so that a failed or cancelled restore closes it
            # (`_release`): left to the garbage collector, it would keep its directory locked.
            self.store = open_store(self.settings, self.settings.store_dir / self.store_name)
            self.store, _applied = await restore_store(self.settings, self.partition, self.store)
            self.state = self._load(self.store)
            self.positions = _decode_positions(self.store.get(meta_key(_POSITIONS)))
            # The group's offsets may be behind the state's positions (committed less often).
            self._group_behind = dict(self.positions)
            self._group_committed_at = float("-inf")
            self.engine = None
            self.parked_control = self._parked_record = None
            self.skipped_profiles.clear()
            await self._seed_members_topic()
        except BaseException:
            await self._release()
            if self.task_state is TaskState.RESTORING:
                self._move(TaskState.SUSPENDED)
            raise
        self._move(TaskState.RUNNING)
        self.metrics.set_restoring(self.partition, False)
        self.metrics.restored(time.monotonic() - started)
        log.info(
            "partition %d ready in %.2fs: %d segments, %d timers, %d backfills",
            self.partition,
            time.monotonic() - started,
            len(self.registry.segments),
            len(self.state.due),
            len(self.jobs.jobs),
        )

    @property
    def store_name(self) -> str:
        """The folder of this partition's RocksDB under the store directory."""
        return f"partition-{self.partition}"

    async def suspend(self) -> None:
        """Give up the producer and the store after a failure the broker may have seen half
        of; the next `open()` restores from the changelog."""
        if self.task_state in (TaskState.RUNNING, TaskState.RESTORING):
            self._move(TaskState.SUSPENDED)
        await self._release()

    async def close(self) -> None:
        """Give the partition up (the open transaction, if any, is aborted by the broker)."""
        if self.task_state is not TaskState.CLOSED:
            self._move(TaskState.CLOSED)
        await self._release()
        # The engine refers back to the task (through its transaction's registry loader): a
        # cycle, which only the collector frees, and not while the task is frozen (app/heap.py).
        self.engine = None

    async def renew_producer(self) -> None:
        """After an aborted batch: a new producer with the same transactional id (its
        initialisation aborts what the old one left open, and resets the sequence numbers a
        rejected record left behind). The store and the rolled-back state stay."""
        await self._stop_producer()
        self.producer = await self._start_producer()

    def _new_producer(self) -> Any:
        from aiokafka import AIOKafkaProducer

        return AIOKafkaProducer(
            **self.settings.client_kwargs(),
            transactional_id=f"{self.settings.app_id}-partition-{self.partition}",
            enable_idempotence=True,
            acks="all",
            linger_ms=5,
            max_batch_size=512 * 1024,
            # Kafka 4 brokers verify transactional partitions (KIP-890) and answer this
            # pre-KIP-890 client's first produce of a transaction with a retriable
            # NOT_ENOUGH_REPLICAS now and then: retry after 20 ms, not the default 100 ms
            # that every such transaction (and the events in it) would wait.
            retry_backoff_ms=20,
            max_request_size=self.settings.producer_max_request_bytes,
            compression_type=self.settings.output_compression,
        )

    async def _start_producer(self) -> Any:
        producer = self._producer_factory()
        try:
            await producer.start()
        except BaseException:
            await asyncio.shield(_stop_quietly(producer))
            raise
        return producer

    async def _stop_producer(self) -> None:
        producer, self.producer = self.producer, None
        if producer is not None:
            await _stop_quietly(producer)

    async def _release(self) -> None:
        await self._stop_producer()
        if self.store is not None:
            self.store.close()
            self.store = None

    def _load(self, store: PartitionStore) -> PartitionState:
        """The in-memory state the committed store implies."""
        state = PartitionState(
            self._load_registry(store), size_retention=self.settings.size_history_retention
        )
        for profile_id, due in store.scan_due():
            state.due.set(profile_id, due)
        for segment_id, _profile_id in store.scan_members():
            state.members[segment_id] = state.members.get(segment_id, 0) + 1
        state.jobs = BackfillQueue.decode(store.get(meta_key(_JOBS)))
        state.now = self.state.now
        self._sync_index(store, state)
        return state

    @staticmethod
    def _sync_index(store: PartitionStore, state: PartitionState) -> None:
        """Index the committed registry's guard paths (docs/state.md "Guard index"): a new
        path starts a build pass in the backfill slices, an unused one is dropped."""
        store.sync_index(state.registry.guard_paths)
        state.jobs.indexing = store.index_building() is not None

    def _load_registry(self, store: PartitionStore | None = None) -> SegmentRegistry:
        """The committed segment versions, installed into a new registry."""
        store = store if store is not None else self.store
        assert store is not None
        registry = SegmentRegistry(self.settings.history_retention)
        for _key, value in store.meta_items(_SEGMENT):
            # A definition stored before SPEC v1.1 that v1.1 rejects is not installed.
            record = stored_segment_record(
                self.partition, value, self.settings.history_retention, self.metrics
            )
            if record is None:
                continue
            # Installing needs no profiles and schedules no timers: no transaction here.
            try:
                registry.install(
                    _definition(record),
                    record["version"],
                    condition_fingerprint(record["condition"]),
                )
            except InvalidDefinition as exc:  # a cycle among stored definitions
                log.warning("partition %d: stored segment not installed: %s", self.partition, exc)
        # Versions last: a version already known would make the install above a no-op.
        for key, value in store.meta_items(_VERSION):
            versions = registry.versions
            versions[key] = max(versions.get(key, 0), int(value))
        return registry

    async def _seed_members_topic(self) -> None:
        """Write the members the current-membership topic has never seen (a deployment from
        before it), once, in slices of transactions (`segstream.app.members_topic`)."""
        assert self.store is not None and self.producer is not None
        seeded = 0
        while self.store.get(meta_key(SEEDED)) is None:
            records, meta = seed_slice(self.store, self.state.registry)
            txn = PartitionTransaction(self.store, self.state, self._load_registry)
            collector = RecordCollector(self.topics, self.partition, self.metrics)
            for name, value in meta.items():
                txn.put_meta(name, value)
            collector.current_members(records)
            await self.producer.begin_transaction()
            try:
                await collector.send(self.producer, txn.prepare())
                changelog_offset = await collector.confirm()
                await self.producer.commit_transaction()
            except BaseException:
                collector.abandon()
                txn.rollback()
                raise
            txn.flush(changelog_offset)
            seeded += len(records)
        if seeded:
            log.info(
                "partition %d: %d current members written to %s",
                self.partition,
                seeded,
                self.topics.members,
            )

    # -- processing --------------------------------------------------------------------------
    def timer_due(self) -> bool:
        """True when the partition's earliest timer is due."""
        head = self.state.due.peek()
        return head is not None and head[0] <= wall_us()

    def sweep_due(self) -> bool:
        """True when deleted profiles' old keys await the sweep (`segstream.state.layout`):
        a timer tick sweeps them on an idle partition (one seek)."""
        return self.store is not None and self.store.sweep_pending()

    def quarantine(self, error: ProfileProcessingError) -> None:
        """A timer or backfill step raised for one profile: drop its timer (until a record
        gives it a new one) and let backfills pass it over. Logged and counted."""
        self.state.due.set(error.profile_id, None)
        self.skipped_profiles.add(error.profile_id)
        self.metrics.profile_step_failed(error.step)
        log.error(
            "partition %d: %s dropped for one profile (%s)", self.partition, error.step, error
        )

    async def process(
        self,
        batch: list[tuple[Any, list[Any]]],
        isolated: Mapping[RecordKey, Isolation] | None = None,
    ) -> None:
        """Process records of this partition (per topic-partition, in order) in one
        transaction; with no records, fire due timers and run a backfill slice. Records in
        `isolated` are dead-lettered as `internal` (control records skipped) instead."""
        assert self.store is not None and self.producer is not None
        if self.task_state is not TaskState.RUNNING:
            raise IllegalTaskState(f"partition {self.partition} is {self.task_state.value}")
        isolated = isolated or {}
        started = time.monotonic()
        state = self.state
        txn = PartitionTransaction(self.store, state, self._load_registry)
        collector = RecordCollector(self.topics, self.partition, self.metrics)
        engine = self._engine(txn)
        self._batch_profile_count = None
        meta_dirty = False
        parked_before = self.parked_control, self._parked_record
        producer = self.producer
        await _bounded(_begin_transaction(producer), "begin", self.partition, self.metrics)
        try:
            state.now = max(state.now, wall_us())
            self._emit(txn, collector, engine.fire_due(state.now), None)
            for tp, messages in batch:
                topic = tp.topic
                for message in messages:
                    state.now = max(state.now, wall_us())
                    self._emit(txn, collector, engine.fire_due(state.now), None)
                    key = record_key(message)
                    if topic == self.topics.control and self._parked_at(message.offset):
                        continue  # read again once the related backfills are done
                    isolation = isolated.get(key)
                    if isolation is not None:
                        meta_dirty |= self._isolated(collector, topic, message, isolation)
                        continue
                    try:
                        if topic == self.topics.control:
                            meta_dirty |= self._control(txn, engine, message)
                        else:
                            t0 = time.perf_counter()
                            self._input(txn, engine, collector, topic, message)
                            self.metrics.processing(time.perf_counter() - t0)
                    except ProfileProcessingError:
                        raise
                    except Exception as exc:
                        raise RecordFailed(key, exc) from exc
            has_records = any(messages for _, messages in batch)
            slice_s = self.records_slice_s if has_records else self.backfill_slice_s
            if state.jobs and slice_s > 0:
                # A slice when the worker's LivePriority gave this batch one (a tick's, or
                # a batch of records owed the backfills' minimum share): after the records,
                # so that they wait for at most one slice more (events reach a
                # profile before the cursor by `catch_up`).
                state.now = max(state.now, wall_us())
                # Timers due by the new clock first: the slice evaluates profiles at `now`.
                self._emit(txn, collector, engine.fire_due(state.now), None)
                self._emit(txn, collector, self._backfill_slice(txn, engine, slice_s), None)
                meta_dirty = True
            if meta_dirty:
                txn.put_meta(_JOBS, state.jobs.encode() if state.jobs.jobs else None)
            moved = {
                tp.topic: self._next_offset(tp, messages) for tp, messages in batch if messages
            }
            positions = {**self.positions, **moved}
            if moved:
                txn.put_meta(_POSITIONS, dumps(positions, sort_keys=True))
            group = self._group_offsets_due(moved)
            await _bounded(
                collector.send(producer, txn.prepare()), "send", self.partition, self.metrics
            )
            # Every send must have succeeded before the commit: aiokafka commits a
            # transaction whose records the broker rejected (Java's producer refuses,
            # KAFKA-9279), which would publish output and offsets without the state.
            confirming = asyncio.ensure_future(collector.confirm())
            try:
                if group:
                    await _bounded(
                        producer.send_offsets_to_transaction(
                            self._topic_partitions(group), self.group_id
                        ),
                        "offsets",
                        self.partition,
                        self.metrics,
                    )
            finally:
                changelog_offset = await _bounded(
                    confirming, "deliveries", self.partition, self.metrics
                )
            await _bounded(producer.commit_transaction(), "commit", self.partition, self.metrics)
        except BaseException:
            self.metrics.transaction(False)
            collector.abandon()
            txn.rollback()
            # Nothing derived from this batch's uncommitted states stays in the engine.
            engine.forget(txn.loaded)
            self.parked_control, self._parked_record = parked_before
            raise
        self.metrics.transaction(True)
        self.positions = positions
        if group:
            self._group_behind = {}
            self._group_committed_at = time.monotonic()
        else:
            self._group_behind.update(moved)
        txn.flush(changelog_offset)
        self._sync_index(self.store, state)
        collector.committed()
        self.metrics.batch(time.monotonic() - started)

    def _engine(self, txn: PartitionTransaction) -> SegmentEngine:
        """The partition's engine bound to this transaction; a new one (empty caches) when
        the registry was replaced (a rollback of a segment change reloads it)."""
        engine = self.engine
        if engine is None or engine.registry is not self.state.registry:
            engine = self.engine = SegmentEngine(
                self.state.registry,
                txn,
                txn.due,
                reach_cache_size=PROFILE_CACHE_SIZE + self.settings.max_batch_records,
            )
        else:
            engine.bind(txn, txn.due)
        return engine

    def group_offsets_due(self) -> bool:
        """Positions wait to be committed to the consumer group and the interval has passed
        (an idle partition's tick commits them)."""
        return bool(self._group_behind) and self._group_interval_passed()

    def _group_interval_passed(self) -> bool:
        interval = self.settings.group_offsets_interval_s
        return time.monotonic() - self._group_committed_at >= interval

    def _group_offsets_due(self, moved: dict[str, int]) -> dict[str, int]:
        """The positions this transaction commits to the consumer group (empty: none)."""
        behind = {**self._group_behind, **moved}
        return behind if behind and self._group_interval_passed() else {}

    def _topic_partitions(self, positions: Mapping[str, int]) -> dict[Any, int]:
        from aiokafka import TopicPartition

        partition = self.partition
        return {TopicPartition(topic, partition): offset for topic, offset in positions.items()}

    def _parked_at(self, offset: int) -> bool:
        """True for the parked control record and those after it."""
        return self.parked_control is not None and offset >= self.parked_control

    def _next_offset(self, tp: Any, messages: list[Any]) -> int:
        """The offset to commit for a topic-partition of the batch: past its last record, or
        at the parked control record (so that it is read again, also after a crash)."""
        if tp.topic == self.topics.control and self.parked_control is not None:
            return self.parked_control
        return int(messages[-1].offset) + 1

    def related_pending(self) -> bool:
        """The parked control record still waits for a backfill it is related to."""
        record = self._parked_record
        return record is not None and self._must_wait(record)

    def unpark(self) -> int | None:
        """Release the parked control record when its related backfills are done; its offset
        when released (the worker reads the control partition again from there)."""
        offset = self.parked_control
        if offset is None or self.related_pending():
            return None
        self.parked_control = self._parked_record = None
        return offset

    @staticmethod
    def _emit(
        txn: PartitionTransaction,
        collector: RecordCollector,
        changes: list[MembershipChange],
        source_timestamp_ms: int | None,
    ) -> None:
        if changes:
            txn.membership(changes)
            collector.membership(changes, source_timestamp_ms)

    def _isolated(
        self, collector: RecordCollector, topic: str, message: Any, isolation: Isolation
    ) -> bool:
        """Dead-letter (or skip) a record that failed its batch; True when meta changed."""
        if topic == self.topics.control:
            self.metrics.internal_record_skipped("control")
            log.error(
                "partition %d: control record at offset %d skipped: %s",
                self.partition,
                message.offset,
                isolation.reason,
            )
            return False
        if isolation.skip:
            self.metrics.internal_record_skipped("no_dead_letter")
            log.error(
                "partition %d: %s record at offset %d skipped, no dead letter could be written: %s",
                self.partition,
                topic,
                message.offset,
                isolation.reason,
            )
            return False
        collector.dead_letter(
            message,
            topic,
            InvalidRecord("internal", isolation.reason),
            keep_value=isolation.keep_value,
        )
        return False

    def _backfill_slice(
        self, txn: PartitionTransaction, engine: SegmentEngine, slice_s: float
    ) -> list[MembershipChange]:
        """Advance the pending backfills by up to SEGSTREAM_BACKFILL_BATCH profiles, stopping
        early after `slice_s` of evaluation so that events never wait long for it."""
        assert self.store is not None
        changes: list[MembershipChange] = []
        left = self.settings.backfill_batch
        stop = time.monotonic() + slice_s
        jobs, now = self.state.jobs, self.state.now
        started = time.monotonic()
        # The guard index's build pass first: the guarded backfills after it then walk only
        # the profiles their guard names (until it is built they walk every profile).
        building = jobs.indexing
        while left > 0:
            if building and txn.index_step(INDEX_STEP) > 0:
                step = min(left, BACKFILL_STEP)
            elif jobs.jobs:
                building = False
                step = min(left, BACKFILL_STEP)
                changes.extend(
                    jobs.advance(
                        engine,
                        txn.profile_ids_after,
                        step,
                        now,
                        self.skipped_profiles,
                        txn.backfill_walk,
                    )
                )
            else:
                break
            left -= step
            if time.monotonic() >= stop:
                break
        self.slice_evaluated_s = time.monotonic() - started
        return changes

    def _input(
        self,
        txn: PartitionTransaction,
        engine: SegmentEngine,
        collector: RecordCollector,
        topic: str,
        message: Any,
    ) -> None:
        target = self.router.target(topic, message)
        if target is not None:
            # Moved to its murmur2 partition in this transaction, applied there (SPEC §2).
            collector.move(topic, message, target, self.router.moved_headers(topic, message))
            return
        now = self.state.now
        try:
            event = parse_input_record(message.value or b"", key=decode_key(message.key))
            if event.at > now + HOUR:
                raise InvalidRecord(
                    "future_timestamp", "'at' is more than 1 hour ahead of the processing clock"
                )
        except InvalidRecord as exc:
            self.metrics.consumed(topic, "invalid")
            collector.dead_letter(message, topic, exc)
            return
        self.metrics.consumed(topic, event.type)
        if engine.is_duplicate(event):
            return
        changes = self.state.jobs.catch_up(engine, event.profile_id, now)
        changes.extend(engine.apply(event, now))
        self._emit(txn, collector, changes, message.timestamp)

    def _control(
        self,
        txn: PartitionTransaction,
        engine: SegmentEngine,
        message: Any,
    ) -> bool:
        """Apply a control record; True when the partition's meta changed."""
        record = control_segment_record(
            self.partition, message, self.settings.history_retention, self.metrics
        )
        if record is None:  # junk: skipped, logged and counted
            return False
        sid: str = record["id"]
        version: int = record["version"]
        if self._must_wait(record):
            # A pending pass evaluates dependents with the registry's current definitions;
            # letting a related change in first would give the dependents' transitions the
            # later change's cause. The record waits (its partition of the control topic
            # paused, its offset not committed) while the backfills advance in slices.
            self.parked_control, self._parked_record = message.offset, record
            log.info(
                "partition %d: segment record %s v%d waits for related backfills",
                self.partition,
                sid,
                version,
            )
            return False
        registry = self.state.registry
        txn.registry_changed()
        try:
            if record.get("deleted"):
                removed = engine.remove_segment(sid, version)
                txn.put_meta(_VERSION + sid, str(version).encode())
                if removed is None:
                    return True
                txn.put_meta(_SEGMENT + sid, None)
                self.state.jobs.add(
                    BackfillJob(sid, "segment_deleted", removed, total=self._profile_count())
                )
                return True
            definition = _definition(record)
            kind = engine.install_segment(
                definition, condition_fingerprint(definition["condition"]), version
            )
        except Exception:
            # A definition the writer accepted cannot fail here; if it does, keep the worker up.
            log.exception(
                "partition %d: segment record %s v%d skipped", self.partition, sid, version
            )
            return False
        current = registry.segments.get(sid)
        if current is not None and current.version == version:
            txn.put_meta(_SEGMENT + sid, dumps(record))
            txn.put_meta(_VERSION + sid, str(version).encode())
        if kind is not None:
            self.state.jobs.add(BackfillJob(sid, kind, version, total=self._profile_count()))
        return True

    def _profile_count(self) -> int:
        """The stored profile count for backfill progress, scanned once per batch: a batch of
        many segment records must not scan the store once for each."""
        if self._batch_profile_count is None:
            assert self.store is not None
            self._batch_profile_count = self.store.count_profiles()
        return self._batch_profile_count

    def _must_wait(self, record: dict[str, Any]) -> bool:
        """A backfill of a segment linked to this change by references is pending."""
        jobs = self.state.jobs
        if not jobs:
            return False
        related = _reference_component(self.state.registry, record)
        return any(job.segment_id in related for job in jobs.jobs)

    # -- status --------------------------------------------------------------------------------
    def backlog(self) -> dict[str, int]:
        """Profiles each pending backfill still has to evaluate (segments without one: 0)."""
        remaining = dict.fromkeys(self.registry.segments, 0)
        for job in self.jobs.jobs:
            remaining[job.segment_id] = remaining.get(job.segment_id, 0) + max(
                0, job.total - job.done
            )
        return remaining

    def status(self) -> dict[str, Any]:
        """This partition's segment versions, readiness and member counts (status topic)."""
        return partition_status(self.partition, self.registry, self.jobs, self.members)


async def _bounded(
    awaitable: Awaitable[_T], what: str, partition: int, metrics: WorkerMetrics
) -> _T:
    """Await one broker step of a transaction for at most TRANSACTION_WAIT_S: aiokafka's
    idempotent producer retries a delivery, and waits for a transaction's end, without a
    limit (Java's bounds them, KAFKA-7763), so a broker that never answers would hold the
    partition for good. The caller aborts, and the partition reopens with a new producer.
    Each step's time goes to `segstream_transaction_step_seconds` (where a slow one waited)."""
    started = time.monotonic()
    try:
        async with asyncio.timeout(TRANSACTION_WAIT_S):
            return await awaitable
    except TimeoutError as exc:
        raise TransactionStalled(
            f"partition {partition}: the transaction's {what} took over {TRANSACTION_WAIT_S:.0f}s"
        ) from exc
    finally:
        metrics.transaction_step(what, time.monotonic() - started)


async def _begin_transaction(producer: Any) -> None:
    """`producer.begin_transaction()` without a loop turn when the producer has its id.

    aiokafka's `begin_transaction` awaits `asyncio.shield(wait_for_pid())`, a new task even
    when the id is there, so every partition transaction gave the event loop back once
    before its first record: a turn is what the loop's other work takes (1.9 ms at
    1,250 events/s, 10-17 ms in a backfill; docs/performance.md). With the id known that
    wait is empty, and the rest of its `begin_transaction` is the transaction manager's
    state change, made here; an illegal one raises as it would there. Any other producer
    (no transaction manager, or no id yet) goes the public way."""
    manager = getattr(producer, "_txn_manager", None)
    if manager is not None and manager.transactional_id is not None and manager.has_pid():
        manager.begin_transaction()
        return
    await producer.begin_transaction()


async def _stop_quietly(producer: Any) -> None:
    try:
        await asyncio.wait_for(producer.stop(), PRODUCER_STOP_TIMEOUT_S)
    except asyncio.CancelledError:
        raise
    except Exception:
        log.warning("a partition producer did not stop cleanly", exc_info=True)


def _reference_component(registry: SegmentRegistry, record: dict[str, Any]) -> set[str]:
    """The changed segment and every segment linked to it by references, either way."""
    start = {record["id"]}
    if not record.get("deleted"):
        start |= set(analyze_condition(record["condition"]).segments)
    seen: set[str] = set()
    pending = list(start)
    while pending:
        sid = pending.pop()
        if sid in seen:
            continue
        seen.add(sid)
        segment = registry.segments.get(sid)
        if segment is not None:
            pending.extend(segment.refs)
        pending.extend(registry.dependents.get(sid, ()))
    return seen


def _definition(record: dict[str, Any]) -> dict[str, Any]:
    return {k: record[k] for k in ("id", "name", "description", "condition") if k in record}


def _decode_positions(raw: bytes | None) -> dict[str, int]:
    """The stored input positions ({} when none are stored)."""
    if raw is None:
        return {}
    value = loads_exact(raw)
    return {str(topic): int(offset) for topic, offset in value.items()}
