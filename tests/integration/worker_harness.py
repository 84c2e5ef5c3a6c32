"""Runs real `segstream worker` processes against the test broker and reads their output."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from segstream.app.settings import WorkerSettings
from segstream.app.topics import create_topics, topic_specs

SEGSTREAM = str(Path(sys.executable).with_name("segstream"))
_WEB = re.compile(r"web listening on (http://[0-9.]+:[0-9]+)")


class WorkerCluster:
    """One application (a topic prefix and a group) and the worker processes running it."""

    #: The `segstream` arguments that start one worker (the Faust harness runs another runtime).
    worker_command: tuple[str, ...] = ("worker",)

    def __init__(self, bootstrap: str, tmp: Path, partitions: int = 2, **extra: str) -> None:
        self.prefix = f"t{uuid.uuid4().hex[:8]}"
        self.tmp = tmp
        self.env = {
            **os.environ,
            "SEGSTREAM_KAFKA_BOOTSTRAP": bootstrap,
            "SEGSTREAM_TOPIC_PREFIX": self.prefix,
            "SEGSTREAM_PARTITIONS": str(partitions),
            "SEGSTREAM_WEB_PORT": "0",
            "SEGSTREAM_SESSION_TIMEOUT_S": "6",
            "SEGSTREAM_HEARTBEAT_INTERVAL_S": "1",
            "SEGSTREAM_TICK_INTERVAL_S": "0.2",
            **extra,
        }
        self.settings = WorkerSettings.from_env(self.env)
        self.bootstrap = bootstrap
        self.partitions = partitions
        self.processes: dict[str, subprocess.Popen[bytes]] = {}

    def topic(self, name: str) -> str:
        """A topic name of this application."""
        return f"{self.prefix}.{name}"

    async def create_topics(self) -> None:
        """Create every topic the worker uses."""
        await create_topics(self.settings.client_kwargs(), topic_specs(self.settings))

    def start(self, name: str = "w1", store: str | None = None) -> None:
        """Start a worker process (its store under tmp/<store or name>)."""
        env = {
            **self.env,
            "SEGSTREAM_STORE_DIR": str(self.tmp / (store or name)),
            "SEGSTREAM_WORKER_ID": name,
        }
        with (self.tmp / f"{name}.log").open("ab") as log:
            self.processes[name] = subprocess.Popen(
                [SEGSTREAM, *self.worker_command], env=env, stdout=log, stderr=log
            )

    def log(self, name: str = "w1") -> str:
        """A worker's log so far."""
        return (self.tmp / f"{name}.log").read_text(errors="replace")

    def web_url(self, name: str = "w1", timeout: float = 30) -> str:
        """The worker's web address, from its log."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = _WEB.findall(self.log(name))
            if found:
                return str(found[-1])
            time.sleep(0.1)
        raise AssertionError(f"worker {name} did not start its web server:\n{self.log(name)}")

    def wait_ready(self, name: str = "w1", timeout: float = 60) -> str:
        """Wait until /readyz answers 200; returns the web address."""
        url = self.web_url(name, timeout)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"{url}/readyz", timeout=2) as response:
                    if response.status == 200:
                        return url
            except OSError:
                pass
            time.sleep(0.2)
        raise AssertionError(f"worker {name} never became ready:\n{self.log(name)}")

    def kill(self, name: str = "w1") -> None:
        """kill -9."""
        process = self.processes.pop(name)
        process.kill()
        process.wait(10)

    def stop(self, name: str = "w1", timeout: float = 30) -> int:
        """SIGTERM and wait; returns the exit code. A worker that has not exited in `timeout`
        stays in `processes` (for `kill`) and the TimeoutExpired propagates."""
        process = self.processes[name]
        process.send_signal(signal.SIGTERM)
        code = process.wait(timeout)
        del self.processes[name]
        return code

    def stop_all(self) -> None:
        """Stop every worker still running. One that does not stop in time is asked where it
        waits (SIGUSR1: the task dump in its log, app/worker.py), killed, and its log's tail
        printed: the test's report then says why, instead of a warning about a live Popen."""
        for name in list(self.processes):
            try:
                self.stop(name, timeout=30)
            except subprocess.TimeoutExpired:
                process = self.processes[name]
                if self.worker_command == ("worker",):
                    process.send_signal(signal.SIGUSR1)
                    time.sleep(1)
                self.kill(name)
                tail = "\n".join(self.log(name).splitlines()[-80:])
                print(f"worker {name} did not stop in 30 s; killed. Its log ends:\n{tail}",
                      file=sys.stderr)  # fmt: skip

    # -- Kafka I/O ---------------------------------------------------------------------------
    async def produce(
        self, records: Iterable[dict[str, Any] | tuple[str, bytes | None, bytes]]
    ) -> int:
        """Produce input events to their topic (profile events -> profiles, others -> activity);
        a (topic, key, value) tuple is produced as it is."""
        producer = AIOKafkaProducer(
            bootstrap_servers=self.bootstrap,
            enable_idempotence=True,
            linger_ms=5,
            max_request_size=3 * 1024 * 1024,
        )
        await producer.start()
        futures = []
        try:
            for record in records:
                if isinstance(record, tuple):
                    topic, key, value = record
                else:
                    kind = "profiles" if record["type"].startswith("profile.") else "activity"
                    topic, key = self.topic(kind), record["profile_id"].encode()
                    value = orjson.dumps(record)
                futures.append(await producer.send(topic, key=key, value=value))
            await asyncio.gather(*futures)
        finally:
            await producer.stop()
        return len(futures)

    async def read(
        self, name: str, *, until_quiet: float = 4.0, timeout: float = 90.0, at_least: int = 0
    ) -> list[Any]:
        """Read a topic from the beginning (read_committed) until nothing new for
        `until_quiet` seconds (and at least `at_least` records), or `timeout`."""
        consumer = AIOKafkaConsumer(
            bootstrap_servers=self.bootstrap, isolation_level="read_committed"
        )
        await consumer.start()
        try:
            # The segments and status topics have one partition; the others N.
            count = 1 if name in ("segments", "status") else self.partitions
            parts = [TopicPartition(self.topic(name), p) for p in range(count)]
            consumer.assign(parts)
            await consumer.seek_to_beginning(*parts)
            records: list[Any] = []
            deadline = time.monotonic() + timeout
            last_new = time.monotonic()
            while time.monotonic() < deadline:
                fetched = await consumer.getmany(timeout_ms=300)
                for messages in fetched.values():
                    records.extend(messages)
                if fetched:
                    last_new = time.monotonic()
                elif time.monotonic() - last_new > until_quiet and len(records) >= at_least:
                    break
            return records
        finally:
            await consumer.stop()

    async def memberships(self, **kwargs: Any) -> list[dict[str, Any]]:
        """Every membership event committed so far."""
        return [orjson.loads(m.value) for m in await self.read("membership", **kwargs)]
