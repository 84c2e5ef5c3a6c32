"""Prometheus metrics of `segstream deliver`, in their own registry, labelled by destination.

Destination ids are operator-defined and few, so they make a bounded label; profile ids never
appear in a label.
"""

from __future__ import annotations

import contextlib

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from segstream.app.metrics import LATENCY_BUCKETS

__all__ = ["DELIVER_METRIC_NAMES", "FAILURE_REASONS", "DeliverMetrics"]

#: Why an attempt failed.
FAILURE_REASONS = ("http_5xx", "http_429", "http_4xx", "redirect", "timeout", "connection")

#: Every family `segstream deliver` exports (counters and histograms by their base name).
DELIVER_METRIC_NAMES = (
    "segstream_deliver_batches_total",
    "segstream_deliver_events_total",
    "segstream_deliver_retries_total",
    "segstream_deliver_failed_attempts_total",
    "segstream_deliver_latency_seconds",
    "segstream_deliver_lag_records",
    "segstream_deliver_failing",
    "segstream_deliver_destinations",
)


class DeliverMetrics:
    """The deliver process's metrics."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        reg = self.registry
        self._batches = Counter(
            "segstream_deliver_batches",
            "Batches finished, by destination and outcome (delivered or dead_lettered).",
            ["destination", "outcome"],
            registry=reg,
        )
        self._events = Counter(
            "segstream_deliver_events",
            "Membership events in finished batches, by destination and outcome.",
            ["destination", "outcome"],
            registry=reg,
        )
        self._retries = Counter(
            "segstream_deliver_retries",
            "Batches sent again after a failed attempt, by destination.",
            ["destination"],
            registry=reg,
        )
        self._failed = Counter(
            "segstream_deliver_failed_attempts",
            "Failed delivery attempts, by destination and reason.",
            ["destination", "reason"],
            registry=reg,
        )
        self._latency = Histogram(
            "segstream_deliver_latency_seconds",
            "Time from a membership event's Kafka timestamp to the 2xx that delivered it.",
            ["destination"],
            buckets=(*LATENCY_BUCKETS, 60.0, 300.0, 3600.0),
            registry=reg,
        )
        self._lag = Gauge(
            "segstream_deliver_lag_records",
            "Membership records not yet delivered (or skipped) by a destination's group here.",
            ["destination"],
            registry=reg,
        )
        self._failing = Gauge(
            "segstream_deliver_failing",
            "1 while a destination's current batch has failed and is being retried (or is "
            "blocked: secret missing, host no longer allowed), else 0.",
            ["destination"],
            registry=reg,
        )
        self._destinations = Gauge(
            "segstream_deliver_destinations",
            "Destinations this process delivers to.",
            registry=reg,
        )

    def add_destination(self, destination: str) -> None:
        """Pre-set a destination's series to 0, so that `increase()` sees the first change."""
        for outcome in ("delivered", "dead_lettered"):
            self._batches.labels(destination=destination, outcome=outcome)
            self._events.labels(destination=destination, outcome=outcome)
        self._retries.labels(destination=destination)
        for reason in FAILURE_REASONS:
            self._failed.labels(destination=destination, reason=reason)
        self._failing.labels(destination=destination).set(0)

    def forget_destination(self, destination: str) -> None:
        """Drop a removed destination's gauges (counters stay, so rates stay continuous)."""
        for gauge in (self._lag, self._failing):
            with contextlib.suppress(KeyError):
                gauge.remove(destination)

    def delivered(self, destination: str, events: int, latencies: list[float]) -> None:
        """A batch of `events` got a 2xx; `latencies` per event, in seconds."""
        self._batches.labels(destination=destination, outcome="delivered").inc()
        self._events.labels(destination=destination, outcome="delivered").inc(events)
        histogram = self._latency.labels(destination=destination)
        for seconds in latencies:
            histogram.observe(max(seconds, 0.0))

    def dead_lettered(self, destination: str, events: int) -> None:
        """A batch went to the destination dead-letter topic."""
        self._batches.labels(destination=destination, outcome="dead_lettered").inc()
        self._events.labels(destination=destination, outcome="dead_lettered").inc(events)

    def failed_attempt(self, destination: str, reason: str) -> None:
        """An attempt failed for `reason` (one of FAILURE_REASONS)."""
        self._failed.labels(destination=destination, reason=reason).inc()

    def retry(self, destination: str) -> None:
        """A batch is sent again."""
        self._retries.labels(destination=destination).inc()

    def set_failing(self, destination: str, failing: bool) -> None:
        """Whether the destination's current batch is failing."""
        self._failing.labels(destination=destination).set(1 if failing else 0)

    def set_lag(self, destination: str, records: int) -> None:
        """Records of the membership topic the destination has still to go through here."""
        self._lag.labels(destination=destination).set(max(records, 0))

    def set_destinations(self, count: int) -> None:
        """How many destinations this process runs."""
        self._destinations.set(count)

    def render(self) -> bytes:
        """The registry in the Prometheus text format."""
        return generate_latest(self.registry)
