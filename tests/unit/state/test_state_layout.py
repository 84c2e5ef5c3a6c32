"""The keyed layout: a profile written as parts and loaded back, whole or change by change."""

from __future__ import annotations

from bisect import insort
from collections.abc import Iterator

from hypothesis import given, settings
from hypothesis import strategies as st

from segstream.schemas.jsontext import dumps, loads_exact
from segstream.state.codec import decode_profile, encode_profile
from segstream.state.layout import (
    commit_journal,
    encode_head,
    from_old_state,
    load_profile,
    profile_of_key,
    profile_records,
    sweep_records,
)
from segstream.state.profile import SEEN_IDS_KEPT, ProfileState

json_scalars = st.none() | st.booleans() | st.integers(-(2**53), 2**53) | st.text(max_size=8)
json_values = st.recursive(
    json_scalars,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=8,
)
TYPES = st.sampled_from(["page.viewed", "cart.added", "a\x00b"])


class DictStore:
    """Keys and values in a dict, scanned in key order (what RocksDB gives)."""

    def __init__(self) -> None:
        self.data: dict[bytes, bytes] = {}
        self.written = 0
        self.read = 0  # entries scanned

    def apply(self, records: list[tuple[bytes, bytes | None]]) -> None:
        for key, value in records:
            self.written += len(key) + len(value or b"")
            if value is None:
                self.data.pop(key, None)
            else:
                self.data[key] = value

    def scan(self, prefix: bytes, start: bytes = b"") -> Iterator[tuple[bytes, bytes]]:
        for key, value in sorted(self.data.items()):
            if key.startswith(prefix) and key >= start:
                self.read += 1
                yield key, value


def _view(state: ProfileState) -> tuple[object, ...]:
    return (
        state.exists,
        state.traits,
        state.next_order,
        {t: [(e.at, e.order, e.id, e.properties) for e in h] for t, h in state.events.items()},
        list(state.seen),
        state.members,
        state.seqs,
        state.timers,
        state.oldest,
    )


def _mutate(state: ProfileState, data: st.DataObject, n: int) -> None:
    for i in range(data.draw(st.integers(0, 6))):
        action = data.draw(st.sampled_from(["event", "event", "timer", "pop", "expire", "trait"]))
        if action == "event":
            state.add_event(
                data.draw(st.integers(0, 100)),
                f"e{n}.{i}",
                data.draw(TYPES),
                data.draw(st.dictionaries(st.text(max_size=5), json_values, max_size=3)),
            )
            state.remember(f"e{n}.{i}")
        elif action == "timer":
            state.schedule(data.draw(st.integers(0, 100)), data.draw(st.sampled_from("xyz")))
        elif action == "pop" and state.timers:
            state.pop_due(state.timers[0][0])
        elif action == "expire":
            state.drop_expired(data.draw(st.integers(0, 100)))
        else:
            state.traits = data.draw(st.dictionaries(st.text(max_size=5), json_values, max_size=3))
            state.members = {"s": data.draw(st.integers(0, 9))}
    if data.draw(st.integers(0, 9)) == 0:
        state.forget(f"d{n}")


@settings(max_examples=60, deadline=None)
@given(st.data(), st.sampled_from(["p1", "", "a\x00b", "é\x00"]))
def test_journalled_changes_rebuild_the_state(data: st.DataObject, pid: str) -> None:
    store = DictStore()
    state = ProfileState(exists=True)
    _mutate(state, data, 0)
    store.apply(profile_records(pid, state, None))
    for n in range(1, data.draw(st.integers(1, 4))):
        loaded = load_profile(pid, store.data[b"p" + pid.encode()], store.scan)
        assert _view(loaded) == _view(state)
        state = loaded
        head = store.data[b"p" + pid.encode()]
        _mutate(state, data, n)
        store.apply(profile_records(pid, state, head))
        assert store.data[b"p" + pid.encode()] == encode_head(state)
        commit_journal(state)
    final = load_profile(pid, store.data[b"p" + pid.encode()], store.scan)
    assert _view(final) == _view(state)
    # Nothing stored belongs to another profile, and every key names its profile.
    assert {profile_of_key(k) for k in store.data} == {pid}


