"""Group-less consumers that read what transactions committed (read_committed, from the start)."""

from __future__ import annotations

from typing import Any

from segstream.app.settings import WorkerSettings

__all__ = ["committed_reader"]


def committed_reader(settings: WorkerSettings, *, max_record_bytes: int | None = None) -> Any:
    """An unstarted AIOKafkaConsumer with no group: read_committed, no auto-commit, earliest.

    Every internal reader (changelog restore, segments and status topics, tail) wants exactly
    this: only committed transactions, and partitions assigned by the caller.
    `max_record_bytes`: the largest record the topic may hold (a fetch must take it whole).
    """
    from aiokafka import AIOKafkaConsumer

    return AIOKafkaConsumer(
        **settings.client_kwargs(),
        isolation_level="read_committed",
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        **({"max_partition_fetch_bytes": max_record_bytes} if max_record_bytes else {}),
    )
