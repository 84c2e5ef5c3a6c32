"""Adversarial JSON through every reader (SPEC §3.3 v1.1): only SPEC outcomes, never an exception.

Deep nesting, integers at and beyond 64 bits, tiny and huge doubles, escaped lone surrogates,
huge arrays and repeated member names go through the input parser, the engine (replay), the
profile codec, the definition validator and the canonical JSON reader, each with a time bound.
"""

from __future__ import annotations

import json
import time
from typing import Any

from hypothesis import given, note
from hypothesis import strategies as st

from segstream.engine.replay import ReplaySession, run_replay
from segstream.errors import InvalidRecord, Problem
from segstream.rules import validate_definition
from segstream.schemas.events import InputEvent, parse_input_record
from segstream.schemas.jsontext import JSONTextError, dumps, loads_exact
from segstream.schemas.limits import INT_MAX, INT_MIN
from segstream.state.codec import decode_profile, encode_profile
from segstream.state.layout import head_key, load_profile, profile_records

from .budget import examples

KINDS = {"invalid_json", "schema", "unknown_type", "key_mismatch", "too_large"}
#: Each input gets at most this long (the slowest case, a 1 MiB nest, takes well under).
BOUND_S = 2.0

# -- JSON text strategies -------------------------------------------------------------------
_INTEGERS = st.one_of(
    st.integers(min_value=-1000, max_value=1000),
    st.sampled_from([INT_MIN, INT_MAX, INT_MIN - 1, INT_MAX + 1, 2**64, -(2**64), 10**30]),
    st.integers(),
)
_NUMBER_TEXT = st.one_of(
    _INTEGERS.map(str),
    st.sampled_from(
        ["1e400", "-1e400", "1e-400", "4.9e-324", "1.7976931348623157e308", "0.1", "-0.0", "1E2"]
    ),
    st.floats(allow_nan=False, allow_infinity=False).map(repr),
)
_STRING_TEXT = st.one_of(
    st.text(max_size=20).map(lambda s: json.dumps(s, ensure_ascii=False)),
    st.sampled_from(['"\\ud800"', '"\\udc00x"', '"\\ud83d\\ude00"', '"a\\u0000b"', '"\\ufffd"']),
)
_SCALAR_TEXT = st.one_of(_NUMBER_TEXT, _STRING_TEXT, st.sampled_from(["true", "false", "null"]))


