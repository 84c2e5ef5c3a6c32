"""The `segstream` command line: one click group; each area registers its own commands."""

from __future__ import annotations

import click

from segstream import __version__

__all__ = ["main"]


@click.group()
@click.version_option(__version__, prog_name="segstream")
def main() -> None:
    """Real-time customer segmentation on Kafka."""


def _register() -> None:
    # Command modules import their heavy dependencies (aiokafka, aiohttp) inside the command
    # body, so `segstream replay` and `validate` start fast.
    from segstream.cli import commands

    for command in commands.ALL:
        main.add_command(command)


_register()
