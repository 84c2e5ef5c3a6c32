"""`segstream lag-exporter`'s process: polls group lag from Kafka and serves it on /metrics.

It needs no worker: committed offsets live in Kafka, so the lag of a stopped application (the
case the lag alert exists for) is still reported, and grows as records arrive.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Mapping, Sequence
from typing import Any

from segstream.app.lag import LagReader
from segstream.app.lag_metrics import LagMetrics
from segstream.app.web import HealthWeb

__all__ = ["LagExporter"]

log = logging.getLogger("segstream.lag_exporter")


class LagExporter:
    """Polls every `poll_interval_s` and serves the last poll on `/metrics`."""

    def __init__(
        self,
        client_kwargs: Mapping[str, Any],
        groups: Mapping[str, Sequence[str]],
        *,
        cluster_name: str,
        host: str,
        port: int,
        poll_interval_s: float,
    ) -> None:
        self.metrics = LagMetrics(cluster_name)
        # A poll may take at most one interval (and at least a few seconds) before it counts
        # as failed, so a hung broker connection cannot freeze the exported values.
        self._poll_timeout_s = max(poll_interval_s, 5.0)
        self._reader = LagReader(client_kwargs, groups, request_timeout_s=self._poll_timeout_s)
        self._host = host
        self._port = port
        self._interval = poll_interval_s
        self._stopping = asyncio.Event()
        self._web: HealthWeb | None = None
        self.url: str | None = None

    def stop(self) -> None:
        """Ask `run()` to return."""
        self._stopping.set()

    async def run(self) -> None:
        """Serve until SIGTERM/SIGINT (or `stop()`)."""
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self.stop)
        await self._serve()
        polling = asyncio.create_task(self._poll_loop(), name="lag-poll")
        stopping = asyncio.create_task(self._stopping.wait(), name="lag-stop")
        try:
            # A poll in flight (up to its timeout) must not hold up a SIGTERM: cancel it.
            await asyncio.wait([polling, stopping], return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (polling, stopping):
                task.cancel()
            await asyncio.gather(polling, stopping, return_exceptions=True)
            await self._reader.stop()
            if self._web is not None:
                await self._web.stop()
            log.info("lag exporter stopped")

    async def _poll_loop(self) -> None:
        started = False
        while not self._stopping.is_set():
            try:
                if not started:
                    await asyncio.wait_for(self._reader.start(), self._poll_timeout_s)
                    started = True
                snapshot = await asyncio.wait_for(self._reader.read(), self._poll_timeout_s)
            except Exception as exc:  # Kafka unreachable, timeouts, coordinator moving
                self.metrics.poll_failed()
                log.warning("lag poll failed: %s: %s", type(exc).__name__, exc)
                if started:
                    # Reconnect from scratch next time: a client after a timeout may be stuck.
                    await _quietly(self._reader.stop())
                    started = False
            else:
                self.metrics.polled(snapshot)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), self._interval)

    async def _serve(self) -> None:
        # Ready while the last poll succeeded: that is when /metrics tells the truth.
        self._web = HealthWeb(
            self._host,
            self._port,
            self.metrics,
            lambda: self.metrics.snapshot is not None,
            name="lag exporter",
        )
        await self._web.start()
        self.url = self._web.url


async def _quietly(awaitable: Any) -> None:
    with contextlib.suppress(Exception):  # closing a client that already failed
        await awaitable
