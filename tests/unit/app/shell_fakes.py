"""A fake transactional producer, a fake changelog reader and consumed records, for unit
tests of the worker's parts (the store under them is a real rocksdict in a temporary
directory)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import orjson

from segstream.app.metrics import WorkerMetrics
from segstream.app.restore import open_store
from segstream.app.settings import WorkerSettings
from segstream.app.task import PartitionTask, TaskState

Reject = Callable[[str, bytes | None, bytes | None], BaseException | None]


class Record(NamedTuple):
    """What aiokafka's ConsumerRecord carries that the worker reads."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    timestamp: int = 0
    headers: tuple[tuple[str, bytes], ...] = ()


class TP(NamedTuple):
    topic: str
    partition: int


class Delivered(NamedTuple):
    topic: str
    partition: int
    offset: int


class FakeBatch:
    """What `create_batch` gives: records appended until `capacity` (None: no limit)."""

    def __init__(self, capacity: int | None) -> None:
        self.capacity = capacity
        self.records: list[tuple[bytes | None, bytes | None]] = []

    def append(
        self, *, timestamp: int | None, key: bytes | None, value: bytes | None, headers: Any
    ) -> object | None:
        if self.capacity is not None and len(self.records) >= self.capacity:
            return None
        self.records.append((key, value))
        return object()

    def close(self) -> None:
        self.capacity = len(self.records)


@dataclass
class FakeProducer:
    """Records transactions; `reject` fails a send's delivery (as the broker would). With
    `whole_batches`, a rejection fails every record of that topic in the transaction, as the
    broker fails a whole produce batch; without, every batch holds one record (as with a
    small `max_batch_size`), so a rejection fails that record only."""

    reject: Reject = lambda _topic, _key, _value: None
    whole_batches: bool = False
    committed: list[list[tuple[str, bytes | None, bytes | None]]] = field(default_factory=list)
    offsets: list[dict[Any, int]] = field(default_factory=list)
    started: int = 0
    _open: list[tuple[str, bytes | None, bytes | None]] | None = None
    _futures: list[Any] = field(default_factory=list)
    _batches: list[Any] = field(default_factory=list)
    _next_offset: int = 0

    async def start(self) -> None:
        self.started += 1

    async def stop(self) -> None:
        self._open = None

    async def begin_transaction(self) -> None:
        assert self._open is None, "a transaction is already open"
        self._open = []
        self._pending_offsets: dict[Any, int] = {}

    async def send(
        self,
        topic: str,
        key: bytes | None = None,
        value: bytes | None = None,
        partition: int | None = None,
        headers: Any = None,
    ) -> asyncio.Future[Delivered]:
        assert self._open is not None
        future: asyncio.Future[Delivered] = asyncio.get_running_loop().create_future()
        self._open.append((topic, key, value))
        self._futures.append((topic, key, value, future))
        if len(self._futures) == 1:
            # Deliveries settle once the sender has them all (after the current sends).
            asyncio.get_running_loop().call_soon(self._settle, partition or 0)
        return future

    def create_batch(self) -> FakeBatch:
        return FakeBatch(None if self.whole_batches else 1)

    async def send_batch(
        self, batch: FakeBatch, topic: str, *, partition: int
    ) -> asyncio.Future[Delivered]:
        assert self._open is not None
        future: asyncio.Future[Delivered] = asyncio.get_running_loop().create_future()
        self._open.extend((topic, key, value) for key, value in batch.records)
        self._batches.append((topic, partition, batch.records, future))
        if len(self._batches) == 1:
            asyncio.get_running_loop().call_soon(self._settle_batches)
        return future

    def _settle_batches(self) -> None:
        pending, self._batches = self._batches, []
        failed: dict[str, BaseException] = {}
        for topic, _, records, _ in pending:
            for key, value in records:
                error = self.reject(topic, key, value)
                if error is not None:
                    failed.setdefault(topic, error)
        for topic, partition, records, future in pending:
            error = None
            if self.whole_batches:
                error = failed.get(topic)
            else:
                error = next(
                    (e for k, v in records if (e := self.reject(topic, k, v)) is not None), None
                )
            if error is not None:
                future.set_exception(error)
            else:
                future.set_result(Delivered(topic, partition, self._next_offset))
                self._next_offset += len(records)

    def _settle(self, partition: int) -> None:
        pending, self._futures = self._futures, []
        errors = {id(f): self.reject(t, k, v) for t, k, v, f in pending}
        if self.whole_batches:
            for topic in {t for t, _, _, _ in pending}:
                failed = next(
                    (errors[id(f)] for t, _, _, f in pending if t == topic and errors[id(f)]),
                    None,
                )
                for t, _, _, f in pending:
                    if t == topic and failed is not None:
                        errors[id(f)] = failed
        for topic, _key, _value, future in pending:
            error = errors[id(future)]
            if error is not None:
                future.set_exception(error)
            else:
                future.set_result(Delivered(topic, partition, self._next_offset))
                self._next_offset += 1

    async def send_offsets_to_transaction(self, offsets: dict[Any, int], group_id: str) -> None:
        self._pending_offsets = dict(offsets)

    async def commit_transaction(self) -> None:
        assert self._open is not None
        self.committed.append(self._open)
        self.offsets.append(self._pending_offsets)
        self._open = None

    def sent(self, topic: str) -> list[tuple[str, bytes | None, bytes | None]]:
        """Every committed record of `topic`."""
        return [r for txn in self.committed for r in txn if r[0] == topic]


