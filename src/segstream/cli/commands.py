"""The list of `segstream` subcommands; each area adds its module's commands here."""

from __future__ import annotations

import click

from segstream.cli.generate import generate
from segstream.cli.replay import replay
from segstream.cli.rules import explain, validate

ALL: list[click.Command] = []
ALL.extend([validate, explain])
ALL.append(replay)
ALL.append(generate)
