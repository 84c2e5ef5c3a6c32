"""Session-scoped real Kafka broker for tests marked `kafka` (env, Docker, or the local script)."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
KAFKA_SCRIPT = REPO_ROOT / "deploy" / "kafka-local" / "kafka.sh"
KAFKA_IMAGE = "apache/kafka:4.4.0"
BOOTSTRAP_ENV = "SEGSTREAM_KAFKA_BOOTSTRAP"
# The Docker CLI may exist with no engine behind it: a ping that does not answer within this
# many seconds means "no Docker", never a hang.
DOCKER_PING_TIMEOUT_S = 1.5
# The first start resolves the broker's jars with Maven (about a minute on a cold cache).
LOCAL_START_TIMEOUT_S = 600


def free_ports(count: int) -> list[int]:
    """`count` distinct TCP ports on 127.0.0.1 that nothing listens on right now."""
    # All probes stay bound until every port is chosen, so the ports differ.
    probes = [socket.socket(socket.AF_INET, socket.SOCK_STREAM) for _ in range(count)]
    try:
        for probe in probes:
            probe.bind(("127.0.0.1", 0))
        return [int(probe.getsockname()[1]) for probe in probes]
    finally:
        for probe in probes:
            probe.close()


def docker_engine_answers() -> bool:
    """True when a Docker engine answers `GET /_ping` quickly on DOCKER_HOST or its socket."""
    docker_host = os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock")
    try:
        if docker_host.startswith("unix://"):
            path = docker_host.removeprefix("unix://")
            if not Path(path).exists():
                return False
            conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            conn.settimeout(DOCKER_PING_TIMEOUT_S)
            conn.connect(path)
        elif docker_host.startswith("tcp://"):
            host, _, port = docker_host.removeprefix("tcp://").partition(":")
            conn = socket.create_connection(
                (host, int(port or "2375")), timeout=DOCKER_PING_TIMEOUT_S
            )
        else:
            return False
        with conn:
            conn.sendall(b"GET /_ping HTTP/1.1\r\nHost: docker\r\nConnection: close\r\n\r\n")
            reply = conn.recv(1024)
    except OSError:
        return False
    return reply.startswith(b"HTTP/1.") and b" 200 " in reply.split(b"\r\n", 1)[0]


def broker_from_docker() -> Iterator[str]:
    """A KRaft broker in testcontainers' DockerContainer, advertised on a fixed free host port."""
    from testcontainers.core.container import DockerContainer
    from testcontainers.core.waiting_utils import wait_for_logs

    (port,) = free_ports(1)
    container = (
        DockerContainer(KAFKA_IMAGE)
        .with_bind_ports(9092, port)
        .with_env("KAFKA_NODE_ID", "1")
        .with_env("KAFKA_PROCESS_ROLES", "broker,controller")
        .with_env("KAFKA_CONTROLLER_QUORUM_VOTERS", "1@localhost:9093")
        .with_env("KAFKA_LISTENERS", "PLAINTEXT://0.0.0.0:9092,CONTROLLER://localhost:9093")
        .with_env("KAFKA_ADVERTISED_LISTENERS", f"PLAINTEXT://127.0.0.1:{port}")
        .with_env("KAFKA_CONTROLLER_LISTENER_NAMES", "CONTROLLER")
        .with_env(
            "KAFKA_LISTENER_SECURITY_PROTOCOL_MAP", "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT"
        )
        .with_env("KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR", "1")
        .with_env("KAFKA_OFFSETS_TOPIC_NUM_PARTITIONS", "4")
        .with_env("KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR", "1")
        .with_env("KAFKA_TRANSACTION_STATE_LOG_MIN_ISR", "1")
        .with_env("KAFKA_TRANSACTION_STATE_LOG_NUM_PARTITIONS", "4")
        .with_env("KAFKA_SHARE_COORDINATOR_STATE_TOPIC_REPLICATION_FACTOR", "1")
        .with_env("KAFKA_SHARE_COORDINATOR_STATE_TOPIC_MIN_ISR", "1")
        .with_env("KAFKA_AUTO_CREATE_TOPICS_ENABLE", "false")
        .with_env("KAFKA_GROUP_INITIAL_REBALANCE_DELAY_MS", "0")
    )
    with container:
        wait_for_logs(container, "Kafka Server started", timeout=120)
        yield f"127.0.0.1:{port}"


def broker_from_local_script(data_dir: Path) -> Iterator[str]:
    """The broker of deploy/kafka-local/kafka.sh on free ports, data in a temporary folder."""
    if shutil.which("java") is None or (shutil.which("mvn") is None and not _jars_cached()):
        message = "no Kafka broker: set SEGSTREAM_KAFKA_BOOTSTRAP, run Docker, or install java+mvn"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    # A second try on fresh ports covers another process taking a chosen port meanwhile.
    env, started = _start_local_broker(data_dir / "first")
    if started.returncode != 0:
        env, started = _start_local_broker(data_dir / "second")
    if started.returncode != 0:
        pytest.fail(f"kafka.sh start failed:\n{started.stderr}")
    try:
        yield started.stdout.strip().splitlines()[-1]
    finally:
        _stop_local_broker(env)


def _start_local_broker(
    data_dir: Path,
) -> tuple[dict[str, str], subprocess.CompletedProcess[str]]:
    port, controller_port = free_ports(2)
    env = {
        **os.environ,
        "SEGSTREAM_KAFKA_DATA": str(data_dir),
        "SEGSTREAM_KAFKA_PORT": str(port),
        "SEGSTREAM_KAFKA_CONTROLLER_PORT": str(controller_port),
    }
    started = subprocess.run(
        ["bash", str(KAFKA_SCRIPT), "start"],
        env=env,
        capture_output=True,
        text=True,
        timeout=LOCAL_START_TIMEOUT_S,
        check=False,
    )
    if started.returncode != 0:
        _stop_local_broker(env)
    return env, started


def _stop_local_broker(env: dict[str, str]) -> None:
    subprocess.run(
        ["bash", str(KAFKA_SCRIPT), "stop"], env=env, capture_output=True, check=False, timeout=60
    )


def _jars_cached() -> bool:
    version = os.environ.get("SEGSTREAM_KAFKA_VERSION", "4.4.0")
    default_cache = Path.home() / ".cache" / "segstream" / f"kafka-{version}"
    cache = Path(os.environ.get("SEGSTREAM_KAFKA_CACHE", default_cache))
    return (cache / "libs" / ".complete").exists()


@pytest.fixture(scope="session")
def kafka_bootstrap(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """`host:port` of a real broker: SEGSTREAM_KAFKA_BOOTSTRAP, else Docker, else kafka.sh."""
    given = os.environ.get(BOOTSTRAP_ENV)
    if given:
        yield given
    elif docker_engine_answers():
        yield from broker_from_docker()
    else:
        yield from broker_from_local_script(tmp_path_factory.mktemp("kafka"))
