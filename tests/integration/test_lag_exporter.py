"""`segstream lag-exporter` against a real broker with no worker running (lag from offsets),
and with no broker at all. (The first test takes `kafka_bootstrap`, which marks it `kafka`.)"""

from __future__ import annotations

import asyncio
import os
import signal
import time
import uuid
from pathlib import Path

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from ops_harness import free_port, get, lag_exporter, wait_for
from prometheus_client.parser import text_string_to_metric_families

from segstream.app.lag_metrics import LAG_METRIC_NAMES
from segstream.app.settings import WorkerSettings
from segstream.app.topics import create_topics, topic_specs

Samples = dict[str, dict[frozenset[tuple[str, str]], float]]


def samples(exposition: str) -> Samples:
    """{sample name: {labels: value}} of a /metrics answer."""
    found: Samples = {}
    for family in text_string_to_metric_families(exposition):
        for sample in family.samples:
            found.setdefault(sample.name, {})[frozenset(sample.labels.items())] = sample.value
    return found


def value(found: Samples, name: str, **labels: str) -> float | None:
    """The one sample of `name` whose labels include `labels` (None if there is none)."""
    matching = [v for ls, v in found.get(name, {}).items() if set(labels.items()) <= ls]
    assert len(matching) <= 1, (name, labels, matching)
    return matching[0] if matching else None


async def produce(bootstrap: str, topic: str, counts: dict[int, int]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        for partition, count in counts.items():
            for index in range(count):
                await producer.send_and_wait(
                    topic,
                    key=b"k",
                    value=b"{}",
                    partition=partition,
                    headers=[("i", b"%d" % index)],
                )
    finally:
        await producer.stop()


async def commit(bootstrap: str, group: str, offsets: dict[TopicPartition, int]) -> None:
    """Commit offsets for `group` without joining it (manual assignment)."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False
    )
    await consumer.start()
    try:
        consumer.assign(list(offsets))
        await consumer.commit(offsets)
    finally:
        await consumer.stop()


def test_lag_exporter_reports_lag_from_committed_and_end_offsets_without_a_worker(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    prefix = f"lag{uuid.uuid4().hex[:8]}"
    env = {
        **os.environ,
        "SEGSTREAM_KAFKA_BOOTSTRAP": kafka_bootstrap,
        "SEGSTREAM_TOPIC_PREFIX": prefix,
        "SEGSTREAM_PARTITIONS": "2",
    }
    settings = WorkerSettings.from_env(env)
    asyncio.run(create_topics(settings.client_kwargs(), topic_specs(settings)))
    profiles = settings.topics.profiles
    asyncio.run(produce(kafka_bootstrap, profiles, {0: 5, 1: 3}))
    log = tmp_path / "exporter.log"
    with lag_exporter(env, log, "--cluster-name", "test") as (process, url):
        base = {"cluster_name": "test", "group": prefix}

        def scraped() -> Samples | None:
            found = samples(get(f"{url}/metrics")[1])
            return found if value(found, "segstream_lag_exporter_up") == 1 else None

        # Never committed: the whole partition is lag (the worker would start at the
        # beginning), and there is no group offset to show.
        found = wait_for(scraped, "a successful poll", 30, log.read_text)
        assert get(f"{url}/readyz")[0] == 200
        assert value(found, "kafka_consumergroup_group_lag", topic=profiles, partition="0") == 5
        assert value(found, "kafka_consumergroup_group_lag", topic=profiles, partition="1") == 3
        assert "kafka_consumergroup_group_offset" not in found
        assert value(found, "kafka_consumergroup_group_topic_sum_lag", topic=profiles) == 8
        # The control and activity topics are reported before anything commits on them.
        for topic in (settings.topics.activity, settings.topics.control):
            assert value(found, "kafka_consumergroup_group_topic_sum_lag", topic=topic) == 0
        assert value(found, "kafka_partition_latest_offset", topic=profiles, partition="0") == 5
        assert value(found, "kafka_partition_earliest_offset", topic=profiles, partition="0") == 0
        assert value(found, "kafka_consumergroup_group_sum_lag", **base) == 8
        assert value(found, "kafka_consumergroup_group_max_lag", **base) == 5

        # The group commits 2 of partition 0: lag 3 there, and the offset is exported.
        asyncio.run(commit(kafka_bootstrap, prefix, {TopicPartition(profiles, 0): 2}))

        def committed() -> Samples | None:
            found = scraped()
            if found is None:
                return None
            offset = value(found, "kafka_consumergroup_group_offset", topic=profiles, partition="0")
            return found if offset == 2 else None

        found = wait_for(committed, "the committed offset", 30, log.read_text)
        lag = found["kafka_consumergroup_group_lag"]
        (labels,) = [ls for ls in lag if ("partition", "0") in ls and ("topic", profiles) in ls]
        # No member owns the partition: the member labels are empty (absent in Prometheus).
        assert dict(labels) == {
            **base,
            "topic": profiles,
            "partition": "0",
            "member_host": "",
            "consumer_id": "",
            "client_id": "",
        }
        assert lag[labels] == 3
        assert value(found, "kafka_consumergroup_group_sum_lag", **base) == 6
        # A group that only commits (never joins) is a "simple" consumer group.
        assert (
            value(found, "kafka_consumergroup_group_max_lag", **base, is_simple_consumer="true")
            == 3
        )

        # More input arrives while nothing consumes it: the lag grows with it.
        asyncio.run(produce(kafka_bootstrap, profiles, {1: 4}))

        def grown() -> Samples | None:
            found = scraped()
            total = value(found or {}, "kafka_consumergroup_group_topic_sum_lag", topic=profiles)
            return found if total == 10 else None

        found = wait_for(grown, "the lag to grow to 10", 30, log.read_text)
        exported = {
            family.name for family in text_string_to_metric_families(get(f"{url}/metrics")[1])
        }
        # Counters are listed by their family name without `_total`.
        assert {name.removesuffix("_total") for name in LAG_METRIC_NAMES} <= exported
        assert value(found, "kafka_consumergroup_poll_time_ms", cluster_name="test") is not None
    assert process.returncode == 0, log.read_text()


def test_lag_exporter_without_kafka_reports_itself_down_and_stops_on_sigterm(
    tmp_path: Path,
) -> None:
    # Nothing listens on this port: every poll fails.
    env = {**os.environ, "SEGSTREAM_KAFKA_BOOTSTRAP": f"127.0.0.1:{free_port()}"}
    log = tmp_path / "exporter.log"
    with lag_exporter(env, log) as (process, url):

        def failed() -> Samples | None:
            found = samples(get(f"{url}/metrics")[1])
            polls = value(found, "segstream_lag_exporter_polls_total", outcome="failed")
            return found if polls else None

        found = wait_for(failed, "a failed poll", 30, log.read_text)
        assert value(found, "segstream_lag_exporter_up") == 0
        assert not [name for name in found if name.startswith("kafka_")]
        assert get(f"{url}/readyz")[0] == 503
        assert get(f"{url}/livez")[0] == 200
        started = time.monotonic()
        process.send_signal(signal.SIGTERM)
        assert process.wait(10) == 0, log.read_text()
        assert time.monotonic() - started < 10
    assert "lag poll failed" in log.read_text()
