"""Canonical bytes of a condition, for deciding whether an upsert changes it (SPEC §4)."""

from __future__ import annotations

from segstream.schemas.jsontext import dumps

__all__ = ["condition_fingerprint"]


def condition_fingerprint(condition: object) -> bytes:
    """Keys sorted, nothing filled in, `true` != `1` != `1.0` (the canonical JSON writer)."""
    return dumps(condition, sort_keys=True)
