"""Time semantics: the engine's replay equals the naive reference on timer-heavy streams.

SPEC §5 (time) and §5.1 (the event clock): duration windows, retention, `within_last` /
`more_than_ago` on dates and date-times (traits and `where`), derived `age` across birthdays,
segment references on timed segments, edits and deletions while timers are pending, `until`.
Every scenario is compared exactly as in test_engine_matches_reference.py; the share of
timer-caused transitions is reported with `event()` and measured in
test_timer_share_of_transitions (run with `-s` to see the numbers).
"""

from __future__ import annotations

import copy
from collections import Counter
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, event, given, note, settings, target

from reference.records import activity, definition, deleted, segment_deleted, updated, upserted
from segstream.engine.replay import run_replay
from segstream.timefmt import DAY, HOUR, SECOND, format_instant, parse_datetime

from .budget import LONG_RUN, examples
from .strategies import T0, Scenario
from .strategies_time import THEMES, timed_scenarios
from .test_engine_matches_reference import assert_same_replay

# Examples per theme in a default run (x25 with HYPOTHESIS_PROFILE=long).
BUDGET = {
    "windows": 35,
    "dates": 30,
    "birthdays": 12,
    "references": 35,
    "crowd": 20,
    "mixed": 35,
    "v12": 60,
}
SHARE_SAMPLE = 25  # scenarios per theme in the measurement (x8 in a long run)
NOT_CAUSES = ("scenarios", "transitions")
MINIMUM_SHARE = 0.30


def timer_share(memberships: list[dict[str, Any]]) -> tuple[int, int]:
    """(timer-caused transitions, all transitions)."""
    timers = sum(1 for m in memberships if m["cause"]["kind"] == "timer")
    return timers, len(memberships)


def _check(scenario: Scenario, theme: str) -> None:
    note(scenario.describe())
    assert_same_replay(scenario)
    # Only for statistics and targeting: the engine's output equals the reference's here.
    result = run_replay(
        copy.deepcopy(scenario.segments),
        scenario.lines,
        until=scenario.until,
        history_retention=scenario.history_retention,
    )
    timers, total = timer_share(result.memberships)
    share = timers / total if total else 0.0
    event(f"{theme}: timer share {min(int(share * 10), 9) * 10}%+")
    target(float(timers), label="timer transitions")


def _theme_test(theme: str) -> Any:
    @examples(BUDGET[theme])
    @given(timed_scenarios(theme))
    def test(scenario: Scenario) -> None:
        _check(scenario, theme)

    test.__name__ = f"test_time_{theme}_matches_reference"
    test.__doc__ = f"Engine == reference on timer-heavy `{theme}` scenarios."
    return test


test_time_windows_matches_reference = _theme_test("windows")
test_time_dates_matches_reference = _theme_test("dates")
test_time_birthdays_matches_reference = _theme_test("birthdays")
test_time_references_matches_reference = _theme_test("references")
test_time_crowd_matches_reference = _theme_test("crowd")
test_time_mixed_matches_reference = _theme_test("mixed")
test_time_v12_matches_reference = _theme_test("v12")


