"""The keyed layout: a profile written as parts and loaded back, whole or change by change."""

from __future__ import annotations

from bisect import insort

from hypothesis import given, settings
from hypothesis import strategies as st

from segstream.state.codec import decode_profile, encode_profile
from segstream.state.layout import (
    commit_journal,
    encode_head,
    from_old_state,
    load_profile,
    profile_of_key,
    profile_records,
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

    def apply(self, records: list[tuple[bytes, bytes | None]]) -> None:
        for key, value in records:
            self.written += len(key) + len(value or b"")
            if value is None:
                self.data.pop(key, None)
            else:
                self.data[key] = value

    def scan(self, prefix: bytes) -> list[tuple[bytes, bytes]]:
        return sorted((k, v) for k, v in self.data.items() if k.startswith(prefix))


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
