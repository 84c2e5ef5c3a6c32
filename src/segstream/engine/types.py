"""Interfaces the engine needs from its host: where profile state and due times live."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol

from segstream.state.profile import ProfileState

__all__ = ["DueTimes", "ProfileStore"]


class ProfileStore(Protocol):
    """Profile states by id (a dict in replay, a RocksDB-backed table in the worker)."""

    def get(self, profile_id: str) -> ProfileState | None:
        """The state of a profile id, or None if never seen."""

    def put(self, profile_id: str, state: ProfileState) -> None:
        """Store a profile's state after a change."""

    def profile_ids(self) -> Iterable[str]:
        """Every stored profile id (for backfills)."""


class DueTimes(Protocol):
    """The due-time index: profiles by next due instant."""

    def set(self, profile_id: str, due: int | None) -> None:
        """Record a profile's next due instant (None: nothing pending)."""

    def pop_until(self, until: int) -> tuple[int, str] | None:
        """Remove and return the earliest (due, profile id) with due <= until."""
