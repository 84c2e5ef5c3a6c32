"""Upgrading a running deployment (issue 19): a format-1 changelog written by the code before
the keyed layout (tests/fixtures/format1, main at fab09ed) makes the new worker refuse to start,
naming `segstream migrate`; after the command the worker starts, restores the converted state
and serves the same profiles."""

from __future__ import annotations

import asyncio
import gzip
import json
import subprocess
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from worker_harness import SEGSTREAM, WorkerCluster

from segstream.state.codec import decode_profile, encode_profile

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


def test_a_migration_while_old_workers_run_catches_up(kafka_bootstrap: str, tmp_path: Path) -> None:
    """`segstream migrate` with the old group still writing: the old changelog grows after the
    first pass, the new worker refuses until a second pass converts the tail (each changed
    profile in a new generation), then serves the latest state; an unchanged profile keeps
    what the first pass wrote."""
    fixture = orjson.loads(gzip.decompress(FIXTURE.read_bytes()))
    cluster = WorkerCluster(kafka_bootstrap, tmp_path, partitions=1)
    asyncio.run(_write_old_changelog(cluster, fixture["changelog"]))
    first_pass = subprocess.run(
        [SEGSTREAM, "migrate"], env=cluster.env, capture_output=True, text=True, timeout=120
    )
    assert first_pass.returncode == 0, first_pass.stderr
    # Old workers go on: they change some profiles (a new event, new traits, a deletion).
    olds = {
        key[1:]: decode_profile(value.encode())
        for key, value in fixture["changelog"]
        if decode_profile(value.encode()).exists
    }
    changed, deleted, kept = sorted(olds)[:3], sorted(olds)[3], sorted(olds)[4]
    tail: list[list[str]] = []
    for pid in changed:
        state = olds[pid]
        state.traits = {**state.traits, "migrated_later": True}
        state.add_event(max(e.at for h in state.events.values() for e in h), f"late-{pid}", "x", {})
        tail.append([f"p{pid}", encode_profile(state).decode()])
    olds[deleted].forget("late-deletion")
    tail.append([f"p{deleted}", encode_profile(olds[deleted]).decode()])
    asyncio.run(_append(cluster, tail))
    try:
        cluster.start("w1")
        code = cluster.processes["w1"].wait(60)
        cluster.processes.pop("w1")
        assert code != 0 and "segstream migrate" in cluster.log("w1")
        second = subprocess.run(
            [SEGSTREAM, "migrate"], env=cluster.env, capture_output=True, text=True, timeout=120
        )
        assert second.returncode == 0, second.stderr
        assert "partition 0:" in second.stderr
        cluster.start("w2")
        url = cluster.wait_ready("w2")
        for pid in changed:
            served = _profile(url, pid)
            assert served["traits"] == olds[pid].traits
            assert served["activity_total"] == sum(len(h) for h in olds[pid].events.values())
        with pytest.raises(urllib.error.HTTPError) as missing:
            _profile(url, deleted)
        assert missing.value.code == 404
        missing.value.close()
        served = _profile(url, kept)
        assert served["traits"] == olds[kept].traits
        assert served["activity_total"] == sum(len(h) for h in olds[kept].events.values())
    finally:
        cluster.stop_all()


async def _append(cluster: WorkerCluster, records: list[list[str]]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=cluster.bootstrap)
    await producer.start()
    try:
        for key, value in records:
            await producer.send_and_wait(
                cluster.topic("state-changelog"), value.encode(), key=key.encode(), partition=0
            )
    finally:
        await producer.stop()
