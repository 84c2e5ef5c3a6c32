"""Acknowledge each input partition's records in the order they were read.

A record is ready to acknowledge once the changelog records its table writes sent are
acknowledged (changelog.py); a record that wrote nothing is ready at once. Readiness therefore
comes out of order: record 6 (nothing written) is ready while record 5 still waits for its
changelog. Faust would commit over record 5: `Consumer._new_offset` (faust-streaming 0.15.3,
and its master branch today) refuses to commit past a gap at the head of the acknowledged
offsets only when `min(acked) - committed > 1`, where `committed` is the next offset to read:
with 5 committed (read next) and 6 acknowledged, it commits 7. With no committed offset yet,
or offset 0 committed, it does not check at all. A kill -9 then leaves record 5's state out of
the changelog and record 5 behind the committed offset: the next owner restores a state without
it and never reads it again (docs/faust.md, "Found and fixed", 3).

So the acknowledgements are released per partition in read order: a record is acknowledged
when it and every record read before it from the same partition are ready. Faust then only
ever sees acknowledged offsets without a gap.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Hashable

__all__ = ["InOrderAcks"]


class _Pending:
    __slots__ = ("ack", "ready")

    def __init__(self, ack: Callable[[], object]) -> None:
        self.ack = ack
        self.ready = False


class InOrderAcks:
    """Per partition, acknowledgements released in the order the records were read."""

    def __init__(self) -> None:
        self._queues: dict[Hashable, deque[_Pending]] = {}

    def read(self, partition: Hashable, ack: Callable[[], object]) -> Callable[[], None]:
        """Register a record just read; returns the function that says it is ready (call it
        once). `ack` runs when it and every record read before it from `partition` are."""
        pending = _Pending(ack)
        queue = self._queues.setdefault(partition, deque())
        queue.append(pending)

        def ready() -> None:
            pending.ready = True
            while queue and queue[0].ready:
                queue.popleft().ack()

        return ready

    def waiting(self) -> int:
        """How many records are read and not yet acknowledged."""
        return sum(len(queue) for queue in self._queues.values())
