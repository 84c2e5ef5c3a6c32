"""`segstream generate`: write a realistic, deterministic workload as replay files (SPEC §8)."""

from __future__ import annotations

import time
from pathlib import Path

import click

from segstream.cli.params import duration, instant
from segstream.timefmt import SECOND, format_instant

__all__ = ["generate"]


@click.command()
@click.option("--profiles", type=click.IntRange(min=1), required=True, help="Number of profiles.")
@click.option(
    "--events",
    type=click.IntRange(min=1),
    required=True,
    help="Number of records in events.jsonl, profile updates included (at least --profiles).",
)
@click.option(
    "--segments",
    type=click.IntRange(min=0),
    default=100,
    show_default=True,
    help="Number of segment definitions in segments.json.",
)
@click.option("--seed", type=int, default=0, show_default=True, help="Same seed, same bytes.")
@click.option(
    "--out",
    "out_dir",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Directory for segments.json and events.jsonl (created if missing).",
)
@click.option("--start", callback=instant, help="First instant of the span of event times.")
@click.option(
    "--end",
    callback=instant,
    help="Last instant of the span (default 2026-11-28T00:00:00Z); ignored with --start.",
)
@click.option(
    "--span",
    default="30d",
    show_default=True,
    callback=duration,
    help="Length of the span of event times.",
)
@click.option(
    "--live",
    is_flag=True,
    help="Times start at the wall clock now and advance by 1/--rate seconds per record.",
)
@click.option(
    "--rate",
    type=click.FloatRange(min=0, min_open=True),
    default=1000.0,
    show_default=True,
    help="Records per second of event time with --live.",
)
@click.option(
    "--late-share",
    type=click.FloatRange(0, 0.5),
    default=0.0,
    show_default=True,
    help="Share of activity events written after newer records.",
)
@click.option(
    "--duplicate-share",
    type=click.FloatRange(0, 0.5),
    default=0.0,
    show_default=True,
    help="Share of activity records that repeat an earlier id.",
)
def generate(
    profiles: int,
    events: int,
    segments: int,
    seed: int,
    out_dir: Path,
    start: int | None,
    end: int | None,
    span: int,
    live: bool,
    rate: float,
    late_share: float,
    duplicate_share: float,
) -> None:
    """Write OUT/segments.json and OUT/events.jsonl: profiles, their activity, and segments."""
    from segstream.generate import generate_workload, write_workload

    if events < profiles:
        raise click.BadParameter("must be at least --profiles", param_hint="--events")
    live_start = time.time_ns() // 1000 if live else None
    workload = generate_workload(
        profiles=profiles,
        events=events,
        segments=segments,
        seed=seed,
        start=start,
        end=end,
        span=span,
        live_start=live_start,
        rate=rate,
        late_share=late_share,
        duplicate_share=duplicate_share,
    )
    began = time.perf_counter()
    summary = write_workload(workload, out_dir)
    seconds = time.perf_counter() - began
    first = workload.start if live_start is None else live_start
    last = workload.end if live_start is None else live_start + int(events / rate * SECOND)
    click.echo(
        f"wrote {summary.segments} definitions to {summary.segments_path} and "
        f"{summary.records} records to {summary.events_path} "
        f"({format_instant(first)} .. {format_instant(last)}) in {seconds:.1f} s",
        err=True,
    )
