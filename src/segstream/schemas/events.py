"""Fast parsing and checking of input records (SPEC §3) into `InputEvent`.

Hand-written checks rather than pydantic because replay parses about a million events;
`segstream.schemas.input_models` is the source of truth for the JSON Schema, and a test
keeps the two in agreement on a corpus of valid and invalid records.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any, Final

from segstream.errors import InvalidRecord
from segstream.schemas.jsontext import loads_record
from segstream.schemas.limits import MAX_RECORD_DEPTH, MAX_VALUE_DEPTH, limit_problem
from segstream.schemas.vocabulary import (
    ACTIVITY_TYPES,
    CUSTOM_TYPE,
    DEVICE_TYPES,
    PROFILE_TYPES,
    SUBSCRIPTION_SOURCES,
)
from segstream.timefmt import HOUR, MINUTE, SECOND, parse_date, parse_datetime

__all__ = [
    "INVALID_KEY",
    "MAX_RECORD_BYTES",
    "NO_KEY_CHECK",
    "InputEvent",
    "decode_key",
    "parse_input_record",
]

MAX_RECORD_BYTES: Final = 1_048_576


class _NoKeyCheck:
    """Sentinel type: the caller has no Kafka key to compare (replay)."""

    def __repr__(self) -> str:
        return "NO_KEY_CHECK"


NO_KEY_CHECK: Final[Any] = _NoKeyCheck()


class _InvalidKey:
    """Sentinel type: the Kafka key is not valid UTF-8 (equal to no profile id)."""

    def __repr__(self) -> str:
        return "INVALID_KEY"


INVALID_KEY: Final[Any] = _InvalidKey()


def decode_key(key: bytes | None) -> str | Any | None:
    """A Kafka key as text for `parse_input_record`: None, the UTF-8 text, or INVALID_KEY."""
    if key is None:
        return None
    try:
        return key.decode("utf-8")
    except UnicodeDecodeError:
        return INVALID_KEY


@dataclass(frozen=True, slots=True)
class InputEvent:
    """A valid input event: profile change or activity, with `at` in microseconds."""

    id: str
    type: str
    profile_id: str
    at: int
    traits: dict[str, Any] | None
    properties: dict[str, Any]
    device: dict[str, Any] | None


_ACTIVITY: Final = frozenset(ACTIVITY_TYPES)
_DEVICE_TYPES: Final = frozenset(DEVICE_TYPES)
_SUBSCRIPTION_SOURCES: Final = frozenset(SUBSCRIPTION_SOURCES)
_COUNTRY: Final = re.compile(r"[A-Z]{2}")
_STRING_TRAITS: Final = ("gender", "mobile_operator")
_LOCATION_STRINGS: Final = ("city", "region")


_DAY_STARTS: dict[str, int] = {}
_DAY_STARTS_MAX: Final = 4096


def _parse_at(text: object) -> int:
    """`parse_datetime`, with a fast path for the usual `YYYY-MM-DDTHH:MM:SS[.f]Z` form.

    timefmt's general parser costs ~5 µs; replay parses a million of these, most on few days.
    """
    if (
        type(text) is str
        and len(text) >= 20
        and text.isascii()
        and text[-1] in "Zz"
        and text[10] in "Tt"
        and text[13] == ":"
        and text[16] == ":"
        and (len(text) == 20 or (text[19] == "." and len(text) > 21))
    ):
        hms = text[11:13] + text[14:16] + text[17:19]
        frac = text[20:-1]
        if hms.isdigit() and (not frac or frac.isdigit()):
            day = _DAY_STARTS.get(text[:10])
            if day is None:
                day = parse_date(text[:10])
                if len(_DAY_STARTS) >= _DAY_STARTS_MAX:
                    _DAY_STARTS.clear()
                _DAY_STARTS[text[:10]] = day
            h, mi, s = int(hms[0:2]), int(hms[2:4]), int(hms[4:6])
            if h > 23 or mi > 59 or s > 59:
                raise ValueError("out-of-range time of day")
            us = day + h * HOUR + mi * MINUTE + s * SECOND
            return us + int((frac + "000000")[:6]) if frac else us
    return parse_datetime(text)  # type: ignore[arg-type]  # non-strings raise ValueError


def _load_json(value: bytes) -> tuple[Any, bool, bool]:
    """The parsed record, whether it may nest too deeply (a record with at most 32 brackets
    cannot: no walk for it), and whether an integer beyond 64 bits sits anywhere in the text
    (the reader tells, repeated members included)."""
    try:
        record, wide_integer = loads_record(value)
    except ValueError as exc:
        raise InvalidRecord("invalid_json", f"not valid JSON: {exc}") from None
    return record, value.count(b"[") + value.count(b"{") > MAX_VALUE_DEPTH, wide_integer


def _limits(record: dict[str, Any], is_activity: bool) -> None:
    """Raise `schema` for a record beyond the integer or nesting limits (SPEC §3.3)."""
    found = limit_problem(record, "", MAX_RECORD_DEPTH)
    if found is None:
        nested = ("properties" if is_activity else "traits", "context")
        for name in nested:
            value = record.get(name)
            if type(value) is dict or type(value) is list:
                found = limit_problem(value, name, MAX_VALUE_DEPTH)
                if found is not None:
                    break
    if found is not None:
        path, what = found
        raise InvalidRecord("schema", f"{path or 'the record'} is {what}")


def _is_number(value: object) -> bool:
    return (type(value) is int) or (type(value) is float and math.isfinite(value))


def _dotted_key(obj: object, where: str) -> str | None:
    """The path of the first object key containing '.', looking through objects and arrays."""
    if isinstance(obj, dict):
        for key, child in obj.items():
            if "." in key:
                return f"{where}.{key}"
            if isinstance(child, dict | list):
                found = _dotted_key(child, f"{where}.{key}")
                if found is not None:
                    return found
    elif isinstance(obj, list):
        for i, child in enumerate(obj):
            if isinstance(child, dict | list):
                found = _dotted_key(child, f"{where}[{i}]")
                if found is not None:
                    return found
    return None


def _device_problem(device: dict[str, Any], where: str) -> str | None:
    kind = device.get("type")
    if kind is not None and (type(kind) is not str or kind not in _DEVICE_TYPES):
        return f"{where}.type must be one of {', '.join(DEVICE_TYPES)}"
    for name in ("brand", "os"):
        text = device.get(name)
        if text is not None and type(text) is not str:
            return f"{where}.{name} must be a string"
    return None


def _traits_problem(traits: dict[str, Any]) -> str | None:
    """What is wrong with a `traits` object (SPEC §3.1), or None."""
    dotted = _dotted_key(traits, "traits")
    if dotted is not None:
        return f"trait key {dotted!r} contains '.', which separates trait paths"
    for name in _STRING_TRAITS:
        text = traits.get(name)
        if text is not None and type(text) is not str:
            return f"traits.{name} must be a string"
    birthdate = traits.get("birthdate")
    if birthdate is not None:
        try:
            parse_date(birthdate)
        except ValueError:
            return "traits.birthdate must be a date YYYY-MM-DD"
    age = traits.get("age")
    if age is not None and not (_is_number(age) and age >= 0):
        return "traits.age must be a number >= 0"
    source = traits.get("subscription_source")
    if source is not None and (type(source) is not str or source not in _SUBSCRIPTION_SOURCES):
        return f"traits.subscription_source must be one of {', '.join(SUBSCRIPTION_SOURCES)}"
    location = traits.get("location")
    if isinstance(location, dict):
        problem = _location_problem(location)
        if problem is not None:
            return problem
    device = traits.get("device")
    if isinstance(device, dict):
        return _device_problem(device, "traits.device")
    return None


def _location_problem(location: dict[str, Any]) -> str | None:
    for name in _LOCATION_STRINGS:
        text = location.get(name)
        if text is not None and type(text) is not str:
            return f"traits.location.{name} must be a string"
    country = location.get("country")
    if country is not None and (type(country) is not str or not _COUNTRY.fullmatch(country)):
        return "traits.location.country must be two upper-case letters (ISO 3166-1 alpha-2)"
    lat = location.get("lat")
    if lat is not None and not (_is_number(lat) and -90 <= lat <= 90):
        return "traits.location.lat must be a number in [-90, 90]"
    lon = location.get("lon")
    if lon is not None and not (_is_number(lon) and -180 <= lon <= 180):
        return "traits.location.lon must be a number in [-180, 180]"
    return None


def _context_device(record: dict[str, Any]) -> dict[str, Any] | None:
    """The `context.device` object (None when absent or null); raises on a bad shape."""
    context = record.get("context")
    if context is None:
        return None
    if type(context) is not dict:
        raise InvalidRecord("schema", "context must be an object")
    device = context.get("device")
    if device is None:
        return None
    if type(device) is not dict:
        raise InvalidRecord("schema", "context.device must be an object")
    dotted = _dotted_key(device, "context.device")
    problem = (
        f"key {dotted!r} contains '.', which separates trait paths"
        if dotted is not None
        else _device_problem(device, "context.device")
    )
    if problem is not None:
        raise InvalidRecord("schema", problem)
    return device


def _check_record(
    record: object, check_limits: bool = True, wide_integer: bool = False
) -> InputEvent:
    """Check a parsed JSON value against SPEC §3 (kinds unknown_type and schema)."""
    if type(record) is not dict:
        raise InvalidRecord("schema", "an input record must be a JSON object")
    kind = record.get("type")
    if type(kind) is not str:
        raise InvalidRecord(
            "schema", "'type' must be a string" if kind is not None else "'type' is missing"
        )
    is_activity = kind in _ACTIVITY or (
        kind not in PROFILE_TYPES and CUSTOM_TYPE.fullmatch(kind) is not None
    )
    if not is_activity and kind not in PROFILE_TYPES:
        raise InvalidRecord("unknown_type", f"unknown event type {kind!r}")
    if wide_integer:
        raise InvalidRecord("schema", "an integer outside [-2^63, 2^63 - 1] (of a repeated member)")
    if check_limits:
        _limits(record, is_activity)
    event_id = record.get("id")
    if type(event_id) is not str or not 1 <= len(event_id) <= 128:
        raise InvalidRecord("schema", "'id' must be a string of 1 to 128 characters")
    profile_id = record.get("profile_id")
    if type(profile_id) is not str or not 1 <= len(profile_id) <= 256:
        raise InvalidRecord("schema", "'profile_id' must be a string of 1 to 256 characters")
    at_text = record.get("at")
    try:
        at = _parse_at(at_text)
    except ValueError:
        raise InvalidRecord("schema", "'at' must be an RFC 3339 date-time with a zone") from None
    device = _context_device(record)
    if is_activity:
        properties = record.get("properties")
        if properties is None:
            properties = {}
        elif type(properties) is not dict:
            raise InvalidRecord("schema", "'properties' must be an object")
        return InputEvent(event_id, kind, profile_id, at, None, properties, device)
    traits = None
    if kind == "profile.updated":
        traits = record.get("traits")
        if type(traits) is not dict:
            raise InvalidRecord("schema", "profile.updated needs 'traits', an object")
        problem = _traits_problem(traits)
        if problem is not None:
            raise InvalidRecord("schema", problem)
    return InputEvent(event_id, kind, profile_id, at, traits, {}, None)


def parse_input_record(
    value: bytes | object, *, key: str | object | None = NO_KEY_CHECK
) -> InputEvent:
    """Parse and check one input record; raise InvalidRecord with its kind (SPEC §7).

    A failure no other kind names (a defect) is `internal`, with what failed (SPEC §3.3).
    """
    try:
        return _parse(value, key)
    except InvalidRecord:
        raise
    except Exception as exc:
        raise InvalidRecord("internal", f"parsing failed: {type(exc).__name__}: {exc}") from exc


def _parse(value: bytes | object, key: str | object | None) -> InputEvent:
    check_limits, wide_integer = True, False
    if isinstance(value, bytes | bytearray | memoryview):
        raw = bytes(value)
        if len(raw) > MAX_RECORD_BYTES:
            raise InvalidRecord(
                "too_large", f"value is {len(raw)} bytes; at most 1 MiB is accepted"
            )
        value, check_limits, wide_integer = _load_json(raw)
    event = _check_record(value, check_limits, wide_integer)
    if key is not NO_KEY_CHECK:
        if key is None:
            raise InvalidRecord("key_mismatch", "the record has no key")
        if key is INVALID_KEY:
            raise InvalidRecord("key_mismatch", "the record's key is not valid UTF-8")
        if key != event.profile_id:
            raise InvalidRecord("key_mismatch", "profile_id differs from the record's key")
    return event
