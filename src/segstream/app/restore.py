"""Restoring a partition's store from its changelog topic (Kafka Streams' changelog reader).

The store records the last changelog offset it reflects; a restore reads the committed
changelog records after it up to the topic's end and applies them. On an empty disk that is
the whole changelog; after a clean stop or a crash of the same worker, only what others wrote.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from segstream.app.migrate import MIGRATE_COMMAND, UnmigratedChangelog
from segstream.app.readers import committed_reader
from segstream.app.settings import WorkerSettings
from segstream.app.store import PartitionStore

__all__ = ["open_store", "restore_store"]

log = logging.getLogger("segstream.restore")

#: Changelog records applied per RocksDB write batch while restoring.
RESTORE_FETCH_RECORDS = 5000


def open_store(settings: WorkerSettings, path: Path) -> PartitionStore:
    """Open (or create) a partition's RocksDB store with the worker's settings."""
    return PartitionStore(
        path,
        block_cache_bytes=settings.rocksdb_block_cache_bytes,
        write_buffer_bytes=settings.rocksdb_write_buffer_bytes,
    )


async def restore_store(
    settings: WorkerSettings, partition: int, store: PartitionStore, reader: Any = None
) -> tuple[PartitionStore, int]:
    """Bring `store` up to the end of partition `partition` of the changelog; returns the store
    to use (a new one when it had to be rebuilt) and how many records were applied.
    `reader`: an unstarted consumer to read with (default: a read_committed one).

    When it fails or is cancelled it closes the store it rebuilt, if it did; `store` stays the
    caller's to close. (A store left open to the garbage collector keeps its directory locked:
    the partition could not open again in this process until a full collection.)"""
    from aiokafka import TopicPartition

    given = store
    tp = TopicPartition(settings.topics.changelog, partition)
    if reader is None:
        reader = committed_reader(settings, max_record_bytes=settings.changelog_max_message_bytes)
    await reader.start()
    try:
        reader.assign([tp])
        end = (await reader.end_offsets([tp]))[tp]
        store, start = _starting_point(settings, partition, store, end)
        applied = await _apply_changelog(settings, partition, reader, tp, store, start, end)
        store.mark_format()
        if applied:
            log.info(
                "partition %d: restored %d changelog records from offset %d",
                partition,
                applied,
                start,
            )
        return store, applied
    except BaseException:
        if store is not given:
            store.close()
        raise
    finally:
        await reader.stop()


def _starting_point(
    settings: WorkerSettings, partition: int, store: PartitionStore, end: int
) -> tuple[PartitionStore, int]:
    """The store to restore into (a new one when `store` cannot be caught up) and the
    changelog offset to read from."""
    stored = store.changelog_offset()
    start = stored + 1 if stored is not None else 0
    if store.stored_format() == 1:
        # Its offsets are those of the old changelog: the new one has all it held.
        log.warning("partition %d: the store is of format 1, rebuilding", partition)
        return _rebuilt(settings, store), 0
    if start > end:
        # The store is ahead of its changelog (a recreated topic): rebuild from it.
        log.warning("partition %d: store ahead of changelog, rebuilding", partition)
        return _rebuilt(settings, store), 0
    return store, start


async def _apply_changelog(
    settings: WorkerSettings,
    partition: int,
    reader: Any,
    tp: Any,
    store: PartitionStore,
    start: int,
    end: int,
) -> int:
    """Apply the changelog from `start` to `end` to `store`; the records applied."""
    reader.seek(tp, start)
    applied = 0
    while await reader.position(tp) < end:
        fetched = await reader.getmany(tp, timeout_ms=500, max_records=RESTORE_FETCH_RECORDS)
        messages = fetched.get(tp, [])
        if not messages:
            continue
        try:
            # The last value of each key (a dict keeps the latest).
            latest = {m.key: m.value for m in messages}
            store.apply_changelog(latest, messages[-1].offset)
        except ValueError as exc:  # a head of another format
            raise UnmigratedChangelog(
                f"partition {partition} of {settings.topics.changelog!r}: {exc}; "
                f"migrate it into a new changelog topic with `{MIGRATE_COMMAND}`"
            ) from exc
        applied += len(messages)
    return applied


def _rebuilt(settings: WorkerSettings, store: PartitionStore) -> PartitionStore:
    path = store.path
    store.close()
    PartitionStore.destroy(path)
    return open_store(settings, path)
