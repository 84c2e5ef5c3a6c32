"""The naive reference itself keeps the output invariants on random streams."""

from __future__ import annotations

import copy

from hypothesis import given, note

from reference.naive import naive_replay
from segstream.timefmt import DAY

from .budget import examples
from .invariants import check_invariants
from .strategies import Scenario, scenarios


@examples(50)
@given(scenarios(history_retention=3 * DAY))
def test_reference_output_keeps_the_invariants(scenario: Scenario) -> None:
    note(scenario.describe())
    result = naive_replay(
        copy.deepcopy(scenario.segments),
        scenario.lines,
        until=scenario.until,
        history_retention=scenario.history_retention,
    )
    check_invariants(result.memberships)
    assert len(result.problems) == len(result.rejected_lines) + len(result.rejected_segments)
