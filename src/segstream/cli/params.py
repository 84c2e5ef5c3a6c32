"""Parameter parsing shared by the commands: instants, durations, definition files."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from segstream.schemas.jsontext import loads_exact
from segstream.timefmt import parse_duration, parse_instant

__all__ = ["duration", "instant", "load_definitions"]


def instant(_ctx: click.Context, _param: click.Parameter, value: str | None) -> int | None:
    """click callback: a date or RFC 3339 date-time as microseconds (None stays None)."""
    if value is None:
        return None
    try:
        return parse_instant(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None


def duration(_ctx: click.Context, _param: click.Parameter, value: str) -> int:
    """click callback: a duration such as `30d` as microseconds."""
    try:
        return parse_duration(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None


def load_definitions(path: str | Path) -> list[Any]:
    """The definitions in a file: one object or a JSON array; a clear error if unreadable."""
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise click.ClickException(f"cannot read {path}: {exc.strerror or exc}") from None
    try:
        # Lenient: a value beyond the SPEC limits rejects its definition alone (validator).
        parsed = loads_exact(data, lenient=True)
    except ValueError as exc:
        raise click.ClickException(f"{path} is not valid JSON: {exc}") from None
    return parsed if isinstance(parsed, list) else [parsed]
