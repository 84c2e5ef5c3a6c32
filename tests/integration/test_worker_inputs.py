"""Dead letters for every kind, and segment changes through the CLI while the worker runs."""

from __future__ import annotations

import asyncio
import subprocess
import time
from pathlib import Path
from typing import Any

import orjson
import pytest
from worker_harness import SEGSTREAM, WorkerCluster

pytestmark = pytest.mark.kafka


def _at(offset_s: float = 0.0) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + offset_s))


def test_every_dead_letter_kind_and_processing_goes_on(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    cluster = WorkerCluster(kafka_bootstrap, tmp_path, partitions=1)
    activity = cluster.topic("activity")
    profiles = cluster.topic("profiles")

    def event(**fields: Any) -> bytes:
        return orjson.dumps(
            {"id": "e1", "type": "page.viewed", "profile_id": "p1", "at": _at()} | fields
        )

    oversize = orjson.dumps(
        {"id": "big", "type": "page.viewed", "profile_id": "p1", "at": _at(), "x": "y" * 1_100_000}
    )
    bad = [
        (activity, b"p1", oversize, "too_large"),
        (activity, b"p1", b'{"id": "e1", "type": ', "invalid_json"),
        (activity, b"p1", event(type="page.exploded"), "unknown_type"),
        (profiles, b"p1", b'["not", "an", "object"]', "schema"),
        (activity, b"p1", event(at="yesterday"), "schema"),
        (profiles, b"p1", event(type="profile.updated"), "schema"),  # traits missing
        (activity, None, event(id="no-key"), "key_mismatch"),
        (activity, b"p2", event(id="other-key"), "key_mismatch"),
        (activity, b"p1", event(at=_at(7200)), "future_timestamp"),
    ]
    good = event(id="ok", type="cart.added")

    async def scenario() -> tuple[list[Any], list[dict[str, Any]]]:
        await cluster.create_topics()
        cluster.start("w1")
        cluster.wait_ready("w1")
        async with _writer(cluster) as writer:
            await writer.apply(
                [{"id": "carts", "name": "Carts", "condition": {"event": "cart.added"}}]
            )
        await asyncio.sleep(3)  # the partition applies the segment
        await cluster.produce([(topic, key, value) for topic, key, value, _ in bad])
        await cluster.produce([(activity, b"p1", good)])
        letters = await cluster.read("deadletter", at_least=len(bad))
        return letters, await cluster.memberships(at_least=1)

    try:
        letters, memberships = asyncio.run(scenario())
    finally:
        cluster.stop_all()
    assert len(letters) == len(bad)
    by_value = {m.value: m for m in letters}
    for topic, key, value, kind in bad:
        letter = by_value[value]
        headers = {k: v.decode() for k, v in letter.headers}
        assert letter.key == key
        assert headers["segstream.error.kind"] == kind, headers
        assert headers["segstream.error.message"]
        assert headers["segstream.source.topic"] == topic
        assert headers["segstream.source.partition"] == "0"
        assert int(headers["segstream.source.offset"]) >= 0
    assert [(m["type"], m["cause"]) for m in memberships] == [
        ("segment.entered", {"kind": "event", "event_id": "ok"})
    ]


def _writer(cluster: WorkerCluster) -> Any:
    from segstream.app.segment_writer import SegmentWriter

    return SegmentWriter(cluster.settings)


def _cli(cluster: WorkerCluster, *args: str, input_file: Path | None = None) -> str:
    result = subprocess.run(
        [SEGSTREAM, *args, *([str(input_file)] if input_file else [])],
        env=cluster.env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def test_segment_changes_through_the_cli(kafka_bootstrap: str, tmp_path: Path) -> None:
    cluster = WorkerCluster(kafka_bootstrap, tmp_path, partitions=2)
    pro = {"id": "plan", "name": "Pro", "condition": {"trait": "plan", "op": "eq", "value": "pro"}}
    paid = {**pro, "condition": {"trait": "plan", "op": "in", "value": ["pro", "team"]}}
    renamed = {**paid, "name": "Paying customers"}

    def apply(definition: dict[str, Any]) -> str:
        path = tmp_path / "segment.json"
        path.write_bytes(orjson.dumps(definition))
        return _cli(cluster, "segments", "apply", input_file=path)

    async def scenario() -> list[dict[str, Any]]:
        await cluster.create_topics()
        cluster.start("w1")
        cluster.wait_ready("w1")
        await cluster.produce(
            {
                "id": f"t{i}",
                "type": "profile.updated",
                "profile_id": pid,
                "at": _at(),
                "traits": {"plan": plan},
            }
            for i, (pid, plan) in enumerate([("p1", "pro"), ("p2", "team"), ("p3", "free")])
        )
        await asyncio.sleep(2)
        apply(pro)
        await cluster.memberships(at_least=1)
        apply(paid)
        await cluster.memberships(at_least=2)
        apply(renamed)
        _cli(cluster, "segments", "delete", "plan")
        return await cluster.memberships(at_least=5)

    try:
        memberships = asyncio.run(scenario())
    finally:
        cluster.stop_all()
    seen = [
        (m["profile_id"], m["type"], m["segment_version"], m["seq"], m["cause"]["kind"])
        for m in memberships
    ]
    assert sorted(seen) == sorted(
        [
            ("p1", "segment.entered", 1, 1, "segment_created"),
            ("p2", "segment.entered", 2, 1, "segment_updated"),
            ("p1", "segment.left", 2, 2, "segment_deleted"),
            ("p2", "segment.left", 2, 2, "segment_deleted"),
        ]
    )
