"""`segstream migrate`: upgrade a deployment's changelog to the keyed layout (format 2)."""

from __future__ import annotations

import click

__all__ = ["migrate"]


@click.command()
def migrate() -> None:
    """Build the format-2 changelog (<prefix>.state-changelog-v2) from the format-1 one.

    Run it with every worker stopped (settings from SEGSTREAM_* variables); partitions already
    migrated are skipped, so it can run again after an interruption.
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
        click.echo(f"nothing to migrate from {source} (missing, empty or done)", err=True)
    for partition, records in sorted(written.items()):
        click.echo(f"partition {partition}: {records} records {source} -> {target}", err=True)
