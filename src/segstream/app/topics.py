"""The topics of SPEC §2: their layout (partitions, configs) and their creation on the broker."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from segstream.app.settings import WorkerSettings

__all__ = [
    "TopicCreationError",
    "TopicSpec",
    "create_topics",
    "ensure_message_limits",
    "message_limits",
    "topic_specs",
]

log = logging.getLogger("segstream.topics")

# Kafka error codes that mean "the topic is there": success, TOPIC_ALREADY_EXISTS.
_CREATED_OR_EXISTS = (0, 36)


class TopicCreationError(RuntimeError):
    """The broker refused to create a topic."""


@dataclass(frozen=True)
class TopicSpec:
    """One topic as the worker needs it on the broker."""

    name: str
    partitions: int
    config: dict[str, str] = field(default_factory=dict)


def topic_specs(settings: WorkerSettings) -> list[TopicSpec]:
    """The topics of SPEC §2 and the worker's internal ones, with partitions and configs."""
    names = settings.topics
    partitions = settings.input_partitions
    # Inputs and dead letters take records over 1 MiB, so that an oversize input reaches
    # the worker (to be dead-lettered) and its original bytes fit in the dead-letter topic.
    limits = message_limits(settings)
    large = {"max.message.bytes": str(settings.input_max_message_bytes)}
    return [
        TopicSpec(names.profiles, partitions, dict(large)),
        TopicSpec(names.activity, partitions, dict(large)),
        TopicSpec(names.segments, 1, {"cleanup.policy": "compact"}),
        TopicSpec(names.membership, partitions),
        # Current members (SPEC §6.1): the latest record of each segment/profile key is all
        # a consumer needs, so compaction keeps the topic the size of the memberships.
        TopicSpec(names.members, partitions, {"cleanup.policy": "compact"}),
        TopicSpec(
            names.deadletter, partitions, {"max.message.bytes": str(limits[names.deadletter])}
        ),
        # Ticks are many and useless once consumed; segment changes are also kept in each
        # partition's store, so a week of control records is plenty.
        TopicSpec(names.control, partitions, {"retention.ms": str(7 * 24 * 3600 * 1000)}),
        TopicSpec(
            names.changelog,
            partitions,
            {"cleanup.policy": "compact", "max.message.bytes": str(limits[names.changelog])},
        ),
        TopicSpec(names.status, 1, {"cleanup.policy": "compact"}),
        TopicSpec(names.destinations, 1, {"cleanup.policy": "compact"}),
        # A dead-lettered batch is a whole POST body (up to 1000 events).
        TopicSpec(names.destination_deadletter, partitions, dict(large)),
    ]


async def create_topics(
    client_kwargs: dict[str, Any], specs: list[TopicSpec], replication_factor: int = 1
) -> list[str]:
    """Create the topics that are missing; returns the names it created."""
    from aiokafka.admin import AIOKafkaAdminClient, NewTopic

    admin = AIOKafkaAdminClient(**client_kwargs)
    await admin.start()
    try:
        response = await admin.create_topics(
            [
                NewTopic(spec.name, spec.partitions, replication_factor, topic_configs=spec.config)
                for spec in specs
            ]
        )
    finally:
        await admin.close()
    created: list[str] = []
    for error in response.topic_errors:
        name, code = error[0], error[1]
        if code not in _CREATED_OR_EXISTS:
            message = error[2] if len(error) > 2 else ""
            raise TopicCreationError(f"cannot create topic {name!r}: error {code} {message}")
        if code == 0:
            created.append(name)
    return created


def message_limits(settings: WorkerSettings) -> dict[str, int]:
    """The least `max.message.bytes` each topic needs for what is written to it: inputs take
    oversize records (to dead-letter them), dead letters are inputs plus headers, and the
    changelog takes the largest record (a profile's head or one stored event) a partition may
    write."""
    names = settings.topics
    return {
        names.profiles: settings.input_max_message_bytes,
        names.activity: settings.input_max_message_bytes,
        names.deadletter: settings.deadletter_max_message_bytes,
        names.changelog: settings.changelog_max_message_bytes,
    }


async def ensure_message_limits(
    client_kwargs: dict[str, Any], limits: dict[str, int]
) -> dict[str, tuple[int, int]]:
    """Raise the `max.message.bytes` of topics created with less than they need (an older
    deployment, or topics made by hand); returns {topic: (was, now)} for those changed.

    A broker that rejects a record the worker must write aborts its transaction, so a topic
    too small for what goes there would isolate records that are fine.
    """
    from aiokafka.admin import AIOKafkaAdminClient
    from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

    admin = AIOKafkaAdminClient(**client_kwargs)
    await admin.start()
    changed: dict[str, tuple[int, int]] = {}
    try:
        described = await admin.describe_configs(
            [ConfigResource(ConfigResourceType.TOPIC, name) for name in limits]
        )
        for response in described:
            for resource in response.resources:
                error_code, _message, _type, name, entries = resource[:5]
                if error_code != 0 or name not in limits:
                    continue
                # AlterConfigs replaces a topic's whole set of overrides: keep the others.
                overrides = {e[0]: e[1] for e in entries if _is_topic_override(e)}
                current = int(next(e[1] for e in entries if e[0] == "max.message.bytes"))
                if current >= limits[name]:
                    continue
                overrides["max.message.bytes"] = str(limits[name])
                await admin.alter_configs(
                    [ConfigResource(ConfigResourceType.TOPIC, name, overrides)]
                )
                changed[name] = (current, limits[name])
                log.warning(
                    "topic %s: max.message.bytes raised from %d to %d (what the worker writes "
                    "there needs it)",
                    name,
                    current,
                    limits[name],
                )
    finally:
        await admin.close()
    return changed


#: DescribeConfigs (v1+) config source of a per-topic override.
_TOPIC_CONFIG_SOURCE = 1


def _is_topic_override(entry: tuple[Any, ...]) -> bool:
    """A DescribeConfigs entry (name, value, read_only, source, sensitive, …) set on the
    topic itself, not inherited from the broker or the defaults."""
    return entry[3] == _TOPIC_CONFIG_SOURCE and entry[1] is not None
