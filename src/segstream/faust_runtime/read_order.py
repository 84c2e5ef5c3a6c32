"""Notice when the agent's reads of a partition skip offsets or go back.

Within one assignment the agent should read each input partition's offsets one after another,
from the committed offset on. A forward jump of one offset is a transaction marker (every
transaction of a producer leaves one); a longer jump is compaction, or records Faust dropped
before they reached the agent; a step back is a seek. A record applied after later records of
its partition shows as such a jump, then as a step back to it when it is read again: the
trace this module logs (docs/faust.md, "Open: records applied out of order").
"""

from __future__ import annotations

import logging
from typing import Protocol

__all__ = ["ReadOrder"]

log = logging.getLogger("segstream.faust")


class _TopicPartition(Protocol):
    @property
    def topic(self) -> str: ...
    @property
    def partition(self) -> int: ...


class ReadOrder:
    """Per partition, the offset the agent read last in this assignment."""

    def __init__(self) -> None:
        self._last: dict[_TopicPartition, int] = {}

    def clear(self) -> None:
        """After a rebalance: the next read of each partition starts anew."""
        self._last.clear()

    def read(self, tp: _TopicPartition, offset: int, committed: int | None) -> str | None:
        """Note a read (`committed`: the partition's committed offset, the next to read).
        Returns `"skipped"` or `"again"` when the read is out of order (and logs it)."""
        last = self._last.get(tp)
        self._last[tp] = offset
        if last is None:
            if committed is None or offset <= committed + 1:
                return None
            last = committed - 1
        if offset <= last:
            log.warning(
                "%s[%d]: read offset %d again after %d", tp.topic, tp.partition, offset, last
            )
            return "again"
        if offset > last + 2:
            log.warning(
                "%s[%d]: read offset %d after %d (%d offsets not delivered to the agent)",
                tp.topic,
                tp.partition,
                offset,
                last,
                offset - last - 1,
            )
            return "skipped"
        return None
