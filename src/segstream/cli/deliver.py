"""`segstream deliver`: POST membership events to the webhook destinations until SIGTERM."""

from __future__ import annotations

import asyncio

import click

__all__ = ["deliver"]


@click.command()
def deliver() -> None:
    """Deliver membership events to every destination (settings: SEGSTREAM_DELIVER_* and the
    worker's Kafka and topic variables; docs/destinations.md)."""
    from segstream.app.deliver.service import Deliverer
    from segstream.app.deliver.settings import DeliverSettings
    from segstream.app.logs import configure_logging
    from segstream.app.settings import SettingsError
    from segstream.app.topics import create_topics, topic_specs

    try:
        settings = DeliverSettings.from_env()
    except SettingsError as exc:
        raise click.UsageError(str(exc)) from exc
    configure_logging(settings.worker.log_level)
    worker = settings.worker
    asyncio.run(
        create_topics(worker.client_kwargs(), topic_specs(worker), worker.replication_factor)
    )
    asyncio.run(Deliverer(settings).run())
