"""`segments list` rows: a segment whose latest record has no effect is shown as rejected."""

from __future__ import annotations

from segstream.app.segment_writer import SegmentState
from segstream.app.status_view import segment_rows
from segstream.cli.segments import _table
from segstream.schemas.jsontext import dumps

CARTS = {"event": "cart.added"}


def test_a_rejected_latest_version_is_shown_with_its_reason_and_the_last_good_one_stays() -> None:
    state = SegmentState()
    good = {"id": "s", "version": 1, "name": "S", "condition": CARTS}
    bad = {
        **good,
        "version": 2,
        "condition": {"trait": "t", "op": "within_last", "value": "300000000d"},
    }
    state.read(dumps(good), b"s")
    state.read(dumps(bad), b"s")
    state.read(dumps({"id": "other", "version": 1, "name": "O"}), b"other")  # no condition
    state.read(b"not json", b"x")
    assert state.definitions["s"]["version"] == 1  # what workers keep
    assert state.last_versions["s"] == 2  # never reused
    status = {0: {"segments": {"s": {"version": 1, "ready": True, "members": 3}}}}
    rows = {row.id: row for row in segment_rows(state.definitions, status, 1, state.rejected)}
    assert rows["s"].status == "rejected" and rows["s"].version == 2
    assert "36,500 days" in (rows["s"].rejected or "")
    assert rows["s"].as_json()["rejected"] == rows["s"].rejected
    assert rows["other"].status == "rejected" and "condition" in (rows["other"].rejected or "")
    table = _table(list(rows.values()))
    assert "s v2 rejected: condition.value: 300000000d is longer than 36,500 days" in table
    # A later good version clears it.
    state.read(dumps({**good, "version": 3}), b"s")
    assert "s" not in state.rejected and state.definitions["s"]["version"] == 3
