"""The input agent: counts each profile's records in a RocksDB table and reports the count.

A placeholder for the engine (SPEC §5): it proves the round trip input topics -> agent ->
RocksDB table (changelogged) -> membership topic on a real broker.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import orjson

from segstream.app.app import WorkerApp

__all__ = ["OBSERVATION_TYPE", "register_agents"]

# The type of the records the placeholder writes to the membership topic; not a SPEC §6
# event, so no consumer of real membership events can mistake it for one.
OBSERVATION_TYPE = "segstream.worker.observed"


def register_agents(worker: WorkerApp) -> None:
    """Attach the input agent to `worker.app`."""

    async def count_records(stream: Any) -> AsyncIterator[None]:
        async for event in stream.events():
            key: bytes | None = event.key
            if key is None:
                continue
            count = int(worker.records_seen[key]) + 1
            worker.records_seen[key] = count
            message = event.message
            # Meant to keep the output on the source's partition and transaction; faust 0.15
            # ignores both for topics its consumer does not subscribe to, so this output is
            # not exactly-once (docs/decisions/0001-stream-design.md). A placeholder only.
            await worker.membership.send(
                key=key,
                partition=message.partition,
                value=orjson.dumps(
                    {
                        "type": OBSERVATION_TYPE,
                        "profile_id": key.decode("utf-8", "replace"),
                        "records_seen": count,
                        "source": {
                            "topic": message.topic,
                            "partition": message.partition,
                            "offset": message.offset,
                        },
                    }
                ),
            )
            yield None

    # Registered by a call rather than as a decorator: faust's decorators are untyped.
    worker.app.agent(worker.inputs, name="segstream.inputs")(count_records)