def test_an_unchanged_profile_writes_nothing_and_an_event_writes_only_its_parts() -> None:
    store = DictStore()
    state = ProfileState(exists=True, traits={"plan": "pro"})
    for i in range(2000):
        state.add_event(i, f"e{i}", "page.viewed", {"url": f"/p/{i}"})
        state.remember(f"e{i}")
        insort(state.timers, (i + 10**6, f"x{i}"))
    store.apply(profile_records("p", state, None))
    head = store.data[b"pp"]
    state = load_profile("p", head, store.scan)
    assert profile_records("p", state, head) == []
    assert len(state.seen) == SEEN_IDS_KEPT and state.has_seen("e1999")
    assert not state.has_seen("e999")
    state.history("page.viewed")
    before = store.written
    state.add_event(5000, "new", "page.viewed", {"url": "/p/new"})
    state.remember("new")
    state.schedule(7000, "y")
    store.apply(profile_records("p", state, head))
    written = store.written - before
    assert written < len(encode_head(state)) + 300
    reloaded = load_profile("p", store.data[b"pp"], store.scan)
    assert reloaded.has_seen("new") and not reloaded.has_seen("e1000")
    assert reloaded.history("page.viewed")[-1].id == "new"


def test_a_profile_without_timers_loads_without_a_seek_for_them() -> None:
    """The head's next due says whether timer keys exist: a cold load of a profile with
    none costs one RocksDB iterator less; the last timer's removal is seen the same way."""
    store = DictStore()
    state = ProfileState(exists=True, traits={"plan": "pro"})
    state.remember("e1")
    state.schedule(5_000, "x")
    store.apply(profile_records("p", state, None))
    prefixes: list[bytes] = []

    def scan(prefix: bytes, start: bytes = b"") -> Iterator[tuple[bytes, bytes]]:
        prefixes.append(prefix[:1])
        return store.scan(prefix, start)

    loaded = load_profile("p", store.data[b"pp"], scan)
    assert loaded.timers == [(5_000, "x")] and b"t" in prefixes
    head = store.data[b"pp"]
    assert loaded.pop_due(5_000) == ["x"]
    store.apply(profile_records("p", loaded, head))
    prefixes.clear()
    reloaded = load_profile("p", store.data[b"pp"], scan)
    assert reloaded.timers == [] and reloaded.has_seen("e1")
    assert b"t" not in prefixes and not any(k[:1] == b"t" for k in store.data)


def test_a_version_past_64_bits_is_written_as_a_whole_head() -> None:
    """The version bump rewrites the head's tail in place; past the fast encoder's 64-bit
    range the head is encoded again, so what is stored is still the head of the state."""
    store = DictStore()
    state = ProfileState(exists=True, traits={"plan": "pro"})
    state.version = 2**63 - 2
    store.apply(profile_records("p", state, None))
    for _ in range(3):
        head = store.data[b"pp"]
        loaded = load_profile("p", head, store.scan)
        loaded.remember(f"e{loaded.version}")
        store.apply(profile_records("p", loaded, head))
        assert store.data[b"pp"] == encode_head(loaded)
    assert load_profile("p", store.data[b"pp"], store.scan).version == 2**63 + 2


def test_profile_ids_with_nul_do_not_collide() -> None:
    store = DictStore()
    for pid in ["a", "a\x00", "a\x00b", "a\x00\x00"]:
        state = ProfileState(exists=True)
        state.add_event(1, pid, "t", {})
        state.remember(pid)
        store.apply(profile_records(pid, state, None))
    for pid in ["a", "a\x00", "a\x00b", "a\x00\x00"]:
        loaded = load_profile(pid, store.data[b"p" + pid.encode()], store.scan)
        assert [e.id for e in loaded.history("t")] == [pid]
        assert list(loaded.seen) == [pid]


