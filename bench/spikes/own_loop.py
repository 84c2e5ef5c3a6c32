"""Spike: our own aiokafka loop with one transaction per partition batch (changelog+output+offsets).

    SPIKE_BOOTSTRAP=... SPIKE_ID=... SPIKE_DATADIR=... python bench/spikes/own_loop.py

Same input/output contract as spike_app.py. Per partition: a RocksDB (rocksdict) store, a
changelog partition, and a transactional producer `<id>-own-<partition>`. A batch is one
transaction: output records, changelog records and the consumer offsets. Local RocksDB writes
are applied only after the commit, together with the changelog offset they reach; on start
each partition's store is caught up from its changelog (read_committed), so a crash anywhere
leaves store, output and offsets consistent.
"""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from rocksdict import Options, Rdict, WriteBatch

BOOTSTRAP = os.environ.get("SPIKE_BOOTSTRAP", "127.0.0.1:9092")
SPIKE_ID = os.environ.get("SPIKE_ID", "spike")
PARTITIONS = int(os.environ.get("SPIKE_PARTITIONS", "2"))
DATADIR = Path(os.environ.get("SPIKE_DATADIR", f"/tmp/spike-data-{SPIKE_ID}"))
TABLE_WRITE = os.environ.get("SPIKE_TABLE_WRITE", "1") == "1"
TRANSACTIONAL = os.environ.get("SPIKE_GUARANTEE", "exactly_once") == "exactly_once"
OFFSET_KEY = b"\x00changelog-offset"
GROUP = f"{SPIKE_ID}-own"
INPUT = f"{SPIKE_ID}.input"
OUTPUT = f"{SPIKE_ID}.output"
CHANGELOG = f"{SPIKE_ID}-own-counts-changelog"


def open_store(partition: int) -> Rdict:
    options = Options(raw_mode=True)
    options.create_if_missing(True)
    return Rdict(str(DATADIR / f"counts-{partition}.db"), options)


async def restore(store: Rdict, partition: int) -> None:
    """Apply the changelog from the offset after the last one this store holds to its end."""
    stored = store.get(OFFSET_KEY)
    start = int(stored) + 1 if stored is not None else 0
    tp = TopicPartition(CHANGELOG, partition)
    reader = AIOKafkaConsumer(
        bootstrap_servers=BOOTSTRAP, isolation_level="read_committed", enable_auto_commit=False
    )
    await reader.start()
    reader.assign([tp])
    end = (await reader.end_offsets([tp]))[tp]
    reader.seek(tp, start)
    applied = 0
    while await reader.position(tp) < end:
        batch = WriteBatch(raw_mode=True)
        last = -1
        for messages in (await reader.getmany(tp, timeout_ms=200)).values():
            for message in messages:
                batch.put(message.key, message.value)
                last = message.offset
                applied += 1
        if last >= 0:
            batch.put(OFFSET_KEY, str(last).encode())
            store.write(batch)
    await reader.stop()
    print(f"restored partition {partition}: {applied} changelog records from {start}", flush=True)


async def main() -> None:
    DATADIR.mkdir(parents=True, exist_ok=True)
    admin = AIOKafkaAdminClient(bootstrap_servers=BOOTSTRAP)
    await admin.start()
    await admin.create_topics(
        [NewTopic(CHANGELOG, PARTITIONS, 1, topic_configs={"cleanup.policy": "compact"})]
    )
    await admin.close()
    # One transactional producer per partition: initialising it fences a zombie with the same
    # id and aborts its open transaction, so the changelog's end is stable before restore.
    producers: dict[int, AIOKafkaProducer] = {}
    for partition in range(PARTITIONS):
        producer = AIOKafkaProducer(
            bootstrap_servers=BOOTSTRAP,
            transactional_id=f"{SPIKE_ID}-own-{partition}" if TRANSACTIONAL else None,
            enable_idempotence=True,
            linger_ms=5,
            max_batch_size=256 * 1024,
        )
        await producer.start()
        producers[partition] = producer
    stores = {p: open_store(p) for p in range(PARTITIONS)}
    for partition, store in stores.items():
        await restore(store, partition)
    consumer = AIOKafkaConsumer(
        INPUT,
        bootstrap_servers=BOOTSTRAP,
        group_id=GROUP,
        isolation_level="read_committed",
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        max_poll_records=2000,
        session_timeout_ms=10000,
        heartbeat_interval_ms=1000,
    )
    await consumer.start()
    processed = 0
    started = time.monotonic()
    while True:
        batches = await consumer.getmany(timeout_ms=200, max_records=2000)
        for tp, messages in batches.items():
            partition = tp.partition
            producer = producers[partition]
            store = stores[partition]
            staged: dict[bytes, int] = {}
            futures = []
            if TRANSACTIONAL:
                await producer.begin_transaction()
            for message in messages:
                body = orjson.loads(message.value)
                count = 0
                if TABLE_WRITE:
                    previous = staged.get(message.key)
                    if previous is None:
                        raw = store.get(message.key)
                        previous = int(raw) if raw is not None else 0
                    count = previous + 1
                    staged[message.key] = count
                    futures.append(
                        await producer.send(
                            CHANGELOG,
                            key=message.key,
                            value=str(count).encode(),
                            partition=partition,
                        )
                    )
                futures.append(
                    await producer.send(
                        OUTPUT,
                        key=message.key,
                        value=orjson.dumps(
                            {
                                "seq": body["seq"],
                                "key": message.key.decode(),
                                "count": count,
                                "partition": partition,
                            }
                        ),
                        partition=partition,
                    )
                )
            offsets = {tp: messages[-1].offset + 1}
            if TRANSACTIONAL:
                await producer.send_offsets_to_transaction(offsets, GROUP)
                await producer.commit_transaction()
            else:
                await asyncio.gather(*futures)
                await consumer.commit(offsets)
            metadata = await asyncio.gather(*futures) if TABLE_WRITE else []
            if TABLE_WRITE:
                write = WriteBatch(raw_mode=True)
                for key, count in staged.items():
                    write.put(key, str(count).encode())
                changelog_offsets = [m.offset for m in metadata if m.topic == CHANGELOG]
                write.put(OFFSET_KEY, str(max(changelog_offsets)).encode())
                store.write(write)
            processed += len(messages)
        if processed and not batches:
            rate = processed / (time.monotonic() - started)
            print(f"processed {processed} ({rate:.0f}/s)", flush=True)


if __name__ == "__main__":
    asyncio.run(main())
