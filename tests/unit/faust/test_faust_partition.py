"""FaustPartition over dict tables: what one record's step produces and writes (no broker)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson
import pytest

pytest.importorskip("faust")

from segstream.app.metrics import WorkerMetrics
from segstream.app.settings import WorkerSettings
from segstream.faust_runtime.partition import TICK_KEY, FaustPartition, Step
from segstream.timefmt import format_instant

CONTROL = "t.faust-control"


@dataclass(frozen=True)
class Record:
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    timestamp: int | None = None


class DictTables:
    """PartitionTables in memory; `write` is the only way in, as in the runtime."""

    def __init__(self) -> None:
        self.profiles: dict[str, bytes] = {}
        self.meta: dict[str, bytes] = {}

    def profile(self, profile_id: str) -> bytes | None:
        return self.profiles.get(profile_id)

    def profile_items(self) -> list[tuple[str, bytes]]:
        return sorted(self.profiles.items())

    def profile_ids_after(self, cursor: str | None, limit: int) -> list[str]:
        ids = sorted(p for p in self.profiles if cursor is None or p > cursor)
        return ids[:limit]

    def meta_items(self) -> list[tuple[str, bytes]]:
        return sorted(self.meta.items())

    def write(self, profiles: dict[str, bytes], meta: dict[str, bytes]) -> None:
        self.profiles.update(profiles)
        self.meta.update(meta)


def settings() -> WorkerSettings:
    return WorkerSettings.from_env({"SEGSTREAM_TOPIC_PREFIX": "t", "SEGSTREAM_PARTITIONS": "1"})


def segment(sid: str, condition: dict[str, Any], offset: int, version: int = 1) -> Record:
    body = {
        "kind": "segment",
        "record": {"id": sid, "name": sid, "condition": condition, "version": version},
    }
    return Record(CONTROL, 0, offset, sid.encode(), orjson.dumps(body))


def profile(pid: str, tier: int, offset: int) -> Record:
    event = {
        "id": f"e{offset}",
        "type": "profile.updated",
        "profile_id": pid,
        "at": format_instant(1_700_000_000_000_000),
        "traits": {"tier": tier},
    }
    return Record("t.profiles", 0, offset, pid.encode(), orjson.dumps(event), 1)


def run(part: FaustPartition, tables: DictTables, record: Record) -> Step:
    step = part.handle(record.topic, record)
    tables.write(step.profiles, step.meta)
    part.committed(step)
    return step


def test_events_segments_and_backfill_ticks() -> None:
    tables = DictTables()
    part = FaustPartition(0, settings(), WorkerMetrics(), tables, CONTROL)
    tier1 = {"trait": "tier", "op": "eq", "value": 1}
    step = run(part, tables, segment("one", tier1, 0))
    assert "one" in part.registry.segments and "seg:one" in step.meta

    step = run(part, tables, profile("p1", 1, 0))
    assert [(c.profile_id, c.segment_id, c.entered) for c in step.changes] == [("p1", "one", True)]
    assert set(step.profiles) == {"p1"}
    # The same event again (a repeat after a crash before the commit): no effect.
    assert run(part, tables, profile("p1", 1, 0)).changes == []

    run(part, tables, profile("p2", 2, 1))
    # A segment created over stored profiles: a backfill, run by ticks.
    tier2 = {"trait": "tier", "op": "eq", "value": 2}
    step = run(part, tables, segment("two", tier2, 1))
    assert part.jobs and step.changes == []
    step = run(part, tables, Record(CONTROL, 0, 2, TICK_KEY, b""))
    assert [(c.profile_id, c.segment_id, c.cause["kind"]) for c in step.changes] == [
        ("p2", "two", "segment_created")
    ]
    assert not part.jobs and step.meta["jobs"] == b""
    assert part.status()["segments"]["two"]["members"] == 1

    # Loading from the tables gives the same partition.
    again = FaustPartition(0, settings(), WorkerMetrics(), tables, CONTROL)
    assert set(again.registry.segments) == {"one", "two"}
    assert again.members == part.members


def test_an_invalid_record_becomes_a_dead_letter_and_writes_nothing() -> None:
    tables = DictTables()
    part = FaustPartition(0, settings(), WorkerMetrics(), tables, CONTROL)
    step = run(part, tables, Record("t.activity", 0, 5, b"p1", b"{not json"))
    assert step.profiles == {} and step.changes == []
    assert len(step.collector._pending) == 1
    assert step.collector._pending[0].topic == "t.deadletter"
