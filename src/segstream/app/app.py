"""Builds the Faust app: broker, RocksDB store, exactly-once processing, topics and tables."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from segstream.app.settings import WorkerSettings

__all__ = ["WorkerApp", "build_app"]

RECORDS_SEEN_TABLE = "records-seen"


@dataclass(frozen=True)
class WorkerApp:
    """The Faust app with the channels and tables its agents use."""

    app: Any
    inputs: Any
    membership: Any
    records_seen: Any


def build_app(settings: WorkerSettings) -> WorkerApp:
    """A Faust app wired to the broker, topics and RocksDB tables that `settings` name."""
    import faust

    app = faust.App(
        settings.app_id,
        broker=settings.broker_url,
        store="rocksdb://",
        datadir=str(settings.store_dir),
        processing_guarantee=settings.processing_guarantee,
        # Our code creates the five SPEC topics (segstream.app.topics); faust creates only its
        # own internal ones (changelogs, the assignor's leader topic).
        topic_allow_declare=True,
        topic_disable_leader=False,
        topic_replication_factor=1,
        topic_partitions=settings.input_partitions,
        broker_session_timeout=settings.session_timeout_s,
        broker_heartbeat_interval=settings.heartbeat_interval_s,
        broker_commit_interval=settings.commit_interval_s,
        consumer_auto_offset_reset="earliest",
        web_enabled=settings.web_enabled,
        web_port=settings.web_port,
        web_bind="127.0.0.1",
        web_host="127.0.0.1",
    )
    inputs = app.topic(
        *settings.topics.inputs,
        key_serializer="raw",
        value_serializer="raw",
        partitions=settings.input_partitions,
    )
    membership = app.topic(
        settings.topics.membership,
        key_serializer="raw",
        value_serializer="raw",
        partitions=settings.input_partitions,
    )
    records_seen = app.Table(
        RECORDS_SEEN_TABLE,
        default=int,
        partitions=settings.input_partitions,
        key_type=bytes,
        value_type=int,
        options={
            "driver": "rocksdict",
            "block_cache_size": settings.rocksdb_block_cache_bytes,
            "block_cache_compressed_size": settings.rocksdb_block_cache_bytes,
        },
    )
    return WorkerApp(app=app, inputs=inputs, membership=membership, records_seen=records_seen)
