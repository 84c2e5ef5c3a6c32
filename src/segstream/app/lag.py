"""Consumer-group lag read from Kafka itself: committed offsets against the partitions' ends.

A worker reports its own lag only while it runs; this is the view that survives it (the lag
exporter, `segstream lag-exporter`, serves it). The arithmetic is in small pure functions;
`LagReader` does the Kafka I/O with aiokafka's admin client and a group-less consumer.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = ["GroupLag", "LagReader", "LagSnapshot", "PartitionLag", "PartitionOwner", "lag_of"]


@dataclass(frozen=True)
class PartitionOwner:
    """The group member a partition is assigned to (as DescribeGroups tells it)."""

    member_host: str
    consumer_id: str
    client_id: str


@dataclass(frozen=True)
class PartitionLag:
    """One topic partition as one group sees it."""

    topic: str
    partition: int
    #: First offset still in the log.
    earliest: int
    #: The high watermark: offset of the next record to be written.
    latest: int
    #: The group's committed offset (the next record it will read); None when it has none.
    committed: int | None
    #: The member that owns the partition now; None when no member does (workers stopped).
    owner: PartitionOwner | None

    @property
    def lag(self) -> int:
        """Records between where the group resumes and the end of the partition."""
        return lag_of(self.committed, self.earliest, self.latest)


@dataclass(frozen=True)
class GroupLag:
    """Every reported partition of one consumer group."""

    group: str
    #: A group that commits offsets without group membership (protocol type empty).
    simple: bool
    partitions: tuple[PartitionLag, ...]

    @property
    def max_lag(self) -> int:
        """The largest partition lag (0 when nothing is reported)."""
        return max((p.lag for p in self.partitions), default=0)

    @property
    def sum_lag(self) -> int:
        """The lag of all partitions together."""
        return sum(p.lag for p in self.partitions)

    def topic_sum_lag(self) -> dict[str, int]:
        """{topic: the lag of its partitions together}."""
        sums: dict[str, int] = {}
        for p in self.partitions:
            sums[p.topic] = sums.get(p.topic, 0) + p.lag
        return sums


@dataclass(frozen=True)
class LagSnapshot:
    """One poll of Kafka: every group's lag, and how long reading it took."""

    groups: tuple[GroupLag, ...]
    poll_seconds: float
    #: Wall-clock time of the poll (seconds since the epoch).
    at: float


def lag_of(committed: int | None, earliest: int, latest: int) -> int:
    """Lag in records.

    A group with no committed offset starts at the earliest record (the worker's
    `auto_offset_reset`), and so does one whose offset fell behind the log's start (retention
    deleted those records): both have everything from `earliest` on still to read.
    """
    start = earliest if committed is None or committed < earliest else committed
    return max(0, latest - start)


def owners_from_description(group: Mapping[str, Any]) -> dict[tuple[str, int], PartitionOwner]:
    """{(topic, partition): owner} from one group of a DescribeGroups response."""
    from aiokafka.coordinator.protocol import ConsumerProtocolMemberAssignment

    owners: dict[tuple[str, int], PartitionOwner] = {}
    if group.get("protocol_type") != "consumer":
        return owners  # other protocols (Connect, ...) encode assignments their own way
    for member in group.get("members", ()):
        raw = member.get("member_assignment") or b""
        if not raw:
            continue  # joined, not yet assigned (mid-rebalance)
        assignment = ConsumerProtocolMemberAssignment.decode(raw)
        owner = PartitionOwner(
            member_host=str(member.get("client_host", "")).lstrip("/"),
            consumer_id=str(member.get("member_id", "")),
            client_id=str(member.get("client_id", "")),
        )
        for tp in assignment.partitions():
            owners[(tp.topic, tp.partition)] = owner
    return owners


