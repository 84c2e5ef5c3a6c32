"""The current-membership topic (SPEC §6.1) and member exports, on two real workers.

A read_committed consumer that reads `<prefix>.members` from the beginning (kcat, a foreign
client) must hold exactly the members that `segstream segments list` counts and the members
API lists: after a backfill, after live changes with a worker killed (-9) mid-stream, after an
edit and after a deletion. The exports (CSV, JSON lines, `segstream members`) must equal the
members API, with ids and traits holding commas, quotes and newlines intact.
"""

from __future__ import annotations

import asyncio
import csv
import io
import json
import shutil
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import orjson
import pytest
from worker_harness import SEGSTREAM, WorkerCluster

from segstream.app.members_topic import SEEDED
from segstream.app.store import meta_key
from segstream.schemas.membership import CurrentMembership

pytestmark = pytest.mark.kafka

TOKEN = "export-token-1"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
NOW = "2026-01-01T00:00:00Z"
PROFILES = 3000
#: Ids and trait values a CSV writer must quote.
#: kcat reading a topic from the beginning to its end, read_committed, as JSON envelopes.
KCAT = ["kcat", "-C", "-o", "beginning", "-e", "-q", "-J", "-X", "isolation.level=read_committed"]
AWKWARD = ["a,b", 'say "hi"', "two\nlines", "cr\r\nlf", " lead", "é,ü"]


def http(url: str, headers: dict[str, str] | None = None) -> tuple[int, bytes, str]:
    request = urllib.request.Request(url, headers=AUTH if headers is None else headers)
    try:
        with urllib.request.urlopen(request, timeout=120) as response:
            return response.status, response.read(), response.headers.get("Content-Type", "")
    except urllib.error.HTTPError as error:
        return error.code, error.read(), error.headers.get("Content-Type", "")


def profile(pid: str, n: int, score: int, **traits: Any) -> dict[str, Any]:
    return {
        "id": f"{pid}-u{n}",
        "type": "profile.updated",
        "profile_id": pid,
        "at": NOW,
        "traits": {"custom": {"score": score}, **traits},
    }


def pids() -> list[str]:
    return [f"p{i:05d}" for i in range(PROFILES)] + [f"x{i}{v}" for i, v in enumerate(AWKWARD)]


