"""`matches` (SPEC §4.4): RE2 semantics — anywhere in the text, any string element of a list,
simple case folding — and time linear in the text, whatever the pattern."""

from __future__ import annotations

import time

from segstream.rules.operators import compile_predicate


def test_matches_anywhere_in_any_string_element() -> None:
    holds = compile_predicate("matches", r"@gmail\.com$")
    assert holds(["x@gmail.com"], 0)
    assert holds([[1, "no", "y@gmail.com"]], 0)
    assert not holds(["x@gmail.com.evil"], 0)
    assert not holds([5, True, None, {"a": "x@gmail.com"}], 0)
    assert compile_predicate("matches", "")(["anything"], 0)


def test_ignore_case_is_re2_simple_folding() -> None:
    assert compile_predicate("matches", "straße", True)(["STRAßE"], 0)
    assert not compile_predicate("matches", "straße", True)(["STRASSE"], 0)
    assert compile_predicate("eq", "straße", True)(["STRASSE"], 0)
    assert not compile_predicate("matches", "abc")(["ABC"], 0)


def test_a_pattern_that_backtracks_exponentially_in_re_is_linear() -> None:
    # Python's `re` needs about 2**40 steps for this; RE2 one pass over the text.
    text = "a" * 40 + "!"
    started = time.perf_counter()
    assert not compile_predicate("matches", "^(a+)+$")([text], 0)
    long_text = "a" * 1_000_000 + "!"
    assert not compile_predicate("matches", "^(a|aa)*$")([long_text], 0)
    assert time.perf_counter() - started < 5
