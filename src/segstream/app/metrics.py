"""The worker's Prometheus metrics in their own registry, behind small typed methods."""

from __future__ import annotations

import contextlib
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

__all__ = [
    "CONTENT_TYPE",
    "DEAD_LETTER_KINDS",
    "LATENCY_BUCKETS",
    "METRIC_NAMES",
    "PROCESSING_BUCKETS",
    "RESTORE_BUCKETS",
    "WorkerMetrics",
]

#: The classic text format; every Prometheus server version parses it.
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

#: End-to-end, timer and batch latencies: 1 ms .. 30 s.
LATENCY_BUCKETS = (
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
    30.0,
)
#: One input record through the engine is usually well under a millisecond.
PROCESSING_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 1.0)
#: Restoring a partition store from its changelog: 0.1 s .. 10 min.
RESTORE_BUCKETS = (0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0)
#: SPEC §7; pre-set to 0 so that `increase()` sees a worker's first dead letter.
DEAD_LETTER_KINDS = (
    "too_large",
    "invalid_json",
    "unknown_type",
    "schema",
    "key_mismatch",
    "future_timestamp",
    "internal",
)

#: Every family the worker exports (histograms and counters by their base name, as the
#: dashboard and alert rules refer to them); the ops tests check those files against it.
METRIC_NAMES = (
    "segstream_events_consumed_total",
    "segstream_processing_duration_seconds",
    "segstream_end_to_end_latency_seconds",
    "segstream_membership_changes_total",
    "segstream_segment_members",
    "segstream_dead_letters_total",
    "segstream_consumer_lag_records",
    "segstream_partitions_assigned",
    "segstream_partition_restoring",
    "segstream_restore_duration_seconds",
    "segstream_ready",
    "segstream_timer_lag_seconds",
    "segstream_backfill_remaining_profiles",
    "segstream_transactions_total",
    "segstream_batch_duration_seconds",
    "segstream_profile_steps_dropped_total",
    "segstream_records_skipped_total",
    "segstream_batch_retries_total",
    "segstream_misrouted_records_total",
    "segstream_background_task_restarts_total",
    "segstream_event_loop_lag_seconds",
)


