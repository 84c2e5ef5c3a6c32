"""`segstream validate` and `segstream explain`: check and describe segment definition files."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import click

from segstream.cli.params import load_definitions
from segstream.errors import Problem
from segstream.rules import (
    ConditionFacts,
    analyze_condition,
    transitively_time_dependent,
    validate_definition,
)
from segstream.schemas.jsontext import dumps_text
from segstream.schemas.vocabulary import SEGMENT_ID
from segstream.timefmt import parse_duration

__all__ = ["explain", "validate"]


def _label(index: int, raw: object) -> str:
    """The definition's id, or its index in the file when it has no usable id."""
    if isinstance(raw, dict):
        segment_id = raw.get("id")
        if isinstance(segment_id, str) and SEGMENT_ID.fullmatch(segment_id):
            return segment_id
    return f"[{index}]"


def _checked(
    definitions: list[Any], history_retention: int
) -> Iterator[tuple[int, Any, list[Problem]]]:
    """Each definition with its problems, validated against the valid ones before it."""
    defined: dict[str, Any] = {}
    for index, raw in enumerate(definitions):
        problems = validate_definition(raw, defined, history_retention=history_retention)
        if not problems:
            defined[raw["id"]] = raw
        yield index, raw, problems


def _retention(_ctx: click.Context, _param: click.Parameter, value: str) -> int:
    try:
        return parse_duration(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None


_file_argument = click.argument("file", type=click.Path(dir_okay=False, allow_dash=False))
_retention_option = click.option(
    "--history-retention",
    default="365d",
    show_default=True,
    callback=_retention,
    help="How long activity history is kept; no event window may be longer.",
)


@click.command()
@_file_argument
@_retention_option
def validate(file: str, history_retention: int) -> None:
    """Check the segment definitions in FILE (one object or a JSON array), in order."""
    definitions = load_definitions(file)
    invalid = 0
    for index, raw, problems in _checked(definitions, history_retention):
        if problems:
            invalid += 1
        for problem in problems:
            click.echo(f"{_label(index, raw)}: {problem}")
    if invalid:
        click.echo(f"{invalid} of {len(definitions)} definitions are invalid", err=True)
        raise SystemExit(1)
    click.echo(f"all {len(definitions)} definitions are valid", err=True)


@click.command()
@_file_argument
@_retention_option
def explain(file: str, history_retention: int) -> None:
    """Print what each definition in FILE reads and whether time alone can change it."""
    definitions = load_definitions(file)
    known: dict[str, ConditionFacts] = {}
    invalid = 0
    for index, raw, problems in _checked(definitions, history_retention):
        if problems:
            invalid += 1
            for problem in problems:
                click.echo(f"{_label(index, raw)}: {problem}", err=True)
            continue
        facts = analyze_condition(raw["condition"])
        known[raw["id"]] = facts
        line = {
            "id": raw["id"],
            "traits": list(facts.traits),
            "events": list(facts.events),
            "segments": list(facts.segments),
            "time_dependent": transitively_time_dependent(facts, known),
        }
        click.echo(dumps_text(line))
    if invalid:
        raise SystemExit(1)
