"""Timer-heavy scenarios: streams where most membership changes come from time alone (§5, §5.1).

The general strategies of `strategies.py` exercise everything a little; here each *theme* picks
a vocabulary of time-dependent conditions (duration windows of seconds to days, retention of a
few days, `within_last`/`more_than_ago` on date and date-time values in traits and in `where`,
derived `age` across birthdays, segment references on timed segments) and a record stream whose
gaps are long compared with those durations, so that windows empty, values age and birthdays
pass between records. Records are often placed exactly on (or one microsecond around) an instant
where something is due, several profiles often share due instants, and `until` often falls on,
just before or just after a pending instant, or before the clock.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date
from typing import Any

from hypothesis import strategies as st

from segstream.timefmt import (
    DAY,
    HOUR,
    MINUTE,
    SECOND,
    date_start,
    format_instant,
    parse_duration,
    parse_instant,
    utc_date,
)

from .strategies import T0, Scenario, spellings

THEMES = ("windows", "dates", "birthdays", "references", "crowd", "mixed", "v12")

US = 1  # one microsecond: the smallest step of the clock

# ---------------------------------------------------------------------------------------------
# Vocabulary
# ---------------------------------------------------------------------------------------------

EVENT_TYPES = ("order.purchased", "page.viewed")
WINDOW_DURATIONS = ("1s", "30s", "90s", "5m", "1h", "6h", "1d", "2d", "3d", "4d")
DATE_DURATIONS = ("1s", "1m", "1h", "12h", "1d", "2d", "3d", "1w")
RETENTIONS = (2 * DAY, 3 * DAY, 4 * DAY, 5 * DAY)
AMOUNTS = (0.5, 1, 2.5, 5, 10)
BIRTHDATES = ("2000-02-29", "1996-02-29", "2000-02-28", "2000-03-01", "2001-01-01", "1999-12-31")
# Offsets of a date value from the clock: before, at and after it.
# (Hypothesis starts from the first of a sampled tuple: there it is a value that ages.)
DATE_OFFSETS = (
    -HOUR,
    -8 * DAY,
    -3 * DAY,
    -2 * DAY,
    -DAY,
    -12 * HOUR,
    -SECOND,
    0,
    SECOND,
    HOUR,
    6 * HOUR,
    12 * HOUR,
    DAY,
    2 * DAY,
    4 * DAY,
)

COUNT_MEASURES: tuple[dict[str, Any], ...] = (
    {},
    {},
    {"count": {"op": "gte", "value": 2}},
    {"count": {"op": "gte", "value": 3}},
    {"count": {"op": "eq", "value": 1}},
    {"count": {"op": "lt", "value": 2}},
    {"count": {"op": "lte", "value": 1}},
    {"count": {"op": "neq", "value": 2}},
    {"count": {"op": "between", "value": [1, 2]}},
    {"count": {"op": "between", "value": [2, 3]}},
    {"count": {"op": "gt", "value": 0}},
)
AGGREGATE_MEASURES: tuple[dict[str, Any], ...] = (
    {"sum": "amount", "op": "gte", "value": 10},
    {"sum": "amount", "op": "gt", "value": 5},
    {"sum": "amount", "op": "lt", "value": 5},
    {"sum": "amount", "op": "between", "value": [5, 15]},
    {"sum": "products.price", "op": "gte", "value": 5},
    {"avg": "amount", "op": "gte", "value": 5},
    {"avg": "amount", "op": "lt", "value": 5},
    {"min": "amount", "op": "lte", "value": 1},
    {"max": "amount", "op": "gte", "value": 10},
    {"max": "amount", "op": "neq", "value": 10},
)
STATIC_WHERE: tuple[dict[str, Any], ...] = (
    {"property": "amount", "op": "gt", "value": 2},
    {"property": "amount", "op": "lte", "value": 5},
    {"property": "products.product_id", "op": "eq", "value": "a"},
)


def _window_fits(duration: str, retention: int) -> bool:
    return parse_duration(duration) <= retention


@st.composite
def time_where(draw: st.DrawFn) -> dict[str, Any]:
    """A `where` test on the date-valued property `ts` that changes with time."""
    return {
        "property": draw(st.sampled_from(("ts", "ts", "dates"))),
        "op": draw(st.sampled_from(("within_last", "more_than_ago"))),
        "value": draw(st.sampled_from(DATE_DURATIONS)),
    }


@st.composite
def window_conditions(
    draw: st.DrawFn, retention: int, dated_where: bool = False, timed: bool = False
) -> dict[str, Any]:
    """An event condition with (mostly) a duration window and a measure near its threshold."""
    node: dict[str, Any] = {"event": draw(st.sampled_from(EVENT_TYPES))}
    where: list[dict[str, Any]] = []
    kind = draw(st.integers(0, 9))
    if kind == 0:
        where.append(draw(st.sampled_from(STATIC_WHERE)))
    elif kind == 1 or (dated_where and kind < 6):
        where.append(draw(time_where()))
    if where:
        node["where"] = where
    window = draw(st.integers(0, 7 if timed else 9))
    if window < 8:
        fitting = [d for d in WINDOW_DURATIONS if _window_fits(d, retention)]
        node["within"] = draw(st.sampled_from(fitting))
    elif window == 8:
        # An absolute window: only retention moves it.
        node["within"] = {"after": format_instant(T0 - DAY), "before": format_instant(T0 + DAY)}
    # else: the whole retention.
    node.update(draw(st.sampled_from(COUNT_MEASURES + AGGREGATE_MEASURES)))
    return node


@st.composite
def date_trait_conditions(draw: st.DrawFn, timed: bool = False) -> dict[str, Any]:
    """`within_last`/`more_than_ago` (and a static `after`) on date-valued traits."""
    path = draw(st.sampled_from(("custom.signup", "custom.signup", "custom.visits", "renewal")))
    static = () if timed else ("after",)
    op = draw(st.sampled_from(("within_last",) * 4 + ("more_than_ago",) * 3 + static))
    if op == "after":
        return {
            "trait": path,
            "op": op,
            "value": draw(st.sampled_from(("2026-02-28", "2026-03-01T06:00:00Z"))),
        }
    return {"trait": path, "op": op, "value": draw(st.sampled_from(DATE_DURATIONS))}


@st.composite
def dated_event_conditions(draw: st.DrawFn, retention: int) -> dict[str, Any]:
    """An event condition whose `where` looks at a date property under a duration."""
    return draw(window_conditions(retention, dated_where=True))


@st.composite
def age_conditions(draw: st.DrawFn, lowest: int = 27, highest: int = 33) -> dict[str, Any]:
    """Conditions on the derived `age` with thresholds the sample birthdates cross."""
    # Sample birthdates are 25 to 29 years old at T0 and have birthdays on 28 February,
    # 1 March (29 February in 2028) and 1 January: thresholds mostly lie ahead.
    op = draw(st.sampled_from(("gte", "gt", "eq", "between", "lt", "lte", "neq")))
    if op == "between":
        low = draw(st.integers(lowest, highest - 2))
        return {"trait": "age", "op": op, "value": [low, low + draw(st.integers(0, 2))]}
    return {"trait": "age", "op": op, "value": draw(st.integers(lowest, highest))}


STATIC_TRAITS: tuple[dict[str, Any], ...] = (
    {"trait": "gender", "op": "eq", "value": "female"},
    {"trait": "birthdate", "op": "exists"},
    {"trait": "custom.plan", "op": "eq", "value": "gold"},
)


def _combine(
    draw: st.DrawFn, leaf: st.SearchStrategy[dict[str, Any]], static: bool = True
) -> dict[str, Any]:
    """Mostly a lone time-dependent leaf; sometimes `not`, `and`/`or` with another leaf."""
    shape = draw(st.integers(0, 9))
    first = draw(leaf)
    if shape < 7:
        return first
    if shape == 7:
        return {"not": first}
    other = draw(st.sampled_from(STATIC_TRAITS)) if static and shape == 9 else draw(leaf)
    return {draw(st.sampled_from(("and", "or"))): [first, other]}


@st.composite
def theme_conditions(draw: st.DrawFn, theme: str, retention: int) -> dict[str, Any]:
    """One condition of a theme's vocabulary."""
    windows = window_conditions(retention)
    dates = st.one_of(date_trait_conditions(), dated_event_conditions(retention))
    ages = age_conditions()
    if theme == "windows":
        return _combine(draw, windows)
    if theme == "dates":
        return _combine(draw, dates)
    if theme == "birthdays":
        return _combine(draw, st.one_of(ages, ages, ages, ages, windows), static=False)
    if theme == "crowd":
        return _combine(draw, st.one_of(windows, dates))
    # Mixed streams last days: only the birthdays of 28 February and 1 March fall inside.
    soon = age_conditions(26, 30)
    return _combine(draw, st.one_of(windows, windows, dates, dates, soon))


