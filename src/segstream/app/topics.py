"""The topics of SPEC §2: their layout (partitions, configs) and their creation on the broker."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from segstream.app.settings import WorkerSettings

__all__ = ["TopicCreationError", "TopicSpec", "create_topics", "topic_specs"]

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
    large = {"max.message.bytes": str(settings.input_max_message_bytes)}
    return [
        TopicSpec(names.profiles, partitions, dict(large)),
        TopicSpec(names.activity, partitions, dict(large)),
        TopicSpec(names.segments, 1, {"cleanup.policy": "compact"}),
        TopicSpec(names.membership, partitions),
        TopicSpec(names.deadletter, partitions, dict(large)),
        # Ticks are many and useless once consumed; segment changes are also kept in each
        # partition's store, so a week of control records is plenty.
        TopicSpec(names.control, partitions, {"retention.ms": str(7 * 24 * 3600 * 1000)}),
        TopicSpec(names.changelog, partitions, {"cleanup.policy": "compact"}),
        TopicSpec(names.status, 1, {"cleanup.policy": "compact"}),
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
