"""`segstream lag-exporter`: the application's consumer lag on /metrics, worker or not."""

from __future__ import annotations

import asyncio

import click

__all__ = ["lag_exporter"]


@click.command("lag-exporter")
@click.option(
    "--group",
    default=None,
    help="Consumer group to report (default: SEGSTREAM_APP_ID, the workers' group).",
)
@click.option(
    "--topic",
    "topics",
    multiple=True,
    help="Topic always reported, even before the group commits on it (repeatable; default: "
    "the workers' profiles, activity and control topics). Topics the group has committed "
    "offsets on are always reported.",
)
@click.option(
    "--cluster-name",
    default="default",
    show_default=True,
    help="Value of the cluster_name label (as kafka-lag-exporter's).",
)
@click.option("--host", default="127.0.0.1", show_default=True, help="Bind address.")
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=6068,
    show_default=True,
    help="Port of /metrics, /livez and /readyz (0 picks a free one, logged).",
)
@click.option(
    "--poll-interval",
    type=click.FloatRange(min=0.1),
    default=15.0,
    show_default=True,
    help="Seconds between two polls of Kafka.",
)
def lag_exporter(
    group: str | None,
    topics: tuple[str, ...],
    cluster_name: str,
    host: str,
    port: int,
    poll_interval: float,
) -> None:
    """Export consumer-group lag from Kafka's offsets, in kafka-lag-exporter's metric names.

    Kafka settings (brokers, security, topic names, group) come from the SEGSTREAM_*
    variables, as for the worker.
    """
    from segstream.app.lag_exporter import LagExporter
    from segstream.app.logs import configure_logging
    from segstream.cli.segments import load_settings

    settings = load_settings()
    configure_logging(settings.log_level)
    reported = topics or (
        settings.topics.profiles,
        settings.topics.activity,
        settings.topics.control,
    )
    exporter = LagExporter(
        settings.client_kwargs(),
        {group or settings.app_id: reported},
        cluster_name=cluster_name,
        host=host,
        port=port,
        poll_interval_s=poll_interval,
    )
    asyncio.run(exporter.run())
