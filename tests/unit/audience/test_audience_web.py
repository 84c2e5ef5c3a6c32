"""The Audience page's routes without Kafka: the files, their types, and the API next to them."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp

from segstream.api import HttpApi
from segstream.app.metrics import WorkerMetrics
from segstream.app.settings import WorkerSettings
from segstream.app.web import HealthWeb
from segstream.audience import audience_routes, static_dir

Check = Callable[[aiohttp.ClientSession, str], Awaitable[None]]


class NoPartitions:
    """A worker that owns nothing."""

    def __init__(self, settings: WorkerSettings) -> None:
        self.settings = settings
        self.partitions: dict[int, Any] = {}


def serve(check: Check) -> None:
    """Run `check` against a HealthWeb mounted like the worker's: the page, then the API."""
    settings = WorkerSettings.from_env({"SEGSTREAM_KAFKA_BOOTSTRAP": "127.0.0.1:1"})

    async def main() -> None:
        api = HttpApi(NoPartitions(settings), settings)
        routes = [*audience_routes(), *api.routes()]
        server = HealthWeb("127.0.0.1", 0, WorkerMetrics(), lambda: True, routes)
        await server.start()
        try:
            async with aiohttp.ClientSession() as session:
                await check(session, server.url)
        finally:
            await server.stop()
            await api.close()

    asyncio.run(main())


def test_the_page_and_its_assets_are_served_with_their_types() -> None:
    async def check(session: aiohttp.ClientSession, url: str) -> None:
        async with session.get(f"{url}/") as response:
            assert response.status == 200
            assert response.content_type == "text/html"
            assert "default-src 'self'" in response.headers["Content-Security-Policy"]
            assert response.headers["X-Content-Type-Options"] == "nosniff"
            assert "<h1>Audience</h1>" in await response.text()
        for name, kind in (
            ("app.js", "text/javascript"),
            ("builder.js", "text/javascript"),
            ("style.css", "text/css"),
        ):
            async with session.get(f"{url}/ui/{name}") as response:
                assert (response.status, response.content_type) == (200, kind), name
        for missing in ("/ui/nothing.js", "/ui/..%2Fweb.py", "/ui/%2E%2E/web.py"):
            async with session.get(url + missing) as response:
                assert response.status == 404, missing

    serve(check)


def test_the_api_and_probes_still_answer_beside_the_page() -> None:
    async def check(session: aiohttp.ClientSession, url: str) -> None:
        async with session.get(f"{url}/livez") as response:
            assert response.status == 200
        async with session.get(f"{url}/nothing") as response:
            assert (response.status, response.content_type) == (404, "application/json")
        # Only GET is the page's: anything else at / is the API's JSON answer.
        async with session.post(f"{url}/") as response:
            assert (response.status, response.content_type) == (404, "application/json")

    serve(check)


def test_every_file_the_page_loads_is_there() -> None:
    folder = static_dir()
    html = (folder / "index.html").read_text(encoding="utf-8")
    referenced = set(re.findall(r'(?:src|href)="ui/([^"]+)"', html))
    for script in folder.glob("*.js"):
        text = script.read_text(encoding="utf-8")
        referenced |= set(re.findall(r'from "\./([^"]+)"', text))
    assert {"app.js", "style.css", "api.js", "builder.js", "vocabulary.js"} <= referenced
    for name in referenced:
        assert (folder / name).is_file(), name
    # No file is fetched from anywhere else (no CDN): the worker serves everything.
    for path in folder.iterdir():
        assert "https://" not in path.read_text(encoding="utf-8"), path.name
