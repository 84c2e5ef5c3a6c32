"""The worker's HTTP side: /metrics, /livez and /readyz on aiohttp (more routes can be mounted)."""

from __future__ import annotations

import errno
import logging
from collections.abc import Callable, Iterable
from typing import Protocol

from aiohttp import web

from segstream.app.metrics import CONTENT_TYPE

__all__ = ["HealthWeb"]

log = logging.getLogger(__name__)


class RendersMetrics(Protocol):
    """Anything with metrics in the Prometheus text format."""

    def render(self) -> bytes:
        """The exposition text."""


class HealthWeb:
    """An aiohttp server for probes and scrapes; `extra_routes` lets the HTTP API add its own."""

    def __init__(
        self,
        host: str,
        port: int,
        metrics: RendersMetrics,
        ready: Callable[[], bool],
        extra_routes: Iterable[web.AbstractRouteDef] = (),
        name: str = "web",
    ) -> None:
        self.host = host
        self._requested_port = port
        self._metrics = metrics
        self._ready = ready
        self._extra_routes = list(extra_routes)
        self._name = name
        self._runner: web.AppRunner | None = None
        self._port: int | None = None

    @property
    def port(self) -> int:
        """The bound port (the one the OS chose when asked for port 0); only after start()."""
        if self._port is None:
            raise RuntimeError("HealthWeb is not started")
        return self._port

    @property
    def url(self) -> str:
        """http://host:port of the running server."""
        return f"http://{self.host}:{self.port}"

    def build_app(self) -> web.Application:
        """The aiohttp application with the probe routes and any extra routes."""
        app = web.Application()
        app.add_routes(
            [
                web.get("/metrics", self._handle_metrics),
                web.get("/livez", self._handle_livez),
                web.get("/readyz", self._handle_readyz),
                *self._extra_routes,
            ]
        )
        return app

    async def start(self) -> None:
        """Bind and serve; logs `<name> listening on http://HOST:PORT` (tests and scripts parse
        it)."""
        # No access log: probes and scrapes every few seconds would drown the worker's own log.
        runner = web.AppRunner(self.build_app(), access_log=None, handle_signals=False)
        await runner.setup()
        site = web.TCPSite(runner, self.host, self._requested_port)
        try:
            await site.start()
        except BaseException:
            await runner.cleanup()
            raise
        self._runner = runner
        self._port = _bound_port(runner, self._requested_port)
        log.info("%s listening on %s", self._name, self.url)

    async def stop(self) -> None:
        """Stop serving; safe to call twice or before start()."""
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()

    async def _handle_metrics(self, request: web.Request) -> web.Response:
        body = self._metrics.render()
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE})

    async def _handle_livez(self, request: web.Request) -> web.Response:
        return web.json_response({"status": "live"})

    async def _handle_readyz(self, request: web.Request) -> web.Response:
        # A readiness callback that fails must not read as "ready".
        try:
            ready = bool(self._ready())
        except Exception:
            log.exception("readiness check failed")
            ready = False
        if ready:
            return web.json_response({"status": "ready"})
        return web.json_response({"status": "not ready"}, status=503)


def _bound_port(runner: web.AppRunner, requested: int) -> int:
    """The port the server's listening socket got (differs from `requested` when that is 0)."""
    for address in runner.addresses:
        # IPv4 gives (host, port), IPv6 (host, port, flow, scope); unix sockets a str.
        if isinstance(address, tuple) and len(address) >= 2:
            return int(address[1])
    if requested:
        return requested
    raise OSError(errno.EADDRNOTAVAIL, "the web server has no TCP address")
