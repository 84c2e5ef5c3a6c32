"""The worker process: one consumer group member that owns some input partitions.

It consumes the two input topics and the control topic (co-partitioned, range-assigned so
that partition `p` of all three lands on the same worker) and hands each partition's records
to that partition's lane, whose runner runs what is queued as one transaction on its
`PartitionTask` (`run_batch` isolates what fails a batch) while the fetch and the other
partitions go on (app/lanes.py says what keeps the order). The parts, each with one job:

- `TaskManager`: assignment and revocation, the one way a task (re)opens, restores in the
  background;
- `TickScheduler`: due timers and backfill slices of partitions without records;
- `SegmentCatalogue` (+ `_reconcile` here): new segment versions become control records for
  the partitions this worker owns;
- `StatusPublisher`: the status topic and the gauges.

The web server (probes, metrics, the HTTP API, the Audience page) is composed by the CLI
(`segstream.cli.compose`) and handed in as a `WebService`: this package never imports the API.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import threading
from typing import Any, Protocol

from aiokafka.abc import ConsumerRebalanceListener

from segstream.app import heap
from segstream.app.catalogue import SegmentCatalogue
from segstream.app.isolation import run_batch
from segstream.app.lanes import Lane, WorkerLocks
from segstream.app.loop_lag import StallWatch, measure_loop_lag
from segstream.app.metrics import WorkerMetrics
from segstream.app.priority import LivePriority
from segstream.app.settings import WorkerSettings
from segstream.app.status_publisher import StatusPublisher
from segstream.app.supervisor import supervise
from segstream.app.task import PartitionTask
from segstream.app.task_manager import TaskManager
from segstream.app.ticks import TickScheduler
from segstream.schemas.jsontext import dumps

__all__ = ["WebService", "Worker"]

log = logging.getLogger("segstream.worker")

#: After the shutdown budget ran out and the worker left its graceful stop, how long the
#: event loop's own teardown (cancelling what is left, its thread pool) may take before the
#: process exits regardless.
EXIT_GRACE_S = 5.0


class WebService(Protocol):
    """What the worker needs of its web side: start it, know its URL, stop it."""

    async def start(self) -> str:
        """Start serving; returns the URL it answers on."""

    async def stop(self) -> None:
        """Stop serving."""


class Worker:
    """A segstream worker: consumer loop, tasks, ticks, catalogue, status."""

    def __init__(self, settings: WorkerSettings, metrics: WorkerMetrics | None = None) -> None:
        self.settings = settings
        self.metrics = metrics or WorkerMetrics()
        self.group_id = settings.app_id
        self.tasks = TaskManager(
            settings,
            self.metrics,
            self.group_id,
            pause=self._pause,
            resume=self._resume,
            opened=self._task_opened,
        )
        #: The tasks of the partitions this worker owns (the API reads the running ones);
        #: the task manager's own dict, never replaced.
        self.partitions: dict[int, PartitionTask] = self.tasks.partitions
        self.joined = False
        self.rebalancing = False
        #: Per-partition locks for transactions and ticks; rebalances and the shutdown
        #: hold them all.
        self.locks = WorkerLocks()
        self._lanes: dict[int, Lane] = {}
        self._runners: dict[int, asyncio.Task[None]] = {}
        #: Set when a full lane drained (a consume loop that waits for one goes on).
        self._drained = asyncio.Event()
        self._stopping = asyncio.Event()
        self._stall_watch = StallWatch()
        #: When (loop time) the graceful stop must be over: set by the first `stop()`, or when
        #: the consumer loop ends for another reason.
        self._deadline: float | None = None
        #: The budget of the part of the stop in progress (rescheduled by `stop()`).
        self._budget: asyncio.Timeout | None = None
        #: What the stop is waiting for (named in the warning when the budget runs out).
        self._step: object = "the batch in progress"
        self._overdue = False
        self._reconciles: set[asyncio.Task[None]] = set()
        self.consumer: Any = None
        self.side_producer: Any = None
        self.catalogue = SegmentCatalogue(settings, self.metrics)
        self.web: WebService | None = None
        self.web_url: str | None = None
        #: Live records first: when backfill slices may take the loop (app/priority.py).
        self.priority = LivePriority(settings.backfill_slice_s, settings.backfill_min_share)
        self.ticks = TickScheduler(
            self.tasks,
            settings.tick_interval_s,
            self.locks.partition,
            lambda: self.rebalancing,
            self.priority,
            self._unparked,
        )
        self.status_publisher = StatusPublisher(
            settings,
            self.metrics,
            self.tasks,
            self.locks.partition,
            lambda: self.settings.web_advertise or self.web_url,
            self.is_ready,
            self._reconcile,
        )

    # -- readiness ------------------------------------------------------------------------
    def is_ready(self) -> bool:
        """Joined the group and every assigned partition restored."""
        return self.joined and not self.rebalancing and self.tasks.all_running()

    def stop(self) -> None:
        """Ask the worker to finish its current batch and shut down, within
        `shutdown_timeout_s` of this first call (then it leaves without the rest)."""
        self._stopping.set()
        self._start_budget()

    def _start_budget(self) -> None:
        if self._deadline is None:
            self._deadline = asyncio.get_running_loop().time() + self.settings.shutdown_timeout_s
            if self._budget is not None:
                self._budget.reschedule(self._deadline)

    # -- main --------------------------------------------------------------------------------
    async def run(self, web: WebService | None = None) -> None:
        """Run until `stop()` (SIGTERM/SIGINT), serving `web` beside the loop."""
        from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
        from aiokafka.coordinator.assignors.range import RangePartitionAssignor

        heap.tune()
        gc_timer = heap.timed(self.metrics.gc_pause)
        # What holds the loop for over STALL_S goes to the log with its stack.
        self._stall_watch.start()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self.stop)
        # `kill -USR1 <pid>`: what every task of the loop is waiting for, in the log.
        loop.add_signal_handler(signal.SIGUSR1, _log_tasks)
        settings = self.settings
        topics = settings.topics
        if web is not None:
            self.web = web
            self.web_url = await web.start()
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
        # Supervised: a crash of one (a defect) restarts it, counted and logged.
        background = [
            asyncio.create_task(supervise(name, run, self.metrics, self._stopping), name=name)
            for name, run in (
                ("ticker", lambda: self.ticks.run(self._stopping)),
                (
                    "status",
                    lambda: self.status_publisher.run(
                        self._stopping, self.side_producer, self.consumer
                    ),
                ),
                ("catalogue", self._catalogue_loop),
                (
                    "loop-lag",
                    lambda: measure_loop_lag(
                        self.metrics.loop_lag, self._stopping, watch=self._stall_watch
                    ),
                ),
            )
        ]
        log.info("worker %s started (group %s)", settings.worker_id, self.group_id)
        try:
            await self._within_budget(self._consume())
        finally:
            # A crash of the loop stops the worker too, in the same time.
            self._stopping.set()
            self._start_budget()
            await self._within_budget(self._shutdown(background))
            self._stall_watch.stop()
            heap.untimed(gc_timer)
            if self._overdue:
                # Should even the loop's teardown wait (a task that ignores its cancellation,
                # a thread of the loop's pool), exit regardless.
                timer = threading.Timer(EXIT_GRACE_S, _exit_now, (settings.worker_id,))
                timer.daemon = True
                timer.start()

    async def _within_budget(self, awaitable: Any) -> None:
        """Await `awaitable` until the stop's deadline (none until `stop()`); past it, say
        what it still waited for and go on without it. Leaving early keeps exactly once: the
        broker (or the partition's next owner) aborts an open transaction, and the stores
        survive a kill -9 anyway; the group only notices after its session timeout."""
        try:
            async with asyncio.timeout_at(self._deadline) as budget:
                self._budget = budget
                try:
                    await awaitable
                finally:
                    self._budget = None
        except TimeoutError:
            self._left_early()

    def _left_early(self) -> None:
        if self._overdue:
            return
        self._overdue = True
        log.warning(
            "worker %s: stopping took over %gs (SEGSTREAM_SHUTDOWN_TIMEOUT_S), still waiting"
            " for %s; leaving without it (an open transaction is aborted by the broker)",
            self.settings.worker_id,
            self.settings.shutdown_timeout_s,
            self._step,
        )
        _log_tasks()

    async def _consume(self) -> None:
        """Fetch and hand the records to their partitions' lanes until the stop; then let the
        lanes finish the transactions in progress."""
        try:
            while not self._stopping.is_set():
                await self._fetch()
        finally:
            for lane in self._lanes.values():
                lane.closed = True
                lane.waiting.set()
            await asyncio.gather(*self._runners.values())

    async def _fetch(self) -> None:
        consumer = self.consumer
        limit = self.settings.max_batch_records
        # Short waits while backfills are pending: an empty fetch is what tells the ticker
        # that the loop is idle and the next slice may start (app/priority.py).
        backfilling = any(task.jobs for task in self.tasks.partitions.values())
        full = {p for p, lane in self._lanes.items() if lane.records >= limit}
        if full:
            # Not fetched for until they drain: the consumer keeps what it has for them.
            tps = [tp for tp in consumer.assignment() if tp.partition not in full]
            self._drained.clear()
            if not tps:
                try:
                    async with asyncio.timeout(0.1):
                        await self._drained.wait()
                except TimeoutError:
                    pass
                return
            fetched = await consumer.getmany(*tps, timeout_ms=5, max_records=limit)
        else:
            fetched = await consumer.getmany(
                timeout_ms=5 if backfilling else 100, max_records=limit
            )
        if not fetched:
            self.priority.live_idle()
            return
        # No await from the fetch to the queues: a seek in between would mix positions.
        for tp, messages in fetched.items():
            lane = self._lane(tp.partition)
            lane.add(tp, messages)
            if not lane.counted:
                # Queued records keep the ticker from running slices back to back.
                lane.counted = True
                self.priority.live_fetched()

    def _lane(self, partition: int) -> Lane:
        lane = self._lanes.get(partition)
        if lane is None:
            lane = self._lanes[partition] = Lane(partition)
            self._runners[partition] = asyncio.create_task(
                self._run_lane(lane), name=f"lane-{partition}"
            )
        return lane

    async def _run_lane(self, lane: Lane) -> None:
        """The partition's runner: everything queued (up to the batch size) is its next
        transaction, after the one in progress."""
        limit = self.settings.max_batch_records
        while True:
            await lane.waiting.wait()
            if lane.closed:
                return
            async with self.locks.partition(lane.partition):
                if lane.empty or lane.closed:
                    continue  # discarded meanwhile (a rebalance, a seek)
                batch = lane.take(limit)
                if lane.records < limit:
                    self._drained.set()
                lane.running = True
                try:
                    await self._run_batch(lane.partition, batch)
                except Exception:
                    # A defect (batch failures are handled in `_process`): the lane goes on
                    # from the committed offsets.
                    log.exception("partition %d: lane failed; reading again", lane.partition)
                    await self._rewind(lane.partition)
                finally:
                    lane.running = False
                    self._settle(lane)

    async def _run_batch(self, partition: int, batch: list[tuple[Any, list[Any]]]) -> None:
        """One transaction of records, carrying a backfill slice when the backfills are owed
        their minimum share (under live load the ticker would wait behind every batch)."""
        task = self.tasks.running(partition)
        claimed = task is not None and bool(task.jobs) and self.priority.claim()
        if task is not None:
            task.records_slice_s = self.priority.slice_s if claimed else 0.0
            task.slice_evaluated_s = 0.0
        try:
            await self._process(partition, batch)
        finally:
            if claimed:
                assert task is not None
                self.priority.background_ran(task.slice_evaluated_s)

    async def _process(self, partition: int, batch: list[tuple[Any, list[Any]]]) -> None:
        task = self.tasks.ensure_open(partition)
        if task is None:
            # Not ours (any more) or not restored yet: fetch these again from the committed
            # offsets once it is.
            await self._rewind(partition)
            return
        try:
            await run_batch(task, batch)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("partition %d: batch failed; reopening the partition", partition)
            await self.tasks.suspend(partition)
            await self._rewind(partition)
            self.tasks.ensure_open(partition)
        else:
            # Its due timers fired in that transaction: the ticker can leave it alone.
            self.ticks.committed(partition)
            if task.parked_control is not None:
                # A slice this batch carried may have finished the related backfills.
                released = task.unpark()
                if released is not None:
                    self._unparked(task, released)
                else:
                    self._park(task)

    def _control_tp(self, partition: int) -> Any:
        from aiokafka import TopicPartition

        return TopicPartition(self.settings.topics.control, partition)

    def _park(self, task: PartitionTask) -> None:
        """Hold the task's control partition at its parked record (read again on release)."""
        tp = self._control_tp(task.partition)
        parked = task.parked_control
        if (
            parked is not None
            and tp in self.consumer.assignment()
            and tp not in self.consumer.paused()
        ):
            self._seek(tp, parked)
            self.consumer.pause(tp)

    def _unparked(self, task: PartitionTask, offset: int) -> None:
        """The related backfills are done: read the control partition again from the record
        that waited (the position may be past it when it was parked and released at once)."""
        tp = self._control_tp(task.partition)
        if tp in self.consumer.assignment():
            self._seek(tp, offset)
            self.consumer.resume(tp)

    def _seek(self, tp: Any, offset: int) -> None:
        """Move `tp`'s position; its queued records (read from the old one) go with it."""
        lane = self._lanes.get(tp.partition)
        if lane is not None:
            lane.discard(tp)
            self._settle(lane)
        self.consumer.seek(tp, offset)

    def _settle(self, lane: Lane) -> None:
        """Tell the priority when a lane has nothing waiting or in progress any more."""
        if lane.counted and lane.empty and not lane.running:
            lane.counted = False
            self.priority.live_processed()

    async def _rewind(self, partition: int) -> None:
        """Read the partition again from its committed positions; what is queued goes (it
        follows what failed, or came while the task was not running). A running task's
        positions are those its state holds; a task not running gets them when it opens
        (`_task_opened`), and till then the group's committed offsets do."""
        task = self.tasks.running(partition)
        known = task.positions if task is not None else {}
        tps = self._partition_tps(partition)
        committed = {
            tp: known[tp.topic] if tp.topic in known else await self.consumer.committed(tp)
            for tp in tps
        }
        unknown = [tp for tp, offset in committed.items() if offset is None]
        if unknown:
            beginning = await self.consumer.beginning_offsets(unknown)
            committed.update({tp: beginning[tp] for tp in unknown})
        # From here on no await: records fetched while the offsets were asked for came from
        # the old positions and are discarded with the seek.
        for tp, offset in committed.items():
            if tp in self.consumer.assignment():
                self._seek(tp, offset)

    def _seek_positions(self, task: PartitionTask) -> None:
        """Move the task's input partitions to the positions its state holds (the consumer
        starts a new assignment at the group's committed offsets, which may be behind)."""
        for tp in self._partition_tps(task.partition):
            offset = task.positions.get(tp.topic)
            if offset is not None:
                self._seek(tp, offset)

    def _discard_all(self) -> None:
        """A rebalance: every lane's queued records go, each position back at the first of
        them (the new assignment starts from the committed offsets anyway)."""
        assignment = self.consumer.assignment() if self.consumer is not None else set()
        for lane in self._lanes.values():
            for tp, offset in lane.discard().items():
                if tp in assignment:
                    self.consumer.seek(tp, offset)
            self._settle(lane)

    def _partition_tps(self, partition: int) -> list[Any]:
        if self.consumer is None:
            return []
        return [tp for tp in self.consumer.assignment() if tp.partition == partition]

    def _pause(self, partition: int) -> None:
        tps = self._partition_tps(partition)
        if tps:
            self.consumer.pause(*tps)

    def _resume(self, partition: int) -> None:
        tps = self._partition_tps(partition)
        if tps:
            self.consumer.resume(*tps)

    def _task_opened(self, partition: int) -> None:
        task = self.tasks.running(partition)
        if task is not None:
            # Before its inputs resume: from the restored state's positions.
            self._seek_positions(task)
        self.catalogue.forget_requests(partition)
        self.metrics.set_ready(self.is_ready())
        # The new task lacks the versions published while it restored.
        reconcile = asyncio.get_running_loop().create_task(self._reconcile())
        self._reconciles.add(reconcile)
        reconcile.add_done_callback(self._reconciles.discard)

    # -- rebalances ----------------------------------------------------------------------
    async def on_revoked(self) -> None:
        """Eager rebalance starts: stop ticking until the new assignment is known; the
        transactions in progress end first, and what is queued goes."""
        async with self.locks.exclusive():
            self._discard_all()
            self.rebalancing = True
            self.metrics.set_ready(False)

    async def on_assigned(self, assigned: set[Any]) -> None:
        """Close partitions we lost; the ones we gained restore in the background."""
        partitions = {tp.partition for tp in assigned}
        async with self.locks.exclusive():
            await self.tasks.assign(partitions)
            for partition in sorted(partitions):
                kept = self.tasks.running(partition)
                if kept is not None:
                    # Kept across the rebalance: the new assignment starts at the group's
                    # committed offsets, which may be behind the state's positions.
                    self._seek_positions(kept)
            self.joined = True
            self.rebalancing = False
            self.metrics.set_ready(self.is_ready())

    # -- segment versions ---------------------------------------------------------------------
    async def _catalogue_loop(self) -> None:
        while not self._stopping.is_set():
            if await self.catalogue.poll():
                await self._reconcile()

    async def _reconcile(self) -> None:
        """Send each running partition the segment versions it has not applied yet."""
        for partition, task in list(self.tasks.partitions.items()):
            if task.ready:
                for record in self.catalogue.missing(partition, task.registry):
                    await self.side_producer.send(
                        self.settings.topics.control,
                        key=record["id"].encode(),
                        value=dumps({"kind": "segment", "record": record}),
                        partition=partition,
                    )

    async def _shutdown(self, background: list[asyncio.Task[None]]) -> None:
        """The graceful stop, in its order: the partitions before the consumer leaves the
        group (their producers are done with the offsets it owns), then the rest."""
        worker_id = self.settings.worker_id
        started = asyncio.get_running_loop().time()
        log.info("worker %s stopping", worker_id)
        self._step = "the background tasks"
        for task in background:
            task.cancel()
        await asyncio.gather(*background, return_exceptions=True)
        self._step = "the rebalance in progress"
        async with self.locks.exclusive():
            self._step = _Closing(self.tasks.closing)
            await self.tasks.close_all()
        steps: list[tuple[str, Any]] = [
            ("the consumer to leave the group", self.consumer),
            ("the segment catalogue's consumer", self.catalogue),
            ("the side producer", self.side_producer),
            ("the web server", self.web),
        ]
        for step, part in steps:
            if part is not None:
                self._step = step
                await _quietly(part.stop())
        log.info(
            "worker %s stopped in %.2fs",
            worker_id,
            asyncio.get_running_loop().time() - started,
        )


class _Rebalance(ConsumerRebalanceListener):  # type: ignore[misc]
    """aiokafka rebalance listener forwarding to the worker."""

    def __init__(self, worker: Worker) -> None:
        self.worker = worker

    async def on_partitions_revoked(self, revoked: Any) -> None:
        await self.worker.on_revoked()

    async def on_partitions_assigned(self, assigned: Any) -> None:
        await self.worker.on_assigned(set(assigned))


class _Closing:
    """The partitions still closing, named when the stop's budget runs out."""

    def __init__(self, closing: set[int]) -> None:
        self._closing = closing

    def __str__(self) -> str:
        return f"closing partitions {sorted(self._closing)} (their producers)"


def _exit_now(worker_id: str) -> None:
    log.warning("worker %s: the event loop did not end in %.0fs; exiting", worker_id, EXIT_GRACE_S)
    logging.shutdown()
    os._exit(0)


def _log_tasks() -> None:
    """Log where each task of the loop waits (its whole chain of awaits, innermost last)."""
    for task in asyncio.all_tasks():
        lines = []
        awaited: Any = task.get_coro()
        while awaited is not None:
            frame = getattr(awaited, "cr_frame", None) or getattr(awaited, "gi_frame", None)
            if frame is not None:
                lines.append(
                    f"  {frame.f_code.co_filename}:{frame.f_lineno} {frame.f_code.co_name}"
                )
            awaited = getattr(awaited, "cr_await", None) or getattr(awaited, "gi_yieldfrom", None)
        log.warning("task %s waits at:\n%s", task.get_name(), "\n".join(lines))


async def _quietly(awaitable: Any) -> None:
    try:
        await awaitable
    except Exception:
        log.exception("while shutting down")
