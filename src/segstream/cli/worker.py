"""`segstream worker`: creates the topics, then runs the Faust worker until SIGINT/SIGTERM."""

from __future__ import annotations

import asyncio

import click

__all__ = ["worker"]


@click.command()
@click.option(
    "--create-topics-only",
    is_flag=True,
    help="Create the topics of SPEC §2 (if missing) and exit.",
)
def worker(create_topics_only: bool) -> None:
    """Run the stream worker (settings from SEGSTREAM_* environment variables)."""
    from segstream.app.settings import SettingsError, WorkerSettings
    from segstream.app.topics import create_topics, topic_specs

    try:
        settings = WorkerSettings.from_env()
    except SettingsError as exc:
        raise click.UsageError(str(exc)) from exc
    created = asyncio.run(create_topics(settings.bootstrap, topic_specs(settings)))
    for name in created:
        click.echo(f"created topic {name}", err=True)
    if create_topics_only:
        return

    import faust

    from segstream.app.agent import register_agents
    from segstream.app.app import build_app

    built = build_app(settings)
    register_agents(built)
    faust.Worker(built.app, loglevel=settings.log_level).execute_from_commandline()
