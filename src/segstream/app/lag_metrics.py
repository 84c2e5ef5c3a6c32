"""The lag exporter's Prometheus metrics, named and labelled as kafka-lag-exporter's.

Dashboards and alerts written for kafka-lag-exporter (github.com/seglo/kafka-lag-exporter,
README "Metrics") read these unchanged, and ours read that exporter's output: that is the
point of copying the names. Each scrape renders the last poll; a failed poll drops the lag
series (a stale lag would lie) and sets `segstream_lag_exporter_up` to 0.
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import CollectorRegistry, Counter, Gauge, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from segstream.app.lag import LagSnapshot

__all__ = ["LAG_METRIC_NAMES", "LagMetrics"]

_PARTITION_LABELS = (
    "cluster_name",
    "group",
    "topic",
    "partition",
    "member_host",
    "consumer_id",
    "client_id",
)

#: Every family the exporter serves (the ops tests check the dashboard and rules against it).
LAG_METRIC_NAMES = (
    "kafka_consumergroup_group_offset",
    "kafka_consumergroup_group_lag",
    "kafka_consumergroup_group_max_lag",
    "kafka_consumergroup_group_sum_lag",
    "kafka_consumergroup_group_topic_sum_lag",
    "kafka_partition_latest_offset",
    "kafka_partition_earliest_offset",
    "kafka_consumergroup_poll_time_ms",
    "segstream_lag_exporter_up",
    "segstream_lag_exporter_polls_total",
)


class _SnapshotCollector(Collector):
    """Renders the last successful poll; nothing once a poll has failed."""

    def __init__(self, cluster_name: str) -> None:
        self.cluster_name = cluster_name
        self.snapshot: LagSnapshot | None = None

    def describe(self) -> list[Metric]:
        # Families without samples, so a registry that auto-describes does not poll.
        return list(self._families(None))

    def collect(self) -> Iterator[Metric]:
        return self._families(self.snapshot)

    def _families(self, snapshot: LagSnapshot | None) -> Iterator[Metric]:
        cluster = self.cluster_name
        offset = GaugeMetricFamily(
            "kafka_consumergroup_group_offset",
            "The group's committed offset of a partition (absent when it has none).",
            labels=_PARTITION_LABELS,
        )
        lag = GaugeMetricFamily(
            "kafka_consumergroup_group_lag",
            "Records between the group's committed offset and the partition's end.",
            labels=_PARTITION_LABELS,
        )
        max_lag = GaugeMetricFamily(
            "kafka_consumergroup_group_max_lag",
            "The largest partition lag of the group.",
            labels=("cluster_name", "group", "is_simple_consumer"),
        )
        sum_lag = GaugeMetricFamily(
            "kafka_consumergroup_group_sum_lag",
            "The lag of all the group's partitions together.",
            labels=("cluster_name", "group"),
        )
        topic_sum_lag = GaugeMetricFamily(
            "kafka_consumergroup_group_topic_sum_lag",
            "The lag of the group's partitions of one topic together.",
            labels=("cluster_name", "group", "topic"),
        )
        latest = GaugeMetricFamily(
            "kafka_partition_latest_offset",
            "The partition's high watermark (offset of the next record written).",
            labels=("cluster_name", "topic", "partition"),
        )
        earliest = GaugeMetricFamily(
            "kafka_partition_earliest_offset",
            "The first offset still in the partition's log.",
            labels=("cluster_name", "topic", "partition"),
        )
        poll_time = GaugeMetricFamily(
            "kafka_consumergroup_poll_time_ms",
            "How long the last poll of Kafka took, in milliseconds.",
            labels=("cluster_name",),
        )
        if snapshot is not None:
            seen: set[tuple[str, int]] = set()
            for group in snapshot.groups:
                for p in group.partitions:
                    owner = p.owner
                    # No owner (the workers are stopped): empty labels, which Prometheus
                    # treats as absent.
                    labels = [
                        cluster,
                        group.group,
                        p.topic,
                        str(p.partition),
                        owner.member_host if owner else "",
                        owner.consumer_id if owner else "",
                        owner.client_id if owner else "",
                    ]
                    if p.committed is not None:
                        offset.add_metric(labels, p.committed)
                    lag.add_metric(labels, p.lag)
                    if (p.topic, p.partition) not in seen:
                        seen.add((p.topic, p.partition))
                        latest.add_metric([cluster, p.topic, str(p.partition)], p.latest)
                        earliest.add_metric([cluster, p.topic, str(p.partition)], p.earliest)
                simple = "true" if group.simple else "false"
                max_lag.add_metric([cluster, group.group, simple], group.max_lag)
                sum_lag.add_metric([cluster, group.group], group.sum_lag)
                for topic, total in sorted(group.topic_sum_lag().items()):
                    topic_sum_lag.add_metric([cluster, group.group, topic], total)
            poll_time.add_metric([cluster], snapshot.poll_seconds * 1000)
        yield from (offset, lag, max_lag, sum_lag, topic_sum_lag, latest, earliest, poll_time)


class LagMetrics:
    """The exporter's registry: the last poll's lag, and whether polls succeed."""

    def __init__(self, cluster_name: str) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self._snapshot = _SnapshotCollector(cluster_name)
        self.registry.register(self._snapshot)
        self._up = Gauge(
            "segstream_lag_exporter_up",
            "1 when the last poll of Kafka succeeded, else 0 (and no lag is reported).",
            registry=self.registry,
        )
        self._polls = Counter(
            "segstream_lag_exporter_polls",
            "Polls of Kafka for group and partition offsets, by outcome (ok or failed).",
            ["outcome"],
            registry=self.registry,
        )
        for outcome in ("ok", "failed"):
            self._polls.labels(outcome=outcome)
        self._up.set(0)

    @property
    def snapshot(self) -> LagSnapshot | None:
        """The poll being served (None before the first success or after a failure)."""
        return self._snapshot.snapshot

    def polled(self, snapshot: LagSnapshot) -> None:
        """Serve `snapshot` from now on."""
        self._snapshot.snapshot = snapshot
        self._polls.labels(outcome="ok").inc()
        self._up.set(1)

    def poll_failed(self) -> None:
        """Drop the lag series until the next successful poll."""
        self._snapshot.snapshot = None
        self._polls.labels(outcome="failed").inc()
        self._up.set(0)

    def render(self) -> bytes:
        """The registry in the Prometheus text format."""
        return generate_latest(self.registry)
