"""Why a profile is (or is not) in a segment, and when time alone would change that.

`explain_condition` walks a validated condition next to the engine: every node gets its truth
for the profile at `now` and what it looked at (the trait values compared; for an event
condition the selected events, the aggregate and the window). Leaves are evaluated by the
rule compiler's own leaf objects, so the root equals the engine's evaluation. A node kind is
one entry of `_EXPLAINERS`; a kind without one (a construct added later) still gets its truth
from the compiler, without the values.

`next_change_by_time` answers "until when": it copies the profile, installs the segment and
the segments it references in a throwaway engine, and fires that engine's timers with no
further record until the segment's membership flips (bounded: `MAX_TIMER_INSTANTS`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from segstream.engine.processor import SegmentEngine
from segstream.engine.registry import SegmentRegistry
from segstream.engine.replay import MemoryProfileStore
from segstream.rules import condition_fingerprint
from segstream.rules.compile import (
    EvaluationContext,
    EventLeaf,
    HistoryLeaf,
    Leaf,
    SegmentLeaf,
    SequenceLeaf,
    TraitLeaf,
    compile_condition,
    leaf_key,
    make_leaf,
)
from segstream.rules.operators import elements, terminals
from segstream.rules.references import referenced_segments
from segstream.state.due_index import DueIndex
from segstream.state.profile import ProfileState, StoredEvent
from segstream.timefmt import DAY, format_instant

__all__ = [
    "MAX_TIMER_INSTANTS",
    "MAX_VALUES_SHOWN",
    "SEARCH_HORIZON",
    "TimeAlone",
    "explain_condition",
    "json_number",
    "next_change_by_time",
]

#: The "until when" search fires at most this many due instants after `now` ...
MAX_TIMER_INSTANTS = 1000
#: ... and none later than this after `now` (100 years: longer than any duration a definition
#: can hold, 36,500 days; birthdays alone would otherwise run for 1,000 years).
SEARCH_HORIZON = 36_525 * DAY
#: A trait path or aggregate reaching more values shows this many (and the total).
MAX_VALUES_SHOWN = 20

_INT64 = (-(2**63), 2**63 - 1)

Explained = dict[str, Any]
Explainer = Callable[[Mapping[str, Any], str, EvaluationContext], Explained]


def json_number(value: Any) -> Any:
    """A number as JSON can carry it: integers beyond 64 bits and non-finite floats as
    strings (exact digits, `inf`, `-inf`, `nan`); anything else unchanged."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        return value if _INT64[0] <= value <= _INT64[1] else str(value)
    if isinstance(value, float) and not math.isfinite(value):
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")
    return value


