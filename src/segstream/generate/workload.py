"""The generator's entry points: a deterministic workload, and writing it as replay files."""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from segstream.generate.catalogue import Catalogue, build_catalogue
from segstream.generate.segments import generate_segments
from segstream.generate.timeline import TimelineOptions, timeline_records
from segstream.timefmt import DAY, parse_datetime, utc_date

__all__ = ["DEFAULT_END", "Workload", "WorkloadSummary", "generate_workload", "write_workload"]

# A fixed end of the default span, so that a seed alone fixes every byte of the output.
DEFAULT_END = parse_datetime("2026-11-28T00:00:00Z")


@dataclass(frozen=True, slots=True)
class Workload:
    """A generated workload: segment definitions and a stream of input records (SPEC §3, §4)."""

    profiles: int
    events: int
    segment_count: int
    seed: int
    start: int
    end: int
    live_start: int | None
    rate: float
    late_share: float
    duplicate_share: float
    #: > 0: segments from the first this many templates only (`generate_segments`).
    segment_templates: int = 0

    def _rng(self, part: str) -> random.Random:
        # One independent stream per part: the records do not change when K changes.
        # Not for security: reproducible test data is the point.
        return random.Random(f"segstream-generate:{self.seed}:{part}")  # noqa: S311

    def catalogue(self) -> Catalogue:
        """The products and campaigns the records and definitions refer to."""
        return build_catalogue(self._rng("catalogue"))

    def definitions(self) -> Iterator[dict[str, Any]]:
        """The segment definitions, ids `seg-00001`… in order; references point backwards."""
        end = self.end
        if self.live_start is not None:
            end = self.live_start + int(self.events / self.rate * 1_000_000)
        return generate_segments(
            self._rng("segments"), self.catalogue(), end, self.segment_count, self.segment_templates
        )

    def records(self) -> Iterator[dict[str, Any]]:
        """Exactly `events` input records in file order."""
        options = TimelineOptions(
            profiles=self.profiles,
            events=self.events,
            start=self.start,
            span=self.end - self.start,
            late_share=self.late_share,
            duplicate_share=self.duplicate_share,
            live_start=self.live_start,
            rate=self.rate,
        )
        return timeline_records(self._rng("records"), options, self.catalogue(), utc_date(self.end))


@dataclass(frozen=True, slots=True)
class WorkloadSummary:
    """What `write_workload` wrote."""

    segments_path: Path
    events_path: Path
    segments: int
    records: int


def generate_workload(
    *,
    profiles: int,
    events: int,
    segments: int,
    seed: int = 0,
    start: int | None = None,
    end: int | None = None,
    span: int = 30 * DAY,
    live_start: int | None = None,
    rate: float = 1000.0,
    late_share: float = 0.0,
    duplicate_share: float = 0.0,
    segment_templates: int = 0,
) -> Workload:
    """Describe a workload; its `definitions()` and `records()` are deterministic per seed.

    The span of event times is `[start, start + span]` when `start` is given, otherwise it
    ends at `end` (default `DEFAULT_END`). With `live_start`, record times instead start at
    `live_start` and advance by `1/rate` seconds per record.
    """
    if profiles < 1:
        raise ValueError("profiles must be at least 1")
    if events < profiles:
        raise ValueError("events must be at least profiles: every profile starts with an update")
    if segments < 0:
        raise ValueError("segments must not be negative")
    if span < DAY:
        raise ValueError("span must be at least one day")
    if rate <= 0:
        raise ValueError("rate must be positive")
    for share in (late_share, duplicate_share):
        if not 0.0 <= share <= 0.5:
            raise ValueError("late and duplicate shares must be between 0 and 0.5")
    if start is None:
        end = DEFAULT_END if end is None else end
        start = end - span
    else:
        end = start + span
    return Workload(
        profiles=profiles,
        events=events,
        segment_count=segments,
        seed=seed,
        start=start,
        end=end,
        live_start=live_start,
        rate=rate,
        late_share=late_share,
        duplicate_share=duplicate_share,
        segment_templates=segment_templates,
    )


def write_workload(workload: Workload, out_dir: Path) -> WorkloadSummary:
    """Write `segments.json` and `events.jsonl` (SPEC §8) into `out_dir`, streaming the records."""
    out_dir.mkdir(parents=True, exist_ok=True)
    segments_path = out_dir / "segments.json"
    events_path = out_dir / "events.jsonl"
    definitions = list(workload.definitions())
    segments_path.write_bytes(orjson.dumps(definitions, option=orjson.OPT_INDENT_2) + b"\n")
    written = 0
    dumps = orjson.dumps
    with events_path.open("wb", buffering=1 << 20) as sink:
        batch: list[bytes] = []
        for record in workload.records():
            batch.append(dumps(record))
            if len(batch) >= 4096:
                batch.append(b"")
                sink.write(b"\n".join(batch))
                written += len(batch) - 1
                batch = []
        if batch:
            batch.append(b"")
            sink.write(b"\n".join(batch))
            written += len(batch) - 1
    return WorkloadSummary(segments_path, events_path, len(definitions), written)
