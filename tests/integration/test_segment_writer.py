"""SegmentWriter against a real broker: versions, rejections, deletion markers and fencing."""

from __future__ import annotations

import asyncio
import logging
import uuid
from typing import Any

import orjson
import pytest

from segstream.app.segment_writer import SegmentWriter, UnknownSegment, read_topic_to_end
from segstream.app.settings import WorkerSettings
from segstream.app.topics import create_topics, topic_specs

pytestmark = pytest.mark.kafka


def fresh_settings(bootstrap: str) -> WorkerSettings:
    """Settings on topics of their own (a unique prefix), created on the broker."""
    settings = WorkerSettings.from_env(
        {
            "SEGSTREAM_KAFKA_BOOTSTRAP": bootstrap,
            "SEGSTREAM_TOPIC_PREFIX": f"sw-{uuid.uuid4().hex[:10]}",
            "SEGSTREAM_PARTITIONS": "2",
        }
    )
    asyncio.run(create_topics(settings.client_kwargs(), topic_specs(settings)))
    return settings


async def segment_records(settings: WorkerSettings) -> list[tuple[bytes, dict[str, Any]]]:
    """(key, value) of every committed record of the segments topic, in order."""
    from aiokafka import AIOKafkaConsumer, TopicPartition

    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.bootstrap, isolation_level="read_committed"
    )
    await consumer.start()
    try:
        tp = TopicPartition(settings.topics.segments, 0)
        consumer.assign([tp])
        await consumer.seek_to_beginning(tp)
        records = await read_topic_to_end(consumer, [tp])
    finally:
        await consumer.stop()
    return [(record.key, orjson.loads(record.value)) for record in records]


def definition(segment_id: str, value: object = 1, name: str = "A segment") -> dict[str, Any]:
    return {
        "id": segment_id,
        "name": name,
        "condition": {"trait": "custom.score", "op": "eq", "value": value},
    }


def test_versions_follow_condition_changes_and_survive_deletion(kafka_bootstrap: str) -> None:
    settings = fresh_settings(kafka_bootstrap)

    async def scenario() -> list[list[tuple[str, str, int | None]]]:
        steps: list[list[tuple[str, str, int | None]]] = []
        async with SegmentWriter(settings) as writer:
            for batch in (
                [definition("s", 1)],  # created v1
                [definition("s", 1, name="Renamed")],  # renamed, keeps v1
                [definition("s", 1, name="Renamed")],  # unchanged, nothing written
                [definition("s", 1.0, name="Renamed")],  # 1 -> 1.0 is a change: v2
            ):
                applied = await writer.apply(batch)
                steps.append([(a.label, a.outcome, a.version) for a in applied])
            steps.append([("s", "deleted", await writer.delete("s"))])
            applied = await writer.apply([definition("s", 2)])  # re-created: continues at v3
            steps.append([(a.label, a.outcome, a.version) for a in applied])
            current, last = await writer.read_definitions()
            assert current["s"]["version"] == 3 and last == {"s": 3}
        return steps

    assert asyncio.run(scenario()) == [
        [("s", "created", 1)],
        [("s", "renamed", 1)],
        [("s", "unchanged", 1)],
        [("s", "changed", 2)],
        [("s", "deleted", 2)],
        [("s", "created", 3)],
    ]
    records = asyncio.run(segment_records(settings))
    assert [key for key, _ in records] == [b"s"] * 5
    assert [value for _, value in records] == [
        {**definition("s", 1), "version": 1},
        {**definition("s", 1, name="Renamed"), "version": 1},
        {**definition("s", 1.0, name="Renamed"), "version": 2},
        {"id": "s", "deleted": True, "version": 2},
        {**definition("s", 2), "version": 3},
    ]
    # The float survives the round trip as written: 1.0, not 1.
    assert isinstance(records[2][1]["condition"]["value"], float)


def test_invalid_definitions_are_rejected_with_paths_and_not_written(kafka_bootstrap: str) -> None:
    settings = fresh_settings(kafka_bootstrap)
    base = definition("base")
    # Refers to `base`, applied just before it in the same call.
    dependent = {"id": "dep", "name": "Dependent", "condition": {"segment": "base"}}
    broken = {
        "id": "broken",
        "name": "Broken",
        "condition": {"and": [{"trait": "age", "op": "gt", "value": "old"}, {"segment": "nope"}]},
    }

    async def scenario() -> list[Any]:
        async with SegmentWriter(settings) as writer:
            applied = await writer.apply([base, broken, dependent, {"name": 3}])
            with pytest.raises(UnknownSegment):
                await writer.delete("never-defined")
        return applied

    applied = asyncio.run(scenario())
    assert [(a.label, a.outcome, a.version) for a in applied] == [
        ("base", "created", 1),
        ("broken", "rejected", None),
        ("dep", "created", 1),
        ("[3]", "rejected", None),
    ]
    assert {problem.path for problem in applied[1].problems} == {
        "condition.and[0].value",
        "condition.and[1].segment",
    }
    assert {problem.path for problem in applied[3].problems} >= {"id", "name", "condition"}
    written = asyncio.run(segment_records(settings))
    assert [key for key, _ in written] == [b"base", b"dep"]


def test_a_fenced_writer_starts_over_and_still_succeeds(
    kafka_bootstrap: str, caplog: pytest.LogCaptureFixture
) -> None:
    settings = fresh_settings(kafka_bootstrap)
    caplog.set_level(logging.INFO, logger="segstream.app.single_writer")

    async def scenario() -> tuple[Any, Any, Any]:
        async with SegmentWriter(settings) as first:
            await first.apply([definition("shared", 1)])
            # The second writer's start fences the first (same transactional id).
            async with SegmentWriter(settings) as second:
                from_first = await first.apply([definition("shared", 2)])
                # ... which fenced the second in turn: it starts over on top of v2.
                from_second = await second.apply([definition("shared", 3)])
                state = await second.read_definitions()
        return from_first, from_second, state

    from_first, from_second, (current, last) = asyncio.run(scenario())
    assert [(a.outcome, a.version) for a in from_first] == [("changed", 2)]
    assert [(a.outcome, a.version) for a in from_second] == [("changed", 3)]
    assert current["shared"]["condition"]["value"] == 3 and last == {"shared": 3}
    fenced = [r for r in caplog.records if "fenced" in r.getMessage()]
    assert len(fenced) >= 2
    versions = [value["version"] for _, value in asyncio.run(segment_records(settings))]
    assert versions == [1, 2, 3]
