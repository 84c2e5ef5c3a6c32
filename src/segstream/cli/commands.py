"""The list of `segstream` subcommands; each area adds its module's commands here."""

from __future__ import annotations

import click

from segstream.cli.deliver import deliver
from segstream.cli.destinations import destinations
from segstream.cli.generate import generate
from segstream.cli.lag_exporter import lag_exporter
from segstream.cli.members import members
from segstream.cli.migrate import migrate
from segstream.cli.produce import produce
from segstream.cli.replay import replay
from segstream.cli.rules import explain, validate
from segstream.cli.segments import segments
from segstream.cli.tail import tail
from segstream.cli.worker import worker

ALL: list[click.Command] = []
ALL.append(worker)
ALL.append(lag_exporter)
ALL.append(migrate)
ALL.extend([validate, explain])
ALL.append(replay)
ALL.append(generate)
ALL.extend([segments, tail, produce])
ALL.extend([destinations, deliver])
ALL.append(members)
