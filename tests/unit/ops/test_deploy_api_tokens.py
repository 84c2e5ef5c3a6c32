"""The deploy files give the workers an API token from a Secret (a 0.0.0.0 bind needs one)."""

from __future__ import annotations

from typing import Any

import yaml
from deploy_refs import COMPOSE, DOCKERFILE, k8s_documents, k8s_object


def test_compose_workers_read_the_token_from_a_secret() -> None:
    compose: dict[str, Any] = yaml.safe_load(COMPOSE.read_text())
    assert compose["secrets"]["api-token"]["file"] == "./secrets/api-token"
    for name in ("worker-1", "worker-2"):
        service = compose["services"][name]
        assert "api-token" in service["secrets"], name
        env = service["environment"]
        assert env["SEGSTREAM_API_TOKEN_FILE"] == "/run/secrets/api-token"
        assert "SEGSTREAM_WEB_INSECURE" not in env and "SEGSTREAM_API_TOKEN" not in env
        assert env["SEGSTREAM_WEB_ADVERTISE"] == f"http://{name}:6066"
    # The services that serve no API need no token (and get no secret).
    for name, service in compose["services"].items():
        if name not in ("worker-1", "worker-2"):
            assert "api-token" not in service.get("secrets", []), name


def test_k8s_workers_take_api_and_peer_tokens_from_the_api_secret() -> None:
    (container,) = k8s_object("StatefulSet")["spec"]["template"]["spec"]["containers"]
    env = {item["name"]: item for item in container["env"]}
    secrets = {doc["metadata"]["name"]: doc for doc in k8s_documents()["secret.yaml"]}
    for variable, key in (
        ("SEGSTREAM_API_TOKEN", "api-token"),
        ("SEGSTREAM_API_PEER_TOKEN", "peer-token"),
        ("SEGSTREAM_API_READ_TOKEN", "read-token"),
    ):
        ref = env[variable]["valueFrom"]["secretKeyRef"]
        assert key == ref["key"] and key in secrets[ref["name"]]["stringData"]
    assert "SEGSTREAM_WEB_INSECURE" not in env
    assert env["SEGSTREAM_API_PEER_URLS"]["value"].startswith("http://*.segstream.")
    assert "$(SEGSTREAM_WORKER_ID)" in env["SEGSTREAM_WEB_ADVERTISE"]["value"]


def test_the_image_binds_all_addresses_without_an_insecure_override() -> None:
    text = DOCKERFILE.read_text()
    assert "SEGSTREAM_WEB_HOST=0.0.0.0" in text and "SEGSTREAM_WEB_INSECURE" not in text
    assert "-c constraints.txt" in text