def _safe(value: Any) -> Any:
    """A stored value for a JSON answer, its numbers made JSON-safe at any depth."""
    if isinstance(value, dict):
        return {k: _safe(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_safe(v) for v in value]
    return json_number(value)


def _shown(values: list[Any]) -> dict[str, Any]:
    return {"values": [_safe(v) for v in values[:MAX_VALUES_SHOWN]], "values_total": len(values)}


def _leaf_truth(node: Mapping[str, Any], ctx: EvaluationContext) -> tuple[Leaf, bool]:
    leaf = make_leaf(leaf_key(node), node)
    return leaf, bool(leaf.evaluate(ctx))


def explain_condition(
    condition: Mapping[str, Any], ctx: EvaluationContext, path: str = "condition"
) -> Explained:
    """The explanation tree of a validated condition for `ctx`'s profile at `ctx.now`:
    `{"path", "kind", "truth", ...}`, with `children` for `and`/`or`/`not`."""
    kind = _kind_of(condition)
    explainer = _EXPLAINERS.get(kind, _explain_other)
    return explainer(condition, path, ctx)


def _kind_of(node: Mapping[str, Any]) -> str:
    for kind in _EXPLAINERS:
        if kind in node:
            return kind
    return next(iter(node), "unknown")


def _explain_group(node: Mapping[str, Any], path: str, ctx: EvaluationContext) -> Explained:
    kind = "and" if "and" in node else "or"
    children = [
        explain_condition(child, ctx, f"{path}.{kind}[{i}]") for i, child in enumerate(node[kind])
    ]
    truths = [child["truth"] for child in children]
    truth = all(truths) if kind == "and" else any(truths)
    return {"path": path, "kind": kind, "truth": truth, "children": children}


def _explain_not(node: Mapping[str, Any], path: str, ctx: EvaluationContext) -> Explained:
    child = explain_condition(node["not"], ctx, f"{path}.not")
    return {"path": path, "kind": "not", "truth": not child["truth"], "children": [child]}


def _explain_trait(node: Mapping[str, Any], path: str, ctx: EvaluationContext) -> Explained:
    leaf, truth = _leaf_truth(node, ctx)
    if not isinstance(leaf, TraitLeaf):  # a trait construct the compiler builds otherwise
        return _explain_other(node, path, ctx)
    found: Explained = {
        "path": path,
        "kind": "trait",
        "truth": truth,
        "trait": leaf.path,
        "op": leaf.op,
        **({"value": _safe(node["value"])} if "value" in node else {}),
        **({"ignore_case": True} if node.get("ignore_case") else {}),
        **_shown(ctx.trait_terminals(leaf.parts)),
    }
    if leaf.parts == ("age",) and isinstance(ctx.profile.traits.get("birthdate"), str):
        found["derived_from"] = "birthdate"
    return found


def _explain_event(node: Mapping[str, Any], path: str, ctx: EvaluationContext) -> Explained:
    leaf, truth = _leaf_truth(node, ctx)
    if not isinstance(leaf, EventLeaf):  # an event construct the compiler builds otherwise
        return _explain_other(node, path, ctx)
    if leaf.follow is not None:
        return _explain_not_followed(leaf, node, path, ctx, truth)
    selected = [e for e in ctx.profile.history(leaf.event_type) if leaf.counts(e, ctx)]
    measure = leaf.measure
    found: Explained = {
        "path": path,
        "kind": "event",
        "truth": truth,
        "event": leaf.event_type,
        "selected": len(selected),
        "window": _window(leaf, ctx),
        "measure": measure.kind,
    }
    if measure.kind == "count":
        spec = node.get("count", {"op": "gte", "value": 1})
        found.update(op=spec["op"], value=_safe(spec["value"]), measured=len(selected))
        return found
    numbers = [
        x
        for e in selected
        for x in elements(terminals(e.properties, measure.parts))
        if isinstance(x, int | float) and not isinstance(x, bool)
    ]
    found.update(
        property=node[measure.kind],
        op=node["op"],
        value=_safe(node["value"]),
        numbers=len(numbers),
        measured=json_number(_aggregate(measure.kind, numbers)),
    )
    return found


def _explain_not_followed(
    leaf: EventLeaf, node: Mapping[str, Any], path: str, ctx: EvaluationContext, truth: bool
) -> Explained:
    """`not_followed_by`: the selected `a` events (the candidates), the first whose D has
    passed with no `b` after it (it makes the condition true), else the first one a `b`
    cancelled and the first one still waiting for its D to pass."""
    follow = leaf.follow
    assert follow is not None
    candidates = [e for e in ctx.profile.history(leaf.event_type) if leaf.counts(e, ctx)]
    satisfied: Explained | None = None
    blocked: Explained | None = None
    waiting: Explained | None = None
    for a in candidates:
        quiet_until = a.at + follow.span
        if quiet_until > ctx.now:  # D has not passed yet: a `b` may still come
            if waiting is None:
                waiting = {"at": _instant(a.at), "until": _instant(quiet_until)}
            continue
        b = _follower(leaf, a, ctx)
        if b is None:
            satisfied = {"at": _instant(a.at), "until": _instant(quiet_until)}
            break
        if blocked is None:
            blocked = {"at": _instant(a.at), "until": _instant(quiet_until), "by": _instant(b.at)}
    return {
        "path": path,
        "kind": "event",
        "truth": truth,
        "event": leaf.event_type,
        "window": _window(leaf, ctx),
        "measure": "not_followed_by",
        "not_followed_by": _safe(dict(node["not_followed_by"])),
        "candidates": len(candidates),
        "satisfied_by": satisfied,
        "blocked": blocked,
        "waiting": waiting,
    }


def _follower(leaf: EventLeaf, a: StoredEvent, ctx: EvaluationContext) -> StoredEvent | None:
    """The first stored `b` of `not_followed_by` after `a` (event order) within D."""
    follow = leaf.follow
    assert follow is not None
    end = a.at + follow.span
    for b in ctx.profile.history(follow.event_type):
        if b.at < a.at or (b.at == a.at and b.order <= a.order):
            continue
        if b.at > end:
            break
        if all(w.pred(terminals(b.properties, w.parts), ctx.now) for w in follow.where):
            return b
    return None


def _explain_sequence(node: Mapping[str, Any], path: str, ctx: EvaluationContext) -> Explained:
    """A sequence: per step the events it selects now and the `at` of its event in the
    earliest chain (the one the greedy evaluation finds; when false, the steps after the
    one that found nothing have none)."""
    leaf, truth = _leaf_truth(node, ctx)
    if not isinstance(leaf, SequenceLeaf):
        return _explain_other(node, path, ctx)
    steps: list[Explained] = []
    at, order = ctx.now - ctx.retention, -1  # before every stored event
    chain_holds = True
    for step in leaf.steps:
        selected = sum(1 for e in ctx.profile.history(step.event_type) if step.counts(e, ctx))
        found = step.first_after(ctx, at, order) if chain_holds else None
        if found is None:
            chain_holds = False
        else:
            at, order = found.at, found.order
        steps.append(
            {
                "event": step.event_type,
                "selected": selected,
                "matched_at": _instant(found.at) if found is not None else None,
            }
        )
    return {
        "path": path,
        "kind": "sequence",
        "truth": truth,
        "window": _window(leaf.steps[0], ctx),
        **({"within": _safe(node["within"])} if "within" in node else {}),
        "steps": steps,
    }


def _aggregate(kind: str, numbers: list[int | float]) -> int | float | None:
    """The measure in event order, as the compiler computes it (None: of nothing)."""
    total: int | float = 0
    for x in numbers:
        total += x
    if kind == "sum":
        return total
    if not numbers:
        return None
    if kind == "avg":
        return total / len(numbers)
    return min(numbers) if kind == "min" else max(numbers)


def _window(leaf: EventLeaf, ctx: EvaluationContext) -> dict[str, Any]:
    """The instants an event's `at` must lie in: `later_than` < at (retention or the
    window), `at_or_before` (a duration window ends now) and `before` (`within.before`)."""
    low = ctx.now - ctx.retention
    if leaf.span is not None:
        low = max(low, ctx.now - leaf.span)
    if leaf.after is not None:
        low = max(low, leaf.after - 1)
    return {
        "later_than": _instant(low),
        "at_or_before": _instant(ctx.now) if leaf.span is not None else None,
        "before": _instant(leaf.before) if leaf.before is not None else None,
    }


def _instant(us: int) -> str | None:
    try:
        return format_instant(us)
    except (ValueError, OverflowError):
        return None  # outside the years 1-9999: no bound worth naming


def _explain_segment(node: Mapping[str, Any], path: str, ctx: EvaluationContext) -> Explained:
    leaf, truth = _leaf_truth(node, ctx)
    entered = ctx.profile.members.get(node["segment"])
    tenure: Explained = {}
    if isinstance(leaf, SegmentLeaf) and leaf.span is not None:
        # `for_at_least`: true from entered_at + D on, for as long as this membership lasts.
        since = entered + leaf.span if entered is not None else None
        tenure["true_from"] = _instant(since) if since is not None else None
    return {
        "path": path,
        "kind": "segment",
        "truth": truth,
        "segment": node["segment"],
        "member": node["segment"] in ctx.profile.members,
        "entered_at": _instant(entered) if entered is not None else None,
        **{k: _safe(v) for k, v in node.items() if k != "segment"},
        **tenure,
    }


def _explain_other(node: Mapping[str, Any], path: str, ctx: EvaluationContext) -> Explained:
    """A construct without its own case: the compiler's truth, the node as written."""
    compiled = compile_condition(node, lambda leaf: make_leaf(leaf_key(leaf), leaf))
    return {
        "path": path,
        "kind": _kind_of(node),
        "truth": bool(compiled.run(ctx)),
        "node": _safe(dict(node)),
    }


_EXPLAINERS: dict[str, Explainer] = {
    "and": _explain_group,
    "or": _explain_group,
    "not": _explain_not,
    "trait": _explain_trait,
    "event": _explain_event,
    "segment": _explain_segment,
    "sequence": _explain_sequence,
}


# -- until when ---------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class TimeAlone:
    """The first change time alone makes to a membership (no record arriving)."""

    #: When the membership flips, or None (never, or not within the search).
    at: int | None
    #: True: enters then; False: leaves then; None when nothing changes.
    entered: bool | None
    #: The segment's truth at `now` (the start of the search).
    truth_now: bool
    #: The last due instant examined; None when no timer was left at all.
    searched_until: int | None
    #: True when the search stopped at its bound (MAX_TIMER_INSTANTS due instants, or
    #: SEARCH_HORIZON) with timers still pending.
    bounded: bool

    def as_json(self) -> dict[str, Any]:
        """The answer's `time` part."""
        until = self.searched_until
        return {
            "changes_at": _instant(self.at) if self.at is not None else None,
            "change": None if self.entered is None else ("enter" if self.entered else "leave"),
            "searched_until": _instant(until) if until is not None else None,
            "bounded": self.bounded,
        }


def _with_references(
    definitions: Mapping[str, Mapping[str, Any]], sid: str
) -> list[Mapping[str, Any]]:
    """`sid`'s definition after those it references (transitively), each once."""
    order: list[Mapping[str, Any]] = []
    placed: set[str] = set()

    def place(current: str) -> None:
        if current in placed or current not in definitions:
            return
        placed.add(current)
        definition = definitions[current]
        for ref in sorted(set(referenced_segments(definition["condition"]))):
            place(ref)
        order.append(definition)

    place(sid)
    return order


def next_change_by_time(
    definitions: Mapping[str, Mapping[str, Any]],
    sid: str,
    state: ProfileState,
    now: int,
    retention: int,
    *,
    limit: int = MAX_TIMER_INSTANTS,
    horizon: int = SEARCH_HORIZON,
) -> TimeAlone:
    """Fire timers over a copy of `state` with no further record and report the first
    instant after `now` at which segment `sid` (defined in `definitions`) flips.

    The copy starts with its memberships equal to the truth at `now` (as after the due
    timers and pending backfills), so a membership the live state has not caught up with yet
    is not reported as a future change. `state` itself is never changed.
    """
    registry = SegmentRegistry(retention)
    for definition in _with_references(definitions, sid):
        registry.install(definition, 1, condition_fingerprint(definition["condition"]))
    pid = "profile"
    copy = _copy_state(state, registry)
    store = MemoryProfileStore()
    store.put(pid, copy)
    engine = SegmentEngine(registry, store, DueIndex())
    for installed in sorted(registry.segments, key=lambda s: (registry.rank.get(s, 0), s)):
        engine.backfill_profile(pid, installed, "segment_created", now)
    truth_now = sid in copy.members
    searched: int | None = None
    for _ in range(limit):
        due = copy.next_due
        if due is None:
            return TimeAlone(None, None, truth_now, searched, False)
        if due > now + horizon:
            return TimeAlone(None, None, truth_now, searched, True)
        searched = due
        for change in engine.fire_due(due):
            if change.segment_id == sid:
                return TimeAlone(due, change.entered, truth_now, due, False)
    return TimeAlone(None, None, truth_now, searched, copy.next_due is not None)


def _copy_state(state: ProfileState, registry: SegmentRegistry) -> ProfileState:
    """A detached copy with the histories the installed segments read (never journalled)."""
    # Every type a leaf reads: a sequence's steps and a `not_followed_by`'s `b` type too.
    used = {
        event_type
        for segment in registry.segments.values()
        for leaf in segment.leaves
        if isinstance(leaf, HistoryLeaf)
        for event_type in leaf.event_types
    }
    return ProfileState(
        exists=state.exists,
        traits=state.traits,
        next_order=state.next_order,
        members={s: at for s, at in state.members.items() if s in registry.segments},
        seqs=dict(state.seqs),
        oldest={t: at for t, at in state.oldest.items() if t in used},
        loaded={t: list(state.history(t)) for t in state.oldest if t in used},
    )
