"""Partition lanes (app/lanes.py): the queue keeps fetch order and says where discarded
records began; partition locks let partitions overlap and take turns within one; the
exclusive hold waits for them and is not starved."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, NamedTuple

import pytest

from segstream.app.lanes import Lane, WorkerLocks
from segstream.app.priority import LivePriority


class TP(NamedTuple):
    topic: str
    partition: int


class Message(NamedTuple):
    offset: int


def records(*offsets: int) -> list[Message]:
    return [Message(o) for o in offsets]


PROFILES, ACTIVITY = TP("profiles", 0), TP("activity", 0)


def test_take_keeps_fetch_order_in_whole_groups_up_to_the_limit() -> None:
    async def main() -> None:
        lane = Lane(0)
        assert lane.empty and not lane.waiting.is_set()
        lane.add(PROFILES, records(1, 2))
        lane.add(ACTIVITY, records(7))
        lane.add(PROFILES, records(3, 4, 5))
        assert lane.records == 6 and lane.waiting.is_set()
        # The same topic-partition twice, in the order fetched (not merged: the order
        # across topics is what one transaction of those fetches would have seen).
        assert lane.take(3) == [(PROFILES, records(1, 2)), (ACTIVITY, records(7))]
        assert lane.records == 3 and lane.waiting.is_set()
        # At least one group, even past the limit.
        assert lane.take(1) == [(PROFILES, records(3, 4, 5))]
        assert lane.empty and lane.records == 0 and not lane.waiting.is_set()

    asyncio.run(main())


def test_discard_names_the_first_offset_per_topic_partition() -> None:
    async def main() -> None:
        lane = Lane(0)
        lane.add(PROFILES, records(10, 11))
        lane.add(ACTIVITY, records(4))
        lane.add(PROFILES, records(12))
        assert lane.discard(ACTIVITY) == {ACTIVITY: 4}
        assert lane.records == 3 and not lane.empty
        assert lane.discard() == {PROFILES: 10}
        assert lane.empty and lane.records == 0 and not lane.waiting.is_set()
        assert lane.discard() == {}

    asyncio.run(main())


def test_partitions_overlap_and_one_partition_takes_turns() -> None:
    async def main() -> list[str]:
        locks = WorkerLocks()
        trace: list[str] = []

        def transaction(partition: int, name: str, hold: float) -> Coroutine[Any, Any, None]:
            return _transaction(locks, trace, partition, name, hold)

        await asyncio.gather(
            transaction(0, "0a", 0.05), transaction(1, "1a", 0.01), transaction(0, "0b", 0.0)
        )
        return trace

    trace = asyncio.run(main())
    assert trace.index("end 1a") < trace.index("end 0a"), "partition 1 did not wait for 0"
    assert trace.index("end 0a") < trace.index("start 0b"), "partition 0 overlapped itself"


def test_a_partition_is_held_first_come_first_served() -> None:
    """A runner that releases its partition and asks again at once (records keep coming)
    goes behind a tick that was already waiting: otherwise the tick waits as long as records
    flow."""

    async def main() -> list[str]:
        locks = WorkerLocks()
        trace: list[str] = []
        tick_waiting = asyncio.Event()

        async def runner() -> None:
            for n in range(3):
                async with locks.partition(0):
                    trace.append(f"batch {n}")
                    if n == 0:
                        await tick_waiting.wait()
                    await asyncio.sleep(0)

        async def tick() -> None:
            await asyncio.sleep(0)
            waiting = asyncio.ensure_future(_hold(locks, 0, trace, "tick"))
            await asyncio.sleep(0)
            tick_waiting.set()
            await waiting

        await asyncio.gather(runner(), tick())
        return trace

    assert asyncio.run(main()) == ["batch 0", "tick", "batch 1", "batch 2"]


async def _hold(locks: WorkerLocks, partition: int, trace: list[str], name: str) -> None:
    async with locks.partition(partition):
        trace.append(name)


async def _transaction(
    locks: WorkerLocks, trace: list[str], partition: int, name: str, hold: float
) -> None:
    async with locks.partition(partition):
        trace.append(f"start {name}")
        assert partition in locks.held
        await asyncio.sleep(hold)
        trace.append(f"end {name}")


def test_exclusive_waits_for_transactions_and_holds_new_ones_back() -> None:
    async def main() -> list[str]:
        locks = WorkerLocks()
        trace: list[str] = []

        def transaction(partition: int, name: str, hold: float) -> Coroutine[Any, Any, None]:
            return _transaction(locks, trace, partition, name, hold)

        async def rebalance() -> None:
            async with locks.exclusive():
                trace.append("rebalance")
                assert not locks.held
                await asyncio.sleep(0.02)
                trace.append("rebalance done")

        first = asyncio.create_task(transaction(0, "0a", 0.05))
        await asyncio.sleep(0.01)
        exclusive = asyncio.create_task(rebalance())
        await asyncio.sleep(0.01)
        # Asked for after the rebalance: waits for it (the rebalance is not starved).
        later = asyncio.create_task(transaction(1, "1a", 0.0))
        await asyncio.gather(first, exclusive, later)
        return trace

    assert asyncio.run(main()) == [
        "start 0a",
        "end 0a",
        "rebalance",
        "rebalance done",
        "start 1a",
        "end 1a",
    ]


def test_a_cancelled_exclusive_request_lets_partitions_go_on() -> None:
    async def main() -> None:
        locks = WorkerLocks()
        entered = asyncio.Event()

        async def long_transaction() -> None:
            async with locks.partition(0):
                entered.set()
                await asyncio.sleep(0.2)

        holder = asyncio.create_task(long_transaction())
        await entered.wait()
        waiting = asyncio.create_task(locks.exclusive().__aenter__())
        await asyncio.sleep(0.01)
        waiting.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiting
        async with asyncio.timeout(0.1), locks.partition(1):
            pass  # not held back by the request that went away
        await holder

    asyncio.run(main())


def test_one_slice_is_claimed_at_a_time() -> None:
    now = [100.0]
    priority = LivePriority(0.05, 0.2, clock=lambda: now[0])
    assert priority.claim()
    assert not priority.claim() and priority.background_wait() > 0
    priority.release()
    assert priority.claim()
    priority.background_ran(0.05)
    assert not priority.claim()  # after a slice: its share's wait (0.2 s) first
    now[0] += 1.0
    assert priority.claim()
