"""The worker, the CLI and the API over a secured broker: SASL_SSL (SCRAM-SHA-512) and mTLS.

One broker for the session (tests/secured_broker.py: certificates made with openssl, the
listeners started by deploy/kafka-local/kafka.sh). Each protocol runs the whole path: topics,
a worker, `segments apply`, `produce`, `tail`, and the API's reads; wrong credentials fail
fast with a message that names the settings to check.
"""

from __future__ import annotations

import os
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from worker_harness import SEGSTREAM, WorkerCluster

from secured_broker import SecuredBroker
from segstream.app.worker import EXIT_GRACE_S

pytestmark = pytest.mark.kafka

TOKEN = "secured-broker-api-token"
PROFILES = 12


def segstream(
    env: dict[str, str], *args: str, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [SEGSTREAM, *args],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def get(url: str) -> Any:
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {TOKEN}"})
    with urllib.request.urlopen(request, timeout=30) as response:
        return orjson.loads(response.read())


@pytest.fixture(params=["sasl_ssl", "mtls"])
def secured(
    request: pytest.FixtureRequest, secured_broker: SecuredBroker, tmp_path: Path
) -> Iterator[tuple[str, WorkerCluster]]:
    security = (
        secured_broker.sasl_env() if request.param == "sasl_ssl" else secured_broker.mtls_env()
    )
    cluster = WorkerCluster(
        security["SEGSTREAM_KAFKA_BOOTSTRAP"], tmp_path, partitions=2,
        SEGSTREAM_API_TOKEN=TOKEN, **security,
    )  # fmt: skip
    try:
        yield request.param, cluster
    finally:
        cluster.stop_all()


def test_worker_cli_and_api_end_to_end(secured: tuple[str, WorkerCluster], tmp_path: Path) -> None:
    protocol, cluster = secured
    env = {k: v for k, v in cluster.env.items() if k.startswith("SEGSTREAM_")}
    created = segstream(env, "worker", "--create-topics-only")
    assert created.returncode == 0, created.stderr
    assert f"created topic {cluster.topic('profiles')}" in created.stderr
    cluster.start("w1")
    url = cluster.wait_ready("w1")
    segments = tmp_path / "segments.json"
    segments.write_text(
        orjson.dumps(
            [{"id": "vip", "name": "VIP", "condition": {"trait": "vip", "op": "eq", "value": True}}]
        ).decode()
    )
    applied = segstream(env, "segments", "apply", str(segments))
    assert applied.returncode == 0, applied.stderr
    events = tmp_path / "events.jsonl"
    events.write_text(
        "".join(
            orjson.dumps(
                {
                    "id": f"e{i}",
                    "type": "profile.updated",
                    "profile_id": f"p{i}",
                    "at": "2026-01-01T00:00:00Z",
                    "traits": {"vip": i % 2 == 0},
                }
            ).decode()
            + "\n"
            for i in range(PROFILES)
        )
    )
    produced = segstream(env, "produce", str(events))
    assert produced.returncode == 0, produced.stderr
    tailed = segstream(
        env, "tail", "--json", "--from-beginning", "--max", str(PROFILES // 2), "--timeout", "60",
        timeout=90,
    )  # fmt: skip
    assert tailed.returncode == 0, tailed.stderr
    entered = [orjson.loads(line) for line in tailed.stdout.splitlines()]
    assert sorted(e["profile_id"] for e in entered) == sorted(
        f"p{i}" for i in range(0, PROFILES, 2)
    )
    assert {e["type"] for e in entered} == {"segment.entered"}
    # The API reads the segments and status topics over the same secured connection.
    deadline = time.monotonic() + 60
    while True:
        row = get(f"{url}/api/segments/vip")
        if (row["status"], row["members"]) == ("ready", PROFILES // 2):
            break
        assert time.monotonic() < deadline, row
        time.sleep(0.3)
    profile = get(f"{url}/api/profiles/p2")
    assert profile["traits"] == {"vip": True} and profile["segments"][0]["id"] == "vip"
    listed = segstream(env, "segments", "list")
    assert listed.returncode == 0 and "vip" in listed.stdout, (protocol, listed)
    # SIGTERM: the worker exits within its shutdown budget (SEGSTREAM_SHUTDOWN_TIMEOUT_S)
    # whatever its secured connections' closes wait for (CI once saw over 20 s).
    started = time.monotonic()
    assert cluster.stop("w1") == 0
    took = time.monotonic() - started
    assert took < cluster.settings.shutdown_timeout_s + EXIT_GRACE_S, (took, cluster.log("w1"))
    print(f"{protocol}: SIGTERM to exit {took:.2f}s")


def test_wrong_credentials_fail_fast_and_say_why(
    secured_broker: SecuredBroker, tmp_path: Path
) -> None:
    events = tmp_path / "events.jsonl"
    events.write_text(
        '{"id": "e1", "type": "profile.updated", "profile_id": "p1",'
        ' "at": "2026-01-01T00:00:00Z", "traits": {}}\n'
    )
    segments = tmp_path / "segments.json"
    segments.write_text('{"id": "s", "name": "S", "condition": {"trait": "x", "op": "exists"}}')
    cases = [
        (secured_broker.sasl_env(password="not-the-password"), "SEGSTREAM_SASL_PASSWORD"),
        (secured_broker.mtls_env(certificate=False), "SEGSTREAM_SSL_CERTFILE"),
        # A client that does not trust the broker's CA.
        (
            {
                **secured_broker.mtls_env(),
                "SEGSTREAM_SSL_CAFILE": str(secured_broker.tls_dir / "client.crt"),
            },
            "SEGSTREAM_SSL_CAFILE",
        ),
    ]
    for env, setting in cases:
        for args in (
            ("segments", "list"),
            ("segments", "apply", str(segments)),
            ("produce", str(events)),
            ("tail", "--timeout", "30"),
            ("worker",),
        ):
            started = time.monotonic()
            result = segstream(
                {**env, "SEGSTREAM_TOPIC_PREFIX": "wrong", "SEGSTREAM_WEB_PORT": "0"},
                *args,
                timeout=60,
            )
            assert result.returncode == 1, (args, result.stdout, result.stderr)
            assert time.monotonic() - started < 20, args
            last = result.stderr.strip().splitlines()[-1]
            assert last.startswith("Error: cannot reach Kafka") and setting in last, (args, last)
            assert secured_broker.scram_password not in result.stderr
            assert "not-the-password" not in result.stderr
    sasl = segstream(secured_broker.sasl_env(password="not-the-password"), "segments", "list")
    assert "invalid credentials" in sasl.stderr  # aiokafka's own log line says what happened
