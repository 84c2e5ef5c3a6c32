"""The format-1 encoding of ProfileState (the whole state as one canonical JSON array), which
stores and changelogs held before the keyed layout (`segstream.state.layout`): read by
migrations."""

from __future__ import annotations

from collections import deque

from segstream.schemas.jsontext import dumps, loads_exact
from segstream.state.profile import SEEN_IDS_KEPT, ProfileState, StoredEvent

__all__ = ["decode_profile", "encode_profile"]

_FORMAT = 1


def encode_profile(state: ProfileState) -> bytes:
    """Serialise a profile's state to bytes."""
    events = [
        [e.at, e.order, e.id, e.type, e.properties]
        for history in state.loaded.values()
        for e in history
    ]
    return dumps(
        [
            _FORMAT,
            int(state.exists),
            state.traits,
            events,
            state.next_order,
            list(state.seen),
            state.members,
            state.seqs,
            state.timers,
        ]
    )


def decode_profile(data: bytes) -> ProfileState:
    """Rebuild a profile's state from `encode_profile` bytes."""
    fmt, exists, traits, events, next_order, seen, members, seqs, timers = loads_exact(data)
    if fmt != _FORMAT:
        raise ValueError(f"unknown profile state format {fmt}")
    by_type: dict[str, list[StoredEvent]] = {}
    for at, order, event_id, type_, properties in events:
        by_type.setdefault(type_, []).append(StoredEvent(at, order, event_id, type_, properties))
    seen_ids: deque[str] = deque(seen, maxlen=SEEN_IDS_KEPT)
    timer_list: list[tuple[int, str]] = [(due, key) for due, key in timers]
    state = ProfileState(
        exists=bool(exists),
        traits=traits,
        loaded=by_type,
        oldest={t: h[0].at for t, h in by_type.items()},
        next_order=next_order,
        seen=seen_ids,
        seen_set=set(seen_ids),
        seen_total=len(seen_ids),
        members=members,
        seqs=seqs,
        timers=timer_list,
    )
    # Histories are written per type in event order, so they decode in order.
    return state
