"""Timeline ring and size buckets (state/insight.py) over a dict standing in for the store."""

from __future__ import annotations

from collections.abc import Iterator

from segstream.engine.membership import MembershipChange
from segstream.state.insight import (
    TIMELINE_KEPT,
    read_size_history,
    read_timeline,
    size_records,
    timeline_records,
)
from segstream.timefmt import DAY, HOUR, MINUTE


class DictStore:
    def __init__(self) -> None:
        self.data: dict[bytes, bytes] = {}

    def apply(self, records: list[tuple[bytes, bytes | None]] | Iterator) -> None:
        for key, value in records:
            if value is None:
                self.data.pop(key, None)
            else:
                self.data[key] = value

    def get(self, key: bytes) -> bytes | None:
        return self.data.get(key)

    def scan(self, prefix: bytes) -> list[tuple[bytes, bytes]]:
        return sorted((k, v) for k, v in self.data.items() if k.startswith(prefix))


def change(
    n: int, entered: bool, at: int = 0, kind: str = "event", sid: str = "s"
) -> MembershipChange:
    return MembershipChange("p1", sid, 1, n, entered, at, {"kind": kind})


def test_the_timeline_keeps_the_last_100_transitions_newest_first() -> None:
    store = DictStore()
    for n in range(1, 251):
        store.apply(timeline_records("p1", [change(n, n % 2 == 1, at=n)], n))
    timeline = read_timeline("p1", store.scan)
    assert len(timeline) == TIMELINE_KEPT
    assert [e["seq"] for e in timeline] == list(range(250, 150, -1))
    assert timeline[0]["type"] == "segment.left" and timeline[0]["at"] == 250
    assert read_timeline("p10", store.scan) == []  # ids are length-prefixed: no prefix bleed


def test_a_deletion_forgets_the_timeline_and_it_starts_again() -> None:
    store = DictStore()
    store.apply(
        timeline_records("p1", [change(1, True), change(2, False, kind="profile_deleted")], 2)
    )
    assert read_timeline("p1", store.scan) == []
    store.apply(timeline_records("p1", [change(3, True, at=5)], 3))
    assert [e["seq"] for e in read_timeline("p1", store.scan)] == [3]


def test_size_buckets_count_per_hour_and_minute_and_expire() -> None:
    store = DictStore()
    t0 = 100 * DAY
    batch = [change(1, True, t0 + 5 * MINUTE), change(2, True, t0 + 6 * MINUTE)]
    store.apply(size_records(batch, {"s": 3}, store.get, store.scan, 30 * DAY))
    store.apply(
        size_records([change(3, False, t0 + 6 * MINUTE)], {"s": 5}, store.get, store.scan, 30 * DAY)
    )
    hours = read_size_history("s", "hour", 0, store.scan)
    assert [(b.start, b.entered, b.left, b.members) for b in hours] == [(t0, 2, 1, 4)]
    minutes = read_size_history("s", "minute", 0, store.scan)
    assert [(b.entered, b.left, b.members) for b in minutes] == [(1, 0, 4), (1, 1, 4)]
    # A bucket 31 days later drops the hourly ones older than 30 days and the minutes > 1 day.
    later = t0 + 31 * DAY
    store.apply(size_records([change(4, True, later)], {"s": 4}, store.get, store.scan, 30 * DAY))
    assert [b.start for b in read_size_history("s", "hour", 0, store.scan)] == [later]
    assert [b.start for b in read_size_history("s", "minute", 0, store.scan)] == [later]
    # The bucket before `since` comes first: it carries the member count into the range.
    carried = read_size_history("s", "hour", later + HOUR, store.scan)
    assert [(b.start, b.members) for b in carried] == [(later, 5)]
