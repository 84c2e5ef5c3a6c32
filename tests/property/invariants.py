"""Checks every replay output must pass, whoever produced it (SPEC §5, §6)."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from segstream.timefmt import parse_datetime

MEMBERSHIP_KEYS = {
    "id",
    "type",
    "profile_id",
    "segment_id",
    "segment_version",
    "seq",
    "at",
    "emitted_at",
    "cause",
}
CAUSE_KINDS = {
    "event",
    "timer",
    "segment_created",
    "segment_updated",
    "segment_deleted",
    "profile_deleted",
}


def by_pair(memberships: list[dict[str, Any]]) -> dict[tuple[str, str], list[tuple[Any, ...]]]:
    """Per (profile, segment): its transitions in emission order, in comparable form."""
    pairs: dict[tuple[str, str], list[tuple[Any, ...]]] = defaultdict(list)
    for event in memberships:
        cause = event["cause"]
        pairs[event["profile_id"], event["segment_id"]].append(
            (
                event["type"],
                event["at"],
                cause["kind"],
                cause.get("event_id"),
                cause.get("segment_id"),
                event["segment_version"],
                event["seq"],
            )
        )
    return dict(pairs)


def check_invariants(memberships: list[dict[str, Any]]) -> None:
    """Alternation from `entered`, seq 1..n, non-decreasing `at`, unique ids, cause shapes."""
    ids = [event["id"] for event in memberships]
    assert len(ids) == len(set(ids)), "membership ids repeat"
    for event in memberships:
        assert set(event) == MEMBERSHIP_KEYS, event
        cause = event["cause"]
        assert cause["kind"] in CAUSE_KINDS, event
        assert ("event_id" in cause) == (cause["kind"] in ("event", "profile_deleted")), event
        if "segment_id" in cause:
            assert cause["kind"] == "segment_updated", event
            assert cause["segment_id"] != event["segment_id"], event
        assert event["at"].endswith("Z"), event
        parse_datetime(event["at"])
        parse_datetime(event["emitted_at"])
    for pair, steps in by_pair(memberships).items():
        kinds = [step[0] for step in steps]
        expected = ["segment.entered", "segment.left"] * len(kinds)
        assert kinds == expected[: len(kinds)], (pair, kinds)
        assert [step[6] for step in steps] == list(range(1, len(steps) + 1)), pair
        instants = [parse_datetime(step[1]) for step in steps]
        assert instants == sorted(instants), (pair, instants)