REFERRING = ("base", "dep")


@st.composite
def reference_conditions(draw: st.DrawFn, segment_id: str, retention: int) -> dict[str, Any]:
    """`base` is timed; `dep` refers to `base`, `dep2` to `dep` (and maybe `base`)."""
    if segment_id == "base":  # a lone leaf that changes with time
        return draw(
            st.one_of(
                window_conditions(retention, timed=True),
                window_conditions(retention, dated_where=True, timed=True),
                date_trait_conditions(timed=True),
            )
        )
    target = "base" if segment_id == "dep" else draw(st.sampled_from(REFERRING))
    ref: dict[str, Any] = {"segment": target}
    shape = draw(st.integers(0, 6))
    if shape == 0:
        return {"not": ref}
    if shape == 1:
        return {"and": [ref, draw(window_conditions(retention))]}
    if shape == 2:
        return {"or": [ref, draw(date_trait_conditions(timed=True))]}
    if shape == 3:
        return {"and": [{"not": ref}, draw(st.sampled_from(STATIC_TRAITS))]}
    return ref


# -- SPEC §4.4 (v1.2) -----------------------------------------------------------------------
FOLLOW_DURATIONS = ("1s", "30s", "5m", "1h", "6h", "1d")
ANNIVERSARY_SPANS = ("1d", "2d", "7d", "1w", "30d", "366d")


