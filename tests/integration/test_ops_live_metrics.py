"""A live `segstream worker`: its /metrics covers the dashboard and alerts; SIGTERM is graceful."""

from __future__ import annotations

import asyncio
import importlib.util
import os
import re
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import orjson
import pytest

from segstream.app.settings import WorkerSettings
from segstream.app.topics import create_topics, topic_specs

pytestmark = pytest.mark.kafka

SEGSTREAM = str(Path(sys.executable).with_name("segstream"))
#: deploy/k8s/statefulset.yaml gives 60 s; the worker must be well inside it.
GRACE_PERIOD_S = 20.0
READY_TIMEOUT_S = 90.0
_WEB_LINE = re.compile(r"web listening on (http://[0-9.]+:[0-9]+)")


def _deploy_refs() -> ModuleType:
    """tests/unit/ops/deploy_refs.py, which reads the dashboard and alert rules."""
    # Loaded by path: tests/unit/ops is on sys.path only when pytest collected it first.
    path = Path(__file__).resolve().parents[1] / "unit" / "ops" / "deploy_refs.py"
    spec = importlib.util.spec_from_file_location("segstream_ops_deploy_refs", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def get(url: str) -> tuple[int, str]:
    """(status, body) of a GET; HTTP errors are answers too."""
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def wait_for(check: Callable[[], Any], what: str, timeout: float, log: Path) -> Any:
    """Poll `check()` until it returns something truthy; fail with the worker's log."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            found = check()
        except OSError:
            found = None
        if found:
            return found
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}; worker log:\n{log.read_text()}")


async def produce_profiles(settings: WorkerSettings, count: int) -> None:
    """`count` valid profile.updated events, so the worker has transactions to commit."""
    from aiokafka import AIOKafkaProducer

    producer = AIOKafkaProducer(bootstrap_servers=settings.bootstrap, acks="all")
    await producer.start()
    try:
        for index in range(count):
            profile = f"ops-{index}"
            event = {
                "id": f"e-{index}",
                "type": "profile.updated",
                "profile_id": profile,
                "at": "2026-11-28T10:00:00Z",
                "traits": {"plan": "pro", "age": 30 + index},
            }
            await producer.send_and_wait(
                settings.topics.profiles, key=profile.encode(), value=orjson.dumps(event)
            )
    finally:
        await producer.stop()


def test_live_worker_exports_every_dashboard_and_alert_metric_and_stops_on_sigterm(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    env = {
        **os.environ,
        "SEGSTREAM_KAFKA_BOOTSTRAP": kafka_bootstrap,
        "SEGSTREAM_TOPIC_PREFIX": f"ops{uuid.uuid4().hex[:8]}",
        "SEGSTREAM_PARTITIONS": "2",
        "SEGSTREAM_STORE_DIR": str(tmp_path / "store"),
        "SEGSTREAM_WORKER_ID": "ops-0",
        "SEGSTREAM_WEB_HOST": "127.0.0.1",
        "SEGSTREAM_WEB_PORT": "0",
        "SEGSTREAM_SESSION_TIMEOUT_S": "6",
        "SEGSTREAM_HEARTBEAT_INTERVAL_S": "1",
        "SEGSTREAM_LOG_LEVEL": "info",
    }
    settings = WorkerSettings.from_env(env)
    asyncio.run(create_topics(settings.client_kwargs(), topic_specs(settings)))
    log = tmp_path / "worker.log"
    with log.open("wb") as sink:
        process = subprocess.Popen([SEGSTREAM, "worker"], env=env, stdout=sink, stderr=sink)
    try:
        url = str(
            wait_for(
                lambda: (_WEB_LINE.findall(log.read_text()) or [None])[-1],
                "the `web listening on` line",
                30,
                log,
            )
        )
        assert get(f"{url}/livez") == (200, '{"status": "live"}')
        wait_for(lambda: get(f"{url}/readyz")[0] == 200, "/readyz 200", READY_TIMEOUT_S, log)

        asyncio.run(produce_profiles(settings, 20))
        consumed = re.compile(r"^segstream_events_consumed_total\{.*\} (\d+(\.\d+)?)$", re.M)

        def consumed_all() -> bool:
            body = get(f"{url}/metrics")[1]
            return sum(float(m.group(1)) for m in consumed.finditer(body)) >= 20

        wait_for(consumed_all, "20 consumed events in /metrics", 60, log)

        status, exposition = get(f"{url}/metrics")
        assert status == 200
        refs = _deploy_refs()
        from segstream.app.deliver.metrics import DeliverMetrics

        # The destinations row is about `segstream deliver`, which exports those itself.
        assert refs.unexported(exposition + DeliverMetrics().render().decode()) == {}
        families = set(refs.exported_series(exposition).values())
        from segstream.app.metrics import METRIC_NAMES

        assert set(METRIC_NAMES) <= families
        assert "segstream_ready 1.0" in exposition.splitlines()
        assert "segstream_partitions_assigned 2.0" in exposition.splitlines()
        assert re.search(
            r'^segstream_transactions_total\{outcome="committed"\} [1-9]', exposition, re.M
        )

        started = time.monotonic()
        process.send_signal(signal.SIGTERM)
        try:
            code = process.wait(GRACE_PERIOD_S)
        except subprocess.TimeoutExpired:
            pytest.fail(
                f"worker still running {GRACE_PERIOD_S} s after SIGTERM:\n{log.read_text()}"
            )
        assert code == 0, log.read_text()
        assert time.monotonic() - started < GRACE_PERIOD_S
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(10)
