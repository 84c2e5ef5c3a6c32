"""How late the worker's event loop runs what is due: `segstream_event_loop_lag_seconds`.

Everything of a worker shares one asyncio loop: the lanes' engine work, backfill slices,
timers, and aiokafka's own tasks that send a transaction's requests and read their answers. A
request the broker answers in 5 ms still costs the worker 50 when the loop is inside a 45 ms
callback as the answer arrives. This probe sleeps a fixed interval and records how much later
than asked it woke: the wait an answer, a timer or a ready lane had at that moment
(docs/performance.md, session 12).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

__all__ = ["PROBE_INTERVAL_S", "measure_loop_lag"]

#: Seconds between probes: 100 wake-ups a second cost well under 1 % of a core.
PROBE_INTERVAL_S = 0.01


async def measure_loop_lag(
    observe: Callable[[float], None],
    stopping: asyncio.Event,
    interval_s: float = PROBE_INTERVAL_S,
) -> None:
    """Until `stopping`, sleep `interval_s` and `observe` how late the loop woke (seconds)."""
    loop = asyncio.get_running_loop()
    while not stopping.is_set():
        due = loop.time() + interval_s
        await asyncio.sleep(interval_s)
        observe(max(loop.time() - due, 0.0))
