"""One input partition at work: its store, its transactional producer and its engine.

Every batch of records of partition `p` (inputs and control records, in the order read) is
one Kafka transaction: membership events, dead letters, changelog records and the consumer
offsets commit together, and only then do the staged writes reach the local RocksDB, with the
changelog offset they correspond to. A crash anywhere leaves output, offsets and state
consistent: the next owner restores the store from the changelog and resumes after the last
committed offsets.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import orjson

from segstream.app.metrics import WorkerMetrics
from segstream.app.readers import committed_reader
from segstream.app.settings import WorkerSettings
from segstream.app.store import PartitionStore, meta_key, profile_key
from segstream.engine.backfill import BackfillJob, BackfillQueue
from segstream.engine.membership import MembershipChange
from segstream.engine.processor import SegmentEngine
from segstream.engine.registry import SegmentRegistry
from segstream.errors import InvalidRecord
from segstream.rules import condition_fingerprint
from segstream.schemas.events import parse_input_record
from segstream.state.codec import decode_profile, encode_profile
from segstream.state.due_index import DueIndex
from segstream.state.profile import ProfileState
from segstream.timefmt import HOUR

__all__ = ["PartitionWorker"]

log = logging.getLogger("segstream.partition")

#: A backfill slice stops after this much evaluation (the transaction's sends and commit
#: come on top), checked every BACKFILL_STEP profiles.
BACKFILL_SLICE_S = 0.1
BACKFILL_STEP = 200

#: Decoded profile states kept between transactions, per partition (most recently committed).
#: Live traffic comes in small batches, and decoding a profile per batch was the largest
#: single cost of the worker at half its throughput (py-spy, bench/e2e.py).
PROFILE_CACHE_SIZE = 2000

_JOBS = "jobs"
_SEGMENT = "seg:"
_VERSION = "ver:"


def wall_us() -> int:
    """The wall clock in microseconds since the epoch."""
    return time.time_ns() // 1000


class BatchProfiles:
    """The engine's view of the partition's profiles during one transaction."""

    def __init__(
        self,
        store: PartitionStore,
        cache: OrderedDict[str, tuple[bytes, ProfileState]] | None = None,
    ) -> None:
        self._store = store
        self._cache = cache
        self.loaded: dict[str, ProfileState] = {}
        self.before: dict[str, dict[str, int]] = {}
        self.raw: dict[str, bytes] = {}  # the stored encoding of each profile read
        self.dirty: set[str] = set()
        self.encoded: dict[str, bytes] = {}  # the new encoding of each dirty profile

    def get(self, profile_id: str) -> ProfileState | None:
        """The profile's state (decoded once per transaction, or taken from the cache of
        committed states when it holds exactly the stored bytes)."""
        state = self.loaded.get(profile_id)
        if state is None:
            raw = self._store.get(profile_key(profile_id))
            if raw is None:
                return None
            # Taken out of the cache: this transaction may change the object, and only
            # `commit_to_cache` puts states back, those of a committed transaction.
            cached = self._cache.pop(profile_id, None) if self._cache is not None else None
            hit = cached is not None and cached[0] == raw
            state = cached[1] if hit and cached is not None else decode_profile(raw)
            self.loaded[profile_id] = state
            self.before[profile_id] = dict(state.members)
            self.raw[profile_id] = raw
        return state

    def put(self, profile_id: str, state: ProfileState) -> None:
        """Mark a profile changed (written at the end of the transaction)."""
        self.loaded[profile_id] = state
        self.before.setdefault(profile_id, {})
        self.dirty.add(profile_id)

    def commit_to_cache(self) -> None:
        """After the commit: keep the written states (their encoding is what is stored)."""
        cache = self._cache
        if cache is None:
            return
        for profile_id, encoded in self.encoded.items():
            cache[profile_id] = (encoded, self.loaded[profile_id])
            cache.move_to_end(profile_id)
        while len(cache) > PROFILE_CACHE_SIZE:
            cache.popitem(last=False)

    def profile_ids(self) -> Iterable[str]:
        """Every stored profile id, in key order."""
        cursor: str | None = None
        while batch := self._store.profile_ids_after(cursor, 1000):
            yield from batch
            cursor = batch[-1]


class PartitionWorker:
    """The processing of one input partition, owned by this worker until revoked."""

    def __init__(
        self,
        partition: int,
        settings: WorkerSettings,
        metrics: WorkerMetrics,
        group_id: str,
    ) -> None:
        self.partition = partition
        self.settings = settings
        self.metrics = metrics
        self.group_id = group_id
        self.topics = settings.topics
        self.store: PartitionStore | None = None
        self.producer: Any = None
        self.registry = SegmentRegistry(settings.history_retention)
        self.due = DueIndex()
        self.jobs = BackfillQueue()
        self.members: dict[str, int] = {}
        self.now = 0
        self.ready = False
        self.profile_cache: OrderedDict[str, tuple[bytes, ProfileState]] = OrderedDict()
        #: Evaluation time of the next backfill slice; the worker shares BACKFILL_SLICE_S
        #: between its partitions that have backfills, so events wait for one share in all.
        self.backfill_slice_s = BACKFILL_SLICE_S
        self._batch_profile_count: int | None = None

    @property
    def store_path(self) -> Path:
        """Where this partition's RocksDB lives."""
        return self.settings.store_dir / f"partition-{self.partition}"

    # -- lifecycle ---------------------------------------------------------------------------
    async def open(self) -> None:
        """Fence older owners, restore the store from the changelog, load the engine state."""
        from aiokafka import AIOKafkaProducer

        started = time.monotonic()
        self.metrics.set_restoring(self.partition, True)
        # Initialising the transactional id fences a zombie owner and aborts its open
        # transaction, so the changelog's end is stable before the restore reads it.
        self.producer = AIOKafkaProducer(
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
        )
        await self.producer.start()
        self.store = PartitionStore(
            self.store_path,
            block_cache_bytes=self.settings.rocksdb_block_cache_bytes,
            write_buffer_bytes=self.settings.rocksdb_write_buffer_bytes,
        )
        await self._restore()
        self._load()
        self.ready = True
        self.metrics.set_restoring(self.partition, False)
        self.metrics.restored(time.monotonic() - started)
        log.info(
            "partition %d ready in %.2fs: %d segments, %d timers, %d backfills",
            self.partition,
            time.monotonic() - started,
            len(self.registry.segments),
            len(self.due),
            len(self.jobs.jobs),
        )

    async def close(self) -> None:
        """Give the partition up (the open transaction, if any, is aborted by the broker)."""
        self.ready = False
        if self.producer is not None:
            await self.producer.stop()
            self.producer = None
        if self.store is not None:
            self.store.close()
            self.store = None

    async def _restore(self) -> None:
        from aiokafka import TopicPartition

        assert self.store is not None
        tp = TopicPartition(self.topics.changelog, self.partition)
        reader = committed_reader(
            self.settings, max_record_bytes=self.settings.changelog_max_message_bytes
        )
        await reader.start()
        try:
            reader.assign([tp])
            end = (await reader.end_offsets([tp]))[tp]
            stored = self.store.changelog_offset()
            start = stored + 1 if stored is not None else 0
            if start > end:
                # The store is ahead of its changelog (a recreated topic): rebuild from it.
                log.warning("partition %d: store ahead of changelog, rebuilding", self.partition)
                self.store.close()
                PartitionStore.destroy(self.store_path)
                self.store = PartitionStore(
                    self.store_path,
                    block_cache_bytes=self.settings.rocksdb_block_cache_bytes,
                    write_buffer_bytes=self.settings.rocksdb_write_buffer_bytes,
                )
                start = 0
            reader.seek(tp, start)
            applied = 0
            while await reader.position(tp) < end:
                fetched = await reader.getmany(tp, timeout_ms=500, max_records=5000)
                messages = fetched.get(tp, [])
                if messages:
                    self.store.apply_changelog(
                        [(m.key, m.value) for m in messages], messages[-1].offset
                    )
                    applied += len(messages)
            if applied:
                log.info(
                    "partition %d: restored %d changelog records from offset %d",
                    self.partition,
                    applied,
                    start,
                )
        finally:
            await reader.stop()

    def _load(self) -> None:
        assert self.store is not None
        store = self.store
        for profile_id, due in store.scan_due():
            self.due.set(profile_id, due)
        for segment_id, _profile_id in store.scan_members():
            self.members[segment_id] = self.members.get(segment_id, 0) + 1
        engine = self._engine(BatchProfiles(store))
        for _key, value in store.meta_items(_SEGMENT):
            record = orjson.loads(value)
            engine.install_segment(
                _definition(record), condition_fingerprint(record["condition"]), record["version"]
            )
        # Versions last: a version already known would make the install above a no-op.
        for key, value in store.meta_items(_VERSION):
            versions = self.registry.versions
            versions[key] = max(versions.get(key, 0), int(value))
        self.jobs = BackfillQueue.decode(store.get(meta_key(_JOBS)))

    def _engine(self, profiles: BatchProfiles) -> SegmentEngine:
        return SegmentEngine(self.registry, profiles, self.due)

    # -- processing --------------------------------------------------------------------------
    def has_work(self) -> bool:
        """True when a timer is due or a backfill is pending (a tick has something to do)."""
        head = self.due.peek()
        return bool(self.jobs) or (head is not None and head[0] <= wall_us())

    async def process(self, batch: list[tuple[Any, list[Any]]]) -> None:
        """Process records of this partition (per topic-partition, in order) in one
        transaction; with no records, fire due timers and run a backfill slice."""
        assert self.store is not None and self.producer is not None
        started = time.monotonic()
        profiles = BatchProfiles(self.store, self.profile_cache)
        self._batch_profile_count = None
        engine = self._engine(profiles)
        output = _Output(self, engine)
        meta_dirty = False
        futures: list[Any] = []
        await self.producer.begin_transaction()
        try:
            self.now = max(self.now, wall_us())
            output.emit(engine.fire_due(self.now), None)
            for tp, messages in batch:
                topic = tp.topic
                for message in messages:
                    self.now = max(self.now, wall_us())
                    output.emit(engine.fire_due(self.now), None)
                    if topic == self.topics.control:
                        meta_dirty |= self._control(engine, message, output)
                    else:
                        t0 = time.perf_counter()
                        self._input(engine, topic, message, output)
                        self.metrics.processing(time.perf_counter() - t0)
            if self.jobs and not any(messages for _, messages in batch):
                # Backfill slices run on ticks only, never in a transaction that carries
                # records: events wait at most for one tick's slices, and get the loop time
                # between ticks (events reach a profile before the cursor by `catch_up`).
                self.now = max(self.now, wall_us())
                # Timers due by the new clock first: the slice evaluates profiles at `now`.
                output.emit(engine.fire_due(self.now), None)
                output.emit(self._backfill_slice(engine), None)
                meta_dirty = True
            if meta_dirty:
                self.store.stage(meta_key(_JOBS), self.jobs.encode() if self.jobs else None)
            changelog = self._stage_changes(profiles)
            futures.extend(await output.flush())
            for key, value in changelog:
                futures.append(
                    await self.producer.send(
                        self.topics.changelog, key=key, value=value, partition=self.partition
                    )
                )
            offsets = {tp: messages[-1].offset + 1 for tp, messages in batch if messages}
            # Every send must have succeeded before the commit: aiokafka commits a
            # transaction whose records the broker rejected (Java's producer refuses,
            # KAFKA-9279), which would publish output and offsets without the state.
            confirming = asyncio.gather(*futures)
            try:
                if offsets:
                    await self.producer.send_offsets_to_transaction(offsets, self.group_id)
            finally:
                results = await confirming
            await self.producer.commit_transaction()
        except BaseException:
            self.metrics.transaction(False)
            for future in futures:
                # The sends of an aborted transaction fail with it: one log line for the
                # batch (the caller's), not "exception was never retrieved" for each record.
                future.add_done_callback(_retrieve_exception)
            self.store.discard_staged()
            raise
        self.metrics.transaction(True)
        changelog_offsets = [r.offset for r in results if r.topic == self.topics.changelog]
        self.store.apply_staged(max(changelog_offsets) if changelog_offsets else None)
        profiles.commit_to_cache()
        output.after_commit()
        self.metrics.batch(time.monotonic() - started)

    def _backfill_slice(self, engine: SegmentEngine) -> list[MembershipChange]:
        """Advance the pending backfills by up to SEGSTREAM_BACKFILL_BATCH profiles, stopping
        early after `backfill_slice_s` of evaluation so that events never wait long for it."""
        assert self.store is not None
        changes: list[MembershipChange] = []
        left = self.settings.backfill_batch
        stop = time.monotonic() + self.backfill_slice_s
        while self.jobs and left > 0:
            step = min(left, BACKFILL_STEP)
            changes.extend(self.jobs.advance(engine, self.store.profile_ids_after, step, self.now))
            left -= step
            if time.monotonic() >= stop:
                break
        return changes

    def _stage_changes(self, profiles: BatchProfiles) -> list[tuple[bytes, bytes | None]]:
        assert self.store is not None
        for profile_id in profiles.dirty:
            state = profiles.loaded[profile_id]
            encoded = profiles.encoded[profile_id] = encode_profile(state)
            if encoded == profiles.raw.get(profile_id):
                continue  # evaluated but unchanged (most profiles of a backfill): no write
            self.store.stage_profile(profile_id, encoded, state, profiles.before[profile_id])
        return list(self.store.staged().items())

    def _input(self, engine: SegmentEngine, topic: str, message: Any, output: _Output) -> None:
        key = message.key
        try:
            key_text = key.decode() if key is not None else None
        except UnicodeDecodeError:
            key_text = "\ufffd"  # never equal to a profile id: a key mismatch
        try:
            event = parse_input_record(message.value or b"", key=key_text)
            if event.at > self.now + HOUR:
                raise InvalidRecord(
                    "future_timestamp", "'at' is more than 1 hour ahead of the processing clock"
                )
        except InvalidRecord as exc:
            self.metrics.consumed(topic, "invalid")
            output.dead_letter(message, topic, exc)
            return
        self.metrics.consumed(topic, event.type)
        if engine.is_duplicate(event):
            return
        changes = self.jobs.catch_up(engine, event.profile_id, self.now)
        changes.extend(engine.apply(event, self.now))
        output.emit(changes, message.timestamp)

    def _control(self, engine: SegmentEngine, message: Any, output: _Output) -> bool:
        """Apply a control record; True when the partition's meta changed."""
        try:
            body = orjson.loads(message.value)
        except orjson.JSONDecodeError:
            log.error("partition %d: unreadable control record skipped", self.partition)
            return False
        if body.get("kind") != "segment":
            return False
        record = body["record"]
        assert self.store is not None
        sid: str = record["id"]
        version: int = record["version"]
        self._finish_related(engine, record, output)
        try:
            if record.get("deleted"):
                removed = engine.remove_segment(sid, version)
                self.store.stage(meta_key(_VERSION + sid), str(version).encode())
                if removed is None:
                    return True
                self.store.stage(meta_key(_SEGMENT + sid), None)
                self.jobs.add(
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
        current = self.registry.segments.get(sid)
        if current is not None and current.version == version:
            self.store.stage(meta_key(_SEGMENT + sid), orjson.dumps(record))
            self.store.stage(meta_key(_VERSION + sid), str(version).encode())
        if kind is not None:
            self.jobs.add(BackfillJob(sid, kind, version, total=self._profile_count()))
        return True

    def _profile_count(self) -> int:
        """The stored profile count for backfill progress, scanned once per batch: a batch of
        many segment records must not scan the store once for each."""
        if self._batch_profile_count is None:
            assert self.store is not None
            self._batch_profile_count = self.store.count_profiles()
        return self._batch_profile_count

    def _finish_related(
        self, engine: SegmentEngine, record: dict[str, Any], output: _Output
    ) -> None:
        """Complete pending backfills of segments related to this change by references.

        A pending pass evaluates dependents with the registry's current definitions; letting
        a related change in first would give the dependents' transitions the later change's
        cause. Unrelated backfills keep running in slices.
        """
        if not self.jobs:
            return
        related = _reference_component(self.registry, record)
        if not any(job.segment_id in related for job in self.jobs.jobs):
            return
        assert self.store is not None
        self.now = max(self.now, wall_us())
        output.emit(engine.fire_due(self.now), None)
        while self.jobs:
            output.emit(
                self.jobs.advance(engine, self.store.profile_ids_after, 10_000, self.now), None
            )

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
        segments = {}
        for sid, segment in self.registry.segments.items():
            job = self.jobs.pending(sid)
            segments[sid] = {
                "version": segment.version,
                "members": self.members.get(sid, 0),
                "ready": job is None,
                "backfill_done": job.done if job is not None else None,
                "backfill_total": job.total if job is not None else None,
            }
        return {"partition": self.partition, "segments": segments}


def _retrieve_exception(future: Any) -> None:
    if not future.cancelled():
        future.exception()


def _reference_component(registry: SegmentRegistry, record: dict[str, Any]) -> set[str]:
    """The changed segment and every segment linked to it by references, either way."""
    from segstream.rules import analyze_condition

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


class _Output:
    """What one transaction sends: membership events and dead letters, plus their metrics."""

    def __init__(self, owner: PartitionWorker, engine: SegmentEngine) -> None:
        self.owner = owner
        self.engine = engine
        self._changes: list[MembershipChange] = []
        self._pending: list[tuple[str, bytes | None, bytes | None, list[tuple[str, bytes]]]] = []

    def emit(self, changes: list[MembershipChange], source_timestamp_ms: int | None) -> None:
        if not changes:
            return
        owner = self.owner
        metrics = owner.metrics
        emitted = wall_us()
        for change in changes:
            record = orjson.dumps(change.to_record(emitted))
            self._send(owner.topics.membership, change.profile_id.encode(), record, [])
            self._changes.append(change)
            if change.cause.get("kind") == "timer":
                metrics.timer_lag(max(0, emitted - change.at) / 1e6)
        if source_timestamp_ms is not None:
            metrics.end_to_end(max(0.0, emitted / 1e6 - source_timestamp_ms / 1e3))

    def dead_letter(self, message: Any, topic: str, error: InvalidRecord) -> None:
        headers = [
            ("segstream.error.kind", error.kind.encode()),
            ("segstream.error.message", error.message.encode()),
            ("segstream.source.topic", topic.encode()),
            ("segstream.source.partition", str(message.partition).encode()),
            ("segstream.source.offset", str(message.offset).encode()),
        ]
        self._send(self.owner.topics.deadletter, message.key, message.value, headers)
        self.owner.metrics.dead_letter(error.kind)

    def _send(
        self, topic: str, key: bytes | None, value: bytes | None, headers: list[tuple[str, bytes]]
    ) -> None:
        self._pending.append((topic, key, value, headers))

    async def flush(self) -> list[Any]:
        """Hand every record to the producer, in order; returns their delivery futures."""
        producer = self.owner.producer
        partition = self.owner.partition
        futures = []
        for topic, key, value, headers in self._pending:
            futures.append(
                await producer.send(
                    topic, key=key, value=value, partition=partition, headers=headers or None
                )
            )
        self._pending.clear()
        return futures

    def after_commit(self) -> None:
        owner = self.owner
        for change in self._changes:
            owner.metrics.membership_change(change.segment_id, change.entered)
            owner.members[change.segment_id] = owner.members.get(change.segment_id, 0) + (
                1 if change.entered else -1
            )