def _where_v12(draw: st.DrawFn) -> list[dict[str, Any]]:
    kind = draw(st.integers(0, 7))
    if kind == 0:
        return [draw(st.sampled_from(STATIC_WHERE))]
    if kind == 1:
        return [draw(time_where())]
    if kind == 2:
        return [
            {
                "property": "ts",
                "op": draw(st.sampled_from(("within_next", "anniversary_within_next"))),
                "value": draw(st.sampled_from(("1h", "1d", "2d"))),
            }
        ]
    if kind == 3:
        return [{"property": "products.product_id", "op": "matches", "value": "^[ab]$"}]
    return []


@st.composite
def follow_conditions(draw: st.DrawFn, retention: int) -> dict[str, Any]:
    """An event condition with `not_followed_by` ("added, then no purchase within D")."""
    node: dict[str, Any] = {"event": draw(st.sampled_from(EVENT_TYPES))}
    where = _where_v12(draw)
    if where:
        node["where"] = where
    if draw(st.integers(0, 2)) == 0:
        fitting = [d for d in WINDOW_DURATIONS if _window_fits(d, retention)]
        node["within"] = draw(st.sampled_from(fitting))
    follow: dict[str, Any] = {
        "event": draw(st.sampled_from(EVENT_TYPES)),
        "within": draw(st.sampled_from(FOLLOW_DURATIONS)),
    }
    follow_where = _where_v12(draw)
    if follow_where:
        follow["where"] = follow_where
    node["not_followed_by"] = follow
    return node


@st.composite
def sequence_conditions(draw: st.DrawFn, retention: int) -> dict[str, Any]:
    """A sequence of 2 to 4 steps, often with a duration window."""
    steps = []
    for _ in range(draw(st.integers(2, 4))):
        step: dict[str, Any] = {"event": draw(st.sampled_from(EVENT_TYPES))}
        where = _where_v12(draw)
        if where:
            step["where"] = where
        steps.append(step)
    node: dict[str, Any] = {"sequence": steps}
    window = draw(st.integers(0, 3))
    if window < 2:
        fitting = [d for d in WINDOW_DURATIONS if _window_fits(d, retention)]
        node["within"] = draw(st.sampled_from(fitting))
    elif window == 2:
        node["within"] = {"after": format_instant(T0 + HOUR)}
    return node


