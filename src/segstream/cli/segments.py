"""`segstream segments apply|list|delete`: write and inspect definitions on the segments topic."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, TypeVar

import click

from segstream.cli.params import load_definitions
from segstream.errors import SegstreamError
from segstream.schemas.jsontext import dumps_text

if TYPE_CHECKING:
    from segstream.app.settings import WorkerSettings
    from segstream.app.status_view import SegmentRow

__all__ = ["kafka_errors", "load_settings", "run_kafka", "segments"]

_T = TypeVar("_T")


def load_settings() -> WorkerSettings:
    """The SEGSTREAM_* settings, or a usage error that names the bad variable."""
    from segstream.app.settings import SettingsError, WorkerSettings

    try:
        return WorkerSettings.from_env()
    except SettingsError as exc:
        raise click.UsageError(str(exc)) from exc


@contextmanager
def kafka_errors(settings: WorkerSettings) -> Iterator[None]:
    """Turn the expected failures of talking to Kafka into one-line errors (exit status 1)."""
    from aiokafka.errors import KafkaConnectionError, KafkaError

    try:
        yield
    except SegstreamError as exc:
        raise click.ClickException(str(exc)) from None
    except KafkaConnectionError as exc:
        raise click.ClickException(
            f"cannot reach Kafka at {settings.bootstrap} over {settings.security.protocol}: "
            f"{exc}{settings.security.failure_hint()}"
        ) from None
    except KafkaError as exc:
        raise click.ClickException(f"Kafka error: {exc}") from None


def echo_applied(results: list[Any], what: str) -> None:
    """One line per written record (`label vN outcome`, or `label rejected` and its
    problems); exit 1 when any was rejected."""
    rejected = 0
    for applied in results:
        if applied.outcome == "rejected":
            rejected += 1
            click.echo(f"{applied.label} rejected")
            for problem in applied.problems:
                click.echo(f"{applied.label}: {problem}")
        else:
            click.echo(f"{applied.label} v{applied.version} {applied.outcome}")
    if rejected:
        click.echo(f"{rejected} of {len(results)} {what} were rejected", err=True)
        raise SystemExit(1)


def run_kafka(settings: WorkerSettings, coroutine: Coroutine[Any, Any, _T]) -> _T:
    """Run a coroutine that talks to Kafka; its expected failures become one-line errors."""
    with kafka_errors(settings):
        return asyncio.run(coroutine)


@click.group()
def segments() -> None:
    """Write and inspect segment definitions (settings from SEGSTREAM_* variables)."""


@segments.command()
@click.argument("file", type=click.Path(dir_okay=False))
def apply(file: str) -> None:
    """Validate and write the definitions in FILE (one object or a JSON array), in order."""
    from segstream.app.segment_writer import SegmentWriter

    definitions = load_definitions(file)
    settings = load_settings()

    async def write() -> list[Any]:
        async with SegmentWriter(settings) as writer:
            return await writer.apply(definitions)

    echo_applied(run_kafka(settings, write()), "definitions")


@segments.command(name="list")
@click.option("--json", "as_json", is_flag=True, help="One JSON object a line.")
def list_segments(as_json: bool) -> None:
    """Show every defined segment: version, building or ready, and its members."""
    from segstream.app.status_view import read_status_rows

    settings = load_settings()
    rows = run_kafka(settings, read_status_rows(settings))
    if as_json:
        for row in rows:
            click.echo(dumps_text(row.as_json()))
        return
    if not rows:
        click.echo("no segments are defined", err=True)
        return
    click.echo(_table(rows))


def _table(rows: list[SegmentRow]) -> str:
    header = ("ID", "VERSION", "STATUS", "MEMBERS", "NAME")
    cells = [header] + [
        (row.id, str(row.version), row.status, str(row.members), row.name) for row in rows
    ]
    widths = [max(len(line[i]) for line in cells) for i in range(len(header) - 1)]
    lines = []
    for line in cells:
        # Numbers right-aligned, text left-aligned; the last column (the name) runs free.
        padded = [
            line[i].rjust(widths[i]) if i in (1, 3) else line[i].ljust(widths[i])
            for i in range(len(widths))
        ]
        lines.append("  ".join([*padded, line[-1]]))
    # Why a segment's latest record has no effect (SPEC §4.3), under the table.
    lines.extend(
        f"{row.id} v{row.version} rejected: {row.rejected}" for row in rows if row.rejected
    )
    return "\n".join(lines)


@segments.command()
@click.argument("segment_id", metavar="ID")
def delete(segment_id: str) -> None:
    """Delete segment ID: its members leave it; its version is kept for a re-creation."""
    from segstream.app.segment_writer import SegmentWriter

    settings = load_settings()

    async def remove() -> int:
        async with SegmentWriter(settings) as writer:
            return await writer.delete(segment_id)

    version = run_kafka(settings, remove())
    click.echo(f"{segment_id} v{version} deleted")