def settings_for(tmp: Path) -> WorkerSettings:
    return WorkerSettings.from_env({"SEGSTREAM_STORE_DIR": str(tmp), "SEGSTREAM_APP_ID": "t"})


def running_task(tmp: Path, producer: FakeProducer) -> PartitionTask:
    """A partition-0 task on a real store, running with `producer` (no broker)."""
    settings = settings_for(tmp)
    task = PartitionTask(0, settings, WorkerMetrics(), "t", producer_factory=lambda: producer)
    task.store = open_store(settings, tmp / task.store_name)
    task.producer = producer
    task.task_state = TaskState.RUNNING
    return task


class Feed:
    """Consumed records of one partition, with increasing offsets per topic."""

    def __init__(self, task: PartitionTask) -> None:
        self.topics = task.topics
        self._offsets: dict[str, int] = {}

    def _record(self, topic: str, key: bytes | None, value: bytes) -> Record:
        offset = self._offsets.get(topic, 0)
        self._offsets[topic] = offset + 1
        return Record(topic, 0, offset, key, value)

    def segment(self, sid: str, condition: dict[str, Any], version: int = 1) -> Record:
        body = {
            "kind": "segment",
            "record": {"id": sid, "name": sid, "condition": condition, "version": version},
        }
        return self._record(self.topics.control, sid.encode(), orjson.dumps(body))

    def traits(self, pid: str, eid: str, at: str, **traits: Any) -> Record:
        event = {"id": eid, "type": "profile.updated", "profile_id": pid, "at": at}
        return self._record(
            self.topics.profiles, pid.encode(), orjson.dumps(event | {"traits": traits})
        )

    def view(self, pid: str, eid: str, at: str, **properties: Any) -> Record:
        event = {"id": eid, "type": "page.viewed", "profile_id": pid, "at": at}
        return self._record(
            self.topics.activity, pid.encode(), orjson.dumps(event | {"properties": properties})
        )

    def deletion(self, pid: str, eid: str, at: str) -> Record:
        event = {"id": eid, "type": "profile.deleted", "profile_id": pid, "at": at}
        return self._record(self.topics.profiles, pid.encode(), orjson.dumps(event))


def batch(*records: Record) -> list[tuple[Any, list[Any]]]:
    """Records grouped per topic-partition, in order, as the consumer hands them over."""
    grouped: dict[TP, list[Any]] = {}
    for record in records:
        grouped.setdefault(TP(record.topic, record.partition), []).append(record)
    return list(grouped.items())


class FakeChangelogReader:
    """A changelog partition as a consumer reads it: `records`, two per fetch. With `end`,
    the partition ends there instead; with `fail`, a fetch raises it (a broker gone)."""

    def __init__(
        self, records: list[Any], *, end: int | None = None, fail: BaseException | None = None
    ) -> None:
        self._records = records
        self._end = len(records) if end is None else end
        self._fail = fail
        self._position = 0

    async def start(self) -> None:
        pass

    async def stop(self) -> None:
        pass

    def assign(self, _tps: list[Any]) -> None:
        pass

    async def end_offsets(self, tps: list[Any]) -> dict[Any, int]:
        return {tp: self._end for tp in tps}

    def seek(self, _tp: Any, offset: int) -> None:
        self._position = offset

    async def position(self, _tp: Any) -> int:
        return self._position

    async def getmany(self, tp: Any, timeout_ms: int, max_records: int) -> dict[Any, list[Any]]:
        if self._fail is not None:
            raise self._fail
        chunk = self._records[self._position : self._position + min(max_records, 2)]
        self._position += len(chunk)
        return {tp: chunk}
