"""Live records first: when background work (backfill slices) may take the event loop.

Everything a worker does runs on one event loop, and a partition's work goes through one
transaction at a time, so a backfill slice delays whatever live record arrives while it runs
(and while its transaction commits: the changed profiles' writes, the sends and a few broker
round trips). The rules, with `slice_s` and `min_share` from the settings
(`SEGSTREAM_BACKFILL_SLICE_S`, `SEGSTREAM_BACKFILL_MIN_SHARE`):

- a slice evaluates for at most `slice_s` (shared by the partitions of one tick), so a live
  record waits for at most one slice and one transaction's commit;
- while live records flow (one was processed in the last `IDLE_AFTER_S`, or some wait),
  slices get `min_share` of the evaluation time: slices that evaluated for d seconds are
  followed by d x (1 - min_share) / min_share of other work. A batch of records that finds
  the backfills owed carries the next slice itself, after its records and in its own
  transaction (no extra commit, no wait behind the loop); the ticker runs one only when no
  batch came to take it. Partitions run their transactions side by side (app/lanes.py), so
  a slice is claimed (`claim`) by one transaction or tick at a time. Measured: giving
  backfills more while records flow (what the CPU left, up to 80 %) made nearly every batch
  carry a slice and its writes, so nearly every live record waited for one
  (docs/performance.md);
- once no record came for `IDLE_AFTER_S` and a fetch came back empty after the last slice
  (the consume loop found nothing to do), ticks run slices back to back: on an idle loop a
  backfill takes all spare time, and a rare live record waits for at most one slice and one
  commit.
"""

from __future__ import annotations

import time
from collections.abc import Callable

__all__ = ["IDLE_AFTER_S", "LivePriority"]

#: No record processed for this long: live traffic is idle, ticks may run slices back to back.
IDLE_AFTER_S = 0.5


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
        self._last_live = float("-inf")
        self._background_end = float("-inf")
        self._background_took = 0.0
        #: A fetch came back empty since the last slice ended.
        self._idle = True
        #: A slice was given to a transaction and has not ended (one at a time: partitions
        #: run their transactions side by side).
        self._claimed = False

    # -- what the consume loop reports -------------------------------------------------------
    def live_fetched(self) -> None:
        """Records were fetched and wait for the loop."""
        self._waiting += 1

    def live_idle(self) -> None:
        """A fetch came back empty: nothing waits for the loop."""
        if not self._waiting:
            self._idle = True

    def live_processed(self) -> None:
        """The fetched records (waiting since `live_fetched`) were processed."""
        self._waiting = max(0, self._waiting - 1)
        self._last_live = self._clock()
        self._idle = False

    # -- what the ticker and the consume loop ask --------------------------------------------
    @property
    def live_waiting(self) -> bool:
        """Fetched records wait for the loop."""
        return self._waiting > 0

    def idle(self) -> bool:
        """No record waits or came for IDLE_AFTER_S, and a fetch found none since the last
        slice."""
        return not self._waiting and self._idle and self._clock() - self._last_live >= IDLE_AFTER_S

    def background_share(self) -> float:
        """The share of the loop background work may take now."""
        return 1.0 if self.idle() else self.min_share

    def background_wait(self) -> float:
        """Seconds until the next slice may start (0: now)."""
        if self._claimed:
            return self.slice_s  # at least: the slice given out has not ended
        share = self.background_share()
        if share >= 1.0:
            return 0.0
        ready = self._background_end + self._background_took * (1 - share) / share
        return max(0.0, ready - self._clock())

    def claim(self) -> bool:
        """Take the next slice when it may start now (True); end it with `background_ran`
        or, when it did not run, `release`."""
        if self.background_wait() > 0.0:
            return False
        self._claimed = True
        return True

    def release(self) -> None:
        """The claimed slice did not run."""
        self._claimed = False

    def background_ran(self, evaluated_s: float) -> None:
        """Slices that evaluated for `evaluated_s` in all ended now (their commit's writes
        and broker round trips are not counted)."""
        self._claimed = False
        self._background_end = self._clock()
        self._background_took = evaluated_s
        self._idle = False
