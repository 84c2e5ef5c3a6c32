"""Records of the segments topic checked on their own (SPEC §4.3) and cycles refused."""

from __future__ import annotations

from typing import Any

import pytest

from segstream.engine.registry import SegmentRegistry
from segstream.errors import InvalidDefinition
from segstream.rules import condition_fingerprint
from segstream.rules.stored import SegmentRecord, SkippedRecord, check_segment_record
from segstream.schemas.jsontext import dumps
from segstream.timefmt import DAY

CARTS = {"event": "cart.added"}


def check(value: Any, key: Any = ..., **kwargs: Any) -> SegmentRecord | SkippedRecord:
    raw = dumps(value) if isinstance(value, dict) else value
    kwargs.setdefault("last_versions", {})
    return check_segment_record(raw, key=key, history_retention=365 * DAY, **kwargs)


def segment(sid: str = "s", version: Any = 1, **fields: Any) -> dict[str, Any]:
    return {"id": sid, "version": version, "name": "S", "condition": CARTS} | fields


@pytest.mark.parametrize(
    ("value", "key", "words"),
    [
        (None, b"s", "null value"),
        (b"not json", b"s", "not JSON"),
        (b"[1]", b"s", "not a JSON object"),
        ({"id": 5, "version": 1}, b"s", "'id' is not a segment id"),
        (segment(), b"t", "key is not its id"),
        (segment(version="1"), b"s", "positive integer"),
        (segment(version=0), b"s", "positive integer"),
        (segment(version=True), b"s", "positive integer"),
        ({"id": "s", "version": 1, "name": "S"}, b"s", "missing 'condition'"),
        (segment(condition={"segment": "s"}), b"s", "refers to itself"),
        (
            segment(condition={"trait": "t", "op": "within_last", "value": "300000000d"}),
            b"s",
            "36,500 days",
        ),
        (segment(condition={"trait": "t", "op": "eq", "value": 2**64}), b"s", "an integer outside"),
        (
            b'{"id":"s","version":1,"name":"S","condition":{"trait":"t","op":"eq","value":"\\ud800"}}',
            b"s",
            "lone surrogate",
        ),
        (segment(extra=1), b"s", "unknown fields extra"),
        ({"id": "s", "deleted": True, "version": 2, "name": "x"}, b"s", "deletion marker"),
    ],
)
def test_records_with_no_effect_say_why(value: Any, key: bytes, words: str) -> None:
    checked = check(value, key)
    assert isinstance(checked, SkippedRecord)
    assert words in checked.reason, checked.reason


def test_usable_records() -> None:
    checked = check(segment(condition={"segment": "other"}), b"s")
    assert isinstance(checked, SegmentRecord) and not checked.deleted and checked.version == 1
    marker = check({"id": "s", "deleted": True, "version": 3}, b"s")
    assert isinstance(marker, SegmentRecord) and marker.deleted
    lower = check(segment(version=2), b"s", last_versions={"s": 3})
    assert isinstance(lower, SkippedRecord) and "lower than 3" in lower.reason
    same = check(segment(version=3), b"s", last_versions={"s": 3})  # a rename keeps it
    assert isinstance(same, SegmentRecord)


def test_a_record_closing_a_cycle_among_the_definitions_in_force_is_skipped() -> None:
    defined = {"a": {"id": "a", "condition": {"segment": "b"}}}
    checked = check(segment("b", condition={"not": {"segment": "a"}}), b"b", defined=defined)
    assert isinstance(checked, SkippedRecord) and "refers back to 'b'" in checked.reason


def test_the_registry_refuses_to_install_a_cycle() -> None:
    registry = SegmentRegistry(365 * DAY)

    def install(sid: str, condition: dict[str, Any], version: int = 1) -> None:
        definition = {"id": sid, "name": sid, "condition": condition}
        registry.install(definition, version, condition_fingerprint(condition))

    install("a", {"segment": "b"})  # b unknown: false, not a cycle
    install("b", CARTS)
    with pytest.raises(InvalidDefinition, match="refers back"):
        install("b", {"segment": "a"}, 2)
    with pytest.raises(InvalidDefinition, match="itself"):
        install("c", {"segment": "c"})
    assert registry.segments["b"].version == 1 and "c" not in registry.segments
