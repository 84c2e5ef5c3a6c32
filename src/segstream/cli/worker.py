"""`segstream worker`: creates the topics, then runs the worker until SIGINT/SIGTERM."""

from __future__ import annotations

import asyncio

import click

__all__ = ["worker"]


@click.command()
@click.option(
    "--create-topics-only",
    is_flag=True,
    help="Create the topics (SPEC §2 and the internal ones) if missing, and exit.",
)
def worker(create_topics_only: bool) -> None:
    """Run the stream worker (settings from SEGSTREAM_* environment variables)."""
    from segstream.app.logs import configure_logging
    from segstream.app.migrate import check_migrated
    from segstream.app.settings import SettingsError, WorkerSettings
    from segstream.app.topics import (
        create_topics,
        ensure_message_limits,
        message_limits,
        topic_specs,
    )
    from segstream.cli.segments import kafka_errors

    try:
        settings = WorkerSettings.from_env()
    except SettingsError as exc:
        raise click.UsageError(str(exc)) from exc
    exposure = settings.web_exposure_problem()
    if exposure is not None and not create_topics_only:
        raise click.UsageError(exposure)
    configure_logging(settings.log_level)
    with kafka_errors(settings):
        created = asyncio.run(
            create_topics(
                settings.client_kwargs(), topic_specs(settings), settings.replication_factor
            )
        )
        for name in created:
            click.echo(f"created topic {name}", err=True)
        # Topics made before (or by hand) may be too small for what the worker writes there.
        asyncio.run(ensure_message_limits(settings.client_kwargs(), message_limits(settings)))
    if create_topics_only:
        return
    with kafka_errors(settings):
        # A changelog of the old layout and no migration: refuse, naming `segstream migrate`.
        asyncio.run(check_migrated(settings))

    from segstream.cli.compose import build_worker

    worker_, web = build_worker(settings)
    with kafka_errors(settings):
        try:
            import uvloop
        except ImportError:  # pragma: no cover - uvloop is optional
            asyncio.run(worker_.run(web))
        else:
            uvloop.run(worker_.run(web))
