"""A member export over HTTP without Kafka: a real store, the real HTTP shell. What fails before
the first byte is a JSON error; what fails after it cuts the transfer, so neither a client nor
`segstream members` can take a short export for a complete one."""

from __future__ import annotations

import asyncio
import io
from pathlib import Path
from typing import Any, ClassVar

import aiohttp
import click
import pytest

from segstream.api import HttpApi
from segstream.app.metrics import WorkerMetrics
from segstream.app.restore import open_store
from segstream.app.settings import WorkerSettings
from segstream.app.store import ProfileWrite
from segstream.app.web import HealthWeb
from segstream.cli.members import _download

ROWS = 2500  # more than two pages of partition 0


class View:
    """The cluster as the export sees it: two partitions, one segment; partition 1 has no
    owner reported (so reading it fails)."""

    definitions: ClassVar[dict[str, Any]] = {"s": {"id": "s", "version": 1}}

    async def partitions(self) -> int:
        return 2

    async def refresh(self) -> None:
        return None

    def owner_url(self, partition: int) -> None:
        return None

    async def close(self) -> None:
        return None


class Owner:
    def __init__(self, store: Any) -> None:
        self.store = store
        self.ready = True


class Worker:
    def __init__(self, settings: WorkerSettings, partitions: dict[int, Any]) -> None:
        self.settings = settings
        self.partitions = partitions


def run(tmp: Path, owned: set[int], check: Any) -> None:
    settings = WorkerSettings.from_env(
        {"SEGSTREAM_KAFKA_BOOTSTRAP": "127.0.0.1:1", "SEGSTREAM_STORE_DIR": str(tmp)}
    )
    store = open_store(settings, tmp / "p0")
    store.write(
        [ProfileWrite(f"p{i:05d}", [], None, {}, {"s": 1_000_000 * i}) for i in range(ROWS)],
        {},
        None,
    )
    worker = Worker(settings, {p: Owner(store) for p in owned})

    async def main() -> None:
        api = HttpApi(worker, settings)
        api.ctx.view = View()  # type: ignore[assignment]
        server = HealthWeb("127.0.0.1", 0, WorkerMetrics(), lambda: True, api.routes())
        await server.start()
        try:
            await check(server.url)
        finally:
            await server.stop()
            await api.close()

    try:
        asyncio.run(main())
    finally:
        store.close()


def test_an_owner_missing_before_the_first_byte_is_a_503(tmp_path: Path) -> None:
    async def check(url: str) -> None:
        async with (
            aiohttp.ClientSession() as session,
            session.get(f"{url}/api/segments/s/members.csv") as response,
        ):
            assert response.status == 503
            assert (await response.json())["code"] == "partition_unavailable"

    run(tmp_path, set(), check)


def test_a_failure_mid_stream_cuts_the_transfer(tmp_path: Path) -> None:
    async def check(url: str) -> None:
        async with (
            aiohttp.ClientSession() as session,
            session.get(f"{url}/api/segments/s/members.jsonl") as response,
        ):
            assert response.status == 200
            with pytest.raises(aiohttp.ClientPayloadError):
                await response.read()
        target = io.BytesIO()
        with pytest.raises(click.ClickException, match="cut off"):
            await _download(f"{url}/api/segments/s/members.csv", "", None, target)
        # What came before the cut is partition 0's (how much of it depends on the socket).
        assert b"p00000" not in target.getvalue() or target.getvalue().startswith(b"profile_id")

    run(tmp_path, {0}, check)
