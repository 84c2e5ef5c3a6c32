"""`segstream worker --processes 2` on the real broker: two group members under one
supervisor give replay's memberships, a child killed with -9 is restarted and nothing is
lost or repeated (read_committed), and SIGTERM to the supervisor stops everything cleanly."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import socket
import time
import urllib.request
from pathlib import Path
from typing import Any

import orjson
import pytest
from test_worker_e2e import _workload, apply_segments, assert_exactly_once, final_members
from test_worker_e2e import wait_applied as wait_segments_applied
from worker_harness import WorkerCluster

from segstream.engine.replay import run_replay
from segstream.timefmt import parse_datetime

pytestmark = pytest.mark.kafka

_STARTED = re.compile(r"process (\d+) started: pid (\d+), web port (\d+)")


def _free_port_pair() -> int:
    """A port p with p and p + 1 free (the supervisor's children use WEB_PORT + i)."""
    for _ in range(50):
        with socket.socket() as first:
            first.bind(("127.0.0.1", 0))
            port = int(first.getsockname()[1])
            if port >= 65535:
                continue
            with socket.socket() as second:
                try:
                    second.bind(("127.0.0.1", port + 1))
                except OSError:
                    continue
            return port
    raise AssertionError("no two consecutive free ports")


def _children(cluster: WorkerCluster) -> dict[int, tuple[int, int]]:
    """The latest pid and port of each child, from the supervisor's log."""
    found: dict[int, tuple[int, int]] = {}
    for line in cluster.log("sup").splitlines():
        if not line.startswith("{"):
            continue
        match = _STARTED.search(orjson.loads(line).get("msg", ""))
        if match:
            found[int(match[1])] = (int(match[2]), int(match[3]))
    return found


def _wait_ready(cluster: WorkerCluster, ports: list[int], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    pending = set(ports)
    while pending and time.monotonic() < deadline:
        for port in list(pending):
            try:
                with urllib.request.urlopen(
                    f"http://127.0.0.1:{port}/readyz", timeout=2
                ) as response:
                    if response.status == 200:
                        pending.discard(port)
            except OSError:
                pass
        time.sleep(0.2)
    assert not pending, f"children on {pending} never became ready:\n{cluster.log('sup')}"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_two_processes_survive_a_kill_9_and_stop_on_sigterm(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    definitions, records = _workload(profiles=120, events=2400, segments=60)
    expected = run_replay(
        definitions,
        [orjson.dumps(r).decode() for r in records],
        until=max(parse_datetime(r["at"]) for r in records),
    )
    assert expected.memberships, "the workload should produce transitions"
    base = _free_port_pair()
    cluster = WorkerCluster(kafka_bootstrap, tmp_path, partitions=2, SEGSTREAM_WEB_PORT=str(base))
    cluster.worker_command = ("worker", "--processes", "2")
    half = len(records) // 2

    async def scenario() -> tuple[list[dict[str, Any]], int]:
        await cluster.create_topics()
        # What a single-process worker left in the same STORE_DIR: named, not used.
        (tmp_path / "sup" / "partition-0").mkdir(parents=True)
        cluster.start("sup")
        _wait_ready(cluster, [base, base + 1])
        first = _children(cluster)
        assert sorted(first) == [0, 1]
        assert [first[i][1] for i in (0, 1)] == [base, base + 1]
        # Both are members: each owns one of the two partitions.
        await apply_segments(cluster, definitions)
        await wait_segments_applied(cluster, {d["id"] for d in definitions})
        owners = {
            orjson.loads(m.value)["partition"]: orjson.loads(m.value).get("web")
            for m in await cluster.read("status", until_quiet=0.5, timeout=10)
        }
        assert set(owners.values()) == {
            f"http://127.0.0.1:{base}",
            f"http://127.0.0.1:{base + 1}",
        }, owners
        await cluster.produce(records[:half])
        await asyncio.sleep(0.3)  # mid-stream
        killed = first[1][0]
        os.kill(killed, signal.SIGKILL)
        deadline = time.monotonic() + 30
        while _children(cluster)[1][0] == killed:
            assert time.monotonic() < deadline, cluster.log("sup")
            await asyncio.sleep(0.2)
        assert "exited unexpectedly with signal SIGKILL" in cluster.log("sup")
        _wait_ready(cluster, [base, base + 1])
        await cluster.produce(records[half:])
        live = await cluster.memberships(at_least=len(expected.memberships), until_quiet=5)
        return live, killed

    try:
        live, killed = asyncio.run(scenario())
        children = [pid for pid, _ in _children(cluster).values()]
        assert cluster.stop("sup", timeout=60) == 0, cluster.log("sup")
    finally:
        cluster.stop_all()
    assert_exactly_once(live)
    assert final_members(live) == final_members(expected.memberships)
    assert len(live) == len(expected.memberships)
    assert killed not in children
    assert not [pid for pid in children if _alive(pid)], "a child outlived the supervisor"
    log = cluster.log("sup")
    assert log.count("stopped with code 0") == 2, log
    assert f"store {tmp_path / 'sup' / 'partition-0'} is not used with --processes 2" in log
    # The children's lines share the supervisor's stderr: each names its process.
    started = [orjson.loads(line) for line in log.splitlines() if "worker sup-p" in line]
    assert {(e["msg"].split()[1], e.get("process")) for e in started} == {
        ("sup-p0", 0),
        ("sup-p1", 1),
    }