@st.composite
def upcoming_trait_conditions(draw: st.DrawFn) -> dict[str, Any]:
    """`within_next`, anniversaries (29 February, year ends) and `matches` on traits."""
    kind = draw(st.integers(0, 5))
    if kind == 0:
        path = draw(st.sampled_from(("custom.signup", "renewal", "custom.visits")))
        return {"trait": path, "op": "within_next", "value": draw(st.sampled_from(DATE_DURATIONS))}
    if kind <= 3:
        path = draw(st.sampled_from(("birthdate", "birthdate", "custom.signup")))
        op = draw(st.sampled_from(("anniversary_within_next", "anniversary_within_last")))
        return {"trait": path, "op": op, "value": draw(st.sampled_from(ANNIVERSARY_SPANS))}
    node = {"trait": "gender", "op": "matches", "value": draw(st.sampled_from(("^fe", "MALE$")))}
    if draw(st.booleans()):
        node["ignore_case"] = True
    return node


@st.composite
def v12_conditions(draw: st.DrawFn, segment_id: str, retention: int) -> dict[str, Any]:
    """`base` uses a v1.2 construct; the others too, or `for_at_least` on `base`."""
    leaf = st.one_of(
        follow_conditions(retention),
        follow_conditions(retention),
        sequence_conditions(retention),
        upcoming_trait_conditions(),
    )
    if segment_id == "base":
        return draw(st.one_of(leaf, window_conditions(retention, timed=True)))
    if draw(st.integers(0, 2)) == 0:
        tenure = {"segment": "base", "for_at_least": draw(st.sampled_from(FOLLOW_DURATIONS))}
        shape = draw(st.integers(0, 3))
        if shape == 0:
            return {"not": tenure}
        if shape == 1:
            return {"and": [tenure, draw(leaf)]}
        return tenure
    return _combine(draw, leaf)


# ---------------------------------------------------------------------------------------------
# Themes
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Theme:
    """How one family of scenarios is drawn."""

    name: str
    profiles: tuple[str, ...]
    segment_ids: tuple[str, ...]
    steps: tuple[int, ...]
    lateness: tuple[int, ...]
    kinds: tuple[str, ...]  # weighted by repetition
    records: tuple[int, int]
    retentions: tuple[int, ...] = RETENTIONS
    until_offsets: tuple[int, ...] = (10 * DAY, -HOUR, 0, HOUR, 6 * DAY, 8 * DAY, 10 * DAY)


SHORT_STEPS = (0, US, SECOND, 30 * SECOND, 2 * MINUTE, 10 * MINUTE, HOUR, 6 * HOUR, DAY, 2 * DAY)
LATENESS = (SECOND, 30 * SECOND, 5 * MINUTE, HOUR, 12 * HOUR, DAY, 2 * DAY, 3 * DAY)
SIX = ("p1", "p2", "p3", "p4", "p5", "p6")

