"""Faust's recovery, with the flow stopped while it seeks the input partitions.

After an assignment, faust-streaming 0.15.3 restores the tables, then (`Recovery.
on_recovery_completed`) resumes the input partitions, seeks them to the committed offsets
(`Consumer.perform_seek`) and resumes the flow with `app.flow_control.resume()`, which
**clears every stream queue**. It assumes the flow was stopped until then, but it resumed the
flow itself to read the changelogs (`Recovery._restart_recovery`, "Resuming flow..."). So the
input records fetched while the seek runs (a few hundred ms here) are delivered to the agent's
queue, Faust's read offsets move past them, and the clear then drops those still queued: never
processed, never acknowledged, never fetched again. Seen in the kill -9 test's worker logs
(docs/faust.md, "Found and fixed"): the agent got `activity[1]` 79, then 88; 80..87 were gone.
Faust commits only the consecutive acknowledged offsets above the committed one
(`Consumer._new_offset`), so a hole at the head stops the partition's commits for the life of the
process: the "commit that stops moving" of earlier test runs. (Upstream: faust-streaming
issues #596 and #216.)

The fix stops the flow (`app.flow_control` and the consumer's) before Faust's own sequence
runs: nothing is fetched for the streams until the seek is done; the clear then drops nothing
of the inputs, and Faust resumes the flow at the end of the same sequence, from the committed
offsets. `TableManager` is a documented Faust setting; `recovery` is the property Faust's
manager builds its `Recovery` service in.
"""

from __future__ import annotations

from typing import Any

from faust.tables import TableManager
from faust.tables.recovery import Recovery

__all__ = ["SeekingTableManager"]


class SeekingRecovery(Recovery):
    """Faust's recovery, but the input partitions are sought with the flow stopped."""

    async def on_recovery_completed(self, generation_id: int = 0) -> None:
        app: Any = self.app
        # Faust resumes both at the end of `on_recovery_completed`, after the seek (and, when
        # a newer rebalance interrupts it, in that rebalance's recovery).
        app.flow_control.suspend()
        app.consumer.stop_flow()
        await super().on_recovery_completed(generation_id)


class SeekingTableManager(TableManager):
    """Faust's table manager with `SeekingRecovery` as its recovery service."""

    @property
    def recovery(self) -> Recovery:
        if self._recovery is None:
            self._recovery = SeekingRecovery(self.app, self, beacon=self.beacon, loop=self.loop)
        return self._recovery
