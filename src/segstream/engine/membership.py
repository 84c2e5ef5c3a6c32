"""Membership changes (SPEC §6): what the engine emits, and their wire form."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

from segstream.timefmt import format_instant

__all__ = ["ENTERED", "LEFT", "MembershipChange", "membership_id"]

ENTERED = "segment.entered"
LEFT = "segment.left"


def membership_id(profile_id: str, segment_id: str, seq: int) -> str:
    """The deterministic id of a pair's `seq`-th transition (consumers drop repeats by it)."""
    digest = hashlib.blake2b(
        f"{profile_id}\x00{segment_id}\x00{seq}".encode(), digest_size=16
    ).hexdigest()
    return f"m-{digest}"


@dataclass(frozen=True, slots=True)
class MembershipChange:
    """A profile entered or left a segment."""

    profile_id: str
    segment_id: str
    segment_version: int
    seq: int
    entered: bool
    at: int
    cause: dict[str, str]

    @property
    def type(self) -> str:
        """`segment.entered` or `segment.left`."""
        return ENTERED if self.entered else LEFT

    def to_record(self, emitted_at: int) -> dict[str, Any]:
        """The membership event of SPEC §6."""
        return {
            "id": membership_id(self.profile_id, self.segment_id, self.seq),
            "type": self.type,
            "profile_id": self.profile_id,
            "segment_id": self.segment_id,
            "segment_version": self.segment_version,
            "seq": self.seq,
            "at": format_instant(self.at),
            "emitted_at": format_instant(emitted_at),
            "cause": self.cause,
        }
