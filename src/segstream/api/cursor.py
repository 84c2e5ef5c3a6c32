"""Member paging across partitions: opaque cursors and the page walk (pure).

A cursor is (partition, last profile id) in key order over partitions 0..N-1: the next page
starts after that id in that partition, then continues with the following partitions. Each
partition's member index is ordered by profile id, so a profile that is a member throughout
the paging is returned exactly once; one that enters or leaves meanwhile may or may not be.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import orjson

__all__ = ["Cursor", "CursorError", "MemberPage", "decode_cursor", "encode_cursor", "walk_members"]

Cursor = tuple[int, str | None]
#: (partition, after id, limit) -> up to `limit` member ids after `after`, in key order.
FetchMembers = Callable[[int, str | None, int], Awaitable[list[str]]]


class CursorError(ValueError):
    """A cursor that this API did not hand out (or for another partition count)."""


def encode_cursor(partition: int, after: str | None) -> str:
    """The opaque text of a cursor."""
    raw = orjson.dumps([partition, after])
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(text: str, partitions: int) -> Cursor:
    """(partition, last id) of a cursor text; CursorError when it is not one of ours."""
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
        value = orjson.loads(raw)
    except (binascii.Error, ValueError):
        raise CursorError("not a cursor this API returned") from None
    if (
        not isinstance(value, list)
        or len(value) != 2
        or type(value[0]) is not int
        or not (value[1] is None or isinstance(value[1], str))
    ):
        raise CursorError("not a cursor this API returned")
    if not 0 <= value[0] < partitions:
        raise CursorError(f"cursor names partition {value[0]}; there are {partitions}")
    return value[0], value[1]


@dataclass(frozen=True)
class MemberPage:
    """One page of members: (partition, profile id) pairs and the cursor after them."""

    members: list[tuple[int, str]]
    next_cursor: str | None


async def walk_members(
    fetch: FetchMembers, partitions: int, start: Cursor, limit: int
) -> MemberPage:
    """Collect up to `limit` members from `start` on, partition after partition."""
    partition, after = start
    found: list[tuple[int, str]] = []
    while partition < partitions:
        wanted = limit - len(found)
        ids = await fetch(partition, after, wanted)
        found.extend((partition, pid) for pid in ids[:wanted])
        if len(found) >= limit:
            return MemberPage(found, encode_cursor(partition, found[-1][1]))
        partition, after = partition + 1, None
    return MemberPage(found, None)
