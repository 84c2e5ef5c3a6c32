"""Reads over the RocksDB store touch only what evaluation needs (issue 19): a profile with
20,000 stored events, not in the cache, is evaluated by reading its window from the window's
start, its expired events and one timer's event, not its whole history."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import orjson

from segstream.app.store import PartitionStore, ProfileWrite
from segstream.app.transaction import PartitionState, PartitionTransaction
from segstream.engine.processor import SegmentEngine
from segstream.engine.registry import SegmentRegistry
from segstream.rules import condition_fingerprint
from segstream.schemas.events import parse_input_record
from segstream.state.layout import profile_records
from segstream.state.profile import ProfileState
from segstream.timefmt import DAY, format_instant

HISTORY = 20_000
NOW = 1_800_000_000_000_000


class CountingStore(PartitionStore):
    """The real store, counting the entries its scans hand out."""

    read = 0

    def scan(self, prefix: bytes, start: bytes = b"") -> Iterator[tuple[bytes, bytes]]:
        for pair in super().scan(prefix, start):
            self.read += 1
            yield pair


def test_a_cache_miss_reads_the_window_not_the_history(tmp_path: Path) -> None:
    store = CountingStore(tmp_path / "p0", block_cache_bytes=8 << 20, write_buffer_bytes=8 << 20)
    state = ProfileState(exists=True)
    step = 365 * DAY // HISTORY
    first = NOW - 367 * DAY  # its first two days expire at NOW
    for i in range(HISTORY):
        state.add_event(first + i * step, f"e{i}", "page.viewed", {"url": f"/p/{i}"})
        state.remember(f"e{i}")
    records = profile_records("big", state, None)
    store.write([ProfileWrite("big", records, None, {}, {})], {}, None)
    in_week = sum(1 for e in state.history("page.viewed") if e.at > NOW - 7 * DAY)
    expiring = sum(1 for e in state.history("page.viewed") if e.at <= NOW - 365 * DAY)
    assert in_week > 200 and expiring > 50

    registry = SegmentRegistry(365 * DAY)
    partition = PartitionState(registry)
    txn = PartitionTransaction(store, partition, lambda: registry)
    engine = SegmentEngine(registry, txn, txn.due)
    # Reached by the new event: a count over the week, one more than the week holds.
    count = {"op": "gte", "value": in_week + 1}
    weekly = {
        "id": "weekly",
        "name": "Weekly",
        "condition": {"event": "page.viewed", "within": "7d", "count": count},
    }
    engine.install_segment(weekly, condition_fingerprint(weekly["condition"]))
    event = {"id": "new", "type": "page.viewed", "profile_id": "big", "at": format_instant(NOW)}
    store.read = 0
    engine.apply(parse_input_record(orjson.dumps(event | {"properties": {}})), NOW)
    # The dedupe ring (1,000 slots), the expired events and the first one kept, the week.
    assert store.read <= 1000 + expiring + 2 + in_week + 2
    assert store.read < HISTORY // 8
    loaded = txn.loaded["big"]
    assert "page.viewed" in loaded.partial  # the rest of the history was never read
    assert loaded.members == {"weekly": NOW}