THEME_TABLE = {
    "windows": Theme(
        "windows",
        SIX[:5],
        ("s1", "s2", "s3"),
        SHORT_STEPS,
        LATENESS,
        ("activity",) * 12 + ("crowd",) * 2 + ("deleted", "upsert", "drop", "duplicate", "plain"),
        (6, 28),
    ),
    "dates": Theme(
        "dates",
        SIX,
        ("s1", "s2", "s3"),
        # Gaps long against the durations, so values age between a profile's records.
        (0, US, SECOND, 10 * MINUTE, HOUR, 6 * HOUR, 12 * HOUR, DAY, DAY, 2 * DAY, 3 * DAY),
        LATENESS,
        ("dated",) * 8 + ("activity",) * 6 + ("crowd",) * 3 + ("forget", "deleted", "upsert"),
        (6, 20),
    ),
    "birthdays": Theme(
        "birthdays",
        SIX,
        ("s1", "s2", "s3"),
        (HOUR, DAY, 20 * DAY, 90 * DAY, 180 * DAY, 365 * DAY, 400 * DAY),
        (HOUR, DAY, 30 * DAY),
        ("birth",) * 8 + ("activity", "plain", "forget", "deleted", "upsert"),
        (3, 9),
        retentions=(5 * DAY, 365 * DAY),
        until_offsets=(1500 * DAY, -DAY, 0, 400 * DAY, 800 * DAY, 1200 * DAY, 1500 * DAY),
    ),
    "references": Theme(
        "references",
        SIX[:4],
        ("base", "dep", "dep2"),
        SHORT_STEPS,
        LATENESS,
        ("activity",) * 12 + ("dated",) * 8 + ("crowd",) * 3 + ("upsert", "drop", "deleted"),
        (6, 26),
    ),
    "crowd": Theme(
        "crowd",
        (*SIX, "p7", "p8", "p9", "p10"),
        ("s1", "s2", "s3"),
        SHORT_STEPS,
        LATENESS,
        ("crowd",) * 8 + ("activity", "dated", "deleted"),
        (4, 14),
    ),
    "mixed": Theme(
        "mixed",
        SIX,
        ("s1", "s2", "s3", "s4"),
        (*SHORT_STEPS, 4 * DAY),
        LATENESS,
        ("activity",) * 12
        + ("dated",) * 8
        + ("crowd",) * 3
        + ("birth", "forget", "deleted", "upsert", "drop", "duplicate", "plain"),
        (6, 28),
    ),
    "v12": Theme(
        "v12",
        SIX[:4],
        ("base", "s1", "s2"),
        (0, 0, US, SECOND, 30 * SECOND, 5 * MINUTE, HOUR, 6 * HOUR, DAY),
        LATENESS,
        ("activity",) * 12
        + ("dated",) * 3
        + ("crowd",) * 2
        + ("birth", "plain", "forget", "deleted", "upsert", "drop", "duplicate"),
        (6, 24),
        until_offsets=(10 * DAY, -HOUR, 0, HOUR, 2 * DAY, 400 * DAY),
    ),
}


def _date_text(draw: st.DrawFn, instant: int) -> str:
    """A date (the UTC day of `instant`) or a date-time spelling of `instant`."""
    if draw(st.integers(0, 2)) == 0:
        return utc_date(instant).isoformat()
    return draw(spellings(instant))


