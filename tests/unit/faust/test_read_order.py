"""`ReadOrder` names the reads of a partition that skip offsets or go back."""

from __future__ import annotations

import logging
from typing import NamedTuple

import pytest

from segstream.faust_runtime.read_order import ReadOrder


class TP(NamedTuple):
    topic: str
    partition: int


P, Q, ACTIVITY = TP("p", 0), TP("q", 0), TP("activity", 1)


def test_consecutive_reads_and_one_marker_are_in_order() -> None:
    order = ReadOrder()
    assert [order.read(P, o, 5) for o in (5, 6, 8, 9)] == [None] * 4


def test_a_jump_and_the_step_back_to_it_are_logged(caplog: pytest.LogCaptureFixture) -> None:
    order = ReadOrder()
    with caplog.at_level(logging.WARNING, "segstream.faust"):
        assert order.read(ACTIVITY, 10, 10) is None
        assert order.read(ACTIVITY, 20, 10) == "skipped"
        assert order.read(ACTIVITY, 11, 10) == "again"
    assert [r.getMessage() for r in caplog.records] == [
        "activity[1]: read offset 20 after 10 (9 offsets not delivered to the agent)",
        "activity[1]: read offset 11 again after 20",
    ]


def test_the_first_read_after_an_assignment_is_checked_against_the_committed_offset() -> None:
    order = ReadOrder()
    assert order.read(P, 40, 30) == "skipped"
    order.clear()
    assert order.read(P, 31, 30) is None  # a marker at 30
    assert order.read(Q, 7, None) is None  # nothing committed: no known start