def test_a_format_1_state_converts_with_its_event_timers_naming_the_event() -> None:
    old = ProfileState(exists=True)
    old.add_event(5, "x", "t", {"v": 1})
    old.add_event(9, "x", "t", {"v": 2})  # an id repeated beyond the dedupe window
    old.remember("x")
    old.schedule(100, "et\x1fx")
    old.schedule(50, "tbirthdate")
    state = from_old_state(decode_profile(encode_profile(old)))
    assert state.timers == [(50, "tbirthdate"), (100, "et\x1f5\x1f0"), (100, "et\x1f9\x1f1")]
    store = DictStore()
    store.apply(profile_records("p", state, None))
    loaded = load_profile("p", store.data[b"pp"], store.scan)
    assert [e.properties for e in loaded.history("t")] == [{"v": 1}, {"v": 2}]
    assert loaded.has_seen("x") and loaded.seen_total == 1


def _same_ops(ref: ProfileState, lazy: ProfileState, data: st.DataObject, n: int) -> None:
    """The same random operations on an in-memory state and a lazily read one; every read
    of the lazy one sees what the in-memory one holds."""
    for i in range(data.draw(st.integers(0, 8))):
        action = data.draw(st.sampled_from(["event", "event", "window", "find", "expire"]))
        if action == "event":
            args = (
                data.draw(st.integers(0, 100)),
                f"e{n}.{i}",
                data.draw(TYPES),
                {"v": data.draw(st.integers(0, 9))},
            )
            for state in (ref, lazy):
                state.add_event(*args)
                state.remember(args[1])
        elif action == "window":
            type_, low = data.draw(TYPES), data.draw(st.integers(-1, 100))
            got = [(e.at, e.order, e.id) for e in lazy.history_after(type_, low) if e.at > low]
            assert got == [(e.at, e.order, e.id) for e in ref.history(type_) if e.at > low]
        elif action == "find":
            type_ = data.draw(TYPES)
            kept = ref.history(type_)
            if kept and data.draw(st.booleans()):
                e = data.draw(st.sampled_from(kept))
                key = (type_, e.at, e.order)
            else:
                key = (type_, data.draw(st.integers(0, 100)), data.draw(st.integers(0, 40)))
            assert ref.find_event(*key) == lazy.find_event(*key)
        else:
            horizon = data.draw(st.integers(0, 100))
            ref.drop_expired(horizon)
            lazy.drop_expired(horizon)
        assert lazy.oldest == ref.oldest and lazy.has_history == ref.has_history
    if data.draw(st.integers(0, 12)) == 0:
        ref.forget(f"d{n}")
        lazy.forget(f"d{n}")


@settings(max_examples=150, deadline=None)
@given(st.data())
def test_reads_from_a_window_start_see_what_a_whole_history_holds(data: st.DataObject) -> None:
    store = DictStore()
    ref = ProfileState(exists=True)
    store.apply(profile_records("p", ref, None))
    lazy = load_profile("p", store.data[b"pp"], store.scan)
    for n in range(data.draw(st.integers(1, 5))):
        head = store.data[b"pp"]
        _same_ops(ref, lazy, data, n)
        store.apply(profile_records("p", lazy, head))
        commit_journal(lazy)
        if data.draw(st.booleans()):  # a cache miss; else the cached state goes on
            lazy = load_profile("p", store.data[b"pp"], store.scan)
    final = load_profile("p", store.data[b"pp"], store.scan)
    assert _view(final) == _view(ref)