def wait_for(check: Any, timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = check()
        if last and last[0]:
            return last
        time.sleep(0.5)
    raise AssertionError(f"timed out waiting for {what}; last: {str(last)[:2000]}")


def kcat_members(cluster: WorkerCluster, topic: str | None = None) -> dict[str, set[str]]:
    """segment -> members, as a read_committed kcat holds them after reading the whole topic."""
    out = subprocess.run(
        [*KCAT, "-b", cluster.bootstrap, "-t", topic or cluster.topic("members")],
        capture_output=True,
        check=True,
        timeout=120,
    ).stdout
    latest: dict[str, Any] = {}
    for line in out.decode().splitlines():
        if not line.strip():
            continue
        envelope = json.loads(line)
        latest[envelope["key"]] = envelope["payload"]
    members: dict[str, set[str]] = {}
    for key, payload in latest.items():
        if payload is None:
            continue
        value = CurrentMembership.model_validate_json(payload)
        assert key == f"{value.segment_id}/{value.profile_id}"
        members.setdefault(value.segment_id, set()).add(value.profile_id)
    return members


class PartitionInTransit(Exception):
    """The API answered 503 `partition_unavailable` (a rebalance is moving a partition) or
    502 `peer_unavailable` (the owner the status topic names is gone: just after a restart,
    until the new owner's first status record, up to STATUS_INTERVAL_S later)."""


def api_members(url: str, segment_id: str) -> list[str]:
    found: list[str] = []
    cursor: str | None = None
    while True:
        query = {"limit": "1000", **({"cursor": cursor} if cursor else {})}
        status, raw, _ = http(f"{url}/api/segments/{segment_id}/members?{urlencode(query)}")
        in_transit = (status == 503 and b"partition_unavailable" in raw) or (
            status == 502 and b"peer_unavailable" in raw
        )
        if in_transit:
            raise PartitionInTransit(raw.decode())
        assert status == 200, raw
        page = orjson.loads(raw)
        found.extend(m["profile_id"] for m in page["members"])
        cursor = page["next_cursor"]
        if cursor is None:
            return found


def listed_counts(cluster: WorkerCluster) -> dict[str, tuple[str, int]]:
    """`segstream segments list --json`: id -> (status, members)."""
    out = subprocess.run(
        [SEGSTREAM, "segments", "list", "--json"],
        env=cluster.env,
        capture_output=True,
        check=True,
        timeout=60,
    ).stdout
    rows = [orjson.loads(line) for line in out.splitlines() if line.strip()]
    return {row["id"]: (row["status"], row["members"]) for row in rows}


def consistent(cluster: WorkerCluster, url: str, segments: set[str]) -> tuple[bool, Any]:
    """(all three views agree and every segment is ready, what was seen)."""
    listed = listed_counts(cluster)
    topic = kcat_members(cluster)
    seen: dict[str, Any] = {}
    ok = set(listed) == segments
    for sid in segments:
        try:
            api = api_members(url, sid) if sid in listed else []
        except PartitionInTransit as retry:  # the workers are still sharing the partitions out
            return False, str(retry)
        in_topic = topic.get(sid, set())
        status, count = listed.get(sid, ("missing", -1))
        seen[sid] = (status, count, len(api), len(in_topic))
        ok = ok and status == "ready" and count == len(api) == len(in_topic)
        ok = ok and set(api) == in_topic and len(set(api)) == len(api)
    ok = ok and set(topic) <= segments
    return ok, seen


def apply(url: str, definition: dict[str, Any]) -> None:
    data = orjson.dumps(definition)
    method = "PUT"
    request = urllib.request.Request(
        f"{url}/api/segments/{definition['id']}",
        data=data,
        method=method,
        headers={**AUTH, "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=60) as response:
        assert response.status in (200, 201)


def delete(url: str, segment_id: str) -> None:
    request = urllib.request.Request(
        f"{url}/api/segments/{segment_id}", method="DELETE", headers=AUTH
    )
    with urllib.request.urlopen(request, timeout=60) as response:
        assert response.status == 200


def high(threshold: int) -> dict[str, Any]:
    return {
        "id": "high",
        "name": "High",
        "condition": {"trait": "custom.score", "op": "gte", "value": threshold},
    }


@pytest.fixture(scope="module")
def cluster(kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    tmp: Path = tmp_path_factory.mktemp("members")
    cluster = WorkerCluster(kafka_bootstrap, tmp, partitions=2, SEGSTREAM_API_TOKEN=TOKEN)
    asyncio.run(cluster.create_topics())
    try:
        cluster.start("w1")
        cluster.start("w2")
        urls = [cluster.wait_ready("w1"), cluster.wait_ready("w2")]
        asyncio.run(
            cluster.produce(
                profile(pid, 0, i % 10, name=AWKWARD[i % len(AWKWARD)], tier=i % 3)
                for i, pid in enumerate(pids())
            )
        )
        apply(urls[0], high(5))
        apply(
            urls[0],
            {"id": "all", "name": "All", "condition": {"trait": "custom.score", "op": "exists"}},
        )
        yield cluster, urls
    finally:
        cluster.stop_all()


def test_topic_layout_and_backfill(cluster: Any) -> None:
    workers, urls = cluster
    wait_for(lambda: consistent(workers, urls[0], {"high", "all"}), 120, "backfills mirrored")
    topic = kcat_members(workers)
    assert len(topic["all"]) == PROFILES + len(AWKWARD)
    assert set(AWKWARD) <= {pid[2:] for pid in topic["all"] if pid.startswith("x")} | set(AWKWARD)
    # Each record went to the profile's input partition, not the key's hash.
    out = subprocess.run(
        [*KCAT, "-b", workers.bootstrap, "-t", workers.topic("members")],
        capture_output=True,
        check=True,
    ).stdout
    from segstream.api.cluster import partition_for

    for line in out.decode().splitlines()[:500]:
        envelope = json.loads(line)
        pid = envelope["key"].split("/", 1)[1]
        assert envelope["partition"] == partition_for(pid, 2)


def test_live_changes_with_kill_9_edit_and_delete(cluster: Any) -> None:
    workers, urls = cluster
    wait_for(lambda: consistent(workers, urls[0], {"high", "all"}), 120, "backfills mirrored")
    ids = pids()

    async def churn() -> None:
        # Scores move for a third of the profiles while w2 is killed and restarted.
        for wave in range(1, 4):
            await workers.produce(
                profile(pid, wave, (i + wave * 3) % 10) for i, pid in enumerate(ids) if i % 3 == 0
            )
            if wave == 1:
                workers.kill("w2")
            await asyncio.sleep(1)

    asyncio.run(churn())
    # A new name (its own log, so its URL is not the dead one's), the same store.
    workers.start("w3", store="w2")
    urls[1] = workers.wait_ready("w3")
    wait_for(lambda: consistent(workers, urls[0], {"high", "all"}), 180, "after kill -9")
    apply(urls[1], high(8))  # an edit: members below 8 leave
    wait_for(lambda: consistent(workers, urls[0], {"high", "all"}), 120, "after the edit")
    delete(urls[0], "high")
    wait_for(lambda: consistent(workers, urls[0], {"all"}), 120, "after the deletion")
    assert "high" not in kcat_members(workers)


def _parse_csv(raw: bytes) -> list[list[str]]:
    return list(csv.reader(io.StringIO(raw.decode(), newline="")))


def test_exports_equal_the_members_api(cluster: Any) -> None:
    _, urls = cluster
    for url in urls:
        expected = api_members(url, "all")
        status, raw, kind = http(f"{url}/api/segments/all/members.csv?traits=name,tier,custom")
        assert status == 200 and kind.startswith("text/csv"), raw[:300]
        rows = _parse_csv(raw)
        assert rows[0] == ["profile_id", "entered_at", "name", "tier", "custom"]
        assert [r[0] for r in rows[1:]] == expected
        by_id = {r[0]: r for r in rows[1:]}
        for i, value in enumerate(AWKWARD):
            pid = f"x{i}{value}"
            assert by_id[pid][0] == pid
            assert by_id[pid][2] == AWKWARD[(PROFILES + i) % len(AWKWARD)]
            assert set(orjson.loads(by_id[pid][4])) == {"score"}  # an object: its JSON text
        assert all(r[1].endswith("Z") for r in rows[1:])
        status, raw, kind = http(f"{url}/api/segments/all/members.jsonl?traits=name")
        assert status == 200 and kind.startswith("application/x-ndjson")
        lines = [orjson.loads(line) for line in raw.splitlines()]
        assert [line["profile_id"] for line in lines] == expected
        assert set(lines[0]) == {"profile_id", "entered_at", "traits"}
        assert {line["traits"]["name"] for line in lines} == set(AWKWARD)


def test_export_errors_and_token(cluster: Any) -> None:
    _, urls = cluster
    status, raw, _ = http(f"{urls[0]}/api/segments/all/members.csv", headers={})
    assert status == 401 and orjson.loads(raw)["code"] == "unauthorized"
    status, raw, _ = http(f"{urls[0]}/api/segments/nope/members.jsonl")
    assert status == 404 and orjson.loads(raw)["code"] == "segment_not_found"
    status, raw, _ = http(f"{urls[0]}/api/segments/all/members.csv?traits=a,,b")
    assert status == 422 and orjson.loads(raw)["errors"][0]["path"] == "traits"
    # A peer's page needs the peer token, never a client's.
    status, _, _ = http(f"{urls[0]}/internal/partitions/0/segments/all/export")
    assert status == 401


def test_cli_members(cluster: Any) -> None:
    workers, urls = cluster
    env = {**workers.env, "SEGSTREAM_API_URL": urls[1], "SEGSTREAM_API_TOKEN": TOKEN}
    expected = api_members(urls[0], "all")
    out = subprocess.run(
        [SEGSTREAM, "members", "all", "--format", "csv", "--traits", "name"],
        env=env,
        capture_output=True,
        check=True,
        timeout=120,
    ).stdout
    rows = _parse_csv(out)
    assert rows[0] == ["profile_id", "entered_at", "name"]
    assert [r[0] for r in rows[1:]] == expected
    out = subprocess.run(
        [SEGSTREAM, "members", "all", "--format", "jsonl"],
        env=env,
        capture_output=True,
        check=True,
        timeout=120,
    ).stdout
    assert [orjson.loads(line)["profile_id"] for line in out.splitlines()] == expected
    failed = subprocess.run(
        [SEGSTREAM, "members", "nope"], env=env, capture_output=True, timeout=60
    )
    assert failed.returncode == 1 and b"there is no segment 'nope'" in failed.stderr


def test_seeding_on_upgrade(cluster: Any, tmp_path: Path) -> None:
    """An old deployment: its changelog has members but no seeding marker. Workers of this
    version (fresh stores, a members topic they never wrote) seed it from the member index."""
    workers, urls = cluster
    segments = set(listed_counts(workers))
    wait_for(lambda: consistent(workers, urls[0], segments), 120, "settled")
    expected = {sid: set(api_members(urls[0], sid)) for sid in segments}
    assert len(expected["all"]) == PROFILES + len(AWKWARD)
    workers.stop_all()

    async def forget_the_marker() -> None:
        from aiokafka import AIOKafkaProducer

        producer = AIOKafkaProducer(bootstrap_servers=workers.bootstrap)
        await producer.start()
        try:
            for partition in range(workers.partitions):
                await producer.send_and_wait(
                    workers.topic("state-changelog-v2"),
                    key=meta_key(SEEDED),
                    value=None,
                    partition=partition,
                )
        finally:
            await producer.stop()

    asyncio.run(forget_the_marker())
    fresh = f"{workers.prefix}.members-upgraded"
    workers.env["SEGSTREAM_TOPIC_MEMBERS"] = fresh
    for name in ("w1", "w2"):
        shutil.rmtree(workers.tmp / name, ignore_errors=True)
        workers.start(f"{name}-upgraded", store=name)
    urls[:] = [workers.wait_ready("w1-upgraded"), workers.wait_ready("w2-upgraded")]
    seeded = wait_for(
        lambda: (kcat_members(workers, fresh) == expected, None),
        60,
        "the seeded topic",
    )
    assert seeded
    assert "current members written" in workers.log("w1-upgraded") + workers.log("w2-upgraded")


def test_the_python_recipe_of_consumers_md(cluster: Any) -> None:
    """docs/consumers.md's Python bootstrap holds what kcat holds."""
    from aiokafka import AIOKafkaConsumer

    text = (Path(__file__).resolve().parents[2] / "docs" / "consumers.md").read_text()
    code = text.split("```python\n", 1)[1].split("```", 1)[0]
    namespace: dict[str, Any] = {"__name__": "recipe"}
    exec(compile(code, "consumers.md", "exec"), namespace)  # our own docs
    workers, urls = cluster
    wait_for(lambda: consistent(workers, urls[0], set(listed_counts(workers))), 120, "settled")

    async def read() -> dict[str, dict[str, Any]]:
        consumer = AIOKafkaConsumer(
            bootstrap_servers=workers.bootstrap, isolation_level="read_committed"
        )
        await consumer.start()
        try:
            table: dict[str, dict[str, Any]] = await namespace["bootstrap"](
                consumer, workers.topic("members"), workers.partitions
            )
            return table
        finally:
            await consumer.stop()

    table = asyncio.run(read())
    held: dict[str, set[str]] = {}
    for value in table.values():
        held.setdefault(value["segment_id"], set()).add(value["profile_id"])
    assert held == kcat_members(workers)
