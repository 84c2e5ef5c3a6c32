"""The Faust app: one agent over the inputs and the control topic, two RocksDB tables.

- The agent `segstream-engine` consumes `<prefix>.profiles`, `<prefix>.activity` and the
  control topic (co-partitioned: Faust assigns partition `p` of all three to one worker) and
  hands every record to that partition's `FaustPartition`. For each record it produces the
  output on the runtime's own idempotent producer, waits for every acknowledgement, and only
  then writes the tables, so their changelog (and the local RocksDB) never holds an event as
  seen before its output is durable (docs/faust.md, "Guarantee"). It acknowledges the record to
  Faust (manual acks) only once those changelog records are acknowledged too, so an offset is
  never committed before the state it wrote (`changelog.py`).
- Recovery seeks the input partitions with the flow stopped (`recovery.py`): Faust's own order
  loses queued records after an assignment and stops the partition's commits.
- Tables `profiles` (profile id -> state) and `meta` (segment definitions, last versions, the
  backfill queue) live on Faust's RocksDB store (rocksdict driver), one database per
  partition; Faust changelogs and restores them.
- The ticker (a Faust timer) sends a tick record to each partition this worker owns, and the
  segment catalogue's missing versions as control records: timers and backfills run inside
  the partition's stream, where Faust lets tables change.
- The same metrics (`WorkerMetrics`) and probes (`HealthWeb`) as the native worker, and its
  status records, so `segstream segments list` and readiness checks work unchanged.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, cast

import faust
from aiokafka import AIOKafkaProducer

from segstream.app.catalogue import SegmentCatalogue
from segstream.app.collector import SendRejected
from segstream.app.metrics import WorkerMetrics
from segstream.app.status_publisher import STATUS_INTERVAL_S
from segstream.app.web import HealthWeb
from segstream.errors import InvalidRecord, ProfileProcessingError
from segstream.faust_runtime.acks import InOrderAcks
from segstream.faust_runtime.changelog import ChangelogTrackingTable
from segstream.faust_runtime.partition import TICK_KEY, FaustPartition, Step
from segstream.faust_runtime.read_order import ReadOrder
from segstream.faust_runtime.recovery import SeekingTableManager
from segstream.faust_runtime.settings import FaustSettings
from segstream.schemas.jsontext import dumps
from segstream.timefmt import format_instant

__all__ = ["FaustRuntime"]

log = logging.getLogger("segstream.faust")

#: Exit status when a send failed after the producer's own retries, or a table write or its
#: changelog record failed (the supervisor restarts the worker; the records are read again
#: from the committed offsets: at least once).
EXIT_SEND_FAILED = 70


@dataclass(frozen=True, slots=True)
class _Record:
    """A consumed record as the partition reads it (Faust's timestamp is in seconds)."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    timestamp: int | None  # milliseconds


class _Tables:
    """`PartitionTables` over the Faust tables, for the partition of the current event."""

    def __init__(self, runtime: FaustRuntime, partition: int) -> None:
        self._runtime = runtime
        self._partition = partition

    def _db(self, table: Any) -> Any:
        # One RocksDB per table partition (Faust's store): scanning it lists this
        # partition's keys only. `_db_for_partition` is private (decision 0001, §3).
        return table.data._db_for_partition(self._partition)

    def _offset_key(self, table: Any) -> bytes:
        return bytes(table.data.offset_key)

    def profile(self, profile_id: str) -> bytes | None:
        value = self._runtime.profiles.get(profile_id.encode())
        return bytes(value) if value else None

    def profile_items(self) -> Iterable[tuple[str, bytes]]:
        table = self._runtime.profiles
        offset_key = self._offset_key(table)
        for key, value in self._db(table).items():
            if key != offset_key and value:
                yield key.decode(), bytes(value)

    def profile_ids_after(self, cursor: str | None, limit: int) -> list[str]:
        table = self._runtime.profiles
        offset_key = self._offset_key(table)
        start = cursor.encode() if cursor is not None else None
        found: list[str] = []
        for key in self._db(table).keys(from_key=start):
            if key in (offset_key, start):
                continue
            found.append(key.decode())
            if len(found) >= limit:
                break
        return found

    def meta_items(self) -> Iterable[tuple[str, bytes]]:
        table = self._runtime.meta
        offset_key = self._offset_key(table)
        prefix = f"{self._partition}/".encode()
        for key, value in self._db(table).items():
            if key != offset_key and key.startswith(prefix):
                yield key[len(prefix) :].decode(), bytes(value)

    def write(self, profiles: dict[str, bytes], meta: dict[str, bytes]) -> None:
        # Inside the event's processing: Faust writes the partition's RocksDB and sends the
        # changelog record to the same partition. Meta keys carry the partition number,
        # since Faust's key index is shared by the partitions of a table.
        for profile_id, value in profiles.items():
            self._runtime.profiles[profile_id.encode()] = value
        for name, value in meta.items():
            self._runtime.meta[f"{self._partition}/{name}".encode()] = value

    def take_sent(self) -> list[Any]:
        """The futures of the changelog records the writes sent."""
        return [*self._runtime.profiles.take_sent(), *self._runtime.meta.take_sent()]


class FaustRuntime:
    """The Faust app of `segstream worker --runtime faust` and what it drives."""

    def __init__(self, settings: FaustSettings, metrics: WorkerMetrics | None = None) -> None:
        self.settings = settings
        worker = settings.worker
        self.metrics = metrics or WorkerMetrics()
        self.partitions: dict[int, FaustPartition] = {}
        #: Per partition, profiles whose timer or backfill step raised (see `_process`).
        self.skipped: dict[int, set[str]] = {}
        self.catalogue = SegmentCatalogue(worker, self.metrics)
        self.producer: Any = None
        self._producer_lock = asyncio.Lock()
        self.web: HealthWeb | None = None
        self._started = False
        #: Acknowledgements waiting for their records' changelog writes (see `_agent`).
        self._pending_acks: set[asyncio.Future[None]] = set()
        #: ... released per partition in read order (acks.py).
        self._acks = InOrderAcks()
        #: Reads that skip offsets or go back, logged (read_order.py).
        self._read_order = ReadOrder()
        topics = worker.topics
        self.app = faust.App(
            settings.app_id,
            broker=[f"kafka://{host}" for host in worker.bootstrap.split(",")],
            store="rocksdb://",
            datadir=str(worker.store_dir / "faust"),
            processing_guarantee="at_least_once",
            topic_partitions=worker.input_partitions,
            topic_replication_factor=worker.replication_factor,
            broker_session_timeout=worker.session_timeout_s,
            broker_heartbeat_interval=worker.heartbeat_interval_s,
            broker_commit_interval=settings.commit_interval_s,
            consumer_auto_offset_reset="earliest",
            # Faust's own web server is not used: the worker's probes and metrics are ours.
            web_enabled=False,
            producer_acks=-1,
            stream_buffer_maxsize=worker.max_batch_records,
            # Our subclasses (changelog.py, recovery.py): acknowledge a record only once its
            # changelog records are written; seek the inputs after recovery with the flow
            # stopped.
            Table=ChangelogTrackingTable,
            TableManager=SeekingTableManager,
            # Table keys and values are our bytes (canonical JSON), not Faust's JSON.
            key_serializer="raw",
            value_serializer="raw",
        )
        self.source = self.app.topic(
            topics.profiles,
            topics.activity,
            settings.control_topic,
            key_type=bytes,
            value_type=bytes,
            key_serializer="raw",
            value_serializer="raw",
        )
        options = {"driver": "rocksdict", "block_cache_size": worker.rocksdb_block_cache_bytes}

        def table(name: str) -> ChangelogTrackingTable:
            made = self.app.Table(
                name,
                partitions=worker.input_partitions,
                key_type=bytes,
                value_type=bytes,
                options=dict(options),
            )
            return cast(ChangelogTrackingTable, made)

        self.profiles = table("profiles")
        self.meta = table("meta")
        self.app.agent(self.source, name="segstream-engine")(self._agent)
        self.app.timer(worker.tick_interval_s, name="segstream-ticker")(self._tick)
        self.app.timer(STATUS_INTERVAL_S, name="segstream-status")(self._publish_status)
        # App tasks start once the tables are recovered (Faust's `on_started`).
        self.app.task(self._started_task)
        self.app.task(self._catalogue_loop)
        self.app.on_partitions_revoked.connect(self._on_rebalance)
        self.app.on_partitions_assigned.connect(self._on_rebalance)

    # -- readiness --------------------------------------------------------------------------
    def assigned(self) -> set[int]:
        """The partitions this worker owns now (of the control topic, like the inputs)."""
        control = self.settings.control_topic
        return {tp.partition for tp in self.app.assignor.assigned_actives() if tp.topic == control}

    def is_ready(self) -> bool:
        """Started, not rebalancing, and every owned partition loaded from its tables."""
        if not self._started or self.app.rebalancing or self.app.in_recovery:
            return False
        assigned = self.assigned()
        return bool(assigned) and assigned <= set(self.partitions)

    # -- the agent ------------------------------------------------------------------------------
    async def _agent(self, stream: Any) -> None:
        # Manual acknowledgements: Faust would acknowledge a record when the agent takes the
        # next one, and commit its offset before the record's changelog writes are sent
        # (changelog.py). Each record is acknowledged once its changelog records are, and
        # those read before it from its partition are acknowledged (acks.py).
        manual = stream.noack()
        consumer: Any = self.app.consumer
        async for event in manual.events():
            message = event.message
            committed = consumer._committed_offset.get(message.tp)
            if committed is not None and message.offset < committed:
                # Processed before the last commit (Faust re-delivers a record after a seek
                # only from the committed offset on; kept as a guard, counted).
                # `_committed_offset` is private (decision 0001, §3).
                self.metrics.internal_record_skipped("before_committed")
                event.ack()
                continue
            self._read_order.read(message.tp, message.offset, committed)
            ready = self._acks.read(message.tp, event.ack)
            timestamp = message.timestamp
            record = _Record(
                message.topic,
                message.partition,
                message.offset,
                message.key,
                message.value,
                int(timestamp * 1000) if timestamp is not None else None,
            )
            sent = await self._process(record)
            if sent:
                pending = asyncio.ensure_future(self._ack_when_written(ready, sent))
                self._pending_acks.add(pending)
                pending.add_done_callback(self._pending_acks.discard)
            else:
                ready()

    async def _ack_when_written(self, ready: Callable[[], None], sent: list[Any]) -> None:
        """The record is ready to acknowledge once every changelog record its table writes
        sent is acknowledged by the broker (Faust may then commit its offset)."""
        try:
            await asyncio.gather(*sent)
        except Exception:
            # The state is in the local store but maybe not in the changelog: the next owner
            # would restore without it. Stop; the records from the committed offset are read
            # again (at least once).
            log.critical("a changelog record could not be written; stopping", exc_info=True)
            logging.shutdown()
            os._exit(EXIT_SEND_FAILED)
        ready()

    async def _process(self, record: _Record) -> list[Any]:
        """Handle one record: output acknowledged, then the tables written. Returns the
        futures of the changelog records the writes sent."""
        started = time.monotonic()
        tables = _Tables(self, record.partition)
        step, part = self._handle(record, tables)
        await self._deliver(step)
        # Only now, with every output record acknowledged: the state that marks the record
        # seen (local RocksDB, then the changelog record Faust sends for it).
        try:
            tables.write(step.profiles, step.meta)
        except Exception:
            # Faust would restart the agent and go on after this record, whose state is not
            # written: later records would be evaluated on a state without it. Stop instead;
            # the next start reads from the committed offsets (at least once).
            log.critical("the tables could not be written; stopping the worker", exc_info=True)
            logging.shutdown()
            os._exit(EXIT_SEND_FAILED)
        sent = tables.take_sent()
        if part is not None:
            part.committed(step)
        else:
            step.collector.committed()
        self.metrics.batch(time.monotonic() - started)
        return sent

    def _handle(self, record: _Record, tables: _Tables) -> tuple[Step, FaustPartition | None]:
        skipped = self.skipped.setdefault(record.partition, set())
        for _attempt in range(3):
            part = self.partitions.get(record.partition)
            try:
                if part is None:
                    part = FaustPartition(
                        record.partition,
                        self.settings.worker,
                        self.metrics,
                        tables,
                        self.settings.control_topic,
                        skipped,
                    )
                    self.partitions[record.partition] = part
                return part.handle(record.topic, record), part
            except ProfileProcessingError as error:
                # A timer or backfill step of one profile raised: nothing of the step was
                # written; drop that profile's timers, pass it over in backfills, go again.
                self.partitions.pop(record.partition, None)
                skipped.add(error.profile_id)
                self.metrics.profile_step_failed(error.step)
                log.error(
                    "partition %d: %s dropped for one profile (%s)",
                    record.partition,
                    error.step,
                    error,
                )
            except Exception as exc:
                # The record (or the partition's state) is at fault: the in-memory state may
                # be half changed, so it is loaded anew from the tables for the next record.
                self.partitions.pop(record.partition, None)
                return self._failed(record, exc), None
        self.partitions.pop(record.partition, None)
        return self._failed(record, RuntimeError("timer or backfill steps kept failing")), None

    def _failed(self, record: _Record, exc: Exception) -> Step:
        from segstream.app.collector import RecordCollector

        reason = f"processing failed: {type(exc).__name__}: {exc}"[:1000]
        log.error(
            "partition %d: %s record at offset %d failed: %s",
            record.partition,
            record.topic,
            record.offset,
            reason,
        )
        collector = RecordCollector(self.settings.worker.topics, record.partition, self.metrics)
        if record.topic == self.settings.control_topic:
            self.metrics.internal_record_skipped("control")
        else:
            collector.dead_letter(record, record.topic, InvalidRecord("internal", reason))
        return Step(collector)

    async def _deliver(self, step: Step) -> None:
        """Produce the step's records and wait for every acknowledgement."""
        producer = await self._producer()
        try:
            await step.collector.send(producer, [])
            await step.collector.confirm()
        except SendRejected as exc:
            # A record the broker will never take (far over its size limit): going on
            # without it is the only way forward; said loudly.
            log.error("a record was rejected and is not written: %s", exc)
            self.metrics.internal_record_skipped("rejected")
        except Exception:
            # The producer gave up after its own retries: what was acknowledged is unknown.
            # Writing the state now could mark events seen whose output is lost, so stop
            # here: the supervisor restarts the worker, which reads from the committed
            # offsets again (at least once).
            log.critical("output could not be delivered; stopping the worker", exc_info=True)
            logging.shutdown()
            os._exit(EXIT_SEND_FAILED)

    async def _producer(self) -> Any:
        if self.producer is None:
            async with self._producer_lock:
                if self.producer is None:
                    worker = self.settings.worker
                    producer = AIOKafkaProducer(
                        **worker.client_kwargs(),
                        enable_idempotence=True,
                        acks="all",
                        linger_ms=2,
                        max_request_size=worker.producer_max_request_bytes,
                        compression_type=worker.output_compression,
                    )
                    await producer.start()
                    self.producer = producer
        return self.producer

    # -- ticks, segment versions, status -------------------------------------------------------
    async def _tick(self) -> None:
        if self.app.rebalancing:
            return
        producer = await self._producer()
        futures = []
        for partition in sorted(self.assigned()):
            part = self.partitions.get(partition)
            if part is not None:
                for record in self.catalogue.missing(partition, part.registry):
                    futures.append(
                        await producer.send(
                            self.settings.control_topic,
                            key=record["id"].encode(),
                            value=dumps({"kind": "segment", "record": record}),
                            partition=partition,
                        )
                    )
            futures.append(
                await producer.send(
                    self.settings.control_topic, key=TICK_KEY, value=b"", partition=partition
                )
            )
        if futures:
            await asyncio.gather(*futures)

    async def _catalogue_loop(self) -> None:
        await self.catalogue.start()
        try:
            while True:
                await self.catalogue.poll()
        finally:
            await self.catalogue.stop()

    async def _publish_status(self) -> None:
        self.metrics.set_ready(self.is_ready())
        self.metrics.set_assigned(len(self.assigned()))
        if self.app.rebalancing:
            return
        producer = await self._producer()
        worker = self.settings.worker
        web = self.web.url if self.web is not None and self.web._runner is not None else None
        for partition in sorted(self.assigned()):
            part = self.partitions.get(partition)
            if part is None:
                continue
            status = part.status()
            status["worker"] = worker.worker_id
            status["web"] = worker.web_advertise or web
            status["at"] = format_instant(time.time_ns() // 1000)
            status["runtime"] = "faust"
            await producer.send(
                worker.topics.status, key=str(partition).encode(), value=dumps(status)
            )

    def _on_rebalance(self, sender: Any, /, *args: Any, signal: Any, **kwargs: Any) -> None:
        # Partitions that moved may come back changed by another worker: every partition
        # loads anew from its (restored) tables at its next record.
        self.partitions.clear()
        self._read_order.clear()

    async def _started_task(self) -> None:
        """Probes and metrics (`/livez`, `/readyz`, `/metrics`) on SEGSTREAM_WEB_PORT, once
        the tables are recovered."""
        self._started = True
        worker = self.settings.worker
        log.info("faust runtime %s started (worker %s)", self.settings.app_id, worker.worker_id)
        if worker.web_enabled:
            self.web = HealthWeb(worker.web_host, worker.web_port, self.metrics, self.is_ready)
            await self.web.start()