def _measure(theme: str, sample: int) -> Counter[str]:
    """Transitions by cause over a fixed (derandomized) sample of one theme."""
    counts: Counter[str] = Counter()

    @settings(
        max_examples=sample,
        derandomize=True,
        database=None,
        phases=[Phase.generate],
        deadline=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(timed_scenarios(theme))
    def measure(scenario: Scenario) -> None:
        result = run_replay(
            copy.deepcopy(scenario.segments),
            scenario.lines,
            until=scenario.until,
            history_retention=scenario.history_retention,
        )
        counts["scenarios"] += 1
        for membership in result.memberships:
            counts[membership["cause"]["kind"]] += 1
            counts["transitions"] += 1

    measure()
    return counts


def test_timer_share_of_transitions() -> None:
    """Over a fixed sample of every theme, at least 30% of all transitions are timer-caused.

    Run with `-s` to see the shares per theme (the engine's output; the tests above show it
    equals the reference's).
    """
    sample = SHARE_SAMPLE * (8 if LONG_RUN else 1)
    total: Counter[str] = Counter()
    lines = []
    for theme in THEMES:
        counts = _measure(theme, sample)
        total += counts
        share = counts["timer"] / max(counts["transitions"], 1)
        causes = ", ".join(
            f"{kind}={n}" for kind, n in sorted(counts.items()) if kind not in NOT_CAUSES
        )
        lines.append(
            f"{theme:>10}: {counts['scenarios']} scenarios, {counts['transitions']} transitions, "
            f"{share:.0%} by timer ({causes})"
        )
    share = total["timer"] / max(total["transitions"], 1)
    lines.append(
        f"{'all':>10}: {total['scenarios']} scenarios, {total['transitions']} transitions, "
        f"{share:.0%} by timer"
    )
    print("\ntimer-caused share of transitions\n" + "\n".join(lines))
    assert share >= MINIMUM_SHARE, lines


# ---- fixed scenarios: one per time rule, each with records on due instants ----------------


def _leap_birthdays_sparse() -> Scenario:
    """29 February birthdays over eight years, records years apart, one on a birthday."""
    born = {"p1": "2000-02-29", "p2": "1996-02-29", "p3": "2004-02-29", "p4": "2000-03-01"}
    lines = [
        updated(f"b{pid}", pid, "2026-02-20T08:00:00Z", {"birthdate": date})
        for pid, date in born.items()
    ]
    lines += [
        activity("v1", "p1", "2027-03-01T00:00:00Z", "page.viewed"),  # on p1's 27th birthday
        activity("v2", "p2", "2028-02-29T00:00:00Z", "page.viewed"),  # on a real 29 February
        updated("a1", "p3", "2029-06-01T00:00:00Z", {"age": 40}),  # ignored: derived age wins
        updated("a2", "p3", "2030-06-01T00:00:00Z", {"birthdate": None}),  # now age 40
        activity("v3", "p4", "2031-02-28T23:59:59.999999Z", "page.viewed"),
    ]
    segments = [
        definition("eq28", {"trait": "age", "op": "eq", "value": 28}),
        definition("mid", {"trait": "age", "op": "between", "value": [27, 29]}),
        definition("over30", {"trait": "age", "op": "gte", "value": 30}),
        definition("recent", {"event": "page.viewed", "within": "1d"}),
    ]
    return Scenario(segments, lines, parse_datetime("2033-03-01T00:00:00Z"), 5 * DAY)


def _crowd_due_together() -> Scenario:
    """Eight profiles whose windows end at the same instant; a record exactly then."""
    at = format_instant(T0)
    lines = [activity(f"v{i}", f"p{i}", at, "page.viewed") for i in range(8)]
    lines += [
        updated("u1", "p9", format_instant(T0 + HOUR), {"custom": {"signup": at}}),
        activity("v9", "p0", format_instant(T0 + HOUR), "page.viewed"),
        activity("v10", "p1", format_instant(T0 + HOUR - 1), "page.viewed"),
    ]
    segments = [
        definition("hour", {"event": "page.viewed", "within": "1h"}),
        definition("idle", {"not": {"segment": "hour"}}),
        definition("fresh", {"trait": "custom.signup", "op": "within_last", "value": "1h"}),
    ]
    return Scenario(segments, lines, T0 + HOUR, 2 * DAY)


def _retention_edges() -> Scenario:
    """Events leaving a 2-day retention, a late event, and records on the retention edge."""
    lines = [
        activity("o1", "p1", format_instant(T0), "order.purchased", {"amount": 6}),
        activity("o2", "p1", format_instant(T0 + DAY), "order.purchased", {"amount": 5}),
        activity("o3", "p1", format_instant(T0 + 2 * DAY), "order.purchased", {"amount": 1}),
        activity("o4", "p1", format_instant(T0 + SECOND), "order.purchased", {"amount": 9}),
        activity("o5", "p2", format_instant(T0 + 2 * DAY + SECOND), "order.purchased"),
    ]
    segments = [
        definition("twice", {"event": "order.purchased", "count": {"op": "gte", "value": 2}}),
        definition("big", {"event": "order.purchased", "sum": "amount", "op": "gte", "value": 10}),
        definition("avg", {"event": "order.purchased", "avg": "amount", "op": "lt", "value": 5}),
    ]
    return Scenario(segments, lines, T0 + 5 * DAY, 2 * DAY)


def _date_values_around_the_clock() -> Scenario:
    """Dates vs date-times before, at and after the clock, in traits and in `where`."""
    lines = [
        updated("u1", "p1", "2026-02-27T10:00:00Z", {"custom": {"signup": "2026-02-28"}}),
        updated("u2", "p2", "2026-02-27T10:00:00Z", {"custom": {"signup": "2026-02-27"}}),
        updated("u3", "p3", "2026-02-27T10:00:00Z", {"custom": {"signup": "2026-02-27T10:00Z"}}),
        updated(
            "u4", "p4", "2026-02-27T10:00:00Z", {"custom": {"signup": "2026-02-27T12:00:00+02:00"}}
        ),
        activity("v1", "p1", "2026-02-27T11:00:00Z", "page.viewed", {"ts": "2026-02-28"}),
        activity("v2", "p2", "2026-02-27T11:00:00Z", "page.viewed", {"ts": "2026-02-26T11:00:00Z"}),
        updated("u5", "p3", "2026-02-28T00:00:00Z", {"custom": {"signup": ["2026-03-01", "x"]}}),
    ]
    segments = [
        definition("new", {"trait": "custom.signup", "op": "within_last", "value": "1d"}),
        definition("old", {"trait": "custom.signup", "op": "more_than_ago", "value": "12h"}),
        definition(
            "seen",
            {
                "event": "page.viewed",
                "where": [{"property": "ts", "op": "within_last", "value": "1d"}],
            },
        ),
        definition(
            "stale",
            {
                "event": "page.viewed",
                "where": [{"property": "ts", "op": "more_than_ago", "value": "1d"}],
                "within": "2d",
            },
        ),
    ]
    return Scenario(segments, lines, parse_datetime("2026-03-05T00:00:00Z"), 3 * DAY)


def _changes_while_pending() -> Scenario:
    """Edits, deletions and re-creation of a timed segment and its dependents; a deleted
    profile with pending timers comes back with the same event id."""
    hour = definition("base", {"event": "page.viewed", "within": "1h"})
    longer = definition("base", {"event": "page.viewed", "within": "3h"})
    lines = [
        activity("v1", "p1", "2026-02-27T10:00:00Z", "page.viewed"),
        activity("v2", "p2", "2026-02-27T10:30:00Z", "page.viewed"),
        upserted("2026-02-27T10:45:00Z", longer),
        deleted("d1", "p1", "2026-02-27T11:00:00Z"),
        activity("v1", "p1", "2026-02-27T11:15:00Z", "page.viewed"),
        upserted("2026-02-27T12:15:00Z", hour),  # p1's v1 is 1 h old: exactly out
        segment_deleted("2026-02-27T12:20:00Z", "base"),
        upserted("2026-02-27T12:25:00Z", longer),
        upserted("2026-02-27T12:26:00Z", definition("dep", {"segment": "base"})),
    ]
    segments = [
        hour,
        definition("dep", {"not": {"segment": "base"}}),
        definition("dep2", {"segment": "dep"}),
    ]
    return Scenario(segments, lines, parse_datetime("2026-02-27T14:15:00Z"), 2 * DAY)


@pytest.mark.parametrize(
    "scenario",
    [
        _leap_birthdays_sparse(),
        _crowd_due_together(),
        _retention_edges(),
        _date_values_around_the_clock(),
        _changes_while_pending(),
    ],
    ids=["leap-birthdays", "crowd-due-together", "retention-edges", "dates", "changes-pending"],
)
def test_time_fixed_scenarios(scenario: Scenario) -> None:
    assert_same_replay(scenario)
