"""WebhookSender against a real aiohttp server on 127.0.0.1 (no broker): Retry-After, limits,
timeouts, blocked destinations and the resolver that refuses non-public addresses."""

from __future__ import annotations

import asyncio
import base64
import time
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from segstream.app.deliver.metrics import DeliverMetrics
from segstream.app.deliver.sender import Blocked, Outcome, WebhookSender
from segstream.app.deliver.settings import DeliverSettings
from segstream.app.deliver.signing import SecretUnavailable, parse_secret
from segstream.app.outbound import GuardedResolver

SECRET = "whsec_" + base64.b64encode(bytes(32)).decode()
Answer = Callable[[int], Awaitable[web.StreamResponse]]


def settings(**env: str) -> DeliverSettings:
    return DeliverSettings.from_env(
        {
            "SEGSTREAM_DELIVER_ALLOWED_HOSTS": "127.0.0.1,localhost",
            "SEGSTREAM_DELIVER_ALLOWED_NETWORKS": "127.0.0.0/8",
            "SEGSTREAM_DELIVER_ALLOW_HTTP": "1",
            "SEGSTREAM_DELIVER_BACKOFF_INITIAL_S": "0.01",
            "SEGSTREAM_DELIVER_BACKOFF_MAX_S": "0.02",
            **env,
        }
    )


def run(
    answer: Answer,
    config: DeliverSettings,
    keys: Callable[[], list[bytes]] | None = None,
    host: str = "127.0.0.1",
) -> tuple[Outcome | BaseException, list[tuple[float, dict[str, str]]], str]:
    """Send one batch to a server answering with `answer(n)`; (outcome, requests, metrics)."""
    seen: list[tuple[float, dict[str, str]]] = []

    async def handle(request: web.Request) -> web.StreamResponse:
        seen.append((time.monotonic(), dict(request.headers)))
        return await answer(len(seen))

    async def main() -> tuple[Outcome | BaseException, str]:
        app = web.Application()
        app.router.add_post("/hook", handle)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = runner.addresses[0][1]
        metrics = DeliverMetrics()
        connector = aiohttp.TCPConnector(resolver=GuardedResolver(config.policy))
        try:
            async with aiohttp.ClientSession(connector=connector) as session:
                sender = WebhookSender(
                    session, config, metrics, keys or (lambda: [parse_secret(SECRET, "t")])
                )
                outcome: Outcome | BaseException
                try:
                    outcome = await sender.send("d", f"http://{host}:{port}/hook", "msg_1", b"{}")
                except Blocked as exc:
                    outcome = exc
        finally:
            await runner.cleanup()
        return outcome, metrics.render().decode()

    outcome, metrics = asyncio.run(main())
    return outcome, seen, metrics


def status(code: int, **headers: str) -> Answer:
    async def answer(n: int) -> web.StreamResponse:
        return web.Response(status=code, headers=headers)

    return answer


def test_a_429_waits_for_its_retry_after() -> None:
    async def answer(n: int) -> web.StreamResponse:
        return web.Response(status=429, headers={"Retry-After": "1"}) if n == 1 else web.Response()

    outcome, seen, metrics = run(answer, settings())
    assert outcome == Outcome(True, 2)
    assert seen[1][0] - seen[0][0] >= 0.95
    # The same webhook-id on every attempt; each attempt is signed afresh.
    assert seen[0][1]["webhook-id"] == seen[1][1]["webhook-id"] == "msg_1"
    assert 'segstream_deliver_failed_attempts_total{destination="d",reason="http_429"} 1.0' in (
        metrics
    )
    assert 'segstream_deliver_retries_total{destination="d"} 1.0' in metrics


def test_gives_up_after_max_attempts() -> None:
    outcome, seen, _ = run(status(503), settings(SEGSTREAM_DELIVER_MAX_ATTEMPTS="3"))
    assert outcome == Outcome(False, 3, "http_5xx") and len(seen) == 3


def test_gives_up_after_max_retry_time() -> None:
    config = settings(
        SEGSTREAM_DELIVER_MAX_RETRY_S="0.3",
        SEGSTREAM_DELIVER_BACKOFF_INITIAL_S="0.1",
        SEGSTREAM_DELIVER_BACKOFF_MAX_S="0.1",
    )
    outcome, seen, _ = run(status(500), config)
    assert isinstance(outcome, Outcome) and not outcome.delivered
    assert 2 <= len(seen) <= 8


def test_a_slow_receiver_times_out_and_is_retried() -> None:
    async def answer(n: int) -> web.StreamResponse:
        if n == 1:
            await asyncio.sleep(1.0)
        return web.Response(status=204)

    outcome, _, metrics = run(answer, settings(SEGSTREAM_DELIVER_REQUEST_TIMEOUT_S="0.2"))
    assert outcome == Outcome(True, 2)
    assert 'reason="timeout"} 1.0' in metrics


@pytest.mark.parametrize(("code", "reason"), [(302, "redirect"), (401, "http_4xx")])
def test_redirects_and_client_errors_are_failed_attempts(code: int, reason: str) -> None:
    answer = status(code, Location="http://127.0.0.1:1/elsewhere")
    outcome, seen, _ = run(answer, settings(SEGSTREAM_DELIVER_MAX_ATTEMPTS="2"))
    assert outcome == Outcome(False, 2, reason) and len(seen) == 2


def test_a_missing_secret_blocks_instead_of_failing() -> None:
    def no_secret() -> list[bytes]:
        raise SecretUnavailable("environment variable SEGSTREAM_WEBHOOK_SECRET_X is not set")

    outcome, seen, _ = run(status(200), settings(), keys=no_secret)
    assert isinstance(outcome, Blocked) and "not set" in str(outcome)
    assert seen == []


def test_a_name_that_resolves_to_a_refused_address_is_not_connected_to() -> None:
    # localhost is an allowed *name*, but 127.0.0.1 is not an allowed network here.
    config = DeliverSettings.from_env(
        {
            "SEGSTREAM_DELIVER_ALLOWED_HOSTS": "localhost",
            "SEGSTREAM_DELIVER_ALLOW_HTTP": "1",
            "SEGSTREAM_DELIVER_MAX_ATTEMPTS": "2",
            "SEGSTREAM_DELIVER_BACKOFF_INITIAL_S": "0.01",
        }
    )
    outcome, seen, _ = run(status(200), config, host="localhost")
    assert outcome == Outcome(False, 2, "connection")
    assert seen == []


def test_a_host_taken_off_the_allow_list_blocks() -> None:
    config = DeliverSettings.from_env(
        {
            "SEGSTREAM_DELIVER_ALLOWED_HOSTS": "hooks.example.com",
            "SEGSTREAM_DELIVER_ALLOW_HTTP": "1",
        }
    )
    outcome: Any
    outcome, seen, _ = run(status(200), config)
    assert isinstance(outcome, Blocked) and "allow-list" in str(outcome)
    assert seen == []