class LagReader:
    """Reads committed and end offsets of consumer groups; `start()` before `read()`."""

    def __init__(
        self,
        client_kwargs: Mapping[str, Any],
        groups: Mapping[str, Sequence[str]],
        request_timeout_s: float = 10.0,
    ) -> None:
        """`groups`: {group id: topics always reported}; the topics a group has committed
        offsets on are reported too."""
        self._client_kwargs = dict(client_kwargs)
        self._groups = {group: tuple(topics) for group, topics in groups.items()}
        self._timeout_ms = int(request_timeout_s * 1000)
        self._admin: Any = None
        self._consumer: Any = None

    async def start(self) -> None:
        """Connect the admin client and the offset-reading consumer."""
        from aiokafka import AIOKafkaConsumer
        from aiokafka.admin import AIOKafkaAdminClient

        self._admin = AIOKafkaAdminClient(
            **self._client_kwargs,
            client_id="segstream-lag-exporter",
            request_timeout_ms=self._timeout_ms,
        )
        # No group: it only asks for offsets. read_uncommitted, so `latest` is the high
        # watermark, as other lag tools (kafka-lag-exporter) report it.
        self._consumer = AIOKafkaConsumer(
            **self._client_kwargs,
            group_id=None,
            client_id="segstream-lag-exporter",
            enable_auto_commit=False,
            request_timeout_ms=self._timeout_ms,
        )
        try:
            await self._admin.start()
            await self._consumer.start()
        except BaseException:
            await self.stop()
            raise

    async def stop(self) -> None:
        """Close both clients; safe to call twice."""
        admin, self._admin = self._admin, None
        consumer, self._consumer = self._consumer, None
        if consumer is not None:
            await consumer.stop()
        if admin is not None:
            await admin.close()

    async def read(self) -> LagSnapshot:
        """Poll Kafka once for every group."""
        from aiokafka import TopicPartition

        if self._admin is None or self._consumer is None:
            raise RuntimeError("LagReader is not started")
        started = time.monotonic()
        committed: dict[str, dict[tuple[str, int], int]] = {}
        for group in self._groups:
            offsets = await self._admin.list_consumer_group_offsets(group)
            committed[group] = {
                (tp.topic, tp.partition): meta.offset
                for tp, meta in offsets.items()
                if meta.offset >= 0
            }
        descriptions = await self._describe(list(self._groups))
        wanted_topics = sorted(
            {t for topics in self._groups.values() for t in topics}
            | {topic for offsets in committed.values() for topic, _ in offsets}
        )
        partitions = await self._partitions(wanted_topics)
        tps = [TopicPartition(topic, p) for topic in wanted_topics for p in partitions[topic]]
        earliest = await self._consumer.beginning_offsets(tps) if tps else {}
        latest = await self._consumer.end_offsets(tps) if tps else {}
        groups = []
        for group, always in self._groups.items():
            description = descriptions.get(group, {})
            owners = owners_from_description(description)
            topics = sorted(set(always) | {topic for topic, _ in committed[group]})
            rows = tuple(
                PartitionLag(
                    topic=topic,
                    partition=p,
                    earliest=earliest[TopicPartition(topic, p)],
                    latest=latest[TopicPartition(topic, p)],
                    committed=committed[group].get((topic, p)),
                    owner=owners.get((topic, p)),
                )
                for topic in topics
                for p in partitions.get(topic, ())
            )
            simple = description.get("protocol_type", "") == ""
            groups.append(GroupLag(group=group, simple=simple, partitions=rows))
        return LagSnapshot(
            groups=tuple(groups), poll_seconds=time.monotonic() - started, at=time.time()
        )

    async def _describe(self, group_ids: list[str]) -> dict[str, dict[str, Any]]:
        responses = await self._admin.describe_consumer_groups(group_ids)
        described: dict[str, dict[str, Any]] = {}
        for response in responses:
            for group in response.to_object()["groups"]:
                described[group["group"]] = group
        return described

    async def _partitions(self, topics: list[str]) -> dict[str, list[int]]:
        """{topic: its partition numbers}; a topic that does not exist (yet) has none."""
        if not topics:
            return {}
        found: dict[str, list[int]] = {}
        for topic in await self._admin.describe_topics(topics):
            if topic.get("error_code", 0) == 0:
                found[topic["topic"]] = sorted(p["partition"] for p in topic["partitions"])
        return found
