"""The `segstream deliver` process: follows the destinations topic, one runner per destination.

It also serves /metrics, /livez and /readyz (ready once the destinations topic has been read
to its end) on SEGSTREAM_DELIVER_WEB_HOST:SEGSTREAM_DELIVER_WEB_PORT.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import ssl
from typing import Any

from aiohttp import ClientSession, DummyCookieJar, TCPConnector

from segstream.app.deliver.metrics import DeliverMetrics
from segstream.app.deliver.runner import DestinationRunner
from segstream.app.deliver.settings import DeliverSettings
from segstream.app.destination_writer import DestinationState
from segstream.app.outbound import GuardedResolver
from segstream.app.readers import committed_reader
from segstream.app.segment_writer import read_topic_to_end
from segstream.app.web import HealthWeb

__all__ = ["Deliverer"]

log = logging.getLogger(__name__)


class Deliverer:
    """Runs every destination of the destinations topic until SIGTERM/SIGINT."""

    def __init__(self, settings: DeliverSettings) -> None:
        self.settings = settings
        self.metrics = DeliverMetrics()
        self.state = DestinationState()
        self.runners: dict[str, DestinationRunner] = {}
        self.ready = False
        self._stopping = asyncio.Event()

    async def run(self) -> None:
        """Deliver until a signal asks to stop."""
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self._stopping.set)
        settings = self.settings
        web = HealthWeb(settings.web_host, settings.web_port, self.metrics, lambda: self.ready)
        await web.start()
        session = ClientSession(
            connector=TCPConnector(
                resolver=GuardedResolver(settings.policy),
                ssl=self._ssl_context(),
                limit_per_host=4,
            ),
            # Receivers' cookies are not kept and sent back with later batches.
            cookie_jar=DummyCookieJar(),
        )
        producer = await self._start_producer()
        reader = committed_reader(settings.worker)
        await reader.start()
        try:
            from aiokafka import TopicPartition

            partition = TopicPartition(settings.worker.topics.destinations, 0)
            reader.assign([partition])
            await reader.seek_to_beginning(partition)
            while not self._stopping.is_set():
                for message in await read_topic_to_end(reader, [partition]):
                    self.state.read(message.value)
                await self._reconcile(session, producer)
                self.ready = True
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stopping.wait(), settings.refresh_s)
        finally:
            log.info("stopping %d destinations", len(self.runners))
            for runner in list(self.runners.values()):
                await runner.stop()
            self.runners.clear()
            await reader.stop()
            await producer.stop()
            await session.close()
            await web.stop()

    async def _reconcile(self, session: ClientSession, producer: Any) -> None:
        """Start, update and stop runners to match the current destinations."""
        wanted = self.state.records
        for destination_id, runner in list(self.runners.items()):
            record = wanted.get(destination_id)
            if record is None or record["created_version"] != runner.generation:
                log.info("destination %s removed or re-created: stopping it", destination_id)
                await runner.stop()
                del self.runners[destination_id]
            elif record["version"] != runner.record["version"]:
                log.info("destination %s changed to version %d", destination_id, record["version"])
                runner.update(record)
        for destination_id, record in wanted.items():
            if destination_id not in self.runners:
                log.info(
                    "destination %s (version %d): delivering", destination_id, record["version"]
                )
                runner = DestinationRunner(record, self.settings, self.metrics, session, producer)
                runner.start()
                self.runners[destination_id] = runner
        self.metrics.set_destinations(len(self.runners))

    async def _start_producer(self) -> Any:
        from aiokafka import AIOKafkaProducer

        producer = AIOKafkaProducer(
            **self.settings.worker.client_kwargs(),
            enable_idempotence=True,
            acks="all",
            max_request_size=self.settings.worker.input_max_message_bytes,
        )
        await producer.start()
        return producer

    def _ssl_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context()
        if self.settings.ca_file:
            context.load_verify_locations(cafile=self.settings.ca_file)
        return context
