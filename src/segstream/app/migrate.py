"""Upgrading stores and changelogs from format 1 (a profile's whole state in one record) to the
keyed layout of format 2 (`segstream.state.layout`).

Format 2 lives in a changelog topic of its own (`<prefix>.state-changelog-v2`), so a worker of
the old version never reads records it does not understand. `segstream migrate` reads each
partition of the format-1 changelog (`<prefix>.state-changelog`), converts every profile and
copies the partition meta, and writes the result to the new topic's partition in one Kafka
transaction, ending with a format marker and a migration marker (`MIGRATED_KEY`: the old
partition's end offset converted, and the pass number): a partition is migrated entirely or
not at all.

It may run while workers of the old version still write the old changelog: run it again
once they are stopped, and each partition whose old changelog grew since is caught up — only
the records after the converted offset are read, and each profile they change is written
whole in a new generation (pass number), with a sweep mark, so that whatever the previous
pass wrote for it is never read again and is swept by the new workers. A partition whose new
changelog has records after the marker (format-2 workers run on it) is left alone.

A worker refuses to start while a partition of the old changelog holds records the new one
does not have (`unmigrated_partitions`: never migrated, or grown since the last pass). Local
stores of format 1 are rebuilt from the new changelog.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

from segstream.app.readers import committed_reader
from segstream.app.settings import WorkerSettings
from segstream.app.store import FORMAT_KEY
from segstream.errors import SegstreamError
from segstream.schemas.jsontext import dumps, loads_exact
from segstream.state.codec import decode_profile
from segstream.state.layout import (
    FORMAT,
    HEAD_PREFIX,
    Records,
    from_old_state,
    head_key,
    profile_records,
    sweep_key,
)

__all__ = [
    "MIGRATED_KEY",
    "MIGRATE_COMMAND",
    "UnmigratedChangelog",
    "check_migrated",
    "convert_records",
    "legacy_changelog",
    "migrate_changelog",
    "unmigrated_partitions",
]

log = logging.getLogger("segstream.migrate")

#: What an operator runs to upgrade (named in every refusal).
MIGRATE_COMMAND = "segstream migrate"
_META = b"m"
_NEW_SUFFIX = "-v2"
#: Written last by every migration pass: [old changelog end offset converted, pass number]
#: (a meta-family key: a restore keeps it in the store's metadata).
MIGRATED_KEY = b"\x00migrated"


class UnmigratedChangelog(SegstreamError):
    """A format-1 changelog holds data the format-2 changelog does not have yet."""


def legacy_changelog(settings: WorkerSettings) -> str:
    """The format-1 changelog topic of a deployment (the new name without its `-v2`)."""
    name = settings.topics.changelog
    return name[: -len(_NEW_SUFFIX)] if name.endswith(_NEW_SUFFIX) else f"{name}.format1"


def convert_records(
    records: Iterable[tuple[bytes, bytes | None]], *, generation: int = 0
) -> Records:
    """The format-2 records of a format-1 changelog partition (read in offset order): each
    profile's latest state as keyed parts, the meta entries as they are, then the marker.
    A catch-up pass (`generation` > 0, the records after the previous pass) writes each
    profile in that generation with a sweep mark, and copies deletions too."""
    latest: dict[bytes, bytes | None] = {}
    for key, value in records:
        latest[key] = value
    converted: Records = []
    for key, value in latest.items():
        if key[:1] == HEAD_PREFIX:
            pid = key[1:].decode()
            if generation:
                # Whatever an earlier pass wrote for the profile is left to the sweep.
                converted.append((sweep_key(pid), str(generation).encode()))
            if value is None:
                if generation:
                    converted.append((head_key(pid), None))
                continue
            state = from_old_state(decode_profile(value))
            state.generation = generation
            converted.extend(profile_records(pid, state, None))
        elif key[:1] == _META and (value is not None or generation):
            converted.append((key, value))
    converted.append((FORMAT_KEY, str(FORMAT).encode()))
    return converted


async def _end_offsets(reader: Any, topic: str) -> dict[int, int]:
    from aiokafka import TopicPartition

    partitions = reader.partitions_for_topic(topic)
    if partitions is None:
        await reader._client.force_metadata_update()
        partitions = reader.partitions_for_topic(topic)
    if not partitions:
        return {}
    tps = [TopicPartition(topic, p) for p in sorted(partitions)]
    ends = await reader.end_offsets(tps)
    return {tp.partition: ends[tp] for tp in tps}


async def _topic_exists(settings: WorkerSettings, topic: str) -> bool:
    from aiokafka.admin import AIOKafkaAdminClient

    admin = AIOKafkaAdminClient(**settings.client_kwargs())
    await admin.start()
    try:
        return topic in await admin.list_topics()
    finally:
        await admin.close()


async def _migration_marker(
    reader: Any, topic: str, partition: int, end: int
) -> tuple[int, int] | None:
    """(old end offset converted, pass) when the last record of a new changelog partition
    is a migration marker (no format-2 worker wrote after the migration), else None."""
    from aiokafka import TopicPartition

    tp = TopicPartition(topic, partition)
    reader.assign([tp])
    # The marker is the last record of the migration's transaction, before its commit marker.
    reader.seek(tp, max(0, end - 2))
    last = None
    while await reader.position(tp) < end:
        for message in (await reader.getmany(tp, timeout_ms=500)).get(tp, []):
            last = message
    if last is None or last.key != MIGRATED_KEY or last.value is None:
        return None
    converted, passes = loads_exact(last.value)
    return int(converted), int(passes)


async def unmigrated_partitions(settings: WorkerSettings) -> list[int]:
    """Partitions whose format-1 changelog holds records the new one does not have: never
    migrated, or grown since the last migration pass (old workers still ran)."""
    legacy = legacy_changelog(settings)
    if not await _topic_exists(settings, legacy):
        return []
    reader = committed_reader(settings)
    await reader.start()
    try:
        old = await _end_offsets(reader, legacy)
        new = await _end_offsets(reader, settings.topics.changelog)
        pending = []
        for p, end in old.items():
            if end == 0:
                continue
            if new.get(p, 0) == 0:
                pending.append(p)
                continue
            marker = await _migration_marker(reader, settings.topics.changelog, p, new[p])
            if marker is not None and marker[0] < end:
                pending.append(p)
    finally:
        await reader.stop()
    return pending


async def check_migrated(settings: WorkerSettings) -> None:
    """Raise UnmigratedChangelog, naming the command, when a partition needs migrating."""
    pending = await unmigrated_partitions(settings)
    if pending:
        raise UnmigratedChangelog(
            f"the changelog {legacy_changelog(settings)!r} holds profile state in the old "
            f"format (partitions {', '.join(map(str, pending))}) that "
            f"{settings.topics.changelog!r} does not have yet: stop every worker of the old "
            f"version and run `{MIGRATE_COMMAND}` (docs/operations.md, Upgrading)"
        )


async def _read(reader: Any, topic: str, partition: int, start: int, end: int) -> Records:
    from aiokafka import TopicPartition

    tp = TopicPartition(topic, partition)
    reader.assign([tp])
    reader.seek(tp, start)
    records: Records = []
    while await reader.position(tp) < end:
        fetched = await reader.getmany(tp, timeout_ms=500, max_records=5000)
        records.extend((m.key, m.value) for m in fetched.get(tp, []))
    return records


async def migrate_changelog(settings: WorkerSettings) -> dict[int, int]:
    """Migrate every partition not migrated yet, and catch up those whose old changelog grew
    since their last pass; returns {partition: records written}."""
    from aiokafka import AIOKafkaProducer

    legacy = legacy_changelog(settings)
    new_topic = settings.topics.changelog
    reader = committed_reader(settings, max_record_bytes=settings.changelog_max_message_bytes)
    await reader.start()
    written: dict[int, int] = {}
    try:
        old_ends = await _end_offsets(reader, legacy)
        new_ends = await _end_offsets(reader, new_topic)
        for partition, end in old_ends.items():
            start, passes = 0, 0
            if new_ends.get(partition, 0) > 0:
                marker = await _migration_marker(reader, new_topic, partition, new_ends[partition])
                if marker is None:
                    log.info("partition %d: migrated, and format-2 workers ran on it", partition)
                    continue
                if marker[0] >= end:
                    log.info("partition %d: already migrated", partition)
                    continue
                start, passes = marker[0], marker[1] + 1
            elif end == 0:
                continue
            records = await _read(reader, legacy, partition, start, end)
            converted = convert_records(records, generation=passes)
            converted.append((MIGRATED_KEY, dumps([end, passes])))
            producer = AIOKafkaProducer(
                **settings.client_kwargs(),
                transactional_id=f"{settings.app_id}-migrate-{partition}",
                enable_idempotence=True,
                acks="all",
                max_request_size=settings.producer_max_request_bytes,
            )
            await producer.start()
            try:
                async with producer.transaction():
                    sends = [
                        await producer.send(new_topic, value, key=key, partition=partition)
                        for key, value in converted
                    ]
                    for sent in sends:
                        await sent
            finally:
                await producer.stop()
            written[partition] = len(converted)
            log.info(
                "partition %d: %d records of format 1 (offsets %d to %d, pass %d) -> %d of "
                "format %d",
                partition,
                len(records),
                start,
                end,
                passes,
                len(converted),
                FORMAT,
            )
    finally:
        await reader.stop()
    return written
