"""The engine's replay equals the naive reference, transition for transition (SPEC §5-§8)."""

from __future__ import annotations

import copy

import pytest
from hypothesis import given, note

from reference.naive import naive_replay
from reference.records import (
    activity,
    definition,
    deleted,
    segment_deleted,
    updated,
    upserted,
)
from segstream.engine.replay import run_replay  # an ImportError until the engine exists
from segstream.timefmt import DAY, SECOND, WEEK, format_instant, parse_datetime

from .budget import examples
from .invariants import by_pair, check_invariants
from .strategies import T0, Scenario, scenarios


def assert_same_replay(scenario: Scenario) -> None:
    """Run both implementations on one scenario and compare everything comparable."""
    until, retention = scenario.until, scenario.history_retention
    expected = naive_replay(
        copy.deepcopy(scenario.segments), scenario.lines, until=until, history_retention=retention
    )
    actual = run_replay(
        copy.deepcopy(scenario.segments), scenario.lines, until=until, history_retention=retention
    )
    check_invariants(actual.memberships)
    assert actual.rejected_segments == expected.rejected_segments
    assert actual.rejected_lines == expected.rejected_lines
    actual_pairs, expected_pairs = by_pair(actual.memberships), by_pair(expected.memberships)
    differing = {
        pair: {"engine": actual_pairs.get(pair), "reference": expected_pairs.get(pair)}
        for pair in sorted(set(actual_pairs) | set(expected_pairs))
        if actual_pairs.get(pair) != expected_pairs.get(pair)
    }
    assert not differing, (differing, actual.problems)


@examples(80)
@given(scenarios())
def test_engine_matches_reference(scenario: Scenario) -> None:
    note(scenario.describe())
    assert_same_replay(scenario)


@examples(60)
@given(scenarios(history_retention=3 * DAY))
def test_engine_matches_reference_with_a_short_retention(scenario: Scenario) -> None:
    note(scenario.describe())
    assert_same_replay(scenario)


def _dedupe_window() -> Scenario:
    """1,001 ids: the first is forgotten (a new event), the last is still a duplicate."""
    views = [
        activity(f"v{i}", "p1", format_instant(T0 + i * SECOND), "page.viewed") for i in range(1001)
    ]
    many = definition("many", {"event": "page.viewed", "count": {"op": "gte", "value": 1002}})
    more = definition("more", {"event": "page.viewed", "count": {"op": "gte", "value": 1003}})
    tail = [
        activity("v1000", "p1", format_instant(T0 + 2000 * SECOND), "page.viewed"),
        activity("v0", "p1", format_instant(T0 + 2001 * SECOND), "page.viewed"),
        activity("v1000", "p1", format_instant(T0 + 2002 * SECOND), "page.viewed"),
    ]
    return Scenario([many, more], views + tail, None, 365 * DAY)


def _birthdays_over_years() -> Scenario:
    """Birthdays of 29 February, 28 February and 1 March through leap and common years."""
    born = {"p1": "2000-02-29", "p2": "2000-02-28", "p3": "2000-03-01", "p4": "1999-12-31"}
    lines = [
        updated(f"u{pid}", pid, "2026-02-20T08:00:00Z", {"birthdate": date})
        for pid, date in born.items()
    ]
    segments = [
        definition("adult26", {"trait": "age", "op": "gte", "value": 26}),
        definition("exactly27", {"trait": "age", "op": "eq", "value": 27}),
        definition("twenties", {"trait": "age", "op": "between", "value": [20, 27]}),
    ]
    until = parse_datetime("2029-03-02T00:00:00Z")
    return Scenario(segments, lines, until, 365 * DAY)


def _long_windows_and_retention() -> Scenario:
    """Weekly windows, retention edges and late events across a month."""
    segments = [
        definition("weekly", {"event": "order.purchased", "within": "1w"}),
        definition("ever", {"event": "order.purchased", "sum": "amount", "op": "gte", "value": 10}),
        definition("dated", {"trait": "custom.signup", "op": "more_than_ago", "value": "2w"}),
    ]
    lines = [
        activity("o1", "p1", "2026-02-01T00:00:00Z", "order.purchased", {"amount": 6}),
        updated("u1", "p1", "2026-02-02T00:00:00Z", {"custom": {"signup": "2026-02-03"}}),
        activity("o2", "p1", "2026-02-06T00:00:00Z", "order.purchased", {"amount": 6}),
        activity("o3", "p1", "2026-02-01T12:00:00Z", "order.purchased", {"amount": 1}),
        deleted("d1", "p2", "2026-02-20T00:00:00Z"),
        activity("o4", "p2", "2026-02-20T00:00:00Z", "order.purchased", {"amount": 20}),
    ]
    return Scenario(segments, lines, parse_datetime("2026-03-20T00:00:00Z"), 3 * WEEK)


def _edits_move_due_instants() -> Scenario:
    """Edits and deletions while timers are pending; dependents of timed segments; re-creation."""
    hour = definition("recent", {"event": "page.viewed", "within": "1h"})
    longer = definition("recent", {"event": "page.viewed", "within": "3h"})
    lines = [
        activity("v1", "p1", "2026-02-27T10:00:00Z", "page.viewed"),
        activity("v2", "p2", "2026-02-27T10:10:00Z", "page.viewed"),
        upserted("2026-02-27T10:30:00Z", longer),
        upserted("2026-02-27T10:40:00Z", definition("not-recent", {"not": {"segment": "recent"}})),
        deleted("d1", "p2", "2026-02-27T11:00:00Z"),
        activity("v2", "p2", "2026-02-27T11:05:00Z", "page.viewed"),
        upserted("2026-02-27T11:10:00Z", hour),
        segment_deleted("2026-02-27T11:20:00Z", "recent"),
        upserted("2026-02-27T11:30:00Z", longer),
        updated("u1", "p3", "2026-02-27T16:00:00Z", {}),
    ]
    return Scenario([hour], lines, parse_datetime("2026-02-28T00:00:00Z"), 365 * DAY)


@pytest.mark.parametrize(
    "scenario",
    [
        _dedupe_window(),
        _birthdays_over_years(),
        _long_windows_and_retention(),
        _edits_move_due_instants(),
    ],
    ids=["dedupe-window", "birthdays-over-years", "long-windows-and-retention", "edits-and-timers"],
)
def test_engine_matches_reference_on_fixed_scenarios(scenario: Scenario) -> None:
    assert_same_replay(scenario)
