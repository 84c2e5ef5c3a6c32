"""parse_input_record: valid events, every dead-letter kind and its precedence (SPEC §3, §7)."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from pydantic import TypeAdapter, ValidationError

from segstream.errors import InvalidRecord
from segstream.schemas.events import NO_KEY_CHECK, InputEvent, parse_input_record
from segstream.schemas.input_models import InputEventModel
from segstream.timefmt import parse_datetime

AT = "2026-11-28T10:00:00Z"


def activity(**fields: Any) -> dict[str, Any]:
    return {"id": "e1", "type": "page.viewed", "profile_id": "p1", "at": AT, **fields}


def profile(**fields: Any) -> dict[str, Any]:
    return {"id": "e1", "type": "profile.updated", "profile_id": "p1", "at": AT, **fields}


SCHEMA_ERRORS = [
    [],
    "x",
    1,
    None,
    {"id": "e1"},
    activity(type=None),
    activity(type=5),
    activity(id=""),
    activity(id="x" * 129),
    activity(id=5),
    activity(profile_id=""),
    activity(profile_id="x" * 257),
    activity(at="2026-11-28"),
    activity(at="2026-11-28T10:00:00"),
    activity(at=1795860000),
    activity(at="2026-11-28T24:00:00Z"),
    activity(properties=[]),
    activity(properties="x"),
    activity(context=[]),
    activity(context={"device": "phone"}),
    activity(context={"device": {"type": "watch"}}),
    activity(context={"device": {"brand": 5}}),
    activity(context={"device": {"os": True}}),
    activity(context={"device": {"a.b": 1}}),
    profile(),
    profile(traits=None),
    profile(traits=[]),
]
BAD_TRAITS = [
    {"a.b": 1},
    {"custom": {"x": {"y.z": 1}}},
    {"list": [{"ok": 1}, {"no.k": 2}]},
    {"gender": 1},
    {"birthdate": "2026-02-30"},
    {"birthdate": "28/11/2000"},
    {"age": -1},
    {"age": True},
    {"age": "3"},
    {"location": {"country": "us"}},
    {"location": {"country": "USA"}},
    {"location": {"lat": 90.5}},
    {"location": {"lon": -181}},
    {"location": {"lat": "1"}},
    {"location": {"city": 1}},
    {"location": {"region": []}},
    {"device": {"type": "tv"}},
    {"device": {"brand": 1}},
    {"mobile_operator": False},
    {"subscription_source": "email"},
]
GOOD_TRAITS = [
    {},
    {"birthdate": "2000-02-29", "age": 0, "gender": "female"},
    {"location": {"country": "US", "lat": -90, "lon": 180.0, "city": "X", "region": "Y"}},
    {"location": "somewhere", "device": ["x"]},
    {"device": {"type": "tablet", "brand": "B", "os": "O", "extra": {"k": 1}}},
    {"subscription_source": "qr_code", "mobile_operator": "M"},
    {"custom": {"score": 1e300, "tags": ["a", None]}},
    {"age": None, "birthdate": None, "location": None},
]


def kind_of(value: object, key: object = NO_KEY_CHECK) -> str:
    with pytest.raises(InvalidRecord) as caught:
        parse_input_record(value, key=key)
    return caught.value.kind


def test_activity_event_from_bytes() -> None:
    record = activity(properties={"url": "https://x.example/a"}, ignored_field=1)
    event = parse_input_record(orjson.dumps(record), key="p1")
    assert event == InputEvent(
        id="e1",
        type="page.viewed",
        profile_id="p1",
        at=parse_datetime(AT),
        traits=None,
        properties={"url": "https://x.example/a"},
        device=None,
    )


@pytest.mark.parametrize("properties", [None, {}])
def test_missing_or_null_properties_become_empty(properties: object) -> None:
    record = activity() if properties is None else activity(properties=properties)
    assert parse_input_record(record).properties == {}
    assert parse_input_record(activity(properties=None)).properties == {}


def test_profile_updated_keeps_traits_with_nulls() -> None:
    traits = {"gender": None, "location": {"country": "US", "city": None}, "custom": {"x": [1]}}
    event = parse_input_record(profile(traits=traits, properties={"p": 1}))
    assert event.traits == traits
    assert event.properties == {}
    assert event.device is None


def test_profile_deleted_has_no_traits() -> None:
    event = parse_input_record(profile(type="profile.deleted", traits={"a.b": 1}))
    assert event.type == "profile.deleted"
    assert event.traits is None


def test_context_device_on_activity_is_kept_with_nulls() -> None:
    device = {"type": "mobile", "brand": None, "os": "iOS"}
    assert parse_input_record(activity(context={"device": device, "ip": "x"})).device == device
    assert parse_input_record(activity(context={"device": None})).device is None
    assert parse_input_record(activity(context=None)).device is None


def test_context_device_on_profile_event_is_checked_but_ignored() -> None:
    record = profile(traits={}, context={"device": {"type": "mobile"}})
    assert parse_input_record(record).device is None
    assert kind_of(profile(traits={}, context={"device": {"type": "tv"}})) == "schema"


@pytest.mark.parametrize(
    "kind",
    [
        "link.clicked",
        "page.viewed",
        "product.viewed",
        "cart.added",
        "order.purchased",
        "app.installed",
        "form.completed",
        "custom.a",
        "custom.signed_up.v2-x",
        "custom." + "a" * 64,
    ],
)
def test_activity_types(kind: str) -> None:
    assert parse_input_record(activity(type=kind)).type == kind


@pytest.mark.parametrize(
    "kind", ["custom.", "custom.A", "custom." + "a" * 65, "Page.viewed", "profile.created", ""]
)
def test_unknown_types(kind: str) -> None:
    assert kind_of(activity(type=kind)) == "unknown_type"


def test_too_large_comes_first() -> None:
    big = b"{" + b" " * 1_048_576 + b"}"
    assert kind_of(big, key=None) == "too_large"
    exactly = orjson.dumps(activity(properties={"pad": ""}))
    padded = exactly.replace(b'"pad":""', b'"pad":"' + b"x" * (1_048_576 - len(exactly)) + b'"')
    assert len(padded) == 1_048_576
    assert parse_input_record(padded).id == "e1"


@pytest.mark.parametrize(
    "raw",
    [b"", b"{", b'{"id": NaN}', b'{"a": Infinity}', b"\xff\xfe", b"{'a': 1}", b'{"a":1} x'],
)
def test_invalid_json(raw: bytes) -> None:
    assert kind_of(raw, key=None) == "invalid_json"


def test_integers_beyond_64_bits_fail_the_schema() -> None:
    # SPEC §3.3 (v1.1): integers lie in [-2^63, 2^63 - 1]; both ends are kept exactly.
    raw = orjson.dumps(activity(properties={"n": 1}))
    for text, kind in (
        (b"9" * 30, "schema"),
        (b"9223372036854775808", "schema"),
        (b"-9223372036854775809", "schema"),
    ):
        assert kind_of(raw.replace(b'"n":1', b'"n":' + text)) == kind
    for text in (b"9223372036854775807", b"-9223372036854775808"):
        event = parse_input_record(raw.replace(b'"n":1', b'"n":' + text))
        assert event.properties == {"n": int(text)}


def test_unknown_type_before_schema_and_key() -> None:
    assert kind_of({"type": "nope", "at": 5}, key=None) == "unknown_type"


@pytest.mark.parametrize("value", SCHEMA_ERRORS)
def test_schema_errors(value: object) -> None:
    assert kind_of(value, key=None) == "schema"


@pytest.mark.parametrize("traits", BAD_TRAITS)
def test_trait_form_errors(traits: dict[str, Any]) -> None:
    assert kind_of(profile(traits=traits)) == "schema"


@pytest.mark.parametrize("traits", GOOD_TRAITS)
def test_valid_traits(traits: dict[str, Any]) -> None:
    assert parse_input_record(profile(traits=traits)).traits == traits


def test_key_checks() -> None:
    record = orjson.dumps(activity())
    assert parse_input_record(record, key="p1").profile_id == "p1"
    assert kind_of(record, key=None) == "key_mismatch"
    assert kind_of(record, key="p2") == "key_mismatch"
    assert parse_input_record(record).profile_id == "p1"


def test_schema_before_key_mismatch() -> None:
    assert kind_of(activity(id=""), key="other") == "schema"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-11-28T10:00:00.123Z", "2026-11-28T10:00:00.123Z"),
        ("2026-11-28t10:00:00z", "2026-11-28T10:00:00Z"),
        ("2026-11-28T10:00:00.1234567Z", "2026-11-28T10:00:00.123456Z"),
        ("2026-11-28T12:00:00+02:00", "2026-11-28T10:00:00Z"),
    ],
)
def test_at_forms(text: str, expected: str) -> None:
    assert parse_input_record(activity(at=text)).at == parse_datetime(expected)


def _model_accepts(value: object) -> bool:
    try:
        _INPUT_EVENT.validate_python(value)
    except ValidationError:
        return False
    return True


def _fast_path_accepts(value: object) -> bool:
    try:
        parse_input_record(value)
    except InvalidRecord:
        return False
    return True


_INPUT_EVENT: TypeAdapter[Any] = TypeAdapter(InputEventModel)
AGREEMENT_CORPUS = [
    activity(),
    activity(properties=None, context=None, extra={"a.b": 1}),
    activity(type="custom.x.y", context={"device": {"type": "desktop", "brand": None}}),
    activity(type="order.purchased", properties={"a.b": [1, {"c.d": 2}]}),
    activity(type="custom.", properties={}),
    activity(type="profile.created"),
    profile(type="profile.deleted"),
    profile(type="profile.deleted", traits=5),
    profile(type="profile.deleted", context={"device": {"os": 1}}),
    *SCHEMA_ERRORS,
    *(profile(traits=traits) for traits in BAD_TRAITS),
    *(profile(traits=traits) for traits in GOOD_TRAITS),
]


@pytest.mark.parametrize("value", AGREEMENT_CORPUS)
def test_fast_path_agrees_with_the_models(value: object) -> None:
    assert _fast_path_accepts(value) == _model_accepts(value)
