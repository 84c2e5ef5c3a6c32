"""Upgrading a running deployment (issue 19): a format-1 changelog written by the code before
the keyed layout (tests/fixtures/format1, main at fab09ed) makes the new worker refuse to start,
naming `segstream migrate`; after the command the worker starts, restores the converted state
and serves the same profiles."""

from __future__ import annotations

import asyncio
import gzip
import json
import subprocess
import urllib.request
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from worker_harness import SEGSTREAM, WorkerCluster

from segstream.state.codec import decode_profile

pytestmark = pytest.mark.kafka

FIXTURE = Path(__file__).parents[1] / "fixtures" / "format1" / "format1.json.gz"


async def _write_old_changelog(cluster: WorkerCluster, records: list[list[str]]) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=cluster.bootstrap)
    await admin.start()
    try:
        await admin.create_topics(
            [
                NewTopic(
                    cluster.topic("state-changelog"),
                    1,
                    1,
                    topic_configs={"cleanup.policy": "compact"},
                )
            ]
        )
    finally:
        await admin.close()
    producer = AIOKafkaProducer(bootstrap_servers=cluster.bootstrap)
    await producer.start()
    try:
        for key, value in records:
            await producer.send_and_wait(
                cluster.topic("state-changelog"), value.encode(), key=key.encode(), partition=0
            )
    finally:
        await producer.stop()


def _profile(url: str, pid: str) -> dict[str, Any]:
    with urllib.request.urlopen(f"{url}/api/profiles/{pid}?activity=3", timeout=30) as r:
        body: dict[str, Any] = json.loads(r.read())
    return body


def test_an_old_changelog_is_refused_then_migrated(kafka_bootstrap: str, tmp_path: Path) -> None:
    fixture = orjson.loads(gzip.decompress(FIXTURE.read_bytes()))
    cluster = WorkerCluster(kafka_bootstrap, tmp_path, partitions=1)
    asyncio.run(_write_old_changelog(cluster, fixture["changelog"]))
    try:
        cluster.start("w1")
        code = cluster.processes["w1"].wait(60)
        cluster.processes.pop("w1")
        assert code != 0
        assert "segstream migrate" in cluster.log("w1")
        migrated = subprocess.run(
            [SEGSTREAM, "migrate"], env=cluster.env, capture_output=True, text=True, timeout=120
        )
        assert migrated.returncode == 0, migrated.stderr
        assert "partition 0:" in migrated.stderr
        again = subprocess.run(
            [SEGSTREAM, "migrate"], env=cluster.env, capture_output=True, text=True, timeout=120
        )
        assert again.returncode == 0 and "nothing to migrate" in again.stderr
        cluster.start("w2")
        url = cluster.wait_ready("w2")
        for key, value in fixture["changelog"][:10]:
            old = decode_profile(value.encode())
            if not old.exists:
                continue
            served = _profile(url, key[1:])
            assert served["traits"] == old.traits
            assert served["activity_total"] == sum(len(h) for h in old.events.values())
    finally:
        cluster.stop_all()
