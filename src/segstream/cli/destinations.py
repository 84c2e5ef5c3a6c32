"""`segstream destinations apply|list|delete`: webhook destinations on the destinations topic."""

from __future__ import annotations

from typing import Any

import click

from segstream.cli.params import load_definitions
from segstream.cli.segments import echo_applied, load_settings, run_kafka
from segstream.schemas.jsontext import dumps

__all__ = ["destinations"]


@click.group()
def destinations() -> None:
    """Write and inspect webhook destinations (settings from SEGSTREAM_* variables)."""


@destinations.command()
@click.argument("file", type=click.Path(dir_okay=False))
def apply(file: str) -> None:
    """Validate and write the destinations in FILE (one object or a JSON array), in order.

    A destination's host must be in SEGSTREAM_DELIVER_ALLOWED_HOSTS.
    """
    from segstream.app.destination_writer import DestinationWriter
    from segstream.app.outbound import OutboundPolicy
    from segstream.app.settings import SettingsError

    raws = load_definitions(file)
    settings = load_settings()
    try:
        policy = OutboundPolicy.from_env()
    except SettingsError as exc:
        raise click.UsageError(str(exc)) from exc

    async def write() -> list[Any]:
        async with DestinationWriter(settings, policy) as writer:
            return await writer.apply(raws)

    echo_applied(run_kafka(settings, write()), "destinations")


@destinations.command(name="list")
@click.option("--json", "as_json", is_flag=True, help="One JSON object a line.")
def list_destinations(as_json: bool) -> None:
    """Show every destination: id, version, URL, segments, transitions (never a secret)."""
    from segstream.app.destination_writer import DestinationReader, public_view

    settings = load_settings()

    async def read() -> dict[str, dict[str, Any]]:
        reader = DestinationReader(settings)
        try:
            return await reader.read()
        finally:
            await reader.close()

    rows = [public_view(record) for _, record in sorted(run_kafka(settings, read()).items())]
    if as_json:
        for row in rows:
            click.echo(dumps(row).decode())
        return
    if not rows:
        click.echo("no destinations are defined", err=True)
        return
    header = ("ID", "VERSION", "SEGMENTS", "TRANSITIONS", "URL")
    cells = [header] + [
        (
            row["id"],
            str(row["version"]),
            ",".join(row["segments"]) if row["segments"] else "(all)",
            ",".join(row["transitions"]),
            row["url"],
        )
        for row in rows
    ]
    widths = [max(len(line[i]) for line in cells) for i in range(len(header) - 1)]
    for line in cells:
        click.echo("  ".join([*(c.ljust(w) for c, w in zip(line, widths, strict=False)), line[-1]]))


@destinations.command()
@click.argument("destination_id", metavar="ID")
def delete(destination_id: str) -> None:
    """Delete destination ID: delivery to it stops; its version is kept for a re-creation."""
    from segstream.app.destination_writer import DestinationWriter

    settings = load_settings()

    async def remove() -> int:
        async with DestinationWriter(settings) as writer:
            return await writer.delete(destination_id)

    version = run_kafka(settings, remove())
    click.echo(f"{destination_id} v{version} deleted")
