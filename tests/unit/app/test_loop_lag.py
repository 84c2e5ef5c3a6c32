"""The event-loop lag probe reports the time a blocking callback held the loop, and the
stall watch names the code that held it."""

from __future__ import annotations

import asyncio
import logging
import time

import pytest

from segstream.app.loop_lag import StallWatch, measure_loop_lag


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


def test_a_stall_is_logged_with_the_stack_that_holds_the_loop(
    caplog: pytest.LogCaptureFixture,
) -> None:
    watch = StallWatch(stall_s=0.05)

    def hold_the_loop() -> None:
        time.sleep(0.3)

    async def main() -> None:
        stopping = asyncio.Event()
        watch.start()
        probe = asyncio.create_task(
            measure_loop_lag(lambda _lag: None, stopping, interval_s=0.005, watch=watch)
        )
        await asyncio.sleep(0.05)
        hold_the_loop()
        await asyncio.sleep(0.05)
        stopping.set()
        await probe
        watch.stop()

    with caplog.at_level(logging.WARNING, logger="segstream.loop"):
        asyncio.run(main())
    assert watch.stalls == 1  # one stall, reported once however long it lasts
    (record,) = [r for r in caplog.records if r.name == "segstream.loop"]
    assert "event loop held for" in record.getMessage()
    assert "hold_the_loop" in record.getMessage()


def test_no_stall_is_told_while_no_probe_runs(caplog: pytest.LogCaptureFixture) -> None:
    """A slow start-up before the probe runs, and a shutdown after it stopped, hold the
    loop as much as a stall does but are not one: the watch is armed only by a probe."""
    watch = StallWatch(stall_s=0.05)

    async def main() -> None:
        watch.start()
        time.sleep(0.2)  # start-up work before the probe exists
        stopping = asyncio.Event()
        probe = asyncio.create_task(
            measure_loop_lag(lambda _lag: None, stopping, interval_s=0.005, watch=watch)
        )
        await asyncio.sleep(0.05)
        stopping.set()
        await probe
        time.sleep(0.2)  # shutdown work after the probe stopped
        watch.stop()

    with caplog.at_level(logging.WARNING, logger="segstream.loop"):
        asyncio.run(main())
    assert watch.stalls == 0
    assert not [r for r in caplog.records if r.name == "segstream.loop"]
