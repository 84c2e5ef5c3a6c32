"""deploy/: every YAML parses, and the image, Compose and Kubernetes files fit the worker."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from typing import Any

import pytest
import yaml
from deploy_refs import (
    COMPOSE,
    DEPLOY,
    DOCKERFILE,
    K8S,
    REPO_ROOT,
    k8s_documents,
    k8s_object,
    settings_variables,
)

STORE_ROOT = "/var/lib/segstream"
SECURITY_VARIABLES = {
    "SEGSTREAM_SECURITY_PROTOCOL",
    "SEGSTREAM_SASL_MECHANISM",
    "SEGSTREAM_SASL_USERNAME",
    "SEGSTREAM_SASL_PASSWORD",
    "SEGSTREAM_SSL_CAFILE",
    "SEGSTREAM_SSL_CERTFILE",
    "SEGSTREAM_SSL_KEYFILE",
}


def compose() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(COMPOSE.read_text())
    return data


def worker_container() -> dict[str, Any]:
    (container,) = k8s_object("StatefulSet")["spec"]["template"]["spec"]["containers"]
    return container


@pytest.mark.parametrize(
    "path",
    sorted(
        [*DEPLOY.rglob("*.yaml"), *DEPLOY.rglob("*.yml"), REPO_ROOT / "docker-compose.kafka.yml"]
    ),
    ids=lambda path: str(path.relative_to(REPO_ROOT)),
)
def test_every_yaml_file_parses(path: Any) -> None:
    docs = [doc for doc in yaml.safe_load_all(path.read_text()) if doc is not None]
    assert docs


def test_every_json_file_parses() -> None:
    for path in DEPLOY.rglob("*.json"):
        json.loads(path.read_text())


def test_deploy_files_set_only_variables_the_worker_reads() -> None:
    known = settings_variables()
    assert known >= SECURITY_VARIABLES
    texts = [COMPOSE, DOCKERFILE, *K8S.glob("*.yaml")]
    used = {
        name for path in texts for name in re.findall(r"\bSEGSTREAM_[A-Z0-9_]+", path.read_text())
    }
    assert used and used <= known, used - known


# --- the image ---------------------------------------------------------------------------


def test_image_runs_the_worker_as_non_root_with_the_store_on_a_volume() -> None:
    text = DOCKERFILE.read_text()
    final_stage = text.split("\nFROM ")[-1]
    assert "-slim" in final_stage.splitlines()[0]
    users = re.findall(r"^USER\s+(\S+)", final_stage, re.MULTILINE)
    assert users and users[-1].split(":")[0] not in ("root", "0")
    assert re.search(rf'^VOLUME\s+\["{STORE_ROOT}"\]', final_stage, re.MULTILINE)
    assert f"SEGSTREAM_STORE_DIR={STORE_ROOT}/" in final_stage
    assert "SEGSTREAM_WEB_HOST=0.0.0.0" in final_stage
    assert re.search(r'^ENTRYPOINT \["segstream"\]', final_stage, re.MULTILINE)
    assert re.search(r'^CMD \["worker"\]', final_stage, re.MULTILINE)


def test_dockerignore_keeps_the_context_small_but_sends_the_build_inputs() -> None:
    ignored = {
        line.strip()
        for line in (REPO_ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    }
    assert {".git", ".venv", "tests"} <= ignored
    copied = re.findall(r"^COPY (?!--from)(.+) \S+$", DOCKERFILE.read_text(), re.MULTILINE)
    for source in " ".join(copied).split():
        assert source not in ignored
        assert (REPO_ROOT / source).exists(), source


# --- Compose -----------------------------------------------------------------------------


def test_compose_has_kafka_topics_two_workers_lag_exporter_prometheus_and_grafana() -> None:
    services = compose()["services"]
    assert set(services) == {
        "kafka",
        "topics",
        "worker-1",
        "worker-2",
        "lag-exporter",
        "prometheus",
        "grafana",
    }
    assert services["kafka"]["image"].startswith("apache/kafka:")
    assert "controller" in services["kafka"]["environment"]["KAFKA_PROCESS_ROLES"]
    assert services["topics"]["command"] == ["worker", "--create-topics-only"]
    ids = set()
    for name in ("worker-1", "worker-2"):
        worker = services[name]
        env = worker["environment"]
        assert env["SEGSTREAM_WEB_HOST"] == "0.0.0.0"
        assert env["SEGSTREAM_STORE_DIR"].startswith(STORE_ROOT)
        assert env["SEGSTREAM_KAFKA_BOOTSTRAP"] == "kafka:29092"
        ids.add(env["SEGSTREAM_WORKER_ID"])
        assert any(volume.endswith(f":{STORE_ROOT}") for volume in worker["volumes"])
        assert worker["depends_on"]["topics"]["condition"] == "service_completed_successfully"
        assert worker["stop_grace_period"]
    assert ids == {"worker-1", "worker-2"}
    # The lag exporter reads the workers' settings (so their group) and is what
    # prometheus.yml's segstream-lag job scrapes.
    exporter = services["lag-exporter"]
    assert exporter["command"][0] == "lag-exporter"
    assert exporter["environment"] == services["topics"]["environment"]
    assert exporter["environment"]["SEGSTREAM_KAFKA_BOOTSTRAP"] == "kafka:29092"
    assert _option(exporter["command"], "--host") == "0.0.0.0"
    assert _option(exporter["command"], "--port") == "6068"
    assert "lag-exporter" in services["prometheus"]["depends_on"]


def test_compose_mounts_files_that_exist() -> None:
    for service in compose()["services"].values():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("."):
                assert (COMPOSE.parent / source).exists(), volume
    grafana = compose()["services"]["grafana"]
    assert (
        "./grafana/segstream.json:/var/lib/grafana/dashboards/segstream.json:ro"
        in (grafana["volumes"])
    )


def _option(argv: list[str], name: str) -> str:
    """The value after `name` in a command line."""
    return argv[argv.index(name) + 1]


def _compose_client() -> list[str] | None:
    docker = shutil.which("docker")
    if docker is not None:
        probe = subprocess.run(
            [docker, "compose", "version"], capture_output=True, timeout=30, check=False
        )
        if probe.returncode == 0:
            return [docker, "compose"]
    legacy = shutil.which("docker-compose")
    return [legacy] if legacy else None


def test_docker_compose_config_accepts_the_file() -> None:
    client = _compose_client()
    if client is None:
        pytest.skip("no Compose client (`docker compose` plugin or docker-compose) here")
    result = subprocess.run(
        [*client, "-f", str(COMPOSE), "config", "--quiet"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=REPO_ROOT,
    )
    if result.returncode != 0 and re.search(
        r"Cannot connect to the Docker daemon|docker daemon|docker.sock", result.stderr, re.I
    ):
        pytest.skip(f"the Compose client needs an engine here: {result.stderr.strip()}")
    assert result.returncode == 0, result.stderr


# --- Kubernetes --------------------------------------------------------------------------


def test_k8s_has_the_objects_of_the_issue() -> None:
    kinds = sorted(doc["kind"] for docs in k8s_documents().values() for doc in docs)
    for kind in (
        "StatefulSet",
        "Service",
        "ConfigMap",
        "Secret",
        "PodDisruptionBudget",
        "Deployment",
        "ServiceMonitor",
        "PrometheusRule",
    ):
        assert kind in kinds
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    for resource in kustomization["resources"]:
        assert (K8S / resource).exists()


def test_statefulset_gives_stable_ids_a_volume_per_pod_probes_and_a_grace_period() -> None:
    sts = k8s_object("StatefulSet")
    pod = sts["spec"]["template"]
    container = worker_container()
    assert sts["spec"]["selector"]["matchLabels"].items() <= pod["metadata"]["labels"].items()
    assert sts["spec"]["serviceName"] == k8s_object("Service", "segstream")["metadata"]["name"]
    (claim,) = sts["spec"]["volumeClaimTemplates"]
    mounts = {mount["name"]: mount["mountPath"] for mount in container["volumeMounts"]}
    assert mounts[claim["metadata"]["name"]] == STORE_ROOT
    env = {item["name"]: item for item in container["env"]}
    assert env["SEGSTREAM_WORKER_ID"]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.name"
    assert container["livenessProbe"]["httpGet"]["path"] == "/livez"
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert {p["name"]: p["containerPort"] for p in container["ports"]} == {"web": 6066}
    assert pod["spec"]["terminationGracePeriodSeconds"] >= 20
    assert pod["spec"]["securityContext"]["runAsNonRoot"] is True
    assert pod["spec"]["securityContext"]["runAsUser"] != 0


def test_configmap_and_secrets_feed_the_worker() -> None:
    container = worker_container()
    sources = {next(iter(ref)): ref[next(iter(ref))]["name"] for ref in container["envFrom"]}
    config = k8s_object("ConfigMap")
    assert sources["configMapRef"] == config["metadata"]["name"]
    assert config["data"]["SEGSTREAM_WEB_HOST"] == "0.0.0.0"
    assert config["data"]["SEGSTREAM_STORE_DIR"].startswith(STORE_ROOT)
    secrets = {doc["metadata"]["name"]: doc for doc in k8s_documents()["secret.yaml"]}
    credentials = secrets[sources["secretRef"]]
    assert set(credentials["stringData"]) == SECURITY_VARIABLES
    # Certificate paths point into the mounted TLS secret.
    mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    volumes = {
        v["name"]: v for v in k8s_object("StatefulSet")["spec"]["template"]["spec"]["volumes"]
    }
    tls_volume = next(name for name, v in volumes.items() if "secret" in v)
    assert volumes[tls_volume]["secret"]["secretName"] in secrets
    assert credentials["stringData"]["SEGSTREAM_SSL_CAFILE"].startswith(mounts[tls_volume] + "/")


def test_service_pdb_and_servicemonitor_select_the_workers() -> None:
    pod_labels = k8s_object("StatefulSet")["spec"]["template"]["metadata"]["labels"]
    service = k8s_object("Service", "segstream")
    assert service["spec"]["selector"].items() <= pod_labels.items()
    assert service["spec"]["clusterIP"] == "None"
    (port,) = service["spec"]["ports"]
    pdb = k8s_object("PodDisruptionBudget")
    assert pdb["spec"]["selector"]["matchLabels"].items() <= pod_labels.items()
    assert pdb["spec"]["maxUnavailable"] == 1
    monitor = k8s_object("ServiceMonitor", "segstream")
    assert (
        monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    )
    (endpoint,) = monitor["spec"]["endpoints"]
    assert (endpoint["port"], endpoint["path"]) == (port["name"], "/metrics")


def test_lag_exporter_runs_on_the_workers_settings_and_is_scraped_as_segstream_lag() -> None:
    deployment = k8s_object("Deployment", "segstream-lag-exporter")
    pod = deployment["spec"]["template"]
    (container,) = pod["spec"]["containers"]
    args = container["args"]
    assert args[0] == "lag-exporter"
    assert _option(args, "--host") == "0.0.0.0"
    port = int(_option(args, "--port"))
    assert {p["name"]: p["containerPort"] for p in container["ports"]} == {"metrics": port}
    # The workers' ConfigMap and Secret: the same brokers, security, topics and group.
    assert container["envFrom"] == worker_container()["envFrom"]
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert pod["spec"]["securityContext"]["runAsNonRoot"] is True
    # A single replica: two would export the same lag twice.
    assert deployment["spec"]["replicas"] == 1
    # The Operator names the job after the Service: the alert selects job="segstream-lag".
    service = k8s_object("Service", "segstream-lag")
    assert service["spec"]["selector"].items() <= pod["metadata"]["labels"].items()
    assert service["spec"]["publishNotReadyAddresses"] is True
    (service_port,) = service["spec"]["ports"]
    monitor = k8s_object("ServiceMonitor", "segstream-lag")
    assert (
        monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    )
    assert not (
        monitor["spec"]["selector"]["matchLabels"].items()
        <= k8s_object("Service", "segstream")["metadata"]["labels"].items()
    )
    (endpoint,) = monitor["spec"]["endpoints"]
    assert (endpoint["port"], endpoint["path"]) == (service_port["name"], "/metrics")


# --- tools -------------------------------------------------------------------------------


def test_ensure_promtool_script_is_executable_bash() -> None:
    script = DEPLOY / "tools" / "ensure-promtool.sh"
    assert script.stat().st_mode & 0o111
    result = subprocess.run(
        ["bash", "-n", str(script)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr


# --- docs --------------------------------------------------------------------------------


def test_operations_doc_covers_the_issue_topics() -> None:
    text = (REPO_ROOT / "docs" / "operations.md").read_text()
    headings = {line.lstrip("#").strip() for line in text.splitlines() if line.startswith("#")}
    for heading in (
        "Running",
        "Scaling out",
        "Recovery after a worker loss",
        "Changing partitions",
        "Security settings",
        "Backup and restore",
        "Upgrading",
    ):
        assert heading in headings, heading
    # Every path the doc names under deploy/ exists.
    for path in set(re.findall(r"`(deploy/[\w./-]+)`", text)):
        assert (REPO_ROOT / path).exists(), path
