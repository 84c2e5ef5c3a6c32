"""Upgrading stores and changelogs from format 1 (a profile's whole state in one record) to the
keyed layout of format 2 (`segstream.state.layout`).

Format 2 lives in a changelog topic of its own (`<prefix>.state-changelog-v2`), so a worker of
the old version never reads records it does not understand. `segstream migrate` reads each
partition of the format-1 changelog (`<prefix>.state-changelog`), converts every profile and
copies the partition meta, and writes the result to the new topic's partition in one Kafka
transaction, ending with a format marker: a partition is migrated entirely or not at all, and
one migrated already (its new partition holds records) is skipped. A worker refuses to start
while a partition of the old changelog holds records and the new one holds none
(`unmigrated_partitions`). Local stores of format 1 are rebuilt from the new changelog.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

from segstream.app.readers import committed_reader
from segstream.app.settings import WorkerSettings
from segstream.app.store import FORMAT_KEY
from segstream.errors import SegstreamError
from segstream.state.codec import decode_profile
from segstream.state.layout import FORMAT, HEAD_PREFIX, Records, from_old_state, profile_records

__all__ = [
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


class UnmigratedChangelog(SegstreamError):
    """A format-1 changelog holds data the format-2 changelog does not have yet."""


def legacy_changelog(settings: WorkerSettings) -> str:
    """The format-1 changelog topic of a deployment (the new name without its `-v2`)."""
    name = settings.topics.changelog
    return name[: -len(_NEW_SUFFIX)] if name.endswith(_NEW_SUFFIX) else f"{name}.format1"


def convert_records(records: Iterable[tuple[bytes, bytes | None]]) -> Records:
    """The format-2 records of a format-1 changelog partition (read in offset order): each
    profile's latest state as keyed parts, the meta entries as they are, then the marker."""
    latest: dict[bytes, bytes | None] = {}
    for key, value in records:
        latest[key] = value
    converted: Records = []
    for key, value in latest.items():
        if value is None:
            continue
        if key[:1] == HEAD_PREFIX:
            state = from_old_state(decode_profile(value))
            converted.extend(profile_records(key[1:].decode(), state, None))
        elif key[:1] == _META:
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


async def unmigrated_partitions(settings: WorkerSettings) -> list[int]:
    """Partitions whose format-1 changelog holds records while the new one holds none."""
    legacy = legacy_changelog(settings)
    if not await _topic_exists(settings, legacy):
        return []
    reader = committed_reader(settings)
    await reader.start()
    try:
        old = await _end_offsets(reader, legacy)
        new = await _end_offsets(reader, settings.topics.changelog)
    finally:
        await reader.stop()
    return [p for p, end in old.items() if end > 0 and new.get(p, 0) == 0]


async def check_migrated(settings: WorkerSettings) -> None:
    """Raise UnmigratedChangelog, naming the command, when a partition needs migrating."""
    pending = await unmigrated_partitions(settings)
    if pending:
        raise UnmigratedChangelog(
            f"the changelog {legacy_changelog(settings)!r} holds profile state in the old "
            f"format (partitions {', '.join(map(str, pending))}) and "
            f"{settings.topics.changelog!r} does not have it yet: stop every worker of the old "
            f"version and run `{MIGRATE_COMMAND}` (docs/operations.md, Upgrades)"
        )


async def migrate_changelog(settings: WorkerSettings) -> dict[int, int]:
    """Migrate every partition not migrated yet; returns {partition: records written}."""
    from aiokafka import AIOKafkaProducer, TopicPartition

    legacy = legacy_changelog(settings)
    new_topic = settings.topics.changelog
    reader = committed_reader(settings, max_record_bytes=settings.changelog_max_message_bytes)
    await reader.start()
    written: dict[int, int] = {}
    try:
        old_ends = await _end_offsets(reader, legacy)
        new_ends = await _end_offsets(reader, new_topic)
        for partition, end in old_ends.items():
            if new_ends.get(partition, 0) > 0:
                log.info("partition %d: already migrated", partition)
                continue
            tp = TopicPartition(legacy, partition)
            reader.assign([tp])
            reader.seek(tp, 0)
            records: list[tuple[bytes, bytes | None]] = []
            while await reader.position(tp) < end:
                fetched = await reader.getmany(tp, timeout_ms=500, max_records=5000)
                records.extend((m.key, m.value) for m in fetched.get(tp, []))
            converted = convert_records(records)
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
                "partition %d: %d records of format 1 -> %d of format %d",
                partition,
                len(records),
                len(converted),
                FORMAT,
            )
    finally:
        await reader.stop()
    return written
