"""What an owner answers about a membership that its evaluation does not agree with yet."""

from __future__ import annotations

import json
from types import SimpleNamespace
from typing import Any

from segstream.api.insight_local import _explain_one
from segstream.engine.backfill import BackfillJob, BackfillQueue
from segstream.engine.replay import ReplaySession
from segstream.rules import condition_fingerprint
from segstream.timefmt import HOUR, format_instant, parse_datetime

T = parse_datetime("2026-03-01T10:00:00Z")


def setup() -> tuple[ReplaySession, Any]:
    session = ReplaySession()
    recent = {
        "id": "recent",
        "name": "Recent",
        "condition": {"event": "page.viewed", "within": "1h"},
    }
    assert session.define(recent) == []
    view = {"id": "v1", "type": "page.viewed", "profile_id": "p1", "at": format_instant(T)}
    session.feed(json.dumps(view))
    owner = SimpleNamespace(registry=session.registry, jobs=BackfillQueue())
    return session, owner


def explain(session: ReplaySession, owner: Any, sid: str, now: int) -> dict[str, Any]:
    state = session.store.get("p1")
    assert state is not None
    definitions = session.registry.definitions()
    return _explain_one(
        owner, "p1", state, state.next_due, definitions[sid], definitions, now, False
    )


def test_in_agreement_with_a_future_leave() -> None:
    session, owner = setup()
    one = explain(session, owner, "recent", T)
    assert (one["agreement"], one["truth"], one["member"]) == ("current", True, True)
    assert one["leaves_at"] == format_instant(T + HOUR) and one["enters_at"] is None
    assert one["time_dependent"] is True


def test_a_timer_due_but_not_fired_is_named() -> None:
    session, owner = setup()
    one = explain(session, owner, "recent", T + 2 * HOUR)
    assert (one["agreement"], one["truth"], one["member"]) == ("timer_due", False, True)
    assert one["due_since"] == format_instant(T + HOUR)
    # Already false: it leaves at the due instant (the transition's `at`), not later.
    assert one["leaves_at"] == one["due_since"] and one["time"]["change"] is None


def test_a_pending_backfill_is_named() -> None:
    session, owner = setup()
    definition = {"id": "viewers", "name": "Viewers", "condition": {"event": "page.viewed"}}
    session.engine.install_segment(definition, condition_fingerprint(definition["condition"]))
    owner.jobs.add(BackfillJob("viewers", "segment_created", 1))
    one = explain(session, owner, "viewers", T)
    assert (one["agreement"], one["truth"], one["member"]) == ("backfill_pending", True, False)
    owner.jobs.jobs[0].cursor = "p1"  # the backfill has passed p1: something else is late
    assert explain(session, owner, "viewers", T)["agreement"] == "pending"
