"""Background tasks that a crash does not end: restarted, with a log line and a metric."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

from segstream.app.metrics import WorkerMetrics

__all__ = ["RESTART_PAUSE_S", "supervise"]

log = logging.getLogger("segstream.supervisor")

#: Pause before a crashed task runs again: a task that fails at once must not spin.
RESTART_PAUSE_S = 1.0


async def supervise(
    name: str,
    run: Callable[[], Awaitable[None]],
    metrics: WorkerMetrics,
    stopping: asyncio.Event,
    pause_s: float = RESTART_PAUSE_S,
) -> None:
    """Run `run()` until it returns or `stopping` is set; restart it whenever it raises."""
    while not stopping.is_set():
        try:
            await run()
            return
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("background task %s crashed; restarting it in %.1fs", name, pause_s)
            metrics.task_restarted(name)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stopping.wait(), pause_s)
