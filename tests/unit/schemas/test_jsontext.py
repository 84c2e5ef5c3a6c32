"""The canonical JSON reader and writer (schemas/jsontext): exact, iterative, SPEC §3.3."""

from __future__ import annotations

import json
import time

import pytest

from segstream.schemas.jsontext import JSONTextError, dumps, loads_exact

VALID = [
    b"{}",
    b"[]",
    b' {"x": [1, 2.5, -3e2, "s\\n", true, null]} ',
    b'{"a":1,"a":2}',
    b'"\\ud83d\\ude00"',
    b"9223372036854775808",
    b"-9223372036854775809",
    b"[" + b"1" * 400 + b"]",
    b'[12345678901234567890, {"k": "v", "k": "w"}]',
    b"1e-400",
]
INVALID = [
    b"",
    b"[1,]",
    b'{"a":}',
    b'{"a" 1}',
    b"[1 2]",
    b"01",
    b"1.",
    b".5",
    b"NaN",
    b"Infinity",
    b'"\x01"',
    b"[1,2]]",
    b'{"a":1}x',
    b"[1,]12345678901234567890",
    b"\xff",
    b'"\xed\xa0\x80"',  # an encoded surrogate is not UTF-8
]


@pytest.mark.parametrize("text", VALID)
def test_valid_text_reads_as_the_standard_library_reads_it(text: bytes) -> None:
    assert loads_exact(text) == json.loads(text)
    assert loads_exact(text, lenient=True) == json.loads(text)


@pytest.mark.parametrize("text", INVALID)
def test_invalid_text_is_refused(text: bytes) -> None:
    for lenient in (False, True):
        with pytest.raises(JSONTextError):
            loads_exact(text, lenient=lenient)


@pytest.mark.parametrize(
    "text",
    [b"1e400", b"[-1e400]", b'"\\ud800"', b'{"\\udc00": 1}', b"[1e999, 12345678901234567890]"],
)
def test_non_finite_numbers_and_lone_surrogates_only_when_lenient(text: bytes) -> None:
    with pytest.raises(JSONTextError):
        loads_exact(text)
    assert loads_exact(text, lenient=True) == json.loads(text)


def test_any_depth_is_read_without_recursion_in_linear_time() -> None:
    took: dict[int, float] = {}
    for depth in (1025, 100_000, 500_000):
        started = time.perf_counter()
        value = loads_exact(b"[" * depth + b"]" * depth)
        took[depth] = time.perf_counter() - started
        for _ in range(depth - 1):
            value = value[0]
        assert value == []
    # Linear: 5x the depth takes about 5x the time (quadratic would be 25x). A ratio, not a
    # wall-clock bound: a CI run on a loaded machine took 3.3 s for 500,000.
    assert took[500_000] < 12 * took[100_000] + 0.5, took
    with pytest.raises(JSONTextError):
        loads_exact(b"[" * 100_000 + b"]" * 99_999)


def test_an_unclosed_megabyte_string_fails_fast() -> None:
    started = time.perf_counter()
    with pytest.raises(JSONTextError):
        loads_exact(b'{"a":"' + b"x" * 1_000_000 + b"0" * 19)
    assert time.perf_counter() - started < 1


def test_writes_are_compact_exact_and_refuse_what_is_not_json() -> None:
    assert dumps({"b": 1, "a": [1.0, True, None]}) == b'{"b":1,"a":[1.0,true,null]}'
    assert dumps({"b": 1, "a": 2}, sort_keys=True) == b'{"a":2,"b":1}'
    assert dumps(2**70) == b"1180591620717411303424"  # beyond orjson: the standard library
    assert dumps("\ud800") == b'"\\ud800"'  # still UTF-8 bytes
    for bad in (float("inf"), [float("nan")], {"a": -float("inf")}):
        with pytest.raises(JSONTextError):
            dumps(bad)
    deep: list[object] = []
    for _ in range(5000):
        deep = [deep]
    with pytest.raises(JSONTextError):
        dumps(deep)
