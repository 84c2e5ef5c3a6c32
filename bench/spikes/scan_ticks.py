"""Spike: control records drive a per-partition RocksDB scan inside the faust agent.

    python bench/spikes/scan_ticks.py BOOTSTRAP

Writes 200 keyed records, runs spike_app.py with its ticker on, and checks that each
partition's scan (triggered by a control record sent to that partition) lists exactly the keys
whose input records went to that partition.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
import uuid
from collections import defaultdict
from pathlib import Path

import orjson
from aiokafka import AIOKafkaConsumer, TopicPartition
from eos_kill import create_topics, produce_inputs, start_worker


async def run(bootstrap: str) -> bool:
    spike_id = f"scan-{uuid.uuid4().hex[:6]}"
    partitions = 2
    await create_topics(bootstrap, spike_id, partitions)
    await produce_inputs(bootstrap, spike_id, 200, 50)
    env = {
        **os.environ,
        "SPIKE_BOOTSTRAP": bootstrap,
        "SPIKE_ID": spike_id,
        "SPIKE_IMPL": "faust",
        "SPIKE_PARTITIONS": str(partitions),
        "SPIKE_DATADIR": f"/tmp/spike-data-{spike_id}",
        "SPIKE_TICKS": "1",
    }
    worker = start_worker(env, Path(f"/tmp/spike-{spike_id}.log"))
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, isolation_level="read_committed")
    await consumer.start()
    parts = [TopicPartition(f"{spike_id}.output", p) for p in range(partitions)]
    consumer.assign(parts)
    await consumer.seek_to_beginning(*parts)
    key_partition: dict[str, int] = {}
    last_scan: dict[int, list[str]] = {}
    scans: defaultdict[int, int] = defaultdict(int)
    misrouted: defaultdict[bool, int] = defaultdict(int)
    deadline = time.monotonic() + 40
    while time.monotonic() < deadline and (
        len(key_partition) < 50 or min(scans.values(), default=0) < 3
    ):
        for messages in (await consumer.getmany(timeout_ms=500)).values():
            for message in messages:
                body = orjson.loads(message.value)
                if "scan" in body:
                    # faust ignores the explicit output partition (see decision 0001), so the
                    # scanned partition is taken from the record, not from where it landed.
                    misrouted[body["scan"] != message.partition] += 1
                    scans[body["scan"]] += 1
                    last_scan[body["scan"]] = body["keys"]
                else:
                    key_partition[body["key"]] = body["partition"]
    await consumer.stop()
    worker.send_signal(signal.SIGTERM)
    worker.wait(timeout=30)
    expected = defaultdict(list)
    for key, partition in key_partition.items():
        expected[partition].append(key)
    ok = all(sorted(expected[p]) == last_scan.get(p) for p in range(partitions))
    for p in range(partitions):
        print(
            f"partition {p}: {scans[p]} scans, last lists {len(last_scan.get(p, []))} keys, "
            f"expected {len(expected[p])}"
        )
    print(f"scan records on a partition other than the scanned one: {misrouted[True]}")
    print("PASS" if ok else "FAIL")
    return ok


if __name__ == "__main__":
    sys.exit(0 if asyncio.run(run(sys.argv[1])) else 1)
