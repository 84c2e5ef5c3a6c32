"""SPEC v1.1 limits of input values (§3.3) in the input parser, each with its dead-letter kind."""

from __future__ import annotations

import pytest

from segstream.errors import InvalidRecord
from segstream.schemas.events import INVALID_KEY, decode_key, parse_input_record


def record(
    kind: str = "page.viewed", tail: bytes = b"", at: bytes = b"2026-01-01T00:00:00Z"
) -> bytes:
    return (
        b'{"id":"e1","type":"'
        + kind.encode()
        + b'","profile_id":"p1","at":"'
        + at
        + b'"'
        + tail
        + b"}"
    )


def nested(levels: int) -> bytes:
    return b'{"a":' * (levels - 1) + b"{}" + b"}" * (levels - 1)


def kind_of(raw: bytes, key: object = "p1") -> str:
    with pytest.raises(InvalidRecord) as caught:
        parse_input_record(raw, key=key)
    return caught.value.kind


CASES = [
    # Nesting: the record may reach level 64; traits/properties/context 32 on their own.
    (record(tail=b',"x":' + nested(63)), None),
    (record(tail=b',"x":' + nested(64)), "schema"),
    (record(tail=b',"properties":' + nested(32)), None),
    (record(tail=b',"properties":' + nested(33)), "schema"),
    (record(tail=b',"properties":' + nested(300)), "schema"),
    (record("profile.updated", b',"traits":' + nested(33)), "schema"),
    (record("profile.updated", b',"traits":' + nested(1000)), "schema"),
    (record(tail=b',"context":{"device":' + nested(1000) + b"}"), "schema"),
    (record(tail=b',"x":' + b"[" * 5000 + b"]" * 5000), "schema"),
    # Integers in [-2^63, 2^63 - 1] wherever they sit (ignored fields and repeats included).
    (record(tail=b',"properties":{"n":9223372036854775807}'), None),
    (record(tail=b',"properties":{"n":-9223372036854775808}'), None),
    (record(tail=b',"properties":{"n":9223372036854775808}'), "schema"),
    (record("profile.updated", b',"traits":{"t":1180591620717411303424}'), "schema"),
    (record(tail=b',"x":-18446744073709551616'), "schema"),
    (record(tail=b',"x":[1,99999999999999999999],"x":1'), "schema"),
    (record(tail=b',"x":1e400'), "invalid_json"),
    (record(tail=b',"x":1e-400'), None),
    # Strings are valid Unicode.
    (
        b'{"id":"\\ud800","type":"page.viewed","profile_id":"p1","at":"2026-01-01T00:00:00Z"}',
        "invalid_json",
    ),
    (record(tail=b',"properties":{"s":"\\udc00"}'), "invalid_json"),
    (record("profile.updated", b',"traits":{"\\ud800":1}'), "invalid_json"),
    (record(tail=b',"x":"\\ud83d\\ude00"'), None),
    # invalid_json comes before unknown_type, which comes before schema.
    (b'{"type":"nope","x":"\\ud800"}', "invalid_json"),
    (b'{"type":"nope","x":' + nested(100) + b"}", "unknown_type"),
    # Instants in years 1 to 9999 (UTC).
    (record(at=b"9999-12-31T23:59:59-05:00"), "schema"),
    (record(at=b"0001-01-01T00:30:00+01:00"), "schema"),
    (record(at=b"9999-12-31T23:59:59.9999999Z"), None),
    (record(at=b"0001-01-01T00:00:00Z"), None),
]


@pytest.mark.parametrize(("raw", "kind"), CASES)
def test_limits(raw: bytes, kind: str | None) -> None:
    if kind is None:
        assert parse_input_record(raw, key="p1").id == "e1"
    else:
        assert kind_of(raw) == kind


def test_a_key_that_is_not_utf8_never_matches() -> None:
    raw = b'{"id":"e1","type":"page.viewed","profile_id":"\\ufffd","at":"2026-01-01T00:00:00Z"}'
    assert decode_key(b"\xff\xfe") is INVALID_KEY
    assert kind_of(raw, decode_key(b"\xff\xfe")) == "key_mismatch"
    assert decode_key(None) is None and decode_key("é".encode()) == "é"


def test_a_defect_while_parsing_is_internal(monkeypatch: pytest.MonkeyPatch) -> None:
    import segstream.schemas.events as events

    def broken(*_args: object) -> None:
        raise ZeroDivisionError("boom")

    monkeypatch.setattr(events, "_check_record", broken)
    with pytest.raises(InvalidRecord) as caught:
        parse_input_record(record())
    assert caught.value.kind == "internal" and "ZeroDivisionError" in caught.value.message
