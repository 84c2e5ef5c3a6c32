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
from segstream.state.codec import decode_profile, encode_profile
from segstream.state.layout import FORMAT, load_profile, profile_of_key, sweep_records

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


def test_a_catch_up_pass_writes_changed_profiles_in_a_new_generation(tmp_path: Path) -> None:
    fixture = _fixture()
    old = [(key.encode(), value.encode()) for key, value in fixture["changelog"]]
    store = PartitionStore(tmp_path / "p0", block_cache_bytes=1 << 20, write_buffer_bytes=1 << 20)
    try:
        store.apply_changelog(convert_records(old), 0)
        pid = next(k[1:].decode() for k, v in old if decode_profile(v).events)
        state = decode_profile(dict(old)[b"p" + pid.encode()])
        first_type = sorted(state.events)[0]
        state.drop_expired(state.events[first_type][0].at)  # the old workers expired one
        state.traits = {"later": 1}
        tail = [(b"p" + pid.encode(), encode_profile(state))]
        store.apply_changelog(convert_records(tail, generation=1), 1)
        loaded = load_profile(pid, store.get(profile_key(pid)) or b"", store.scan)
        assert loaded.generation == 1 and loaded.traits == {"later": 1}
        assert loaded.events == state.events
        # What the first pass wrote for it is swept by the worker's transactions.
        swept, finished = sweep_records(store.scan, (), 10**6)
        assert finished == [pid] and swept
        store.apply_changelog(swept, 2)
        again = load_profile(pid, store.get(profile_key(pid)) or b"", store.scan)
        assert again.events == state.events and again.timers == loaded.timers
        assert not [k for k, _ in store.scan(b"e") if profile_of_key(k) == pid and b"\xff" not in k]
    finally:
        store.close()
