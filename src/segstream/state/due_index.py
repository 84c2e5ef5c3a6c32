"""An in-memory due-time index: which profile is due next, without scanning all profiles."""

from __future__ import annotations

import heapq

__all__ = ["DueIndex"]


class DueIndex:
    """Profiles ordered by their next due instant (a heap with lazy removal)."""

    def __init__(self) -> None:
        self._heap: list[tuple[int, str]] = []
        self._due: dict[str, int] = {}

    def __len__(self) -> int:
        return len(self._due)

    def get(self, profile_id: str) -> int | None:
        """A profile's next due instant, if it has one."""
        return self._due.get(profile_id)

    def set(self, profile_id: str, due: int | None) -> None:
        """Record a profile's next due instant (None: nothing pending)."""
        current = self._due.get(profile_id)
        if current == due:
            return
        if due is None:
            del self._due[profile_id]
            return
        self._due[profile_id] = due
        heapq.heappush(self._heap, (due, profile_id))

    def peek(self) -> tuple[int, str] | None:
        """The earliest (due, profile id), if any."""
        heap = self._heap
        while heap:
            due, profile_id = heap[0]
            if self._due.get(profile_id) == due:
                return due, profile_id
            heapq.heappop(heap)
        return None

    def pop_until(self, until: int) -> tuple[int, str] | None:
        """Remove and return the earliest (due, profile id) with due <= until, if any."""
        head = self.peek()
        if head is None or head[0] > until:
            return None
        heapq.heappop(self._heap)
        del self._due[head[1]]
        return head
