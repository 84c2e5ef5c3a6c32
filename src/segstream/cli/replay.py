"""`segstream replay`: run the engine over files under the event clock (SPEC §8)."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import BinaryIO

import click

from segstream.cli.params import duration, instant, load_definitions
from segstream.schemas.jsontext import dumps

__all__ = ["replay"]


@click.command()
@click.option(
    "--segments",
    "segments_path",
    required=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="JSON array of segment definitions, applied in order before the first record.",
)
@click.option(
    "--events",
    "events_path",
    required=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="JSON lines: input events and segment.upserted / segment.deleted records.",
)
@click.option("--until", callback=instant, help="Fire the timers due at or before this time.")
@click.option(
    "--out",
    "out_path",
    type=click.Path(dir_okay=False, writable=True, path_type=Path),
    help="Write membership events here instead of stdout.",
)
@click.option("--strict", is_flag=True, help="Exit 1 if any definition or record was invalid.")
@click.option(
    "--history-retention",
    default="365d",
    show_default=True,
    callback=duration,
    help="How long activity history is kept.",
)
def replay(
    segments_path: Path,
    events_path: Path,
    until: int | None,
    out_path: Path | None,
    strict: bool,
    history_retention: int,
) -> None:
    """Replay SEGMENTS and EVENTS through the engine and print membership events."""
    from segstream.engine.replay import ReplaySession, replay_lines

    definitions = load_definitions(segments_path)

    invalid = 0
    session = ReplaySession(history_retention=history_retention)
    for index, definition in enumerate(definitions):
        problems = session.define(definition)
        if problems:
            invalid += 1
            label = definition.get("id") if isinstance(definition, dict) else None
            name = f"segments[{index}]" + (f" ({label})" if isinstance(label, str) else "")
            for problem in problems:
                click.echo(f"{name}: {problem}", err=True)

    def rejected(number: int, reason: str) -> None:
        nonlocal invalid
        invalid += 1
        click.echo(f"line {number}: {reason}", err=True)

    out: BinaryIO
    with (
        events_path.open("rb") as events,
        out_path.open("wb") if out_path else sys.stdout.buffer as out,
    ):
        lines = (line.rstrip(b"\r\n") for line in events)
        changes = replay_lines(session, lines, rejected)
        for change in changes:
            out.write(dumps(change.to_record(time.time_ns() // 1000)) + b"\n")
        for change in session.finish(until):
            out.write(dumps(change.to_record(time.time_ns() // 1000)) + b"\n")
    if strict and invalid:
        sys.exit(1)
