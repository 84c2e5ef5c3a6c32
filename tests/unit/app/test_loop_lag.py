"""The event-loop lag probe: it reports the time a blocking callback held the loop."""

from __future__ import annotations

import asyncio
import time

from segstream.app.loop_lag import measure_loop_lag


def test_a_callback_that_holds_the_loop_shows_as_lag() -> None:
    lags: list[float] = []

    async def main() -> None:
        stopping = asyncio.Event()
        probe = asyncio.create_task(measure_loop_lag(lags.append, stopping, interval_s=0.005))
        await asyncio.sleep(0.05)
        quiet = len(lags)
        time.sleep(0.08)  # a slice of CPU work that does not yield
        await asyncio.sleep(0.03)
        stopping.set()
        await probe
        assert quiet >= 3
        assert max(lags[quiet:]) >= 0.07

    asyncio.run(main())
    assert all(lag >= 0.0 for lag in lags)