class _Stream:
    """Draws the records of one scenario and remembers where things will be due."""

    def __init__(self, draw: st.DrawFn, theme: Theme, retention: int) -> None:
        self.draw = draw
        self.theme = theme
        self.retention = retention
        self.clock = T0
        self.lines: list[str] = []
        self.sent: list[dict[str, Any]] = []
        self.due: set[int] = set()  # instants where some timer may be due (a superset)
        self.durations = {
            parse_duration(d) for d in WINDOW_DURATIONS + DATE_DURATIONS + FOLLOW_DURATIONS
        }
        self.number = 0

    # -- time ---------------------------------------------------------------------------------
    def _note_event(self, at: int, properties: dict[str, Any]) -> None:
        self.due.add(at + self.retention)
        self.due.update(at + d for d in self.durations)
        for value in (properties.get("ts"), *properties.get("dates", ())):
            if isinstance(value, int):
                self._note_date(value)

    def _note_date(self, instant: int) -> None:
        self.due.add(instant)
        self.due.update(instant + d for d in self.durations)
        if self.theme.name == "v12":  # within_next: true from v - D
            self.due.update(instant - d for d in self.durations)

    def _note_birthdays(self) -> None:
        year = utc_date(self.clock).year
        for y in range(year, year + 6):
            for month, day in ((1, 1), (2, 28), (2, 29), (3, 1), (12, 31)):
                try:
                    self.due.add(date_start(date(y, month, day)))
                except ValueError:  # 29 February of a common year
                    continue

    def pending(self) -> list[int]:
        return sorted(t for t in self.due if t > self.clock)

    def next_at(self) -> int:
        """The time of the next record: late, exactly on a due instant, or a step later."""
        draw = self.draw
        choice = draw(st.integers(0, 9))
        if choice == 0:
            return self.clock - draw(st.sampled_from(self.theme.lateness))
        pending = self.pending()
        if choice <= 3 and pending:
            # Exactly on (or 1 µs around) an instant where a timer may be due; the nearest
            # ones often, any of them otherwise (a long jump that empties windows).
            target = draw(st.sampled_from(pending[:2] if choice == 1 else pending))
            at = target + draw(st.sampled_from((0, 0, 0, -US, US)))
        else:
            at = self.clock + draw(st.sampled_from(self.theme.steps))
        self.clock = max(self.clock, at)
        return at

    def until(self) -> int | None:
        draw = self.draw
        choice = draw(st.integers(0, 7))
        if choice == 7:
            return None
        pending = self.pending()
        if choice >= 5 and pending:
            # On, just before or just after a pending instant: later timers stay unfired.
            target = draw(st.sampled_from(pending))
            return target + draw(st.sampled_from((0, 0, -US, US)))
        # Mostly far enough for every window to empty and every date value to age.
        return self.clock + draw(st.sampled_from(self.theme.until_offsets))

    # -- records ------------------------------------------------------------------------------
    def _id(self) -> str:
        self.number += 1
        return f"e{self.number}"

    def _emit(self, record: dict[str, Any], at: int) -> None:
        record["at"] = self.draw(spellings(at))
        if "id" in record:
            self.sent.append(record)
        self.lines.append(json.dumps(record))

    def _properties(self, at: int) -> tuple[dict[str, Any], dict[str, Any]]:
        """Event properties, and the same with dates as instants (for due bookkeeping)."""
        draw = self.draw
        props: dict[str, Any] = {"amount": draw(st.sampled_from(AMOUNTS))}
        instants: dict[str, Any] = {}
        if draw(st.booleans()):
            props["products"] = [
                {
                    "product_id": draw(st.sampled_from(("a", "b"))),
                    "price": draw(st.sampled_from(AMOUNTS)),
                }
            ]
        if draw(st.integers(0, 2)) > 0:
            ts = at + draw(st.sampled_from(DATE_OFFSETS))
            props["ts"] = _date_text(draw, ts)
            instants["ts"] = ts
        if draw(st.integers(0, 4)) == 0:
            many = [at + draw(st.sampled_from(DATE_OFFSETS)) for _ in range(2)]
            props["dates"] = [_date_text(draw, t) for t in many]
            instants["dates"] = many
        return props, instants

    def activity(self, profile_id: str, at: int, kind: str | None = None) -> dict[str, Any]:
        draw = self.draw
        props, instants = self._properties(at)
        record = {
            "id": self._id(),
            "type": kind or draw(st.sampled_from(EVENT_TYPES)),
            "profile_id": profile_id,
            "properties": props,
        }
        self._note_event(at, instants)
        return record

    def dated(self, profile_id: str, at: int, value: int | None = None) -> dict[str, Any]:
        draw = self.draw
        if value is None:
            value = self.clock + draw(st.sampled_from(DATE_OFFSETS))
        text = _date_text(draw, value)
        self._note_date(value)
        self._note_date(parse_instant(text))
        custom: dict[str, Any] = {"signup": text}
        traits: dict[str, Any] = {"custom": custom}
        if draw(st.integers(0, 2)) == 0:
            traits["renewal"] = text
        if draw(st.integers(0, 2)) == 0:
            other = value + draw(st.sampled_from(DATE_OFFSETS))
            self._note_date(other)
            custom["visits"] = [text, _date_text(draw, other)]
        return {
            "id": self._id(),
            "type": "profile.updated",
            "profile_id": profile_id,
            "traits": traits,
        }

    def birth(self, profile_id: str) -> dict[str, Any]:
        draw = self.draw
        traits: dict[str, Any] = {"birthdate": draw(st.sampled_from(BIRTHDATES))}
        if draw(st.integers(0, 3)) == 0:
            traits["age"] = draw(st.sampled_from((20, 28, 40)))
        self._note_birthdays()
        return {
            "id": self._id(),
            "type": "profile.updated",
            "profile_id": profile_id,
            "traits": traits,
        }

    def plain(self, profile_id: str) -> dict[str, Any]:
        draw = self.draw
        traits = {
            "gender": draw(st.sampled_from(("female", "male"))),
            "custom": {"plan": draw(st.sampled_from(("gold", "silver")))},
        }
        return {
            "id": self._id(),
            "type": "profile.updated",
            "profile_id": profile_id,
            "traits": traits,
        }

    def forget(self, profile_id: str) -> dict[str, Any]:
        draw = self.draw
        traits = draw(
            st.sampled_from(
                (
                    {"birthdate": None},
                    {"custom": {"signup": None}},
                    {"renewal": None},
                    {"custom": {"signup": "not a date"}},
                    {"custom": None},
                )
            )
        )
        return {
            "id": self._id(),
            "type": "profile.updated",
            "profile_id": profile_id,
            "traits": traits,
        }

    def segment_record(self, kind: str) -> dict[str, Any]:
        draw = self.draw
        segment_id = draw(st.sampled_from(self.theme.segment_ids))
        if kind == "drop":
            return {"type": "segment.deleted", "segment_id": segment_id}
        return {
            "type": "segment.upserted",
            "segment": draw(self.definition(segment_id)),
        }

    def definition(self, segment_id: str) -> st.SearchStrategy[dict[str, Any]]:
        if self.theme.name == "references":
            condition = reference_conditions(segment_id, self.retention)
        elif self.theme.name == "v12":
            condition = v12_conditions(segment_id, self.retention)
        else:
            condition = theme_conditions(self.theme.name, self.retention)
        return st.builds(
            lambda c, name: {"id": segment_id, "name": name, "condition": c},
            condition,
            st.sampled_from(("A", "B")),
        )

    def step(self) -> None:
        draw = self.draw
        kind = draw(st.sampled_from(self.theme.kinds))
        at = self.next_at()
        profile_id = draw(st.sampled_from(self.theme.profiles))
        if kind == "crowd":
            # Several profiles get the same thing at the same instant: their timers coincide.
            group = draw(
                st.lists(st.sampled_from(self.theme.profiles), min_size=2, max_size=6, unique=True)
            )
            # Mostly one date value for all (due together at v and v + D), else one event each.
            dated = self.theme.name != "windows" and draw(st.integers(0, 2)) > 0
            value = self.clock + draw(st.sampled_from(DATE_OFFSETS))
            event_type = draw(st.sampled_from(EVENT_TYPES))
            for member in group:
                if dated:
                    record = self.dated(member, at, value)
                else:
                    record = self.activity(member, at, event_type)
                self._emit(record, at)
            return
        if kind in ("upsert", "drop"):
            record = self.segment_record(kind)
        elif kind == "duplicate" and self.sent:
            record = {**draw(st.sampled_from(self.sent))}
        elif kind == "deleted":
            record = {"id": self._id(), "type": "profile.deleted", "profile_id": profile_id}
        elif kind == "dated":
            record = self.dated(profile_id, at)
        elif kind == "birth":
            record = self.birth(profile_id)
        elif kind == "plain":
            record = self.plain(profile_id)
        elif kind == "forget":
            record = self.forget(profile_id)
        else:
            record = self.activity(profile_id, at)
        self._emit(record, at)


@st.composite
def timed_scenarios(draw: st.DrawFn, theme_name: str = "mixed") -> Scenario:
    """A timer-heavy scenario of one theme (see THEMES)."""
    theme = THEME_TABLE[theme_name]
    retention = draw(st.sampled_from(theme.retentions))
    stream = _Stream(draw, theme, retention)
    # Initial definitions (SEGMENTS.json): for references, base before its dependents.
    ids = list(theme.segment_ids)
    count = draw(st.integers(1, len(ids)))
    if theme.name in ("references", "v12"):
        chosen = ids[:count] if count > 1 else ids[:2]
    elif theme.name == "birthdays":
        chosen = ids
    else:
        chosen = draw(st.lists(st.sampled_from(ids), min_size=1, max_size=count, unique=True))
    segments = [draw(stream.definition(segment_id)) for segment_id in chosen]
    low, high = theme.records
    for _ in range(draw(st.integers(low, high))):
        stream.step()
    return Scenario(segments, stream.lines, stream.until(), retention)


def theme_scenarios() -> st.SearchStrategy[Scenario]:
    """Any theme."""
    return st.sampled_from(THEMES).flatmap(timed_scenarios)
