"""ProfileState, its format-1 codec (read by migrations) and the due-time index."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from segstream.state import DueIndex, ProfileState, decode_profile, encode_profile
from segstream.state.profile import SEEN_IDS_KEPT

json_scalars = st.none() | st.booleans() | st.integers(-(2**53), 2**53) | st.text(max_size=8)
json_values = st.recursive(
    json_scalars,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=8,
)


def _state(data: st.DataObject) -> ProfileState:
    state = ProfileState(exists=data.draw(st.booleans()))
    state.traits = data.draw(st.dictionaries(st.text(max_size=5), json_values, max_size=4))
    for i in range(data.draw(st.integers(0, 6))):
        state.add_event(
            data.draw(st.integers(0, 10**12)),
            f"e{i}",
            data.draw(st.sampled_from(["page.viewed", "cart.added"])),
            data.draw(st.dictionaries(st.text(max_size=5), json_values, max_size=3)),
        )
        state.remember(f"e{i}")
    state.members = {"a": 1, "b": 2}
    state.seqs = {"a": 3, "b": 1, "gone": 2}
    for due in data.draw(st.lists(st.integers(0, 10**12), max_size=5)):
        state.schedule(due, "tage")
    return state


@settings(max_examples=50, deadline=None)
@given(st.data())
def test_codec_round_trip(data: st.DataObject) -> None:
    state = _state(data)
    decoded = decode_profile(encode_profile(state))
    assert decoded == state
    assert encode_profile(decoded) == encode_profile(state)


def test_history_is_kept_in_event_order() -> None:
    state = ProfileState()
    for at, eid in [(5, "a"), (3, "b"), (5, "c"), (1, "d")]:
        state.add_event(at, eid, "t", {})
    assert [e.id for e in state.events["t"]] == ["d", "b", "a", "c"]
    state.drop_expired(3)
    assert [e.id for e in state.events["t"]] == ["a", "c"]


def test_seen_ids_keep_the_last_thousand() -> None:
    state = ProfileState()
    for i in range(SEEN_IDS_KEPT + 5):
        state.remember(f"e{i}")
    assert not state.has_seen("e4")
    assert state.has_seen("e5")
    assert state.has_seen(f"e{SEEN_IDS_KEPT + 4}")


def test_forget_keeps_counters_and_only_the_deletion_id() -> None:
    state = ProfileState(exists=True, traits={"a": 1}, seqs={"s": 2}, members={"s": 1})
    state.remember("e1")
    state.forget("d1")
    assert not state.exists and state.traits == {} and state.members == {}
    assert state.seqs == {"s": 2}
    assert list(state.seen) == ["d1"]


def test_timers_are_idempotent_and_popped_by_instant() -> None:
    state = ProfileState()
    state.schedule(10, "x")
    state.schedule(10, "x")
    state.schedule(5, "y")
    state.schedule(10, "z")
    assert state.next_due == 5
    assert state.pop_due(5) == ["y"]
    assert state.pop_due(10) == ["x", "z"]
    assert state.next_due is None


def test_due_index_orders_profiles_and_forgets_stale_entries() -> None:
    index = DueIndex()
    index.set("a", 30)
    index.set("b", 10)
    index.set("c", 20)
    index.set("b", 40)  # moved later
    index.set("c", None)  # nothing pending
    assert index.pop_until(25) is None
    assert index.pop_until(35) == (30, "a")
    assert index.pop_until(100) == (40, "b")
    assert len(index) == 0
