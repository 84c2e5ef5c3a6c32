"""The worker process: one consumer group member that owns some input partitions.

It consumes the two input topics and the control topic (co-partitioned, range-assigned so
that partition `p` of all three lands on the same worker), and hands each partition's
records to its `PartitionWorker`, one transaction per batch. Beside the loop run: the ticker
(due timers and backfill slices of idle partitions), the segment catalogue (turns new versions
in the segments topic into control records for the partitions this worker owns), the status
publisher, and the health/metrics web server.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import time
from collections import defaultdict
from typing import Any

import orjson
from aiokafka.abc import ConsumerRebalanceListener

from segstream.api import HttpApi
from segstream.app.catalogue import SegmentCatalogue
from segstream.app.metrics import WorkerMetrics
from segstream.app.partition import BACKFILL_SLICE_S, PartitionWorker
from segstream.app.settings import WorkerSettings
from segstream.app.web import HealthWeb
from segstream.audience import audience_routes
from segstream.timefmt import format_instant

__all__ = ["Worker"]

log = logging.getLogger("segstream.worker")

STATUS_INTERVAL_S = 2.0


class Worker:
    """A segstream worker: consumer loop, partitions, ticker, catalogue, status, web."""

    def __init__(self, settings: WorkerSettings) -> None:
        self.settings = settings
        self.metrics = WorkerMetrics()
        self.group_id = settings.app_id
        self.partitions: dict[int, PartitionWorker] = {}
        self.assigned: set[int] = set()
        self.joined = False
        self.rebalancing = False
        self._lock = asyncio.Lock()
        self._stopping = asyncio.Event()
        self.consumer: Any = None
        self.side_producer: Any = None
        self.catalogue = SegmentCatalogue(settings)
        self.web: HealthWeb | None = None
        self.api = HttpApi(self, settings)
        self._reported_segments: set[str] = set()
        #: When each partition last committed a transaction (monotonic seconds).
        self._last_transaction: dict[int, float] = {}

    # -- readiness ------------------------------------------------------------------------
    def is_ready(self) -> bool:
        """Joined the group and every assigned partition restored."""
        return (
            self.joined
            and not self.rebalancing
            and all(p in self.partitions and self.partitions[p].ready for p in self.assigned)
        )

    def stop(self) -> None:
        """Ask the worker to finish its current batch and shut down."""
        self._stopping.set()

    # -- main --------------------------------------------------------------------------------
    async def run(self) -> None:
        """Run until `stop()` (SIGTERM/SIGINT)."""
        from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
        from aiokafka.coordinator.assignors.range import RangePartitionAssignor

        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self.stop)
        settings = self.settings
        topics = settings.topics
        if settings.web_enabled:
            self.web = HealthWeb(
                settings.web_host,
                settings.web_port,
                self.metrics,
                self.is_ready,
                # The Audience page (`/`, `/ui/...`) before the API's JSON catch-all.
                extra_routes=[*audience_routes(), *self.api.routes()],
            )
            await self.web.start()
            self.api.set_url(settings.web_advertise or self.web.url)
        self.side_producer = AIOKafkaProducer(
            **settings.client_kwargs(), enable_idempotence=True, acks="all", linger_ms=5
        )
        await self.side_producer.start()
        await self.catalogue.start()
        self.consumer = AIOKafkaConsumer(
            **settings.client_kwargs(),
            group_id=self.group_id,
            client_id=settings.worker_id,
            isolation_level="read_committed",
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            max_poll_records=settings.max_batch_records,
            session_timeout_ms=int(settings.session_timeout_s * 1000),
            heartbeat_interval_ms=int(settings.heartbeat_interval_s * 1000),
            # Range assignment gives partition p of every subscribed topic to one member:
            # the inputs and the control topic are co-partitioned.
            partition_assignment_strategy=(RangePartitionAssignor,),
            fetch_max_bytes=8 * 1024 * 1024,
            max_partition_fetch_bytes=4 * 1024 * 1024,
        )
        self.consumer.subscribe(
            [topics.profiles, topics.activity, topics.control], listener=_Rebalance(self)
        )
        await self.consumer.start()
        background = [
            asyncio.create_task(self._ticker(), name="ticker"),
            asyncio.create_task(self._status(), name="status"),
            asyncio.create_task(self._catalogue_loop(), name="catalogue"),
        ]
        log.info("worker %s started (group %s)", settings.worker_id, self.group_id)
        try:
            await self._consume()
        finally:
            self._stopping.set()
            for task in background:
                task.cancel()
            await asyncio.gather(*background, return_exceptions=True)
            await self._shutdown()

    async def _consume(self) -> None:
        consumer = self.consumer
        while not self._stopping.is_set():
            fetched = await consumer.getmany(
                timeout_ms=100, max_records=self.settings.max_batch_records
            )
            if not fetched:
                continue
            by_partition: dict[int, list[tuple[Any, list[Any]]]] = defaultdict(list)
            for tp, messages in fetched.items():
                by_partition[tp.partition].append((tp, messages))
            async with self._lock:
                # Each partition has its own transactional producer: run their transactions
                # side by side, so that their broker round trips (add partitions, offsets,
                # commit) overlap instead of adding up (the engine work still takes turns).
                await asyncio.gather(
                    *(self._process(partition, batch) for partition, batch in by_partition.items())
                )

    async def _process(self, partition: int, batch: list[tuple[Any, list[Any]]]) -> None:
        worker = self.partitions.get(partition)
        if worker is not None and not worker.ready and partition in self.assigned:
            # Its (re)open failed (the broker was away): open it again before anything else.
            await self._try_reopen(partition)
            worker = self.partitions.get(partition)
        if worker is None or not worker.ready:
            # Not ours (any more) or not restored: fetch these again from the committed offsets.
            await self._rewind(batch)
            return
        try:
            await worker.process(batch)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("partition %d: batch failed; reopening the partition", partition)
            await self._try_reopen(partition)
            await self._rewind(batch)
        else:
            # Its due timers fired in that transaction: the ticker can leave it alone.
            self._last_transaction[partition] = time.monotonic()

    async def _rewind(self, batch: list[tuple[Any, list[Any]]]) -> None:
        for tp, _messages in batch:
            if tp in self.consumer.assignment():
                committed = await self.consumer.committed(tp)
                if committed is None:
                    await self.consumer.seek_to_beginning(tp)
                else:
                    self.consumer.seek(tp, committed)

    async def _reopen(self, partition: int) -> None:
        old = self.partitions.pop(partition, None)
        if old is not None:
            await _quietly(old.close())
        if partition in self.assigned:
            await self._open(partition)

    async def _try_reopen(self, partition: int) -> None:
        """Reopen a partition; if that fails too (the broker away), leave it closed (not
        ready): its next batch or tick tries again, and the worker stays up."""
        try:
            await self._reopen(partition)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("partition %d: reopening failed; will retry", partition)

    async def _open(self, partition: int) -> None:
        worker = PartitionWorker(partition, self.settings, self.metrics, self.group_id)
        self.partitions[partition] = worker
        await worker.open()
        self.catalogue.forget_requests(partition)

    # -- rebalances ----------------------------------------------------------------------
    async def on_revoked(self) -> None:
        """Eager rebalance starts: stop ticking until the new assignment is known."""
        async with self._lock:
            self.rebalancing = True
            self.metrics.set_ready(False)

    async def on_assigned(self, assigned: set[Any]) -> None:
        """Close partitions we lost, restore the ones we gained."""
        partitions = {tp.partition for tp in assigned}
        async with self._lock:
            for partition in sorted(set(self.partitions) - partitions):
                log.info("partition %d revoked", partition)
                await _quietly(self.partitions.pop(partition).close())
                self._forget_partition(partition)
            self.assigned = partitions
            for partition in sorted(partitions - set(self.partitions)):
                log.info("partition %d assigned", partition)
                try:
                    await self._open(partition)
                except Exception:
                    # The broker away: the partition stays closed (not ready) and the ticker
                    # opens it again; the other partitions and the flags below go on.
                    log.exception("partition %d: opening failed; will retry", partition)
            self.joined = True
            self.rebalancing = False
            self.metrics.set_assigned(len(partitions))
            self.metrics.set_ready(self.is_ready())
        await self._reconcile()

    def _forget_partition(self, partition: int) -> None:
        # The new owner reports this partition now; stale gauges here would count it twice.
        topics = self.settings.topics
        for topic in (topics.profiles, topics.activity, topics.control):
            self.metrics.forget_lag(topic, partition)
        self.metrics.forget_partition(partition)

    def _report_members(self) -> None:
        """Members per segment over this worker's partitions (a gauge per segment)."""
        totals: dict[str, int] = {}
        for worker in self.partitions.values():
            for segment_id in worker.registry.segments:
                totals[segment_id] = totals.get(segment_id, 0) + worker.members.get(segment_id, 0)
        for segment_id in self._reported_segments - totals.keys():
            self.metrics.forget_segment(segment_id)
        backlog: dict[str, int] = dict.fromkeys(totals, 0)
        for worker in self.partitions.values():
            for segment_id, count in worker.backlog().items():
                backlog[segment_id] = backlog.get(segment_id, 0) + count
        for segment_id, count in totals.items():
            self.metrics.set_members(segment_id, count)
            self.metrics.set_backfill_remaining(segment_id, backlog.get(segment_id, 0))
        self._reported_segments = set(totals)

    # -- background -------------------------------------------------------------------------
    async def _ticker(self) -> None:
        interval = self.settings.tick_interval_s
        while not self._stopping.is_set():
            await asyncio.sleep(interval)
            if self.rebalancing:
                continue
            async with self._lock:
                due: list[tuple[int, PartitionWorker]] = []
                now = time.monotonic()
                for partition, worker in list(self.partitions.items()):
                    if not worker.ready and partition in self.assigned:
                        # A (re)open that failed (the broker was away): try again, so that
                        # an idle partition does not stay closed for good.
                        await self._try_reopen(partition)
                        continue
                    if not worker.ready or not worker.has_work():
                        continue
                    if (
                        not worker.jobs
                        and now - self._last_transaction.get(partition, 0.0) < interval
                    ):
                        # A batch of records fired its due timers less than a tick ago; a
                        # transaction of its own now would only take turns from the records.
                        continue
                    due.append((partition, worker))
                # One tick's backfill slices together take at most BACKFILL_SLICE_S of
                # evaluation, however many partitions have backfills.
                backfilling = sum(1 for _, worker in due if worker.jobs)
                for _, worker in due:
                    worker.backfill_slice_s = BACKFILL_SLICE_S / max(1, backfilling)
                await asyncio.gather(*(self._tick(p, w) for p, w in due))

    async def _tick(self, partition: int, worker: PartitionWorker) -> None:
        try:
            await worker.process([])
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("partition %d: tick failed; reopening", partition)
            await self._try_reopen(partition)
        else:
            self._last_transaction[partition] = time.monotonic()

    async def _catalogue_loop(self) -> None:
        while not self._stopping.is_set():
            if await self.catalogue.poll():
                await self._reconcile()

    async def _reconcile(self) -> None:
        """Send each ready partition the segment versions it has not applied yet."""
        for partition, worker in list(self.partitions.items()):
            if worker.ready:
                for record in self.catalogue.missing(partition, worker.registry):
                    await self.side_producer.send(
                        self.settings.topics.control,
                        key=record["id"].encode(),
                        value=orjson.dumps({"kind": "segment", "record": record}),
                        partition=partition,
                    )

    async def _status(self) -> None:
        topics = self.settings.topics
        while not self._stopping.is_set():
            await asyncio.sleep(STATUS_INTERVAL_S)
            self.metrics.set_ready(self.is_ready())
            async with self._lock:
                # Between two transactions: what is reported is committed state (a segment
                # is not "ready" while its last backfill slice may still be aborted).
                self._report_members()
                statuses = [(p, w.status()) for p, w in list(self.partitions.items()) if w.ready]
            await self._reconcile()
            for partition, status in statuses:
                status["worker"] = self.settings.worker_id
                # Where this worker answers HTTP: peers forward partition-owned requests here.
                status["web"] = self.settings.web_advertise or (
                    self.web.url if self.web is not None else None
                )
                status["at"] = format_instant(time.time_ns() // 1000)
                await self.side_producer.send(
                    topics.status, key=str(partition).encode(), value=orjson.dumps(status)
                )

            await self._report_lag()

    async def _report_lag(self) -> None:
        consumer = self.consumer
        for tp in list(consumer.assignment()):
            highwater = consumer.highwater(tp)
            if highwater is None:
                continue
            try:
                position = await consumer.position(tp)
            except Exception:  # noqa: S112 - a partition moving away mid-report: skip it
                continue
            self.metrics.set_lag(tp.topic, tp.partition, max(0, highwater - position))

    async def _shutdown(self) -> None:
        log.info("worker %s stopping", self.settings.worker_id)
        async with self._lock:
            for worker in list(self.partitions.values()):
                await _quietly(worker.close())
            self.partitions.clear()
        if self.consumer is not None:
            await _quietly(self.consumer.stop())  # leaves the group
        await _quietly(self.catalogue.stop())
        if self.side_producer is not None:
            await _quietly(self.side_producer.stop())
        if self.web is not None:
            await _quietly(self.web.stop())
        await _quietly(self.api.close())
        log.info("worker %s stopped", self.settings.worker_id)


class _Rebalance(ConsumerRebalanceListener):  # type: ignore[misc]
    """aiokafka rebalance listener forwarding to the worker."""

    def __init__(self, worker: Worker) -> None:
        self.worker = worker

    async def on_partitions_revoked(self, revoked: Any) -> None:
        await self.worker.on_revoked()

    async def on_partitions_assigned(self, assigned: Any) -> None:
        await self.worker.on_assigned(set(assigned))


async def _quietly(awaitable: Any) -> None:
    try:
        await awaitable
    except Exception:
        log.exception("while shutting down")
