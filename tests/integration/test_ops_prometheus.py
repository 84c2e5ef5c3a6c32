"""A real Prometheus scrapes two live workers, the lag exporter and `segstream deliver` (with one
webhook destination) with deploy/'s scrape jobs:
every dashboard query and every alert operand returns series, the rules evaluate, and the lag
stays visible (and grows) once every worker is stopped."""

from __future__ import annotations

import asyncio
import importlib.util
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from ops_harness import Prometheus, lag_exporter, prometheus_binary, scrape_config, wait_for
from webhook_receiver import Receiver, always_ok, deliver_env, make_secret
from worker_harness import SEGSTREAM, WorkerCluster

from segstream.app.destination_writer import DestinationWriter
from segstream.app.outbound import OutboundPolicy
from segstream.app.segment_writer import SegmentWriter

pytestmark = pytest.mark.kafka

SCRAPE_INTERVAL = "1s"
#: Long enough for every query to see its series with a few samples in its windows.
QUERY_TIMEOUT_S = 60.0
PROFILES = 20
SEGMENT = {
    "id": "pro-plan",
    "name": "Pro plan",
    "condition": {"trait": "plan", "op": "eq", "value": "pro"},
}


def _deploy_refs() -> ModuleType:
    """tests/unit/ops/deploy_refs.py (the dashboard's and rules' expressions), by path."""
    path = Path(__file__).resolve().parents[1] / "unit" / "ops" / "deploy_refs.py"
    spec = importlib.util.spec_from_file_location("segstream_ops_deploy_refs_prom", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


refs = _deploy_refs()


@dataclass
class Stack:
    cluster: WorkerCluster
    prometheus: Prometheus
    exporter_url: str
    exporter_log: Path
    deliver_url: str = ""

    def logs(self) -> str:
        parts = [f"--- prometheus\n{self.prometheus.log()}"]
        parts += [f"--- {name}\n{self.cluster.log(name)[-4000:]}" for name in ("w1", "w2")]
        parts.append(f"--- lag exporter\n{self.exporter_log.read_text()[-4000:]}")
        return "\n".join(parts)


def host_port(url: str) -> str:
    return url.removeprefix("http://")


def profile_event(index: int, plan: str = "pro") -> dict[str, Any]:
    return {
        "id": f"e-{index}",
        "type": "profile.updated",
        "profile_id": f"p-{index}",
        "at": "2026-11-28T10:00:00Z",
        "traits": {"plan": plan},
    }


async def apply_destination(cluster: WorkerCluster, receiver: Receiver) -> None:
    policy = OutboundPolicy.from_env(deliver_env(receiver))
    async with DestinationWriter(cluster.settings, policy) as writer:
        (applied,) = await writer.apply(
            [
                {
                    "id": "ops",
                    "url": receiver.url("/ops"),
                    "secret": {"env": "SEGSTREAM_WEBHOOK_SECRET_TEST"},
                    "batch": {"max_events": 10, "max_linger_ms": 100},
                }
            ]
        )
        assert applied.outcome == "created", applied


def deliver_url(log: Path) -> str:
    """The deliver process's web address, from its log."""
    import re

    def found() -> str | None:
        hits = re.findall(r"web listening on (http://[0-9.]+:[0-9]+)", log.read_text())
        return hits[-1] if hits else None

    return str(wait_for(found, "the deliver process's web server", 30, log.read_text))


async def apply_segment(cluster: WorkerCluster) -> None:
    async with SegmentWriter(cluster.settings) as writer:
        (applied,) = await writer.apply([SEGMENT])
        assert applied.outcome == "created", applied


@pytest.fixture(scope="module")
def stack(kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    binary = prometheus_binary()  # skip (or fail in CI) before starting anything
    tmp = tmp_path_factory.mktemp("ops-prometheus")
    cluster = WorkerCluster(kafka_bootstrap, tmp, partitions=2)
    asyncio.run(cluster.create_topics())
    exporter_log = tmp / "lag-exporter.log"
    # `segstream deliver` with one destination, for the dashboard's destinations row.
    receiver = Receiver(tmp, make_secret(), always_ok).start()
    asyncio.run(apply_destination(cluster, receiver))
    deliver_log = tmp / "deliver.log"
    with deliver_log.open("ab") as log:
        deliver = subprocess.Popen(
            [SEGSTREAM, "deliver"],
            env={**cluster.env, **deliver_env(receiver)},
            stdout=log,
            stderr=log,
        )
    with lag_exporter(cluster.env, exporter_log, poll_interval=0.5) as (_, exporter_url):
        prometheus: Prometheus | None = None
        try:
            cluster.start("w1")
            cluster.start("w2")
            delivering = deliver_url(deliver_log)
            workers = [*(cluster.web_url(name) for name in ("w1", "w2")), delivering]
            # deploy/prometheus/prometheus.yml's jobs (relabelling included) and its rules.
            config = scrape_config(
                {
                    "segstream": [host_port(url) for url in workers],
                    "segstream-lag": [host_port(exporter_url)],
                },
                SCRAPE_INTERVAL,
                [str(refs.ALERTS)],
            )
            prometheus = Prometheus(binary, tmp / "prometheus", config)
            prometheus.wait_ready()
            stack = Stack(cluster, prometheus, exporter_url, exporter_log, delivering)
            for name in ("w1", "w2"):
                cluster.wait_ready(name, timeout=90)
            # Traffic for every panel: a segment (members, backfill), events that make
            # members (throughput, membership changes, end-to-end latency), a dead letter.
            asyncio.run(apply_segment(cluster))
            records: list[Any] = [profile_event(i) for i in range(PROFILES)]
            records.append((cluster.topic("profiles"), b"junk", b"not json"))
            asyncio.run(cluster.produce(records))
            yield stack
        finally:
            if prometheus is not None:
                prometheus.stop()
            cluster.stop_all()
            deliver.terminate()
            deliver.wait(30)
            receiver.stop()


def empty_queries(prometheus: Prometheus, queries: list[str]) -> list[str]:
    return [q for q in queries if not prometheus.query(q)]


def wait_until_every_query_has_series(stack: Stack, queries: list[str], what: str) -> None:
    deadline = time.monotonic() + QUERY_TIMEOUT_S
    empty = queries
    while time.monotonic() < deadline:
        empty = empty_queries(stack.prometheus, queries)
        if not empty:
            return
        time.sleep(1)
    listed = "\n".join(f"  {q}" for q in empty)
    pytest.fail(f"{what} with no series after {QUERY_TIMEOUT_S} s:\n{listed}\n{stack.logs()}")


def test_every_scrape_target_is_up(stack: Stack) -> None:
    wanted = {
        f"http://{host_port(url)}/metrics"
        for url in (
            *(stack.cluster.web_url(n) for n in ("w1", "w2")),
            stack.exporter_url,
            stack.deliver_url,
        )
    }

    def all_up() -> bool:
        targets = stack.prometheus.targets_up()
        return set(targets) == wanted and set(targets.values()) == {"up"}

    wait_for(all_up, "both workers, the exporter and the deliver process up", 30, stack.logs)


def test_every_dashboard_query_returns_series(stack: Stack) -> None:
    queries = refs.dashboard_queries()
    assert len(queries) >= 25
    wait_until_every_query_has_series(stack, queries, "dashboard queries")
    # The relabelling of prometheus.yml gives the worker label.
    assert stack.prometheus.query('segstream_ready{worker="127.0.0.1"}')


def test_every_alert_operand_returns_series_and_the_rules_evaluate(stack: Stack) -> None:
    operands = [op for rule in refs.alert_rules() for op in refs.alert_operands(rule["expr"])]
    assert len(operands) >= len(refs.alert_rules())
    wait_until_every_query_has_series(stack, operands, "alert operands")

    def evaluated() -> dict[str, Any] | None:
        rules = stack.prometheus.alert_rules()
        return rules if all(r["health"] != "unknown" for r in rules.values()) else None

    rules = wait_for(evaluated, "every rule evaluated once", 30, stack.logs)
    assert set(rules) == {rule["alert"] for rule in refs.alert_rules()}
    assert {name: r["health"] for name, r in rules.items() if r["health"] != "ok"} == {}
    # A healthy pair of workers: nothing fires (dead letters may: one was sent on purpose).
    firing = {a for a, state in stack.prometheus.alerts().items() if state == "firing"}
    assert firing <= {"SegstreamDeadLetters"}


def test_the_documented_deployment_check_passes(stack: Stack) -> None:
    # docs/operations.md: the same check, against a deployment's Prometheus.
    script = refs.DEPLOY / "tools" / "check-prometheus-queries.py"
    variables = refs.GRAFANA_VARIABLES
    result = subprocess.run(
        [
            sys.executable,
            str(script),
            "--prometheus",
            stack.prometheus.url,
            "--rate-interval",
            variables["$__rate_interval"],
            "--range",
            variables["$__range"],
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    checked = result.stdout.splitlines()
    # Rules as Prometheus loaded them (its own printing of each expression) split the same way.
    assert sum(line.startswith("ok") and " alert " in line for line in checked) == len(
        [op for rule in refs.alert_rules() for op in refs.alert_operands(rule["expr"])]
    )


def test_lag_exporter_names_the_owning_worker(stack: Stack) -> None:
    profiles = stack.cluster.topic("profiles")
    query = f'count by (client_id) (kafka_consumergroup_group_lag{{topic="{profiles}"}})'

    def owners() -> set[str] | None:
        found = {s["metric"].get("client_id") for s in stack.prometheus.query(query)}
        return found if found == {"w1", "w2"} else None

    wait_for(owners, "partitions owned by w1 and w2", 30, stack.logs)


# Last in the file (pytest runs a module's tests in order): it stops the module's workers.
def test_lag_is_still_reported_and_grows_when_every_worker_is_stopped(stack: Stack) -> None:
    cluster, prometheus = stack.cluster, stack.prometheus
    profiles = cluster.topic("profiles")
    lag = f'sum(kafka_consumergroup_group_topic_sum_lag{{job="segstream-lag", topic="{profiles}"}})'

    def caught_up() -> bool:
        return [s["value"][1] for s in prometheus.query(lag)] == ["0"]

    wait_for(caught_up, "the workers to consume everything", 60, stack.logs)
    for name in ("w1", "w2"):
        assert cluster.stop(name) == 0, cluster.log(name)
    more = 30
    asyncio.run(cluster.produce([profile_event(PROFILES + i) for i in range(more)]))

    def lagging() -> bool:
        return [s["value"][1] for s in prometheus.query(lag)] == [str(more)]

    wait_for(lagging, f"a lag of {more} with no worker running", 30, stack.logs)
    # Meanwhile the workers' own lag is gone with them (that is why the alert reads the
    # exporter), and Prometheus sees them down.
    wait_for(
        lambda: not prometheus.query("segstream_consumer_lag_records"),
        "the workers' series to go stale",
        30,
        stack.logs,
    )
    down = prometheus.query('up{job="segstream"} == 0')
    assert len(down) == 2
    # The lag alert's own operands see it.
    (first, _) = refs.alert_operands(
        next(r["expr"] for r in refs.alert_rules() if r["alert"] == "SegstreamConsumerLagGrowing")
    )
    by_topic = {s["metric"]["topic"]: s["value"][1] for s in prometheus.query(first)}
    assert by_topic[profiles] == str(more)
