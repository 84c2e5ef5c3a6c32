"""Canonical bytes of a condition, for deciding whether an upsert changes it (SPEC §4)."""

from __future__ import annotations

import json

import orjson

__all__ = ["condition_fingerprint"]


def condition_fingerprint(condition: object) -> bytes:
    """Keys sorted, nothing filled in, `true` != `1` != `1.0` (as orjson writes them)."""
    try:
        return orjson.dumps(condition, option=orjson.OPT_SORT_KEYS)
    except orjson.JSONEncodeError:
        # Integers beyond 64 bits (valid JSON) are refused by orjson; the stdlib writes them.
        # The choice depends only on the content, so equal conditions still give equal bytes.
        return json.dumps(
            condition, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
        ).encode()
