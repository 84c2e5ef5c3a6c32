"""The API's HTTP shell without Kafka: JSON 404/405, auth, body limits, CORS."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp

from segstream.api import HttpApi
from segstream.app.metrics import WorkerMetrics
from segstream.app.settings import WorkerSettings
from segstream.app.web import HealthWeb

Check = Callable[[aiohttp.ClientSession, str], Awaitable[None]]


class NoPartitions:
    """A worker that owns nothing."""

    def __init__(self, settings: WorkerSettings) -> None:
        self.settings = settings
        self.partitions: dict[int, Any] = {}


def serve(check: Check, **env: str) -> None:
    """Run `check` against a HealthWeb carrying the API (Kafka is never reached)."""
    variables = {f"SEGSTREAM_{k}": v for k, v in env.items()}
    settings = WorkerSettings.from_env({"SEGSTREAM_KAFKA_BOOTSTRAP": "127.0.0.1:1", **variables})

    async def main() -> None:
        api = HttpApi(NoPartitions(settings), settings)
        server = HealthWeb("127.0.0.1", 0, WorkerMetrics(), lambda: True, api.routes())
        await server.start()
        try:
            async with aiohttp.ClientSession() as session:
                await check(session, server.url)
        finally:
            await server.stop()
            await api.close()

    asyncio.run(main())


async def call(
    session: aiohttp.ClientSession, method: str, url: str, **kwargs: Any
) -> tuple[int, Any, Any]:
    async with session.request(method, url, **kwargs) as response:
        assert response.content_type == "application/json"
        return response.status, await response.json(), response.headers


def test_unknown_paths_and_methods_answer_json() -> None:
    async def check(session: aiohttp.ClientSession, url: str) -> None:
        for path in ("/api/nothing/here", "/nothing", "/"):
            status, body, _ = await call(session, "GET", url + path)
            assert (status, body["code"]) == (404, "not_found")
        async with session.get(f"{url}/livez") as probe:  # the probes still answer
            assert probe.status == 200
        status, body, headers = await call(session, "PATCH", f"{url}/api/segments")
        assert (status, body["code"]) == (405, "method_not_allowed")
        assert headers["Allow"] == "GET, POST"
        status, body, headers = await call(session, "POST", f"{url}/api/segments/x/members")
        assert (status, headers["Allow"]) == (405, "GET")
        status, body, headers = await call(session, "OPTIONS", f"{url}/api/segments/preview")
        assert (status, headers["Allow"]) == (405, "POST")
        # CORS is off by default: a preflight is just a method that is not allowed.
        status, body, headers = await call(
            session, "OPTIONS", f"{url}/api/segments", headers={"Origin": "https://x.example"}
        )
        assert status == 405 and "Access-Control-Allow-Origin" not in headers

    serve(check)


def test_mutations_need_the_token_and_internal_endpoints_too() -> None:
    async def check(session: aiohttp.ClientSession, url: str) -> None:
        for method, path in [
            ("POST", "/api/segments"),
            ("PUT", "/api/segments/a"),
            ("DELETE", "/api/segments/a"),
            ("POST", "/internal/preview"),
            ("GET", "/internal/partitions/0/profiles/p1"),
        ]:
            for headers in ({}, {"Authorization": "Bearer nope"}, {"Authorization": "s3cret"}):
                status, body, response_headers = await call(
                    session, method, url + path, json={}, headers=headers
                )
                assert (status, body["code"]) == (401, "unauthorized"), (method, path)
                assert response_headers["WWW-Authenticate"].startswith("Bearer")

    serve(check, API_TOKEN="s3cret")


def test_bodies_are_bounded_and_must_be_json() -> None:
    auth = {"Authorization": "Bearer s3cret", "Content-Type": "application/json"}

    async def check(session: aiohttp.ClientSession, url: str) -> None:
        status, body, _ = await call(
            session, "POST", f"{url}/api/segments", data=b"x" * 5000, headers=auth
        )
        assert (status, body["code"]) == (413, "body_too_large")

        async def chunks() -> Any:  # no Content-Length: the limit holds while reading
            for _ in range(10):
                yield b" " * 1000

        status, body, _ = await call(
            session, "POST", f"{url}/api/segments", data=chunks(), headers=auth
        )
        assert (status, body["code"]) == (413, "body_too_large")
        status, body, _ = await call(
            session, "POST", f"{url}/api/segments", data=b"{nope", headers=auth
        )
        assert (status, body["code"]) == (400, "invalid_json")
        wide = {"or": [{"trait": "x", "op": "exists"}] * 100}
        definition = {"id": "a", "name": "A", "condition": {"and": [wide] * 11}}
        status, body, _ = await call(
            session, "POST", f"{url}/api/segments/preview", json=definition, headers=auth
        )
        assert status == 413  # 11 x 100 conditions are over the 4 KiB body limit here

    serve(check, API_TOKEN="s3cret", API_MAX_BODY_BYTES="4096")


def test_cors_only_for_configured_origins() -> None:
    async def check(session: aiohttp.ClientSession, url: str) -> None:
        good = {"Origin": "https://admin.example"}
        async with session.options(f"{url}/api/segments", headers=good) as preflight:
            assert preflight.status == 204
            assert preflight.headers["Access-Control-Allow-Origin"] == "https://admin.example"
            assert "Authorization" in preflight.headers["Access-Control-Allow-Headers"]
        _, _, headers = await call(session, "GET", f"{url}/api/nothing", headers=good)
        assert headers["Access-Control-Allow-Origin"] == "https://admin.example"
        bad = {"Origin": "https://evil.example"}
        _, _, headers = await call(session, "GET", f"{url}/api/nothing", headers=bad)
        assert "Access-Control-Allow-Origin" not in headers

    serve(check, API_CORS_ORIGINS="https://admin.example")
