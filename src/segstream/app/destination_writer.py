"""Destination writes: the one transactional writer of the destinations topic.

The same protocol as the segments topic (SPEC §4.3): one fixed transactional id (starting a
writer fences any other), read the topic to its end with read_committed, validate, assign the
version, produce, commit; a fenced writer starts over.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar

from segstream.app.outbound import OutboundPolicy
from segstream.app.readers import committed_reader
from segstream.app.settings import WorkerSettings
from segstream.app.single_writer import SingleWriter, read_topic_to_end
from segstream.errors import Problem, SegstreamError
from segstream.schemas.destinations import DESTINATION_FIELDS, DestinationDefinition
from segstream.schemas.jsontext import dumps, loads_exact
from segstream.schemas.vocabulary import SEGMENT_ID
from segstream.timefmt import format_instant

__all__ = [
    "DestinationApplied",
    "DestinationExists",
    "DestinationReader",
    "DestinationState",
    "DestinationWriter",
    "UnknownDestination",
    "public_view",
]

log = logging.getLogger(__name__)

DestinationOutcome = Literal["created", "changed", "unchanged", "rejected"]
_T = TypeVar("_T")


class UnknownDestination(SegstreamError):
    """A deletion named a destination id that is not currently defined."""

    def __init__(self, destination_id: str) -> None:
        self.destination_id = destination_id
        super().__init__(f"there is no destination '{destination_id}' to delete")


@dataclass(frozen=True)
class DestinationApplied:
    """What the writer did with one submitted destination (`label`: its id or `[index]`)."""

    label: str
    outcome: DestinationOutcome
    version: int | None = None
    problems: tuple[Problem, ...] = ()
    record: dict[str, Any] | None = None


def public_view(record: dict[str, Any]) -> dict[str, Any]:
    """A destination as the API and CLI show it. The secret is a reference (an environment
    variable or file name of the deliver process), never the secret itself."""
    shown = {key: record[key] for key in DESTINATION_FIELDS if key in record}
    shown.setdefault("segments", None)
    for key in ("version", "created_version", "created_at"):
        if key in record:
            shown[key] = record[key]
    return shown


@dataclass
class DestinationState:
    """The destinations topic as read so far: current records by id, last version by id."""

    records: dict[str, dict[str, Any]] = field(default_factory=dict)
    last_versions: dict[str, int] = field(default_factory=dict)

    def copy(self) -> DestinationState:
        """A copy that planning may change."""
        return DestinationState(dict(self.records), dict(self.last_versions))

    def read(self, value: bytes | None) -> None:
        """Take one record of the topic; one that is not ours is skipped."""
        if value is None:
            return
        try:
            record = loads_exact(value)
        except ValueError:
            log.warning("skipping a destinations-topic record that is not JSON")
            return
        if not isinstance(record, dict):
            return
        destination_id, version = record.get("id"), record.get("version")
        if not isinstance(destination_id, str) or type(version) is not int:
            log.warning("skipping a destinations-topic record without id and version")
            return
        if version < self.last_versions.get(destination_id, 0):
            return
        self.last_versions[destination_id] = version
        if record.get("deleted") is True:
            self.records.pop(destination_id, None)
        else:
            self.records[destination_id] = record

    def plan_upsert(
        self,
        index: int,
        raw: object,
        policy: OutboundPolicy,
        now_us: int,
        start_offsets: list[int],
    ) -> DestinationApplied:
        """Validate and version `raw`; updates this state."""
        label = _label(index, raw)
        problems = policy.problems(raw)
        if problems:
            return DestinationApplied(label, "rejected", problems=tuple(problems))
        definition = DestinationDefinition.model_validate(raw).model_dump(
            mode="json", exclude_none=True
        )
        destination_id: str = definition["id"]
        current = self.records.get(destination_id)
        if current is not None:
            if {k: current[k] for k in DESTINATION_FIELDS if k in current} == definition:
                return DestinationApplied(
                    destination_id, "unchanged", current["version"], record=current
                )
            version = self.last_versions[destination_id] + 1
            record = {
                **definition,
                "version": version,
                "created_version": current["created_version"],
                "created_at": current["created_at"],
            }
            if "start_offsets" in current:
                record["start_offsets"] = current["start_offsets"]
            outcome: DestinationOutcome = "changed"
        else:
            version = self.last_versions.get(destination_id, 0) + 1
            record = {
                **definition,
                "version": version,
                "created_version": version,
                "created_at": format_instant(now_us),
            }
            if definition["start"] == "creation":
                record["start_offsets"] = start_offsets
            outcome = "created"
        self.records[destination_id] = record
        self.last_versions[destination_id] = version
        return DestinationApplied(destination_id, outcome, version, record=record)

    def plan_delete(self, destination_id: str) -> dict[str, Any]:
        """The deletion marker (keeps the last version); updates this state."""
        if destination_id not in self.records:
            raise UnknownDestination(destination_id)
        del self.records[destination_id]
        return {
            "id": destination_id,
            "deleted": True,
            "version": self.last_versions[destination_id],
        }


def _label(index: int, raw: object) -> str:
    if isinstance(raw, dict):
        destination_id = raw.get("id")
        if isinstance(destination_id, str) and SEGMENT_ID.fullmatch(destination_id):
            return destination_id
    return f"[{index}]"


class DestinationWriter(SingleWriter[DestinationState]):
    """The only way destinations are written: validated, versioned, in transactions."""

    what = "destination"

    def __init__(self, settings: WorkerSettings, policy: OutboundPolicy | None = None) -> None:
        super().__init__(
            settings,
            settings.topics.destinations,
            f"{settings.app_id}-destinations-writer",
            DestinationState(),
            dumps,
        )
        self.policy = policy if policy is not None else OutboundPolicy.from_env()

    async def _membership_ends(self) -> list[int]:
        """The membership topic's read_committed end offsets: a new destination starts there."""
        from aiokafka import TopicPartition

        topic = self.settings.topics.membership
        # The consumer's own metadata covers only its assigned topics; ask for all of them.
        cluster = await self._consumer._client.fetch_all_metadata()
        partitions = cluster.partitions_for_topic(topic)
        if not partitions:
            raise SegstreamError(f"topic {topic} does not exist: create the topics first")
        parts = [TopicPartition(topic, p) for p in sorted(partitions)]
        ends = await self._consumer.end_offsets(parts)
        return [int(ends[tp]) for tp in parts]

    async def read_destinations(self) -> dict[str, dict[str, Any]]:
        """Current destinations (records with their version) by id."""
        return dict((await self._catch_up()).records)

    async def apply(self, raws: Sequence[object]) -> list[DestinationApplied]:
        """Validate and write each destination, in order; one transaction for the valid ones."""

        async def plan(
            state: DestinationState,
        ) -> tuple[list[DestinationApplied], list[dict[str, Any]]]:
            return self._plan_many(state, raws, await self._membership_ends())

        return await self._write_noted(plan)

    async def create(self, raw: object) -> DestinationApplied:
        """Write `raw` only when its id is not currently defined (else DestinationExists)."""

        async def plan(
            state: DestinationState,
        ) -> tuple[DestinationApplied, list[dict[str, Any]]]:
            destination_id = raw.get("id") if isinstance(raw, dict) else None
            if isinstance(destination_id, str) and destination_id in state.records:
                raise DestinationExists(destination_id)
            results, records = self._plan_many(state, [raw], await self._membership_ends())
            return results[0], records

        return await self._write_noted(plan)

    def _plan_many(
        self, state: DestinationState, raws: Sequence[object], ends: list[int]
    ) -> tuple[list[DestinationApplied], list[dict[str, Any]]]:
        now = time.time_ns() // 1000
        results = [
            state.plan_upsert(index, raw, self.policy, now, ends) for index, raw in enumerate(raws)
        ]
        records = [
            a.record
            for a in results
            if a.outcome in ("created", "changed") and a.record is not None
        ]
        return results, records

    async def delete(self, destination_id: str) -> int:
        """Write the deletion marker of a defined destination; returns the version it keeps."""

        async def plan(state: DestinationState) -> tuple[int, list[dict[str, Any]]]:
            marker = state.plan_delete(destination_id)
            return marker["version"], [marker]

        return await self._write_noted(plan)

    async def _write_noted(
        self, plan: Callable[[DestinationState], Awaitable[tuple[_T, list[dict[str, Any]]]]]
    ) -> _T:
        """Write, then take what was committed into the state at once (its markers may not be
        readable yet)."""
        written: list[dict[str, Any]] = []

        async def noting(state: DestinationState) -> tuple[_T, list[dict[str, Any]]]:
            result, records = await plan(state)
            written[:] = records
            return result, records

        result = await self._write(noting)
        for record in written:
            self._state.read(dumps(record))
        return result


