"""Spike: events/s of one worker process, from a pre-filled input topic to committed output.

    python bench/spikes/throughput.py BOOTSTRAP --impl own|faust --guarantee G --table-write 0|1

The input (default 200k records of ~300 bytes, 4 partitions) is written first; the clock runs
from the first output record to the last, read with read_committed by this process.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import subprocess
import time
import uuid
from pathlib import Path

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from eos_kill import create_topics, start_worker

PAD = "x" * 270


async def fill(bootstrap: str, spike_id: str, records: int, keys: int) -> None:
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, linger_ms=20, max_batch_size=512 * 1024, acks=1
    )
    await producer.start()
    pending = []
    for seq in range(records):
        value = orjson.dumps({"seq": seq, "pad": PAD})
        pending.append(
            await producer.send(f"{spike_id}.input", key=f"k{seq % keys}".encode(), value=value)
        )
        if len(pending) >= 5000:
            await asyncio.gather(*pending)
            pending.clear()
    await asyncio.gather(*pending)
    await producer.stop()


async def run(args: argparse.Namespace) -> None:
    spike_id = f"tp-{args.impl}-{uuid.uuid4().hex[:6]}"
    await create_topics(args.bootstrap, spike_id, args.partitions)
    await fill(args.bootstrap, spike_id, args.records, args.keys)
    env = {
        **os.environ,
        "SPIKE_BOOTSTRAP": args.bootstrap,
        "SPIKE_ID": spike_id,
        "SPIKE_IMPL": args.impl,
        "SPIKE_PARTITIONS": str(args.partitions),
        "SPIKE_DATADIR": f"/tmp/spike-data-{spike_id}",
        "SPIKE_GUARANTEE": args.guarantee,
        "SPIKE_TABLE_WRITE": str(args.table_write),
    }
    consumer = AIOKafkaConsumer(
        bootstrap_servers=args.bootstrap, isolation_level="read_committed", fetch_max_bytes=16 << 20
    )
    await consumer.start()
    parts = [TopicPartition(f"{spike_id}.output", p) for p in range(args.partitions)]
    consumer.assign(parts)
    await consumer.seek_to_beginning(*parts)
    launched = time.monotonic()
    worker = start_worker(env, Path(f"/tmp/spike-{spike_id}.log"))
    received = 0
    first = last = 0.0
    deadline = time.monotonic() + args.timeout
    while received < args.records and time.monotonic() < deadline:
        for messages in (await consumer.getmany(timeout_ms=500, max_records=10000)).values():
            if not first:
                first = time.monotonic()
            received += len(messages)
            last = time.monotonic()
    await consumer.stop()
    worker.send_signal(signal.SIGTERM)
    try:
        worker.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(worker.pid, signal.SIGKILL)
    rate = received / (last - first) if last > first else 0.0
    print(
        f"{args.impl:5} guarantee={args.guarantee:13} table_write={args.table_write}: "
        f"{received}/{args.records} in {last - first:.1f}s -> {rate:,.0f} events/s "
        f"(start-up {first - launched:.1f}s)"
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("bootstrap")
    parser.add_argument("--impl", choices=("faust", "own"), default="own")
    parser.add_argument("--guarantee", default="exactly_once")
    parser.add_argument("--table-write", type=int, default=1)
    parser.add_argument("--records", type=int, default=200_000)
    parser.add_argument("--keys", type=int, default=10_000)
    parser.add_argument("--partitions", type=int, default=4)
    parser.add_argument("--timeout", type=float, default=600)
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
