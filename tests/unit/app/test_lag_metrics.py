"""Lag arithmetic, owners from DescribeGroups, and the exporter's kafka-lag-exporter families."""

from __future__ import annotations

import re

import pytest
from aiokafka.coordinator.protocol import ConsumerProtocolMemberAssignment
from prometheus_client.parser import text_string_to_metric_families

from segstream.app.lag import (
    GroupLag,
    LagSnapshot,
    PartitionLag,
    PartitionOwner,
    lag_of,
    owners_from_description,
)
from segstream.app.lag_metrics import LAG_METRIC_NAMES, LagMetrics

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def samples(metrics: LagMetrics) -> Samples:
    found: Samples = {}
    for family in text_string_to_metric_families(metrics.render().decode()):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


@pytest.mark.parametrize(
    ("committed", "earliest", "latest", "lag"),
    [
        (7, 0, 10, 3),
        (10, 0, 10, 0),
        # Never committed: everything still in the log is to read.
        (None, 4, 10, 6),
        # Committed before the log start (retention deleted it): resumes at the start.
        (2, 4, 10, 6),
        # A committed offset past the end (a topic re-created smaller) is no negative lag.
        (12, 0, 10, 0),
    ],
)
def test_lag_counts_from_where_the_group_resumes(
    committed: int | None, earliest: int, latest: int, lag: int
) -> None:
    assert lag_of(committed, earliest, latest) == lag


def partition(topic: str, number: int, committed: int | None, latest: int) -> PartitionLag:
    owner = PartitionOwner("10.0.0.1", f"w{number}-abc", f"w{number}") if number == 0 else None
    return PartitionLag(topic, number, 0, latest, committed, owner)


def test_group_sums_and_maximum() -> None:
    group = GroupLag(
        "segstream",
        False,
        (partition("t.a", 0, 5, 10), partition("t.a", 1, None, 3), partition("t.b", 0, 8, 8)),
    )
    assert (group.max_lag, group.sum_lag) == (5, 8)
    assert group.topic_sum_lag() == {"t.a": 8, "t.b": 0}
    assert GroupLag("empty", True, ()).max_lag == 0


def test_owners_come_from_the_members_assignments() -> None:
    assignment = ConsumerProtocolMemberAssignment(0, [("t.a", [0, 2]), ("t.b", [0])], b"")
    description = {
        "group": "segstream",
        "protocol_type": "consumer",
        "members": [
            {
                "member_id": "w1-1234",
                "client_id": "w1",
                "client_host": "/10.0.0.7",
                "member_assignment": assignment.encode(),
            },
            # Joined, not yet assigned.
            {"member_id": "w2-5678", "client_id": "w2", "client_host": "/10.0.0.8"},
        ],
    }
    owner = PartitionOwner("10.0.0.7", "w1-1234", "w1")
    assert owners_from_description(description) == {
        ("t.a", 0): owner,
        ("t.a", 2): owner,
        ("t.b", 0): owner,
    }
    assert owners_from_description({"protocol_type": "connect", "members": []}) == {}
    assert owners_from_description({}) == {}


def test_exporter_renders_kafka_lag_exporter_families_with_its_labels() -> None:
    metrics = LagMetrics("prod")
    snapshot = LagSnapshot(
        groups=(
            GroupLag(
                "segstream", False, (partition("t.a", 0, 5, 10), partition("t.a", 1, None, 3))
            ),
        ),
        poll_seconds=0.012,
        at=0.0,
    )
    metrics.polled(snapshot)
    found = samples(metrics)
    owned = (
        ("client_id", "w0"),
        ("cluster_name", "prod"),
        ("consumer_id", "w0-abc"),
        ("group", "segstream"),
        ("member_host", "10.0.0.1"),
        ("partition", "0"),
        ("topic", "t.a"),
    )
    unowned = (
        ("client_id", ""),
        ("cluster_name", "prod"),
        ("consumer_id", ""),
        ("group", "segstream"),
        ("member_host", ""),
        ("partition", "1"),
        ("topic", "t.a"),
    )
    assert found[("kafka_consumergroup_group_lag", owned)] == 5
    assert found[("kafka_consumergroup_group_lag", unowned)] == 3
    assert found[("kafka_consumergroup_group_offset", owned)] == 5
    # No committed offset: no offset sample (0 would be a lie), but the lag is there.
    assert ("kafka_consumergroup_group_offset", unowned) not in found
    group = (("cluster_name", "prod"), ("group", "segstream"))
    assert (
        found[("kafka_consumergroup_group_max_lag", (*group, ("is_simple_consumer", "false")))] == 5
    )
    assert found[("kafka_consumergroup_group_sum_lag", group)] == 8
    assert found[("kafka_consumergroup_group_topic_sum_lag", (*group, ("topic", "t.a")))] == 8
    part = (("cluster_name", "prod"), ("partition", "1"), ("topic", "t.a"))
    assert found[("kafka_partition_latest_offset", part)] == 3
    assert found[("kafka_partition_earliest_offset", part)] == 0
    assert found[("kafka_consumergroup_poll_time_ms", (("cluster_name", "prod"),))] == 12
    assert found[("segstream_lag_exporter_up", ())] == 1
    assert found[("segstream_lag_exporter_polls_total", (("outcome", "ok"),))] == 1


def test_a_failed_poll_drops_the_lag_instead_of_serving_a_stale_one() -> None:
    metrics = LagMetrics("prod")
    metrics.polled(LagSnapshot((GroupLag("g", False, (partition("t", 0, 1, 2),)),), 0.0, 0.0))
    metrics.poll_failed()
    found = samples(metrics)
    assert not [name for name, _ in found if name.startswith("kafka_")]
    assert found[("segstream_lag_exporter_up", ())] == 0
    assert found[("segstream_lag_exporter_polls_total", (("outcome", "failed"),))] == 1
    # The families stay declared (`# TYPE` lines), so the ops checks find every name.
    text = metrics.render().decode()
    for name in LAG_METRIC_NAMES:
        assert re.search(rf"^# TYPE {name.removesuffix('_total')}(_total)? ", text, re.M), name
