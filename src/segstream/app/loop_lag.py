"""How late the worker's event loop runs what is due: `segstream_event_loop_lag_seconds`,
and what held it when it was very late.

Everything of a worker shares one asyncio loop: the lanes' engine work, backfill slices,
timers, and aiokafka's own tasks that send a transaction's requests and read their answers. A
request the broker answers in 5 ms still costs the worker 50 when the loop is inside a 45 ms
callback as the answer arrives. The probe sleeps a fixed interval and records how much later
than asked it woke: the wait an answer, a timer or a ready lane had at that moment
(docs/performance.md, session 12).

`StallWatch` is a thread that looks at the probe's last wake: when the loop has not run it for
`stall_s`, it logs the loop thread's stack once per stall (a warning with where the code is),
so that what holds the loop for long is named in the log, not guessed. It watches only while a
probe runs: the probe arms it on entry and disarms it on exit, so a slow start-up before the
probe or a shutdown after it is not told as a stall.
"""

from __future__ import annotations

import asyncio
import logging
import sys
import threading
import time
import traceback
from collections.abc import Callable

__all__ = ["PROBE_INTERVAL_S", "STALL_S", "StallWatch", "measure_loop_lag"]

log = logging.getLogger("segstream.loop")

#: Seconds between probes: 100 wake-ups a second cost well under 1 % of a core.
PROBE_INTERVAL_S = 0.01
#: A loop that has not run its probe for this long is stalled: its stack goes to the log.
STALL_S = 0.25
#: Innermost frames of the loop thread's stack a stall warning shows.
STALL_FRAMES = 12


class StallWatch:
    """A daemon thread logging the loop thread's stack when the probe stops waking."""

    def __init__(self, stall_s: float = STALL_S) -> None:
        self.stall_s = stall_s
        #: `time.monotonic()` of the probe's last wake (written by the loop thread); None
        #: while no probe runs, when there is nothing to watch.
        self.beat: float | None = None
        self._loop_thread = threading.get_ident()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        #: Stalls logged (for tests).
        self.stalls = 0

    def start(self) -> None:
        self._loop_thread = threading.get_ident()
        self._thread = threading.Thread(
            target=self._watch, name="segstream-stall-watch", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(1.0)
            self._thread = None

    def _watch(self) -> None:
        reported: float | None = None
        while not self._stop.wait(self.stall_s / 2):
            beat = self.beat
            if beat is None:
                continue
            late = time.monotonic() - beat
            if late < self.stall_s or reported == beat:
                continue
            reported = beat
            frame = sys._current_frames().get(self._loop_thread)
            if frame is None:
                continue
            self.stalls += 1
            stack = "".join(traceback.format_stack(frame)[-STALL_FRAMES:])
            log.warning(
                "event loop held for %.0f ms so far (at least); where it is:\n%s",
                1000 * late,
                stack,
            )


async def measure_loop_lag(
    observe: Callable[[float], None],
    stopping: asyncio.Event,
    interval_s: float = PROBE_INTERVAL_S,
    watch: StallWatch | None = None,
) -> None:
    """Until `stopping`, sleep `interval_s` and `observe` how late the loop woke (seconds);
    with `watch`, tell it of every wake (it watches from this call's start to its end)."""
    loop = asyncio.get_running_loop()
    if watch is not None:
        watch.beat = time.monotonic()
    try:
        while not stopping.is_set():
            due = loop.time() + interval_s
            await asyncio.sleep(interval_s)
            observe(max(loop.time() - due, 0.0))
            if watch is not None:
                watch.beat = time.monotonic()
    finally:
        if watch is not None:
            watch.beat = None
