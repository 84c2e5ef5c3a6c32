"""Real processes for the ops tests: `segstream lag-exporter`, and a Prometheus server."""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml

SEGSTREAM = str(Path(sys.executable).with_name("segstream"))
PROMETHEUS = "/usr/bin/prometheus"
REPO_ROOT = Path(__file__).resolve().parents[2]
PROMETHEUS_CONFIG = REPO_ROOT / "deploy" / "prometheus" / "prometheus.yml"
_EXPORTER_URL = re.compile(r"lag exporter listening on (http://[0-9.]+:[0-9]+)")


def get(url: str, timeout: float = 5) -> tuple[int, str]:
    """(status, body) of a GET; HTTP errors are answers too."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def wait_for(check: Callable[[], Any], what: str, timeout: float, logs: Callable[[], str]) -> Any:
    """Poll `check()` until it returns something truthy; fail with `logs()`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            found = check()
        except OSError:
            found = None
        if found:
            return found
        time.sleep(0.25)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}\n{logs()}")


def stop_process(process: subprocess.Popen[bytes], timeout: float = 15) -> int:
    """SIGTERM, then SIGKILL if it does not exit in time; the exit code."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            return process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
    return process.wait(10)


@contextlib.contextmanager
def lag_exporter(
    env: Mapping[str, str], log: Path, *extra: str, poll_interval: float = 0.5
) -> Iterator[tuple[subprocess.Popen[bytes], str]]:
    """`segstream lag-exporter` on a free port: (process, base URL); SIGTERM at the end."""
    with log.open("ab") as sink:
        process = subprocess.Popen(
            [
                SEGSTREAM,
                "lag-exporter",
                "--port",
                "0",
                "--poll-interval",
                str(poll_interval),
                *extra,
            ],
            env=dict(env),
            stdout=sink,
            stderr=sink,
        )
    try:
        url = wait_for(
            lambda: (_EXPORTER_URL.findall(log.read_text()) or [None])[-1],
            "the lag exporter's `listening on` line",
            30,
            log.read_text,
        )
        yield process, str(url)
    finally:
        stop_process(process)


def prometheus_binary() -> str:
    """Debian's Prometheus server; a skip without it, a failure in CI (where the set-up
    installs it: deploy/tools/ensure-promtool.sh)."""
    found = PROMETHEUS if Path(PROMETHEUS).is_file() else shutil.which("prometheus")
    if found is None:
        message = f"{PROMETHEUS} is missing: run deploy/tools/ensure-promtool.sh"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return found


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def scrape_config(
    targets: Mapping[str, list[str]], scrape_interval: str, rule_files: list[str]
) -> dict[str, Any]:
    """deploy/prometheus/prometheus.yml with each job's targets replaced by `targets[job]`
    (jobs not in `targets` are dropped) and the intervals shortened."""
    config: dict[str, Any] = yaml.safe_load(PROMETHEUS_CONFIG.read_text())
    config["global"]["scrape_interval"] = scrape_interval
    config["global"]["evaluation_interval"] = scrape_interval
    config["rule_files"] = rule_files
    jobs = []
    for job in config["scrape_configs"]:
        if job["job_name"] not in targets:
            continue
        (group,) = job["static_configs"]
        group["targets"] = targets[job["job_name"]]
        jobs.append(job)
    assert {job["job_name"] for job in jobs} == set(targets), "a job is missing from the config"
    config["scrape_configs"] = jobs
    return config


class Prometheus:
    """A Prometheus server on 127.0.0.1 with a temporary TSDB, queried through its HTTP API."""

    def __init__(self, binary: str, folder: Path, config: Mapping[str, Any]) -> None:
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        self.config_path = folder / "prometheus.yml"
        self.config_path.write_text(yaml.safe_dump(dict(config)))
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = folder / "prometheus.log"
        with self.log_path.open("ab") as sink:
            self.process = subprocess.Popen(
                [
                    binary,
                    f"--config.file={self.config_path}",
                    f"--storage.tsdb.path={folder / 'data'}",
                    f"--web.listen-address=127.0.0.1:{self.port}",
                    "--log.level=warn",
                ],
                stdout=sink,
                stderr=sink,
                cwd=folder,
            )

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_ready(self, timeout: float = 30) -> None:
        wait_for(
            lambda: get(f"{self.url}/-/ready")[0] == 200, "Prometheus /-/ready", timeout, self.log
        )

    def query(self, expr: str) -> list[dict[str, Any]]:
        """The instant vector (or scalar as one sample) `expr` gives now; fails on API errors."""
        url = f"{self.url}/api/v1/query?" + urllib.parse.urlencode({"query": expr})
        status, body = get(url)
        answer = json.loads(body)
        assert status == 200 and answer["status"] == "success", f"{expr}: {body}"
        data = answer["data"]
        if data["resultType"] in ("scalar", "string"):
            return [{"metric": {}, "value": data["result"]}]
        result: list[dict[str, Any]] = data["result"]
        return result

    def targets_up(self) -> dict[str, str]:
        """{scrape URL: health} of the active targets."""
        answer = json.loads(get(f"{self.url}/api/v1/targets?state=active")[1])
        return {t["scrapeUrl"]: t["health"] for t in answer["data"]["activeTargets"]}

    def alerts(self) -> dict[str, str]:
        """{alert name: state} of the active alerts."""
        answer = json.loads(get(f"{self.url}/api/v1/alerts")[1])
        return {a["labels"]["alertname"]: a["state"] for a in answer["data"]["alerts"]}

    def alert_rules(self) -> dict[str, dict[str, Any]]:
        """{alert name: rule state} of the loaded alerting rules (health, lastError, ...)."""
        answer = json.loads(get(f"{self.url}/api/v1/rules?type=alert")[1])
        return {r["name"]: r for g in answer["data"]["groups"] for r in g["rules"]}

    def stop(self) -> None:
        stop_process(self.process)
