"""`segstream worker`: creates the topics, then runs the worker until SIGINT/SIGTERM."""

from __future__ import annotations

import asyncio
import sys

import click

__all__ = ["worker"]


@click.command()
@click.option(
    "--create-topics-only",
    is_flag=True,
    help="Create the topics (SPEC §2 and the internal ones) if missing, and exit.",
)
@click.option(
    "--runtime",
    type=click.Choice(["native", "faust"]),
    default="native",
    show_default=True,
    help="native: the aiokafka worker (exactly once). faust: Faust agents and tables "
    "(extra segstream[faust]; at least once, docs/faust.md).",
)
@click.option(
    "--processes",
    metavar="N",
    type=click.IntRange(min=1),
    default=None,
    help="Run N native worker processes under one supervisor, each a group member with "
    "its own store directory (STORE_DIR/process-<i>) and web port (WEB_PORT + i); "
    "default 1, the worker itself (docs/scaling.md).",
)
def worker(create_topics_only: bool, runtime: str, processes: int | None) -> None:
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

    if runtime == "faust":
        if processes is not None:
            raise click.UsageError("--processes runs native workers; not with --runtime faust")
        _faust_worker(create_topics_only)
        return
    try:
        settings = WorkerSettings.from_env()
    except SettingsError as exc:
        raise click.UsageError(str(exc)) from exc
    exposure = settings.web_exposure_problem()
    if exposure is not None and not create_topics_only:
        raise click.UsageError(exposure)
    specs = None
    if processes is not None and processes > 1 and not create_topics_only:
        from segstream.cli.processes import check_processes

        specs = check_processes(settings, processes)
    process = settings.process_index
    configure_logging(settings.log_level, None if process is None else {"process": process})
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
    if specs is not None:
        from segstream.cli.processes import run_processes

        sys.exit(run_processes(settings, specs))

    from segstream.cli.compose import build_worker

    worker_, web = build_worker(settings)
    with kafka_errors(settings):
        try:
            import uvloop
        except ImportError:  # pragma: no cover - uvloop is optional
            asyncio.run(worker_.run(web))
        else:
            uvloop.run(worker_.run(web))


def _faust_worker(create_topics_only: bool) -> None:
    """`segstream worker --runtime faust` (segstream.faust_runtime)."""
    from segstream.app.settings import SettingsError
    from segstream.app.topics import (
        create_topics,
        ensure_message_limits,
        message_limits,
        topic_specs,
    )
    from segstream.cli.segments import kafka_errors

    try:
        import faust  # noqa: F401  (the extra; the runtime's modules import it late)

        from segstream.faust_runtime.runner import create_faust_topics, run_faust_worker
        from segstream.faust_runtime.settings import FaustSettings
    except ImportError as exc:
        raise click.UsageError(
            f"the Faust runtime needs the extra: pip install 'segstream[faust]' ({exc})"
        ) from exc
    try:
        settings = FaustSettings.from_env()
    except SettingsError as exc:
        raise click.UsageError(str(exc)) from exc
    worker_settings = settings.worker
    with kafka_errors(worker_settings):
        created = asyncio.run(
            create_topics(
                worker_settings.client_kwargs(),
                topic_specs(worker_settings),
                worker_settings.replication_factor,
            )
        )
        created += create_faust_topics(settings)
        for name in created:
            click.echo(f"created topic {name}", err=True)
        asyncio.run(
            ensure_message_limits(worker_settings.client_kwargs(), message_limits(worker_settings))
        )
    if create_topics_only:
        return
    run_faust_worker(settings)
