"""The composition root of `segstream worker`: the worker and its web side (probes, metrics,
the HTTP API, the Audience page) wired together in one place.

`segstream.app` never imports the API or the page; the worker gets its web side as a
`WebService` from here.
"""

from __future__ import annotations

from segstream.api import HttpApi
from segstream.app.settings import WorkerSettings
from segstream.app.web import HealthWeb
from segstream.app.worker import Worker
from segstream.audience import audience_routes

__all__ = ["WorkerWeb", "build_worker"]


class WorkerWeb:
    """The worker's web server with the API and the page mounted (a `WebService`)."""

    def __init__(self, worker: Worker, settings: WorkerSettings) -> None:
        self._settings = settings
        self.api = HttpApi(worker, settings)
        self.server = HealthWeb(
            settings.web_host,
            settings.web_port,
            worker.metrics,
            worker.is_ready,
            # The Audience page (`/`, `/ui/...`) before the API's JSON catch-all.
            extra_routes=[*audience_routes(), *self.api.routes()],
        )

    async def start(self) -> str:
        """Serve; returns the URL peers use (advertised, or the bound address)."""
        await self.server.start()
        url = self._settings.web_advertise or self.server.url
        self.api.set_url(url)
        return url

    async def stop(self) -> None:
        """Stop serving and close the API's readers."""
        try:
            await self.server.stop()
        finally:
            await self.api.close()


def build_worker(settings: WorkerSettings) -> tuple[Worker, WorkerWeb | None]:
    """The worker and, unless the web side is disabled, its web server."""
    worker = Worker(settings)
    return worker, WorkerWeb(worker, settings) if settings.web_enabled else None
