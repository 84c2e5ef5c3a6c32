"""`segstream migrate`: upgrade a deployment's changelog to the keyed layout (format 2)."""

from __future__ import annotations

import click

__all__ = ["migrate"]


@click.command()
def migrate() -> None:
    """Build the format-2 changelog (<prefix>.state-changelog-v2) from the format-1 one.

    It may run while the old workers still run (settings from SEGSTREAM_* variables); run it
    again once they are stopped, to convert what they wrote since: only that is read. A
    partition up to date is skipped, so it can also run again after an interruption.
    """
    from segstream.app.migrate import legacy_changelog, migrate_changelog
    from segstream.app.settings import SettingsError, WorkerSettings
    from segstream.app.topics import create_topics, topic_specs
    from segstream.cli.segments import run_kafka

    try:
        settings = WorkerSettings.from_env()
    except SettingsError as exc:
        raise click.UsageError(str(exc)) from exc
    run_kafka(
        settings,
        create_topics(settings.client_kwargs(), topic_specs(settings), settings.replication_factor),
    )
    written = run_kafka(settings, migrate_changelog(settings))
    source, target = legacy_changelog(settings), settings.topics.changelog
    if not written:
        click.echo(f"nothing to migrate from {source} (missing, empty or up to date)", err=True)
    for partition, records in sorted(written.items()):
        click.echo(f"partition {partition}: {records} records {source} -> {target}", err=True)
