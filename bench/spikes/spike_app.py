"""Spike: a faust app with a RocksDB table, exactly-once output, and in-band control records.

Throwaway code for docs/decisions/0001-stream-design.md. Run as a faust worker:
    SPIKE_BOOTSTRAP=127.0.0.1:19092 SPIKE_ID=s1 python bench/spikes/spike_app.py worker -l warn
Input records: key = profile key, value = {"seq": n}. For each one the agent bumps the
key's count in the table and emits {"seq", "key", "count", "partition"} to the output.
Control records (topic SPIKE_ID.control, sent by the ticker to an explicit partition) make the
agent scan *only that partition's* RocksDB store and emit {"scan": partition, "keys": [...]}.
"""

from __future__ import annotations

import os

import faust
import orjson

BOOTSTRAP = os.environ.get("SPIKE_BOOTSTRAP", "127.0.0.1:9092")
SPIKE_ID = os.environ.get("SPIKE_ID", "spike")
PARTITIONS = int(os.environ.get("SPIKE_PARTITIONS", "2"))
GUARANTEE = os.environ.get("SPIKE_GUARANTEE", "exactly_once")
DATADIR = os.environ.get("SPIKE_DATADIR", f"/tmp/spike-data-{SPIKE_ID}")
TICKS = os.environ.get("SPIKE_TICKS", "0") == "1"
TABLE_WRITE = os.environ.get("SPIKE_TABLE_WRITE", "1") == "1"

app = faust.App(
    SPIKE_ID,
    broker=f"kafka://{BOOTSTRAP}",
    store="rocksdb://",
    datadir=DATADIR,
    processing_guarantee=GUARANTEE,
    topic_partitions=PARTITIONS,
    topic_replication_factor=1,
    broker_session_timeout=10,
    broker_heartbeat_interval=1,
    broker_commit_interval=float(os.environ.get("SPIKE_COMMIT_INTERVAL", "1.0")),
    broker_commit_every=int(os.environ.get("SPIKE_COMMIT_EVERY", "10000")),
    stream_buffer_maxsize=int(os.environ.get("SPIKE_BUFFER", "4096")),
    producer_linger=float(os.environ.get("SPIKE_LINGER", "0.005")),
    consumer_auto_offset_reset="earliest",
    web_enabled=False,
)
inputs_and_control = app.topic(
    f"{SPIKE_ID}.input",
    f"{SPIKE_ID}.control",
    key_serializer="raw",
    value_serializer="raw",
    partitions=PARTITIONS,
)
output = app.topic(
    f"{SPIKE_ID}.output", key_serializer="raw", value_serializer="raw", partitions=PARTITIONS
)
counts = app.Table(
    "counts",
    default=int,
    partitions=PARTITIONS,
    key_type=bytes,
    value_type=int,
    options={"driver": "rocksdict", "block_cache_size": 8 << 20},
)


def scan_partition(partition: int) -> list[str]:
    """Keys stored in this partition's RocksDB DB only (faust keeps one DB per partition)."""
    store = counts.data  # faust.stores.rocksdb.Store
    db = store._db_for_partition(partition)
    return sorted(key.decode() for key, _ in store._visible_items(db))


@app.agent(inputs_and_control)
async def process(stream):  # type: ignore[no-untyped-def]
    async for event in stream.events():
        message = event.message
        if message.topic.endswith(".control"):
            keys = scan_partition(message.partition)
            await output.send(
                key=b"scan",
                value=orjson.dumps({"scan": message.partition, "keys": keys}),
                partition=message.partition,
            )
            continue
        body = orjson.loads(event.value)
        if TABLE_WRITE:
            count = counts[event.key] + 1
            counts[event.key] = count
        else:
            count = 0
        await output.send(
            key=event.key,
            value=orjson.dumps(
                {
                    "seq": body["seq"],
                    "key": event.key.decode(),
                    "count": count,
                    "partition": message.partition,
                }
            ),
            partition=message.partition,
        )


if TICKS:
    from aiokafka import AIOKafkaProducer

    _ticker: dict[str, AIOKafkaProducer] = {}

    @app.timer(interval=1.0)
    async def tick() -> None:
        # A plain (non-transactional) producer outside the stream: control records are
        # idempotent requests ("scan now"), the processing of them is what is exactly-once.
        if "p" not in _ticker:
            _ticker["p"] = AIOKafkaProducer(bootstrap_servers=BOOTSTRAP)
            await _ticker["p"].start()
        for partition in range(PARTITIONS):
            await _ticker["p"].send_and_wait(
                f"{SPIKE_ID}.control", key=b"tick", value=b"{}", partition=partition
            )


if __name__ == "__main__":
    app.main()
