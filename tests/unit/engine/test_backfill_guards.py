"""A backfill does not evaluate, schedule timers for or write a profile the segment's guards
exclude (and that is not a member): such a profile is false before and after."""

from __future__ import annotations

from typing import Any

from segstream.engine.processor import SegmentEngine
from segstream.engine.registry import SegmentRegistry
from segstream.engine.replay import MemoryProfileStore
from segstream.rules import condition_fingerprint
from segstream.schemas.events import parse_input_record
from segstream.state.due_index import DueIndex
from segstream.timefmt import DAY, parse_datetime

RETENTION = 365 * DAY

GUARDED = {
    "id": "pro-carts",
    "name": "Pro plan with a cart in 7 days",
    "condition": {
        "and": [
            {"trait": "plan", "op": "eq", "value": "pro"},
            {"event": "cart.added", "within": "7d"},
        ]
    },
}


class CountingStore(MemoryProfileStore):
    def __init__(self) -> None:
        super().__init__()
        self.puts: list[str] = []

    def put(self, profile_id: str, state: Any) -> None:
        self.puts.append(profile_id)
        super().put(profile_id, state)


def _feed(engine: SegmentEngine, line: bytes, now: int) -> None:
    event = parse_input_record(line)
    engine.apply(event, now)


def test_a_backfill_skips_profiles_its_guards_exclude() -> None:
    store = CountingStore()
    due = DueIndex()
    engine = SegmentEngine(SegmentRegistry(RETENTION), store, due)
    now = parse_datetime("2026-01-02T00:00:00Z")
    for pid, plan in (("p1", "pro"), ("p2", "free")):
        _feed(
            engine,
            b'{"id":"t-%s","type":"profile.updated","profile_id":"%s",'
            b'"at":"2026-01-01T00:00:00Z","traits":{"plan":"%s"}}'
            % (pid.encode(), pid.encode(), plan.encode()),
            now,
        )
        _feed(
            engine,
            b'{"id":"c-%s","type":"cart.added","profile_id":"%s","at":"2026-01-01T12:00:00Z",'
            b'"properties":{"product_id":"sku-1","quantity":1,"price":1.0}}'
            % (pid.encode(), pid.encode()),
            now,
        )
    kind = engine.install_segment(GUARDED, condition_fingerprint(GUARDED["condition"]))
    assert kind == "segment_created"
    store.puts.clear()
    timers_before = {pid: store.profiles[pid].next_due for pid in ("p1", "p2")}
    entered = engine.backfill_profile("p1", "pro-carts", kind, now)
    assert [c.profile_id for c in entered] == ["p1"]
    assert engine.backfill_profile("p2", "pro-carts", kind, now) == []
    assert store.puts == ["p1"], "the excluded profile was neither evaluated nor written"
    assert store.profiles["p2"].next_due == timers_before["p2"]


def _carted_engine(now: int) -> tuple[SegmentEngine, MemoryProfileStore]:
    store = MemoryProfileStore()
    engine = SegmentEngine(SegmentRegistry(RETENTION), store, DueIndex())
    _feed(
        engine,
        b'{"id":"c-1","type":"cart.added","profile_id":"p1","at":"2026-01-01T12:00:00Z",'
        b'"properties":{"product_id":"sku-1","quantity":1,"price":1.0}}',
        now,
    )
    assert store.profiles["p1"].timers == [], "no segment used the event: no timer"
    return engine, store


def test_a_backfill_of_a_windowed_leaf_sets_no_retention_timer() -> None:
    """A plain `within` leaf cannot move when its event leaves the retention (it left the
    window first): the backfill schedules the window exit only, and the member still
    leaves on time."""
    now = parse_datetime("2026-01-02T00:00:00Z")
    at = parse_datetime("2026-01-01T12:00:00Z")
    engine, store = _carted_engine(now)
    windowed = {
        "id": "carts-7d",
        "name": "A cart in 7 days",
        "condition": {"event": "cart.added", "within": "7d"},
    }
    kind = engine.install_segment(windowed, condition_fingerprint(windowed["condition"]))
    assert kind is not None
    entered = engine.backfill_profile("p1", "carts-7d", kind, now)
    assert [c.profile_id for c in entered] == ["p1"]
    assert [due for due, _ in store.profiles["p1"].timers] == [at + 7 * DAY]
    left = engine.fire_due(at + 8 * DAY)
    assert [(c.profile_id, c.entered, c.at) for c in left] == [("p1", False, at + 7 * DAY)]


def test_a_backfill_of_a_whole_retention_leaf_keeps_the_retention_timer() -> None:
    now = parse_datetime("2026-01-02T00:00:00Z")
    at = parse_datetime("2026-01-01T12:00:00Z")
    engine, store = _carted_engine(now)
    ever = {"id": "carted", "name": "Ever carted", "condition": {"event": "cart.added"}}
    kind = engine.install_segment(ever, condition_fingerprint(ever["condition"]))
    assert kind is not None
    assert len(engine.backfill_profile("p1", "carted", kind, now)) == 1
    assert [due for due, _ in store.profiles["p1"].timers] == [at + RETENTION]
    left = engine.fire_due(at + RETENTION)
    assert [(c.profile_id, c.entered, c.at) for c in left] == [("p1", False, at + RETENTION)]
