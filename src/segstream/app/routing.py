"""Input records in the wrong partition, moved to their murmur2 partition (SPEC §2).

Kafka's default partitioner (Java, aiokafka, the API's routing) puts a key in partition
murmur2(key) mod N; librdkafka's default (`consistent_random`, CRC32) and others do not. With
both kinds of producer on the two input topics, one profile's records would live in two
partitions and two workers would each keep half of it. So a keyed input record found in a
partition other than its murmur2 partition is not applied here: it is produced, unchanged
(key, value, headers, timestamp) plus a `segstream.moved.from` header, to its murmur2
partition of the same topic, in this partition's transaction, and the record is consumed here
by the same transaction's offsets. The move is therefore exactly once, and the record is
applied once, where the profile's other records are. A record that was moved once is never
moved again (partition counts changing under a move must not make it bounce).
"""

from __future__ import annotations

import logging
import time
from typing import Any

from segstream.app.metrics import WorkerMetrics

__all__ = ["MOVED_FROM_HEADER", "InputRouter", "murmur2_partition"]

log = logging.getLogger("segstream.routing")

MOVED_FROM_HEADER = "segstream.moved.from"
#: One warning per topic at most this often (a misconfigured producer misroutes many).
LOG_EVERY_S = 10.0


def murmur2_partition(key: bytes, partitions: int) -> int:
    """Kafka's default partition of a key: murmur2, positive, modulo the partition count."""
    from aiokafka.partitioner import murmur2

    return (int(murmur2(key)) & 0x7FFFFFFF) % partitions


#: Keys whose partition is remembered (cleared when full: a bound, not an LRU).
_HOMES_KEPT = 50_000


class InputRouter:
    """Finds misrouted input records of one partition (the task's collector moves them)."""

    def __init__(self, partition: int, input_topics: tuple[str, ...], metrics: WorkerMetrics):
        self.partition = partition
        self.input_topics = input_topics
        self.metrics = metrics
        self.partitions: dict[str, int] = {}
        for topic in input_topics:
            metrics.misrouted(topic, 0)  # the series exists (at 0) before the first move
        self._moved_since_log: dict[str, int] = {}
        self._last_log: dict[str, float] = {}
        # (topic, key) -> murmur2 partition: aiokafka's murmur2 is pure Python (~2 % of a
        # worker's time when computed per record), and a profile's records repeat its key.
        self._homes: dict[tuple[str, bytes], int] = {}

    async def open(self, producer: Any) -> None:
        """Learn the input topics' partition counts (the producer's metadata)."""
        for topic in self.input_topics:
            found = await producer.partitions_for(topic)
            if found:
                self.partitions[topic] = len(found)
        self._homes.clear()

    def target(self, topic: str, message: Any) -> int | None:
        """The partition `message` belongs in when it is not this one (counted and logged:
        the caller moves it there and does not apply it here); None when it is at home."""
        count = self.partitions.get(topic)
        key = message.key
        if count is None or count < 2 or key is None:
            return None
        homes = self._homes
        target = homes.get((topic, key))
        if target is None:
            if len(homes) >= _HOMES_KEPT:
                homes.clear()
            target = homes[topic, key] = murmur2_partition(key, count)
        if target == message.partition:
            return None
        headers = list(message.headers or ())
        if any(name == MOVED_FROM_HEADER for name, _ in headers):
            log.error(
                "%s partition %d offset %d: moved once already and still not in its murmur2 "
                "partition %d (did the partition count change?); applied here",
                topic,
                message.partition,
                message.offset,
                target,
            )
            return None
        self._log(topic, message, target)
        return target

    def _log(self, topic: str, message: Any, target: int) -> None:
        moved = self._moved_since_log[topic] = self._moved_since_log.get(topic, 0) + 1
        now = time.monotonic()
        if now - self._last_log.get(topic, -LOG_EVERY_S) < LOG_EVERY_S:
            return
        self._last_log[topic] = now
        self._moved_since_log[topic] = 0
        log.warning(
            "%s partition %d: %d record(s) not in their murmur2 partition moved there (offset "
            "%d -> partition %d). A producer of this topic does not use Kafka's default "
            "partitioner: set partitioner=murmur2_random on librdkafka clients "
            "(confluent-kafka, kcat -X partitioner=murmur2_random, Go, .NET)",
            topic,
            message.partition,
            moved,
            message.offset,
            target,
        )

    def moved_headers(self, topic: str, message: Any) -> list[tuple[str, bytes]]:
        """The headers of the moved copy: the original ones and where it came from."""
        origin = f"{topic}/{message.partition}/{message.offset}".encode()
        return [*(message.headers or ()), (MOVED_FROM_HEADER, origin)]
