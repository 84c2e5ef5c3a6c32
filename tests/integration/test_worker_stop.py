"""A SIGTERM stops the worker within SEGSTREAM_SHUTDOWN_TIMEOUT_S even when the broker stops
answering: a broker of its own (kafka.sh), frozen with SIGSTOP while the worker stops."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from worker_harness import WorkerCluster

from kafka_broker import broker_from_local_script
from segstream.app.worker import EXIT_GRACE_S

pytestmark = pytest.mark.kafka

BUDGET_S = 5.0


@pytest.fixture
def own_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, int]]:
    """A broker for this test alone (it is frozen): its bootstrap and its pid."""
    data = tmp_path_factory.mktemp("frozen-kafka")
    brokers = broker_from_local_script(data)
    bootstrap = next(brokers)
    pid_file = next(p for p in data.glob("*/kafka.pid"))
    pid = int(pid_file.read_text())
    try:
        yield bootstrap, pid
    finally:
        os.kill(pid, signal.SIGCONT)
        next(brokers, None)  # kafka.sh stop


def test_sigterm_with_a_frozen_broker_exits_within_the_budget(
    own_broker: tuple[str, int], tmp_path: Path
) -> None:
    bootstrap, pid = own_broker
    cluster = WorkerCluster(
        bootstrap, tmp_path, partitions=2, SEGSTREAM_SHUTDOWN_TIMEOUT_S=str(BUDGET_S)
    )
    try:
        asyncio.run(cluster.create_topics())
        cluster.start("w1")
        cluster.wait_ready("w1")
        os.kill(pid, signal.SIGSTOP)
        started = time.monotonic()
        code = cluster.stop("w1", timeout=BUDGET_S + EXIT_GRACE_S + 10)
        took = time.monotonic() - started
    finally:
        os.kill(pid, signal.SIGCONT)
        cluster.stop_all()
    log = cluster.log("w1")
    assert code == 0, log
    assert took < BUDGET_S + EXIT_GRACE_S, (took, log)
    # Nothing answers the consumer's LeaveGroup: the warning names that step, with the dump.
    assert "stopping took over 5s (SEGSTREAM_SHUTDOWN_TIMEOUT_S), still waiting for" in log
    assert "waits at:" in log