def test_a_cache_miss_reads_only_the_window_of_a_20000_event_profile() -> None:
    day = 86_400_000_000
    now = 365 * day
    store = DictStore()
    state = ProfileState(exists=True)
    for i in range(20_000):
        at = i * (365 * day // 20_000)
        state.add_event(at, f"e{i}", "page.viewed", {"url": f"/p/{i}"})
    store.apply(profile_records("p", state, None))
    in_week = sum(1 for e in state.history("page.viewed") if e.at > now - 7 * day)
    store.read = 0
    loaded = load_profile("p", store.data[b"pp"], store.scan, for_update=False)
    week = [e for e in loaded.history_after("page.viewed", now - 7 * day) if e.at > now - 7 * day]
    assert len(week) == in_week == store.read  # the window's entries, nothing before it
    # Expiry reads the expired events and the first one kept (each scan also steps on the
    # key where it stops); a timer's event is one read.
    store.read = 0
    loaded.drop_expired(10 * day)
    expired = sum(1 for e in state.history("page.viewed") if e.at <= 10 * day)
    assert store.read == expired + 2
    store.read = 0
    target = state.history("page.viewed")[5000]
    assert loaded.find_event("page.viewed", target.at, target.order) == target
    assert store.read == 1


def test_a_deletion_writes_o1_records_and_the_sweep_removes_the_old_generation() -> None:
    store = DictStore()
    state = ProfileState(exists=True, traits={"plan": "pro"})
    for i in range(300):
        state.add_event(i, f"e{i}", "page.viewed" if i % 2 else "a\x00b", {"n": i})
        state.remember(f"e{i}")
        state.schedule(1000 + i, f"x{i}")
    store.apply(profile_records("p\x00", state, None))
    head = store.data[b"pp\x00"]
    state = load_profile("p\x00", head, store.scan)
    state.add_event(400, "late", "page.viewed", {})  # then deleted in the same transaction
    state.forget("d1")
    records = profile_records("p\x00", state, head)
    assert len(records) <= 3  # head, sweep mark, the deletion id's dedupe slot
    store.apply(records)
    commit_journal(state)
    reloaded = load_profile("p\x00", store.data[b"pp\x00"], store.scan)
    assert reloaded.events == {} and reloaded.timers == [] and not reloaded.exists
    assert list(reloaded.seen) == ["d1"]
    # The sweep, a few keys at a time, until no old key is left; another profile's stay.
    other = ProfileState(exists=True)
    other.add_event(1, "o", "page.viewed", {})
    store.apply(profile_records("p", other, None))
    kept = {k: v for k, v in store.data.items() if profile_of_key(k) == "p"}
    for _ in range(200):
        swept, finished = sweep_records(store.scan, (), 25)
        assert len(swept) <= 26  # the keys and the mark
        store.apply(swept)
        if finished:
            break
    assert finished == ["p\x00"] and sweep_records(store.scan, ()) == ([], [])
    left = {k[:1] for k in store.data if profile_of_key(k) == "p\x00"}
    assert left == {b"p", b"d"}  # the head and the dedupe ring
    assert {k: v for k, v in store.data.items() if profile_of_key(k) == "p"} == kept
    # Back in generation 1: new entries, read back alone.
    again = load_profile("p\x00", store.data[b"pp\x00"], store.scan)
    again.add_event(500, "n1", "page.viewed", {})
    again.schedule(2000, "y")
    store.apply(profile_records("p\x00", again, store.data[b"pp\x00"]))
    final = load_profile("p\x00", store.data[b"pp\x00"], store.scan)
    assert [e.id for e in final.history("page.viewed")] == ["n1"] and final.timers == [(2000, "y")]
    assert final.generation == 1


def test_a_head_written_before_generations_is_generation_0() -> None:
    store = DictStore()
    state = ProfileState(exists=True)
    state.add_event(5, "x", "t", {"v": 1})
    state.remember("x")
    state.schedule(9, "y")
    store.apply(profile_records("p", state, None))
    head = loads_exact(store.data[b"pp"])
    assert len(head) == 12 and head[11] == 0
    store.data[b"pp"] = dumps(head[:11])  # as main's format 2 wrote it
    loaded = load_profile("p", store.data[b"pp"], store.scan)
    assert loaded.generation == 0 and loaded.timers == [(9, "y")]
    assert [e.id for e in loaded.history("t")] == ["x"]
    loaded.forget("d")
    store.apply(profile_records("p", loaded, store.data[b"pp"]))
    assert load_profile("p", store.data[b"pp"], store.scan).events == {}
