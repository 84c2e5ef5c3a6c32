"""Exceptions raised by segstream.

Hierarchy::

    SegstreamError
    ├── InvalidDefinition        a segment definition broke the rule language (carries problems)
    │   └── ReferenceCycle       installing it would close a reference cycle (also a ValueError)
    ├── InvalidRecord            an input record must go to the dead-letter topic (carries kind)
    ├── ProfileProcessingError   a timer or backfill step failed for one profile (a defect)
    ├── TransactionStalled       a partition transaction waited on the broker past its bound
    └── ConfigurationError       a setting has an unusable value
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "ConfigurationError",
    "InvalidDefinition",
    "InvalidRecord",
    "Problem",
    "ProfileProcessingError",
    "ReferenceCycle",
    "SegstreamError",
    "TransactionStalled",
]


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong with a definition: the JSON path of the node and what is wrong."""

    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path or '(definition)'}: {self.message}"


class SegstreamError(Exception):
    """Root of every error segstream raises on purpose."""


class InvalidDefinition(SegstreamError):
    """A segment definition was rejected; `problems` lists every reason."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        super().__init__("; ".join(str(p) for p in problems))


class ReferenceCycle(InvalidDefinition, ValueError):
    """Installing a definition would close a cycle of `segment` references (SPEC §4.1)."""


class InvalidRecord(SegstreamError):
    """An input record is invalid; `kind` is one of the dead-letter kinds of SPEC §7."""

    def __init__(self, kind: str, message: str) -> None:
        self.kind = kind
        self.message = message
        super().__init__(f"{kind}: {message}")


class ProfileProcessingError(SegstreamError):
    """Firing a profile's timers or evaluating it for a backfill raised: a defect, confined to
    that profile so the caller can drop the step for it instead of failing the partition."""

    def __init__(self, profile_id: str, step: str, cause: BaseException) -> None:
        self.profile_id = profile_id
        self.step = step
        super().__init__(f"{step} failed for a profile: {type(cause).__name__}: {cause}")


class TransactionStalled(SegstreamError):
    """One broker wait of a partition transaction (begin, sends, offsets, commit) took longer
    than its bound: the transaction is abandoned and the partition reopens with a new producer
    (which aborts it on the broker), as after any other failure of the broker's side."""


class ConfigurationError(SegstreamError):
    """A setting has an unusable value."""
