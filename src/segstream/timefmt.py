"""Strict RFC 3339 instants, dates and durations as integer microseconds since the epoch."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
from functools import lru_cache

__all__ = [
    "DAY",
    "HOUR",
    "MAX_INSTANT",
    "MINUTE",
    "MIN_INSTANT",
    "SECOND",
    "format_instant",
    "is_date",
    "parse_date",
    "parse_datetime",
    "parse_duration",
    "parse_instant",
]

SECOND = 1_000_000
MINUTE = 60 * SECOND
HOUR = 60 * MINUTE
DAY = 24 * HOUR
WEEK = 7 * DAY

#: The instants SPEC §3.3 (v1.1) allows: 0001-01-01T00:00:00Z to 9999-12-31T23:59:59.999999Z.
MIN_INSTANT = -62_135_596_800 * SECOND
MAX_INSTANT = 253_402_300_800 * SECOND - 1

_UNITS = {"s": SECOND, "m": MINUTE, "h": HOUR, "d": DAY, "w": WEEK}
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_ONE_US = timedelta(microseconds=1)

# ASCII digits only: `\d` would accept other Unicode digits.
_DATETIME = re.compile(
    r"([0-9]{4})-([0-9]{2})-([0-9]{2})[Tt]([0-9]{2}):([0-9]{2}):([0-9]{2})"
    r"(?:\.([0-9]+))?(?:([Zz])|([+-])([0-9]{2}):([0-9]{2}))"
)
_DATE = re.compile(r"([0-9]{4})-([0-9]{2})-([0-9]{2})")
_DURATION = re.compile(r"([0-9]+)([smhdw])")


def _date_us(year: int, month: int, day: int) -> int:
    try:
        d = datetime(year, month, day, tzinfo=UTC)
    except ValueError as exc:
        raise ValueError(f"not a valid calendar date ({exc})") from None
    return (d - _EPOCH) // _ONE_US


def parse_datetime(text: str) -> int:
    """Parse an RFC 3339 date-time with a zone; fractions beyond microseconds are truncated."""
    m = _DATETIME.fullmatch(text) if isinstance(text, str) else None
    if m is None:
        raise ValueError(f"{text!r} is not an RFC 3339 date-time with a time zone")
    y, mo, d, h, mi, s, frac, z, sign, oh, om = m.groups()
    if int(h) > 23 or int(mi) > 59 or int(s) > 59:
        raise ValueError(f"{text!r} has an out-of-range time of day")
    base = _date_us(int(y), int(mo), int(d))
    us = base + int(h) * HOUR + int(mi) * MINUTE + int(s) * SECOND
    if frac:
        us += int((frac + "000000")[:6])
    if not z:
        if int(oh) > 23 or int(om) > 59:
            raise ValueError(f"{text!r} has an out-of-range zone offset")
        offset = int(oh) * HOUR + int(om) * MINUTE
        us -= offset if sign == "+" else -offset
        if not MIN_INSTANT <= us <= MAX_INSTANT:
            raise ValueError(f"{text!r} is outside 0001-01-01T00:00:00Z to 9999-12-31 (UTC)")
    return us


def parse_date(text: str) -> int:
    """Parse `YYYY-MM-DD` as 00:00:00Z of that day."""
    m = _DATE.fullmatch(text) if isinstance(text, str) else None
    if m is None:
        raise ValueError(f"{text!r} is not a date (YYYY-MM-DD)")
    return _date_us(int(m[1]), int(m[2]), int(m[3]))


def is_date(text: str) -> bool:
    """True when `text` has the `YYYY-MM-DD` form (validity aside)."""
    return isinstance(text, str) and _DATE.fullmatch(text) is not None


def parse_instant(text: str) -> int:
    """Parse a date or a date-time (SPEC §2) to microseconds since the epoch."""
    if is_date(text):
        return parse_date(text)
    return parse_datetime(text)


def parse_duration(text: str) -> int:
    """Parse a duration such as `30d` (a positive integer and a unit s m h d w)."""
    m = _DURATION.fullmatch(text) if isinstance(text, str) else None
    if m is None or int(m[1]) == 0:
        raise ValueError(
            f"{text!r} is not a duration; write a positive whole number and a unit "
            "(s, m, h, d or w), e.g. '30d'"
        )
    return int(m[1]) * _UNITS[m[2]]


def format_instant(us: int) -> str:
    """Format microseconds since the epoch as UTC with `Z` and 0-6 fractional digits."""
    seconds, frac = divmod(us, SECOND)
    text = _format_second(seconds)
    if frac:
        return f"{text}.{frac:06d}".rstrip("0") + "Z"
    return text + "Z"


@lru_cache(maxsize=4096)
def _format_second(seconds: int) -> str:
    # Output writes two instants per membership event, mostly of a few recent seconds.
    # Not strftime: its %Y does not pad years before 1000 to four digits on every platform.
    t = _EPOCH + timedelta(seconds=seconds)
    return f"{t.year:04d}-{t.month:02d}-{t.day:02d}T{t.hour:02d}:{t.minute:02d}:{t.second:02d}"


def utc_date(us: int) -> date:
    """The UTC calendar date of an instant."""
    return (_EPOCH + timedelta(microseconds=us)).date()


def date_start(d: date) -> int:
    """Microseconds at 00:00:00Z of a calendar date."""
    return _date_us(d.year, d.month, d.day)