class DestinationExists(SegstreamError):
    """A create named an id that is currently defined."""


class DestinationReader:
    """The destinations topic read to its end on demand, with no producer (fences nothing)."""

    def __init__(self, settings: WorkerSettings) -> None:
        self.settings = settings
        self.state = DestinationState()
        self._consumer: Any = None
        self._partition: Any = None
        self._lock = asyncio.Lock()

    async def read(self) -> dict[str, dict[str, Any]]:
        """Current destinations by id, after reading what was committed since the last call."""
        from aiokafka import TopicPartition

        async with self._lock:
            if self._consumer is None:
                consumer = committed_reader(self.settings)
                await consumer.start()
                topic = self.settings.topics.destinations
                if topic not in await consumer.topics():
                    await consumer.stop()
                    raise SegstreamError(f"topic {topic} does not exist: create the topics first")
                self._partition = TopicPartition(self.settings.topics.destinations, 0)
                consumer.assign([self._partition])
                await consumer.seek_to_beginning(self._partition)
                self._consumer = consumer
            for message in await read_topic_to_end(self._consumer, [self._partition]):
                self.state.read(message.value)
            return dict(self.state.records)

    def note_written(self, record: dict[str, Any]) -> None:
        """Take a record just committed here, before its markers make it readable."""
        self.state.read(dumps(record))

    async def close(self) -> None:
        """Stop reading."""
        consumer, self._consumer = self._consumer, None
        if consumer is not None:
            await consumer.stop()
