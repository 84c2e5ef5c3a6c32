"""Exactly once when the broker rejects what a transaction wrote (issue: every send confirmed).

A changelog record outgrows the changelog topic's `max.message.bytes` (here lowered to 64 KiB
after the worker started, as an operator's or the broker's default would): the broker rejects
it. (A profile's state no longer grows with its history, one entry per event, so the records
here are the entries of events with a property over the limit.) Before the fix aiokafka
committed such a transaction anyway — output and offsets went out without the state, and after
a reopen the same `segment.entered` came out again. Now no transaction with a failed send
commits: the record whose state was rejected is isolated (dead-lettered as `internal`), every
other record is applied exactly once, and the state a fresh worker restores from the changelog
is the state the first one served.
"""

from __future__ import annotations

import asyncio
import json
import time
import urllib.request
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from worker_harness import WorkerCluster

from segstream.app.segment_writer import SegmentWriter

pytestmark = pytest.mark.kafka

LIMIT = 64 * 1024
#: Every this many views of the heavy profile, one whose history entry passes LIMIT.
BIG_EVERY = 40


def _at() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def _view(profile_id: str, n: int) -> dict[str, Any]:
    return {
        "id": f"{profile_id}-v{n}",
        "type": "page.viewed",
        "profile_id": profile_id,
        "at": _at(),
        "properties": {"url": f"https://shop.example/p/{n:06d}", "path": f"/p/{n:06d}"}
        | ({"note": "x" * (LIMIT + 1000)} if n % BIG_EVERY == BIG_EVERY - 1 else {}),
    }


def _profile(url: str, profile_id: str) -> dict[str, Any]:
    with urllib.request.urlopen(f"{url}/api/profiles/{profile_id}?activity=0", timeout=10) as r:
        body: dict[str, Any] = json.loads(r.read())
    return body


async def _lower_changelog_limit(cluster: WorkerCluster) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=cluster.bootstrap)
    await admin.start()
    try:
        await admin.alter_configs(
            [
                ConfigResource(
                    ConfigResourceType.TOPIC,
                    cluster.topic("state-changelog-v2"),
                    {"cleanup.policy": "compact", "max.message.bytes": str(LIMIT)},
                )
            ]
        )
    finally:
        await admin.close()


def test_a_rejected_changelog_record_never_commits(kafka_bootstrap: str, tmp_path: Path) -> None:
    cluster = WorkerCluster(kafka_bootstrap, tmp_path, partitions=1)
    segments = [
        {"id": "viewers", "name": "Viewers", "condition": {"event": "page.viewed"}},
        {"id": "pro", "name": "Pro", "condition": {"trait": "plan", "op": "eq", "value": "pro"}},
    ]
    views = 480

    async def scenario() -> tuple[list[dict[str, Any]], list[Any], dict[str, Any], dict[str, Any]]:
        await cluster.create_topics()
        cluster.start("w1")
        url = cluster.wait_ready("w1")
        await _lower_changelog_limit(cluster)
        async with SegmentWriter(cluster.settings) as writer:
            await writer.apply(segments)
        await asyncio.sleep(3)
        # Paced: many small transactions, as live traffic gives.
        for start in range(0, views, 60):
            await cluster.produce(_view("heavy", n) for n in range(start, start + 60))
        sentinel = {
            "id": "s1",
            "type": "profile.updated",
            "profile_id": "sentinel",
            "at": _at(),
            "traits": {"plan": "pro"},
        }
        await cluster.produce([sentinel])
        memberships = await cluster.memberships(at_least=2)
        letters = await cluster.read("deadletter", at_least=1)
        served = _profile(url, "heavy")
        cluster.kill("w1")
        # A fresh disk: the state is what the changelog holds.
        cluster.start("w2", store="fresh")
        url2 = cluster.wait_ready("w2")
        restored = _profile(url2, "heavy")
        return memberships, letters, served, restored

    try:
        memberships, letters, served, restored = asyncio.run(scenario())
    finally:
        cluster.stop_all()
    ids = Counter(m["id"] for m in memberships)
    assert all(count == 1 for count in ids.values()), ids.most_common(3)
    pairs = Counter((m["profile_id"], m["segment_id"], m["type"]) for m in memberships)
    assert pairs == {
        ("heavy", "viewers", "segment.entered"): 1,
        ("sentinel", "pro", "segment.entered"): 1,
    }
    # The views that no longer fit are dead letters of kind internal, with the reason.
    assert letters, "nothing was isolated"
    for letter in letters:
        headers = {k: v.decode() for k, v in letter.headers}
        assert headers["segstream.error.kind"] == "internal"
        assert "rejected" in headers["segstream.error.message"]
        assert letter.key == b"heavy"
    applied = views - len(letters)
    assert len(letters) == views // BIG_EVERY
    assert 200 < applied < views
    assert served["activity_total"] == applied
    assert restored["activity_total"] == applied
    assert restored["traits"] == served["traits"]
