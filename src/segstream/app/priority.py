"""Live records first: when background work (backfill slices) may take the event loop.

Everything a worker does runs on one event loop, and a partition's work goes through one
transaction at a time, so a backfill slice delays whatever live record arrives while it runs
(and while its transaction commits). The rules, with `slice_s` and `min_share` from the
settings (`SEGSTREAM_BACKFILL_SLICE_S`, `SEGSTREAM_BACKFILL_MIN_SHARE`):

- a slice evaluates for at most `slice_s` (shared by the partitions of one tick), so a live
  record waits for at most one slice and one transaction's commit;
- records fetched while a slice runs wait for at most that slice and its tick's commit: a
  batch of records that finds the backfills owed their share carries the next slice itself,
  after its records and in its own transaction (no extra commit, no wait for the loop);
- live traffic's share of the loop is measured over the last `WINDOW_S` as the CPU time the
  process spent on batches of records (not their broker round trips: while a commit waits,
  the CPU is free, and slow commits must not make an idle CPU look busy); background work
  may take what is left below `TARGET_LOAD`, and never less than `min_share`: under full
  live load a backfill still advances at `min_share` of its idle speed;
- once a fetch came back empty after the last slice (the consume loop found nothing to do),
  the next slice may start at once: on an idle loop a backfill takes all spare time.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable

__all__ = ["TARGET_LOAD", "WINDOW_S", "LivePriority"]

#: Live traffic's share of the loop is measured over this much recent wall time.
WINDOW_S = 1.0
#: Live plus background work may keep the loop this busy; the rest is headroom, so that a
#: burst of records finds the loop free instead of queueing behind slices.
TARGET_LOAD = 0.8


class LivePriority:
    """Decides when the next background slice may run (see the module docstring)."""

    def __init__(
        self,
        slice_s: float,
        min_share: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.slice_s = slice_s
        self.min_share = min_share
        self._clock = clock
        self._waiting = 0
        self._live: deque[tuple[float, float]] = deque()  # (end, CPU seconds) of live batches
        self._background_end = float("-inf")
        self._background_took = 0.0
        #: A fetch came back empty since the last slice ended.
        self._idle = True

    # -- what the consume loop reports -------------------------------------------------------
    def live_fetched(self) -> None:
        """Records were fetched and wait for the loop: no slice starts before they ran."""
        self._waiting += 1

    def live_idle(self) -> None:
        """A fetch came back empty: nothing waits for the loop."""
        if not self._waiting:
            self._idle = True

    def live_processed(self, cpu_s: float) -> None:
        """The fetched records (waiting since `live_fetched`) were processed, taking `cpu_s`
        of the process's CPU time (backfill slices they carried not included)."""
        self._waiting = max(0, self._waiting - 1)
        self._live.append((self._clock(), max(0.0, cpu_s)))
        self._idle = False

    # -- what the ticker asks --------------------------------------------------------------
    @property
    def live_waiting(self) -> bool:
        """Fetched records wait for the loop."""
        return self._waiting > 0

    def live_load(self) -> float:
        """Live traffic's share of the CPU over the last WINDOW_S."""
        since = self._clock() - WINDOW_S
        live = self._live
        while live and live[0][0] <= since:
            live.popleft()
        return min(1.0, sum(cpu for _end, cpu in live) / WINDOW_S)

    def idle(self) -> bool:
        """No record waits, and a fetch found none since the last slice."""
        return not self._waiting and self._idle

    def background_share(self) -> float:
        """The share of the loop background work may take now."""
        if self.idle():
            return 1.0
        return max(self.min_share, TARGET_LOAD - self.live_load())

    def background_wait(self) -> float:
        """Seconds until the next slice may start (0: now). A tick whose slices evaluated for
        d seconds is followed by d x (1 - share) / share of other work."""
        share = self.background_share()
        if share >= 1.0:
            return 0.0
        ready = self._background_end + self._background_took * (1 - share) / share
        return max(0.0, ready - self._clock())

    def background_ran(self, evaluated_s: float) -> None:
        """Slices that evaluated for `evaluated_s` in all ended now (their commit's broker
        round trips are not counted)."""
        self._background_end = self._clock()
        self._background_took = evaluated_s
        self._idle = False