def _containers(children: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    keys = st.sampled_from(['"a"', '"b"', '"a.b"', '"\\ud800"', '"type"', '"id"'])
    return st.one_of(
        st.lists(children, max_size=4).map(lambda items: "[" + ",".join(items) + "]"),
        st.lists(st.tuples(keys, children), max_size=4).map(
            lambda pairs: "{" + ",".join(f"{k}:{v}" for k, v in pairs) + "}"
        ),
    )


_VALUE_TEXT = st.recursive(_SCALAR_TEXT, _containers, max_leaves=12)


@st.composite
def _deep(draw: st.DrawFn) -> str:
    """A value nested 1..3000 levels deep (objects or arrays)."""
    levels = draw(st.one_of(st.integers(1, 70), st.sampled_from([1000, 1025, 3000])))
    leaf = draw(_SCALAR_TEXT)
    if draw(st.booleans()):
        return '{"a":' * levels + leaf + "}" * levels
    return "[" * levels + leaf + "]" * levels


_ADVERSARIAL = st.one_of(
    _VALUE_TEXT,
    _deep(),
    st.integers(0, 200_000).map(lambda n: "[" + ",".join(["1"] * n) + "]"),  # a huge array
)

_TYPES = st.sampled_from(["page.viewed", "cart.added", "profile.updated", "custom.x", "nope"])
_AT = st.sampled_from(
    ["2026-01-01T00:00:00Z", "9999-12-31T23:59:59-05:00", "0001-01-01T00:00:00Z", "x"]
)


@st.composite
def input_records(draw: st.DrawFn) -> bytes:
    """An input record with adversarial values in its fields (and sometimes repeated)."""
    kind = draw(_TYPES)
    fields = [
        f'"id":{draw(st.one_of(_STRING_TEXT, st.just(chr(34) + "e1" + chr(34))))}',
        f'"type":"{kind}"',
        '"profile_id":"p1"',
        f'"at":"{draw(_AT)}"',
    ]
    for name in draw(st.lists(st.sampled_from(["traits", "properties", "context", "x"]))):
        fields.append(f'"{name}":{draw(_ADVERSARIAL)}')
    if draw(st.booleans()):
        fields.append('"traits":{}')  # a repeated member name: the last one counts
    return ("{" + ",".join(draw(st.permutations(fields))) + "}").encode()


def _bounded(started: float) -> None:
    elapsed = time.perf_counter() - started
    assert elapsed < BOUND_S, f"took {elapsed:.2f}s"


# -- properties -----------------------------------------------------------------------------
@examples(120)
@given(_ADVERSARIAL)
def test_the_reader_is_exact_or_refuses(text: str) -> None:
    started = time.perf_counter()
    for lenient in (False, True):
        try:
            value = loads_exact(text.encode("utf-8", "surrogatepass"), lenient=lenient)
        except ValueError:
            continue
        try:
            written = dumps(value)
        except JSONTextError:
            continue  # nested too deeply to write (never within the SPEC limits)
        # What it read, it writes back to the same value (integers exact, doubles nearest).
        if text.count("[") + text.count("{") < 500:  # == itself recurses
            assert loads_exact(written, lenient=True) == value
    _bounded(started)


@examples(120)
@given(input_records(), st.sampled_from([b"p1", b"p2", b"\xff", None]))
def test_the_input_parser_gives_only_spec_outcomes(raw: bytes, key: bytes | None) -> None:
    from segstream.schemas.events import decode_key

    note(raw[:300])
    started = time.perf_counter()
    try:
        event = parse_input_record(raw, key=decode_key(key))
    except InvalidRecord as exc:
        assert exc.kind in KINDS, exc
        _bounded(started)
        return
    _bounded(started)
    assert isinstance(event, InputEvent)
    # An accepted record is within the limits: the keyed layout (and the format-1 codec that
    # migrations read) store it exactly.
    session = ReplaySession()
    session.feed(raw)
    state = session.store.get(event.profile_id)
    if state is not None:
        assert decode_profile(encode_profile(state)) == state
        stored = dict(profile_records(event.profile_id, state, None))

        def scan(prefix: bytes, start: bytes = b"") -> list[tuple[bytes, bytes]]:
            return sorted(
                (k, v) for k, v in stored.items() if k.startswith(prefix) and k >= start and v
            )

        head = stored[head_key(event.profile_id)]
        assert head is not None
        loaded = load_profile(event.profile_id, head, scan)
        assert (loaded.exists, loaded.traits, loaded.events, list(loaded.seen)) == (
            state.exists,
            state.traits,
            state.events,
            list(state.seen),
        )
        assert loaded.timers == state.timers


@examples(50)
@given(st.lists(input_records(), max_size=6))
def test_replay_always_completes(lines: list[bytes]) -> None:
    definitions = [
        {"id": "any", "name": "Any", "condition": {"event": "page.viewed"}},
        {"id": "t", "name": "T", "condition": {"trait": "a", "op": "exists"}},
    ]
    started = time.perf_counter()
    result = run_replay(definitions, lines)
    _bounded(started)
    for problem in result.problems:
        assert "internal" not in problem, problem


@st.composite
def definitions(draw: st.DrawFn) -> Any:
    """A definition whose operands, paths and shape are adversarial JSON."""
    value = (
        loads_exact(draw(_ADVERSARIAL).encode("utf-8", "surrogatepass"), lenient=True)
        if (draw(st.booleans()))
        else draw(st.sampled_from(["300000000d", "36500d", 2**63, float("inf"), "\ud800", 1e-400]))
    )
    op = draw(st.sampled_from(["eq", "gt", "within_last", "before", "between", "in", "near"]))
    node: Any = {
        "trait": draw(st.sampled_from(["a", "a.b", "", "\ud800"])),
        "op": op,
        "value": value,
    }
    for _ in range(draw(st.integers(0, 80))):
        node = {draw(st.sampled_from(["not", "and"])): node if draw(st.booleans()) else [node]}
    return {"id": "d", "name": "D", "condition": node}


@examples(100)
@given(definitions())
def test_the_validator_names_problems_and_never_raises(raw: Any) -> None:
    started = time.perf_counter()
    problems = validate_definition(raw, {})
    _bounded(started)
    assert all(isinstance(p, Problem) and isinstance(p.path, str) for p in problems)
    for p in problems:
        str(p).encode()  # printable: a lone surrogate in a path is shown escaped
    if not problems:
        # Accepted: replay installs and evaluates it without a defect.
        result = run_replay(
            [raw],
            [
                b'{"id":"e","type":"profile.updated","profile_id":"p","at":"2026-01-01T00:00:00Z","traits":{"a":1}}'
            ],
        )
        assert result.rejected_segments == []
