"""`segstream worker` against a real broker: input topics -> agent -> RocksDB table -> output."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import orjson
import pytest

from segstream.app.settings import WorkerSettings
from segstream.app.topics import create_topics, topic_specs

pytestmark = pytest.mark.kafka

ROUND_TRIP_DEADLINE_S = 60.0


def worker_env(bootstrap: str, prefix: str, store_dir: Path) -> dict[str, str]:
    """Environment for a worker on its own topics, tuned to join and commit fast."""
    return {
        **os.environ,
        "SEGSTREAM_KAFKA_BOOTSTRAP": bootstrap,
        "SEGSTREAM_TOPIC_PREFIX": prefix,
        "SEGSTREAM_PARTITIONS": "2",
        "SEGSTREAM_STORE_DIR": str(store_dir),
        "SEGSTREAM_WEB_ENABLED": "0",
        "SEGSTREAM_SESSION_TIMEOUT_S": "10",
        "SEGSTREAM_HEARTBEAT_INTERVAL_S": "1",
        "SEGSTREAM_COMMIT_INTERVAL_S": "0.5",
        "SEGSTREAM_LOG_LEVEL": "warning",
    }


async def produce(bootstrap: str, records: list[tuple[str, bytes, bytes]]) -> None:
    """Send (topic, key, value) records and wait until the broker has them."""
    from aiokafka import AIOKafkaProducer

    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        for topic, key, value in records:
            await producer.send_and_wait(topic, key=key, value=value)
    finally:
        await producer.stop()


async def collect_counts(bootstrap: str, topic: str, wanted: dict[str, int]) -> dict[str, int]:
    """Read committed output until each profile's count reaches `wanted` or time runs out."""
    from aiokafka import AIOKafkaConsumer

    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=f"{topic}-reader",
        auto_offset_reset="earliest",
        isolation_level="read_committed",
    )
    latest: dict[str, int] = {}
    await consumer.start()
    try:
        deadline = time.monotonic() + ROUND_TRIP_DEADLINE_S
        while time.monotonic() < deadline and any(
            latest.get(profile, 0) < count for profile, count in wanted.items()
        ):
            batches = await consumer.getmany(timeout_ms=500)
            for messages in batches.values():
                for message in messages:
                    body = orjson.loads(message.value)
                    latest[body["profile_id"]] = body["records_seen"]
    finally:
        await consumer.stop()
    return latest


def test_worker_counts_records_from_both_inputs(kafka_bootstrap: str, tmp_path: Path) -> None:
    prefix = f"it-{uuid.uuid4().hex[:8]}"
    env = worker_env(kafka_bootstrap, prefix, tmp_path / "store")
    settings = WorkerSettings.from_env(env)
    asyncio.run(create_topics(kafka_bootstrap, topic_specs(settings)))
    names = settings.topics
    log_path = tmp_path / "worker.log"
    with log_path.open("wb") as log:
        worker = subprocess.Popen(
            [sys.executable, "-c", "from segstream.cli import main; main()", "worker"],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        asyncio.run(
            produce(
                kafka_bootstrap,
                [(names.profiles, b"p1", b'{"n": %d}' % n) for n in range(3)]
                + [(names.activity, b"p1", b'{"n": %d}' % n) for n in range(2)]
                + [(names.activity, b"p2", b'{"n": 0}')],
            )
        )
        counts = asyncio.run(collect_counts(kafka_bootstrap, names.membership, {"p1": 5, "p2": 1}))
        assert counts == {"p1": 5, "p2": 1}, worker_log_tail(log_path)
    finally:
        worker.send_signal(signal.SIGTERM)
        try:
            worker.wait(timeout=60)
        except subprocess.TimeoutExpired:
            worker.kill()
            worker.wait()
            pytest.fail(f"worker ignored SIGTERM for 60 s\n{worker_log_tail(log_path)}")
    assert worker.returncode == 0, worker_log_tail(log_path)


def worker_log_tail(path: Path, lines: int = 60) -> str:
    """The end of the worker's log, for failure messages."""
    text = path.read_text(errors="replace").splitlines()
    return "worker log (tail):\n" + "\n".join(text[-lines:])
