"""Misrouted input records (SPEC §2) and the supervisor of background tasks."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field

import pytest

from segstream.api.cluster import partition_for
from segstream.app.collector import RecordCollector
from segstream.app.metrics import WorkerMetrics
from segstream.app.routing import MOVED_FROM_HEADER, InputRouter, murmur2_partition
from segstream.app.settings import WorkerSettings
from segstream.app.supervisor import supervise


@dataclass
class Record:
    """What the router reads of a consumer record."""

    key: bytes | None
    partition: int
    offset: int = 7
    value: bytes = b"{}"
    timestamp: int = 1000
    headers: list[tuple[str, bytes]] = field(default_factory=list)


class Producer:
    """Answers the router's only question of a producer."""

    async def partitions_for(self, topic: str) -> set[int]:
        return {0, 1, 2, 3}


def test_murmur2_partition_is_the_api_routing() -> None:
    for pid in ["p1", "user-007", "a b/c?d%é", "x" * 256]:
        assert murmur2_partition(pid.encode(), 4) == partition_for(pid, 4)


def test_a_misrouted_record_is_moved_once_with_its_headers(
    caplog: pytest.LogCaptureFixture,
) -> None:
    metrics = WorkerMetrics()
    router = InputRouter(1, ("t.profiles", "t.activity"), metrics)
    asyncio.run(router.open(Producer()))
    keys = [f"p{i}".encode() for i in range(50)]
    away = next(k for k in keys if murmur2_partition(k, 4) != 1)
    home = next(k for k in keys if murmur2_partition(k, 4) == 1)
    assert router.target("t.activity", Record(home, 1)) is None
    assert router.target("t.activity", Record(None, 1)) is None
    assert router.target("t.control", Record(away, 1)) is None
    moved_before = Record(away, 1, headers=[(MOVED_FROM_HEADER, b"x")])
    assert router.target("t.activity", moved_before) is None  # never moved twice
    record = Record(away, 1, headers=[("h", b"v")])
    with caplog.at_level(logging.WARNING, "segstream.routing"):
        assert router.target("t.activity", record) == murmur2_partition(away, 4)
    assert router.moved_headers("t.activity", record) == [
        ("h", b"v"),
        (MOVED_FROM_HEADER, b"t.activity/1/7"),
    ]
    assert "partitioner=murmur2_random" in caplog.text
    # Counted when the move commits (a batch run again would count it twice otherwise).
    assert b'segstream_misrouted_records_total{topic="t.activity"} 0.0' in metrics.render()
    collector = RecordCollector(WorkerSettings.from_env({}).topics, 1, metrics)
    collector.move("t.activity", record, 2, router.moved_headers("t.activity", record))
    collector.committed()
    assert b'segstream_misrouted_records_total{topic="t.activity"} 1.0' in metrics.render()


def test_a_crashing_background_task_is_restarted(caplog: pytest.LogCaptureFixture) -> None:
    metrics = WorkerMetrics()
    runs = []

    async def scenario() -> None:
        stopping = asyncio.Event()

        async def task() -> None:
            runs.append(1)
            if len(runs) < 3:
                raise KeyError("junk record")
            stopping.set()

        await supervise("status", task, metrics, stopping, pause_s=0.01)

    with caplog.at_level(logging.ERROR, "segstream.supervisor"):
        asyncio.run(scenario())
    assert len(runs) == 3
    assert caplog.text.count("background task status crashed") == 2
    assert b'segstream_background_task_restarts_total{task="status"} 2.0' in metrics.render()
