"""Runs the Faust app as a worker process until SIGTERM/SIGINT."""

from __future__ import annotations

import asyncio
import logging
import shutil

from segstream.app.topics import TopicSpec, create_topics
from segstream.faust_runtime.settings import FaustSettings

__all__ = ["changelog_specs", "control_topic_spec", "create_faust_topics", "run_faust_worker"]


def control_topic_spec(settings: FaustSettings) -> TopicSpec:
    """The control topic: ticks and segment control records, co-partitioned with the inputs.
    Ticks are useless once consumed, and segment versions are also kept in the meta table."""
    return TopicSpec(
        settings.control_topic,
        settings.worker.input_partitions,
        {"retention.ms": str(24 * 3600 * 1000)},
    )


def changelog_specs(settings: FaustSettings) -> list[TopicSpec]:
    """The tables' changelogs, compacted and co-partitioned with the inputs."""
    config = {
        "cleanup.policy": "compact",
        "max.message.bytes": str(settings.worker.changelog_max_message_bytes),
    }
    partitions = settings.worker.input_partitions
    return [TopicSpec(name, partitions, dict(config)) for name in settings.changelogs]


def create_faust_topics(settings: FaustSettings) -> list[str]:
    """Create the control topic and the tables' changelogs before Faust starts.

    Faust would create the changelogs itself, but its consumer can then start without them in
    its metadata, and the first table write fails its co-partitioning check
    (`PartitionsMismatch`: "the changelog topic has 0 partitions") again and again.
    """
    return asyncio.run(
        create_topics(
            settings.worker.client_kwargs(),
            [control_topic_spec(settings), *changelog_specs(settings)],
            settings.worker.replication_factor,
        )
    )


def run_faust_worker(settings: FaustSettings) -> None:
    """Build the app and run it as a Faust worker (exits when the worker stops)."""
    import faust

    from segstream.faust_runtime.runtime import FaustRuntime

    # Faust writes a table's RocksDB at once and its changelog record later (buffered), so
    # after a crash the local store can hold state the changelog never got. A worker that
    # kept it would treat the replayed records as seen and never changelog that state: the
    # next owner restoring from the changelog would miss it and lose transitions. Each start
    # therefore restores every partition from the changelogs (docs/faust.md, "Guarantee").
    datadir = settings.worker.store_dir / "faust"
    if datadir.exists():
        logging.getLogger("segstream.faust").info("removing %s: restoring from changelogs", datadir)
        shutil.rmtree(datadir)
    settings.worker.store_dir.mkdir(parents=True, exist_ok=True)
    runtime = FaustRuntime(settings)
    worker = faust.Worker(runtime.app, loglevel=settings.worker.log_level.upper(), quiet=True)
    worker.execute_from_commandline()