class WorkerMetrics:
    """One worker's metrics; each instance has its own registry, so tests can build several."""

    def __init__(self) -> None:
        self._consumed_children: dict[tuple[str, str], Any] = {}
        self._changes_children: dict[tuple[str, bool], Any] = {}
        self.registry = CollectorRegistry(auto_describe=True)
        reg = self.registry
        # prometheus_client appends `_total` to counter names itself.
        self._consumed = Counter(
            "segstream_events_consumed",
            "Input records consumed, by topic and event type ('invalid' when unreadable).",
            ["topic", "type"],
            registry=reg,
        )
        self._processing = Histogram(
            "segstream_processing_duration_seconds",
            "Time to process one input record (engine and encoding).",
            buckets=PROCESSING_BUCKETS,
            registry=reg,
        )
        self._end_to_end = Histogram(
            "segstream_end_to_end_latency_seconds",
            "Emission time of a membership event minus the input record's Kafka timestamp.",
            buckets=LATENCY_BUCKETS,
            registry=reg,
        )
        self._changes = Counter(
            "segstream_membership_changes",
            "Membership events emitted, by segment and type (entered or left).",
            ["segment", "type"],
            registry=reg,
        )
        self._members = Gauge(
            "segstream_segment_members",
            "Members of a segment among the profiles of this worker's partitions.",
            ["segment"],
            registry=reg,
        )
        self._dead_letters = Counter(
            "segstream_dead_letters",
            "Input records sent to the dead-letter topic, by kind.",
            ["kind"],
            registry=reg,
        )
        self._lag = Gauge(
            "segstream_consumer_lag_records",
            "Records between the committed position and the end of an assigned partition.",
            ["topic", "partition"],
            registry=reg,
        )
        self._assigned = Gauge(
            "segstream_partitions_assigned",
            "Input partitions assigned to this worker.",
            registry=reg,
        )
        self._restoring = Gauge(
            "segstream_partition_restoring",
            "1 while an input partition's store is restored from its changelog.",
            ["partition"],
            registry=reg,
        )
        self._restore = Histogram(
            "segstream_restore_duration_seconds",
            "Time to restore one partition store from its changelog.",
            buckets=RESTORE_BUCKETS,
            registry=reg,
        )
        self._ready = Gauge(
            "segstream_ready",
            "1 when every assigned partition has restored its store (as /readyz), else 0.",
            registry=reg,
        )
        self._timer_lag = Histogram(
            "segstream_timer_lag_seconds",
            "Emission time of a time-caused membership change minus the instant it was due.",
            # A worker that restarts after a pause fires old timers: keep minutes visible.
            buckets=(*LATENCY_BUCKETS, 60.0, 300.0),
            registry=reg,
        )
        self._backfill = Gauge(
            "segstream_backfill_remaining_profiles",
            "Profiles of this worker's partitions a segment's backfill has still to evaluate.",
            ["segment"],
            registry=reg,
        )
        self._transactions = Counter(
            "segstream_transactions",
            "Partition transactions, by outcome (committed or aborted).",
            ["outcome"],
            registry=reg,
        )
        self._batch = Histogram(
            "segstream_batch_duration_seconds",
            "Time of one partition transaction, from begin to commit.",
            buckets=LATENCY_BUCKETS,
            registry=reg,
        )
        self._txn_step = Histogram(
            "segstream_transaction_step_seconds",
            "Time of one broker step of a partition transaction (begin, send, offsets, "
            "deliveries, commit): where a slow transaction waited.",
            ["step"],
            buckets=LATENCY_BUCKETS,
            registry=reg,
        )
        self._txn_step_children = {
            step: self._txn_step.labels(step=step)
            for step in ("begin", "send", "offsets", "deliveries", "commit")
        }
        self._gc_pause = Histogram(
            "segstream_gc_pause_seconds",
            "Time the cyclic garbage collector held the worker's loop, by generation "
            "(2: a full collection).",
            ["generation"],
            buckets=LATENCY_BUCKETS,
            registry=reg,
        )
        self._loop_lag = Histogram(
            "segstream_event_loop_lag_seconds",
            "How much later than due the worker's event loop ran a 10 ms probe: what an "
            "answer from the broker, a timer or a ready partition waited for the loop.",
            buckets=LATENCY_BUCKETS,
            registry=reg,
        )
        self._steps_dropped = Counter(
            "segstream_profile_steps_dropped",
            "Timer or backfill steps dropped for one profile because they raised (a defect).",
            ["step"],
            registry=reg,
        )
        self._records_skipped = Counter(
            "segstream_records_skipped",
            "Records neither applied nor dead-lettered: control records that failed, and "
            "records whose dead letter could not be written either.",
            ["kind"],
            registry=reg,
        )
        self._batch_retries = Counter(
            "segstream_batch_retries",
            "Batches run again after an abort to isolate the record or profile that failed "
            "them, by cause.",
            ["cause"],
            registry=reg,
        )
        self._misrouted = Counter(
            "segstream_misrouted_records",
            "Input records found outside their murmur2 partition and moved there.",
            ["topic"],
            registry=reg,
        )
        self._restarts = Counter(
            "segstream_background_task_restarts",
            "Background tasks of the worker (ticker, status, catalogue) restarted after a crash.",
            ["task"],
            registry=reg,
        )
        for kind in DEAD_LETTER_KINDS:
            self._dead_letters.labels(kind=kind)
        for step in ("timer", "backfill"):
            self._steps_dropped.labels(step=step)
        for task in ("ticker", "status", "catalogue"):
            self._restarts.labels(task=task)
        for kind in ("control", "segments", "no_dead_letter"):
            self._records_skipped.labels(kind=kind)
        for cause in ("record", "profile", "rejected"):
            self._batch_retries.labels(cause=cause)
        self._gc_pause_children = [self._gc_pause.labels(generation=str(g)) for g in range(3)]
        for outcome in ("committed", "aborted"):
            self._transactions.labels(outcome=outcome)
        self._ready.set(0)

    # Input and processing.

    def misrouted(self, topic: str, count: int = 1) -> None:
        """Count input records moved to their murmur2 partition (0: create the series)."""
        self._misrouted.labels(topic=topic).inc(count)

    def task_restarted(self, task: str) -> None:
        """Count a background task restarted by the supervisor."""
        self._restarts.labels(task=task).inc()

    def consumed(self, topic: str, type: str, count: int = 1) -> None:
        """Count `count` consumed records of `topic` whose event type is `type` (or 'invalid')."""
        child = self._consumed_children.get((topic, type))
        if child is None:
            # Looking a labelled child up costs more than the increment (per record).
            child = self._consumed_children[topic, type] = self._consumed.labels(
                topic=topic, type=type
            )
        child.inc(count)

    def processing(self, seconds: float) -> None:
        """Record the processing time of one input record."""
        self._processing.observe(seconds)

    def end_to_end(self, seconds: float) -> None:
        """Record one emission's latency since the causing record's Kafka timestamp."""
        # Producer and worker clocks can disagree; a negative latency is skew, not news.
        self._end_to_end.observe(max(seconds, 0.0))

    def timer_lag(self, seconds: float) -> None:
        """Record how late a time-caused change was emitted after its due instant."""
        self._timer_lag.observe(max(seconds, 0.0))

    def gc_pause(self, generation: int, seconds: float) -> None:
        """Record one collection of the cyclic garbage collector."""
        self._gc_pause_children[generation].observe(seconds)

    def loop_lag(self, seconds: float) -> None:
        """Record how late the event loop ran one probe."""
        self._loop_lag.observe(seconds)

    def batch(self, seconds: float) -> None:
        """Record the duration of one partition transaction."""
        self._batch.observe(seconds)

    def transaction_step(self, step: str, seconds: float) -> None:
        """Record one broker step of a partition transaction."""
        self._txn_step_children[step].observe(seconds)

    def transaction(self, committed: bool) -> None:
        """Count a partition transaction as committed or aborted."""
        self._transactions.labels(outcome="committed" if committed else "aborted").inc()

    def dead_letter(self, kind: str) -> None:
        """Count one record sent to the dead-letter topic."""
        self._dead_letters.labels(kind=kind).inc()

    def profile_step_failed(self, step: str) -> None:
        """Count a timer or backfill step dropped for one profile."""
        self._steps_dropped.labels(step=step).inc()

    def internal_record_skipped(self, kind: str) -> None:
        """Count a record that was neither applied nor dead-lettered (`control`: a control
        record that failed or is junk; `segments`: a segments-topic record with no effect,
        SPEC §4.3; `no_dead_letter`: not even its dead letter could be written)."""
        self._records_skipped.labels(kind=kind).inc()

    def batch_retry(self, cause: str) -> None:
        """Count a batch run again to isolate what failed it."""
        self._batch_retries.labels(cause=cause).inc()

    # Segments.

    def membership_change(self, segment: str, entered: bool) -> None:
        """Count one `segment.entered` (entered=True) or `segment.left` event."""
        child = self._changes_children.get((segment, entered))
        if child is None:
            child = self._changes_children[segment, entered] = self._changes.labels(
                segment=segment, type="entered" if entered else "left"
            )
        child.inc()

    def set_members(self, segment: str, count: int) -> None:
        """Set a segment's member count on this worker's partitions."""
        self._members.labels(segment=segment).set(count)

    def set_backfill_remaining(self, segment: str, remaining: int) -> None:
        """Set how many profiles a segment's backfill has left on this worker's partitions."""
        self._backfill.labels(segment=segment).set(remaining)

    def forget_segment(self, segment: str) -> None:
        """Drop a deleted segment's gauges (counters stay, so rates stay continuous)."""
        for gauge in (self._members, self._backfill):
            with contextlib.suppress(KeyError):  # never set on this worker
                gauge.remove(segment)

    # Partitions and readiness.

    def set_lag(self, topic: str, partition: int, lag: int) -> None:
        """Set the consumer lag of one assigned topic partition."""
        self._lag.labels(topic=topic, partition=str(partition)).set(max(lag, 0))

    def forget_lag(self, topic: str, partition: int) -> None:
        """Drop a revoked topic partition's lag, so that another worker's value is the only one."""
        self._lag.remove(topic, str(partition))

    def set_assigned(self, count: int) -> None:
        """Set the number of input partitions assigned to this worker."""
        self._assigned.set(count)

    def set_restoring(self, partition: int, restoring: bool) -> None:
        """Mark an input partition's store as restoring (1) or done (0)."""
        self._restoring.labels(partition=str(partition)).set(1 if restoring else 0)

    def forget_partition(self, partition: int) -> None:
        """Drop a revoked input partition's restoring gauge."""
        self._restoring.remove(str(partition))

    def restored(self, seconds: float) -> None:
        """Record how long one partition store took to restore."""
        self._restore.observe(seconds)

    def set_ready(self, ready: bool) -> None:
        """Set the readiness gauge (the same answer as /readyz)."""
        self._ready.set(1 if ready else 0)

    def render(self) -> bytes:
        """The registry in the Prometheus text format (CONTENT_TYPE)."""
        return generate_latest(self.registry)
