"""A member export streams in constant memory: the exporting worker's RSS while it streams
every member (half of them from its peer) stays within a bound that does not grow with the
segment, and the export equals the members API.

`make test` exports 6,000 members; `SEGSTREAM_EXPORT_MEMBERS=100000` runs the measurement of
docs/api.md by hand (the figures are printed).
"""

from __future__ import annotations

import asyncio
import os
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

import orjson
import pytest
from worker_harness import WorkerCluster

pytestmark = pytest.mark.kafka

TOKEN = "memory-token-1"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
MEMBERS = int(os.environ.get("SEGSTREAM_EXPORT_MEMBERS", "6000"))
#: What the exporting worker's RSS may grow by while it streams (pages of 1,000 rows).
BOUND_BYTES = 64 * 1024 * 1024


def rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


def get(url: str) -> Any:
    request = urllib.request.Request(url, headers=AUTH)
    with urllib.request.urlopen(request, timeout=120) as response:
        return orjson.loads(response.read())


def test_export_memory_is_bounded(kafka_bootstrap: str, tmp_path: Path) -> None:
    cluster = WorkerCluster(kafka_bootstrap, tmp_path, partitions=2, SEGSTREAM_API_TOKEN=TOKEN)
    asyncio.run(cluster.create_topics())
    try:
        cluster.start("w1")
        cluster.start("w2")
        url = cluster.wait_ready("w1")
        cluster.wait_ready("w2")
        asyncio.run(
            cluster.produce(
                {
                    "id": f"e{i}",
                    "type": "profile.updated",
                    "profile_id": f"profile-{i:07d}",
                    "at": "2026-01-01T00:00:00Z",
                    "traits": {"name": f"Name, {i}", "tier": i % 3},
                }
                for i in range(MEMBERS)
            )
        )
        body = orjson.dumps(
            {"id": "all", "name": "All", "condition": {"trait": "tier", "op": "exists"}}
        )
        request = urllib.request.Request(
            f"{url}/api/segments",
            data=body,
            method="POST",
            headers={**AUTH, "Content-Type": "application/json"},
        )
        urllib.request.urlopen(request, timeout=60).close()
        deadline = time.monotonic() + 600
        while True:
            row = get(f"{url}/api/segments/all")
            if row["status"] == "ready" and row["members"] == MEMBERS:
                break
            assert time.monotonic() < deadline, row
            time.sleep(1)
        pid = cluster.processes["w1"].pid
        before = rss_bytes(pid)
        peak = [before]
        done = threading.Event()

        def sample() -> None:
            while not done.is_set():
                peak[0] = max(peak[0], rss_bytes(pid))
                time.sleep(0.05)

        sampler = threading.Thread(target=sample)
        sampler.start()
        started = time.monotonic()
        rows = 0
        size = 0
        ids: list[str] = []
        try:
            request = urllib.request.Request(
                f"{url}/api/segments/all/members.jsonl?traits=name,tier", headers=AUTH
            )
            with urllib.request.urlopen(request, timeout=600) as response:
                for line in response:
                    rows += 1
                    size += len(line)
                    ids.append(orjson.loads(line)["profile_id"])
        finally:
            done.set()
            sampler.join()
        seconds = time.monotonic() - started
        growth = peak[0] - before
        print(
            f"export of {rows} members ({size / 1e6:.1f} MB) in {seconds:.1f}s: worker RSS "
            f"{before / 2**20:.1f} MiB before, peak {peak[0] / 2**20:.1f} MiB "
            f"(+{growth / 2**20:.1f} MiB)"
        )
        assert rows == MEMBERS
        listed: list[str] = []
        cursor = ""
        while True:
            page = get(f"{url}/api/segments/all/members?limit=1000&cursor={cursor}")
            listed.extend(m["profile_id"] for m in page["members"])
            if page["next_cursor"] is None:
                break
            cursor = page["next_cursor"]
        assert ids == listed
        assert growth < BOUND_BYTES
    finally:
        cluster.stop_all()
