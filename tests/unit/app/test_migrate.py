"""Migration from format 1: a changelog partition written by the code before the keyed layout
(tests/fixtures/format1, made by main at fab09ed) converts to format 2, and the engine over
the converted states emits exactly what the old code emitted over its own."""

from __future__ import annotations

import gzip
from pathlib import Path
from typing import Any

import orjson

from segstream.app.migrate import convert_records
from segstream.app.store import FORMAT_KEY, PartitionStore, profile_key
from segstream.engine.replay import ReplaySession
from segstream.errors import InvalidRecord
from segstream.state.layout import FORMAT, load_profile

FIXTURE = Path(__file__).parents[2] / "fixtures" / "format1" / "format1.json.gz"


def _fixture() -> dict[str, Any]:
    data: dict[str, Any] = orjson.loads(gzip.decompress(FIXTURE.read_bytes()))
    return data


def test_a_format_1_changelog_converts_and_the_engine_goes_on_as_before(tmp_path: Path) -> None:
    fixture = _fixture()
    old = [(key.encode(), value.encode()) for key, value in fixture["changelog"]]
    converted = convert_records(old)
    assert converted[-1] == (FORMAT_KEY, str(FORMAT).encode())
    store = PartitionStore(tmp_path / "p0", block_cache_bytes=1 << 20, write_buffer_bytes=1 << 20)
    try:
        store.apply_changelog(converted, 0)
        assert store.stored_format() == FORMAT
        session = ReplaySession()
        for definition in fixture["definitions"]:
            assert session.define(definition) == []
        for key, _ in fixture["changelog"]:
            pid = key[1:]
            head = store.get(profile_key(pid))
            assert head is not None
            state = load_profile(pid, head, store.scan)
            session.store.profiles[pid] = state
            session.engine.due.set(pid, state.next_due)
        due = dict(store.scan_due())
        assert due == {
            pid: s.next_due for pid, s in session.store.profiles.items() if s.next_due is not None
        }
        session.now = fixture["now"]
        later = []
        for line in fixture["lines"][fixture["split"] :]:
            try:
                later.extend(c.to_record(0) for c in session.feed(line))
            except InvalidRecord:
                continue
        assert later == fixture["memberships_after"]
        assert later, "the fixture should have transitions after the migration"
    finally:
        store.close()


def test_a_format_1_store_is_recognised(tmp_path: Path) -> None:
    fixture = _fixture()
    store = PartitionStore(tmp_path / "p0", block_cache_bytes=1 << 20, write_buffer_bytes=1 << 20)
    try:
        assert store.stored_format() is None
        key, value = fixture["changelog"][0]
        store.write([], {key.encode(): value.encode()}, 3)  # as the old worker wrote it
        assert store.stored_format() == 1
    finally:
        store.close()
