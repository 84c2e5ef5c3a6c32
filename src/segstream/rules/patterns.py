"""RE2 patterns of the `matches` operator (SPEC §4.4): linear-time matching, never `re`.

Patterns compile with google-re2's default options (UTF-8, 8 MiB program memory); only RE2's
error log is silenced, which changes nothing about what compiles. `ignore_case` compiles the
same pattern case-insensitively, as RE2's `(?i)` does (simple case folding).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache
from typing import Final

import re2

__all__ = ["MAX_PATTERN_LENGTH", "compile_pattern", "pattern_problem"]

#: Longest pattern, in code points.
MAX_PATTERN_LENGTH: Final = 1000


def _options(ignore_case: bool) -> re2.Options:
    options = re2.Options()
    options.log_errors = False  # a rejected pattern is reported to the user, not to stderr
    if ignore_case:
        options.case_sensitive = False
    return options


@lru_cache(maxsize=4096)
def compile_pattern(pattern: str, ignore_case: bool = False) -> Callable[[str], bool]:
    """A test "the pattern matches somewhere in the text" (the pattern must be valid)."""
    search = re2.compile(pattern, options=_options(ignore_case)).search
    return lambda text: search(text) is not None


def pattern_problem(pattern: str) -> str | None:
    """Why RE2 rejects a pattern (or it is too long), in plain words; None when it is fine."""
    if len(pattern) > MAX_PATTERN_LENGTH:
        return (
            f"the pattern is {len(pattern):,} characters long; at most "
            f"{MAX_PATTERN_LENGTH:,} are allowed"
        )
    for ignore_case in (False, True):
        try:
            re2.compile(pattern, options=_options(ignore_case))
        except re2.error as exc:
            reason = exc.args[0] if exc.args else exc
            if isinstance(reason, bytes):
                reason = reason.decode("utf-8", "replace")
            return f"{pattern!r} is not a valid RE2 pattern: {reason}"
    return None
