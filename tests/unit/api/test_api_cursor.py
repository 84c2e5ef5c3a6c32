"""Member cursors and the page walk across partitions (pure)."""

from __future__ import annotations

import asyncio

import pytest
from hypothesis import given
from hypothesis import strategies as st

from segstream.api.cursor import CursorError, decode_cursor, encode_cursor, walk_members


@given(st.integers(0, 63), st.none() | st.text(min_size=1, max_size=40))
def test_cursor_round_trip(partition: int, after: str | None) -> None:
    text = encode_cursor(partition, after)
    assert text.isascii() and "=" not in text
    assert decode_cursor(text, 64) == (partition, after)


@pytest.mark.parametrize("text", ["", "x", "!!!", encode_cursor(5, "a"), "WzEsMiwzXQ"])
def test_foreign_cursors_are_rejected(text: str) -> None:
    with pytest.raises(CursorError):
        decode_cursor(text, 4)


def walk_all(members: dict[int, list[str]], limit: int) -> list[list[tuple[int, str]]]:
    """Every page of a walk over fixed member lists."""

    async def fetch(partition: int, after: str | None, wanted: int) -> list[str]:
        ids = sorted(members.get(partition, []))
        return [pid for pid in ids if after is None or pid > after][:wanted]

    async def run() -> list[list[tuple[int, str]]]:
        pages = []
        cursor: tuple[int, str | None] = (0, None)
        while True:
            page = await walk_members(fetch, len(members), cursor, limit)
            pages.append(page.members)
            assert len(page.members) <= limit
            if page.next_cursor is None:
                return pages
            cursor = decode_cursor(page.next_cursor, len(members))

    return asyncio.run(run())


@given(
    st.lists(
        st.sets(st.text("abcdef", min_size=1, max_size=4), max_size=12), min_size=1, max_size=4
    ),
    st.integers(1, 7),
)
def test_walk_returns_every_member_once_in_order(sets: list[set[str]], limit: int) -> None:
    members = {p: sorted(s) for p, s in enumerate(sets)}
    pages = walk_all(members, limit)
    flat = [item for page in pages for item in page]
    assert flat == [(p, pid) for p in sorted(members) for pid in members[p]]
    assert all(len(page) == limit for page in pages[:-1])
