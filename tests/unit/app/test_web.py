"""HealthWeb: probes and scrapes over real HTTP on a free port."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

import aiohttp
import pytest
from aiohttp import web

from segstream.app.metrics import WorkerMetrics
from segstream.app.web import HealthWeb


async def fetch(url: str) -> tuple[int, str, str]:
    """(status, content type header, body) of a GET."""
    async with aiohttp.ClientSession() as session, session.get(url) as response:
        return response.status, response.headers["Content-Type"], await response.text()


def serve(
    check: Callable[[HealthWeb], Awaitable[None]],
    ready: Callable[[], bool] = lambda: True,
    metrics: WorkerMetrics | None = None,
    extra_routes: list[web.RouteDef] | None = None,
) -> None:
    """Start a HealthWeb on port 0 in a fresh event loop, run `check` against it, stop it."""

    async def main() -> None:
        server = HealthWeb(
            "127.0.0.1", 0, metrics or WorkerMetrics(), ready, extra_routes=extra_routes or []
        )
        await server.start()
        try:
            await check(server)
        finally:
            await server.stop()
            await server.stop()

    asyncio.run(main())


def test_livez_answers_live_and_port_zero_binds_a_real_port(
    caplog: pytest.LogCaptureFixture,
) -> None:
    seen: list[int] = []

    async def check(server: HealthWeb) -> None:
        assert server.port > 0
        seen.append(server.port)
        status, content_type, body = await fetch(f"{server.url}/livez")
        assert status == 200
        assert content_type.startswith("application/json")
        assert body == '{"status": "live"}'

    with caplog.at_level(logging.INFO, logger="segstream.app.web"):
        serve(check, ready=lambda: False)
    assert f"web listening on http://127.0.0.1:{seen[0]}" in caplog.text


def test_readyz_follows_the_callback() -> None:
    state = {"ready": False}

    async def check(server: HealthWeb) -> None:
        status, _, body = await fetch(f"{server.url}/readyz")
        assert (status, body) == (503, '{"status": "not ready"}')
        state["ready"] = True
        status, _, body = await fetch(f"{server.url}/readyz")
        assert (status, body) == (200, '{"status": "ready"}')
        state["ready"] = False
        status, _, _ = await fetch(f"{server.url}/readyz")
        assert status == 503

    serve(check, ready=lambda: state["ready"])


def test_a_failing_readiness_callback_reads_as_not_ready(
    caplog: pytest.LogCaptureFixture,
) -> None:
    def broken() -> bool:
        raise RuntimeError("store gone")

    async def check(server: HealthWeb) -> None:
        status, _, _ = await fetch(f"{server.url}/readyz")
        assert status == 503

    with caplog.at_level(logging.ERROR, logger="segstream.app.web"):
        serve(check, ready=broken)
    assert "readiness check failed" in caplog.text


def test_metrics_serves_the_worker_registry_in_text_format() -> None:
    metrics = WorkerMetrics()
    metrics.consumed("p.profiles", "profile.updated")
    metrics.dead_letter("too_large")
    metrics.set_lag("p.activity", 1, 5)
    metrics.set_ready(True)

    async def check(server: HealthWeb) -> None:
        status, content_type, body = await fetch(f"{server.url}/metrics")
        assert status == 200
        assert content_type.startswith("text/plain")
        assert "version=0.0.4" in content_type
        lines = body.splitlines()
        assert (
            'segstream_events_consumed_total{topic="p.profiles",type="profile.updated"} 1.0'
            in lines
        )
        assert 'segstream_dead_letters_total{kind="too_large"} 1.0' in lines
        assert 'segstream_consumer_lag_records{partition="1",topic="p.activity"} 5.0' in lines
        assert "segstream_ready 1.0" in lines
        assert "# TYPE segstream_end_to_end_latency_seconds histogram" in lines
        # Only this worker's registry: no process or platform collectors of the global one.
        assert "process_cpu_seconds_total" not in body
        assert "python_info" not in body

    serve(check, metrics=metrics)


def test_extra_routes_are_mounted_next_to_the_probes() -> None:
    async def hello(request: web.Request) -> web.Response:
        return web.json_response({"hello": request.match_info["name"]})

    async def check(server: HealthWeb) -> None:
        status, _, body = await fetch(f"{server.url}/v1/hello/ops")
        assert (status, body) == (200, '{"hello": "ops"}')
        status, _, _ = await fetch(f"{server.url}/livez")
        assert status == 200

    serve(check, extra_routes=[web.get("/v1/hello/{name}", hello)])


def test_port_is_unknown_before_start_and_a_taken_port_fails_to_start() -> None:
    idle = HealthWeb("127.0.0.1", 0, WorkerMetrics(), lambda: True)
    with pytest.raises(RuntimeError):
        _ = idle.port

    async def check(server: HealthWeb) -> None:
        clash = HealthWeb("127.0.0.1", server.port, WorkerMetrics(), lambda: True)
        with pytest.raises(OSError):
            await clash.start()
        await clash.stop()

    serve(check)
