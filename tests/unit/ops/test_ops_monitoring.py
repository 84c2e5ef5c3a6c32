"""The dashboard and alert rules: valid, and only about metrics the worker exports."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from deploy_refs import (
    ALERT_TESTS,
    ALERTS,
    LAG_EXPORTER_PREFIXES,
    PROMETHEUS_CONFIG,
    alert_operands,
    alert_rules,
    dashboard,
    dashboard_exprs,
    dashboard_queries,
    k8s_object,
    metric_names,
    referenced_metrics,
    unexported,
)

from segstream.app.deliver.metrics import DELIVER_METRIC_NAMES, DeliverMetrics
from segstream.app.lag_metrics import LAG_METRIC_NAMES
from segstream.app.metrics import METRIC_NAMES, WorkerMetrics

promtool = shutil.which("promtool")
# In CI the set-up installs it (make ops-tools): missing there is a failure, not a skip.
needs_promtool = pytest.mark.skipif(
    promtool is None and not os.environ.get("CI"),
    reason="promtool missing: run deploy/tools/ensure-promtool.sh",
)


def run_promtool(*args: str) -> subprocess.CompletedProcess[str]:
    assert promtool is not None, "promtool missing: run deploy/tools/ensure-promtool.sh"
    return subprocess.run(
        [promtool, *args], capture_output=True, text=True, timeout=60, check=False
    )


def test_dashboard_and_alerts_use_only_metrics_a_worker_or_the_lag_exporter_exports() -> None:
    # The offline twin of tests/integration/test_ops_live_metrics.py: a fresh WorkerMetrics
    # (and LagMetrics) declares every family, so this catches a typo before any broker starts.
    # The destinations row and alerts are about `segstream deliver`, a process of its own.
    exposition = WorkerMetrics().render().decode() + DeliverMetrics().render().decode()
    assert unexported(exposition) == {}
    lag_used = {name for name in referenced_metrics() if name.startswith(LAG_EXPORTER_PREFIXES)}
    assert "kafka_consumergroup_group_topic_sum_lag" in lag_used
    assert lag_used <= set(LAG_METRIC_NAMES)


def test_dashboard_shows_what_the_issue_asks_for() -> None:
    used = {name for name, where in referenced_metrics().items() if "dashboard" in where}
    titles = " | ".join(panel["title"].lower() for panel in dashboard()["panels"])
    wanted = {
        "throughput": "segstream_events_consumed_total",
        "end-to-end latency": "segstream_end_to_end_latency_seconds_bucket",
        "consumer lag": "segstream_consumer_lag_records",
        "membership changes": "segstream_membership_changes_total",
        "members per segment": "segstream_segment_members",
        "dead letters": "segstream_dead_letters_total",
        "timer lag": "segstream_timer_lag_seconds_bucket",
        "backfill progress": "segstream_backfill_remaining_profiles",
        "ready": "segstream_ready",
        "restoring": "segstream_partition_restoring",
    }
    for title, metric in wanted.items():
        assert title in titles, title
        assert metric in used, metric
    latency = [e for e in dashboard_exprs() if "end_to_end_latency" in e]
    assert {q for e in latency for q in re.findall(r"histogram_quantile\((0\.\d+)", e)} >= {
        "0.5",
        "0.95",
        "0.99",
    }


def test_every_contract_metric_is_on_the_dashboard() -> None:
    used = {name.removesuffix("_bucket").removesuffix("_count") for name in referenced_metrics()}
    assert set(METRIC_NAMES) <= used
    assert {name.removesuffix("_total") for name in DELIVER_METRIC_NAMES} <= {
        name.removesuffix("_total") for name in used
    }


def test_dashboard_is_well_formed_for_provisioning_and_import() -> None:
    board = dashboard()
    assert board["uid"] == "segstream"
    ids = [panel["id"] for panel in board["panels"]]
    assert len(ids) == len(set(ids))
    variables = {v["name"]: v for v in board["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    for panel in board["panels"]:
        if panel["type"] == "row":
            continue
        # The data source is a variable, so the JSON works in any Grafana, not only ours.
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            # Worker metrics by the worker variable; the lag exporter's by the group one.
            lag = any(n.startswith(LAG_EXPORTER_PREFIXES) for n in metric_names(target["expr"]))
            wanted = 'group=~"$group"' if lag else 'instance=~"$instance"'
            assert wanted in target["expr"], panel["title"]
        grid = panel["gridPos"]
        assert grid["x"] + grid["w"] <= 24


def test_alerts_cover_the_issue_cases_and_carry_severity_and_summary() -> None:
    rules = {rule["alert"]: rule for rule in alert_rules()}
    by_metric = {
        # From the lag exporter: there when the workers are not.
        "lag growing": "kafka_consumergroup_group_topic_sum_lag",
        "lag unknown": "segstream_lag_exporter_up",
        "dead letters": "segstream_dead_letters_total",
        "timer lag": "segstream_timer_lag_seconds_bucket",
        "not ready": "segstream_ready",
        "latency objective": "segstream_end_to_end_latency_seconds_bucket",
    }
    for case, metric in by_metric.items():
        assert any(metric in metric_names(rule["expr"]) for rule in rules.values()), case
    for name, rule in rules.items():
        assert name.startswith("Segstream")
        assert rule["labels"]["severity"] in ("warning", "critical")
        assert rule["annotations"]["summary"]


@pytest.mark.parametrize(
    ("expr", "operands"),
    [
        ("up == 0", ["up"]),
        ('a{x=~"a|b"} > 10 and rate(b[5m]) > 0', ['a{x=~"a|b"}', "rate(b[5m])"]),
        # As Prometheus prints a loaded rule: parenthesised comparisons.
        ("(a > 1) or (b == 0)", ["a", "b"]),
        ("sum(x) > 0.05 * sum(y)", ["sum(x)", "0.05 * sum(y)"]),
        ('x_or_y{l="a > b"} >= 1e3', ['x_or_y{l="a > b"}']),
        ("(a) + (b) < 3", ["(a) + (b)"]),
    ],
)
def test_alert_operands_split_at_top_level_comparisons(expr: str, operands: list[str]) -> None:
    assert alert_operands(expr) == operands


def test_prometheus_rule_for_the_operator_equals_alerts_yml() -> None:
    rule = k8s_object("PrometheusRule")
    assert rule["spec"] == yaml.safe_load(ALERTS.read_text())


def test_scrape_config_targets_the_compose_workers_and_lag_exporter() -> None:
    config = yaml.safe_load(PROMETHEUS_CONFIG.read_text())
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    targets = {
        name: [t for group in job["static_configs"] for t in group["targets"]]
        for name, job in jobs.items()
    }
    assert targets["segstream"] == ["worker-1:6066", "worker-2:6066"]
    # The lag alert selects job="segstream-lag".
    assert targets["segstream-lag"] == ["lag-exporter:6068"]
    assert config["rule_files"] == ["alerts.yml"]


@needs_promtool
def test_promtool_check_config() -> None:
    result = run_promtool("check", "config", str(PROMETHEUS_CONFIG))
    assert result.returncode == 0, result.stdout + result.stderr


@needs_promtool
def test_promtool_check_rules() -> None:
    result = run_promtool("check", "rules", str(ALERTS))
    assert result.returncode == 0, result.stdout + result.stderr


@needs_promtool
def test_promtool_test_rules_every_alert_fires_and_resolves() -> None:
    # tests/unit/ops/alerts_test.yml: synthetic series for each rule (docs/operations.md).
    result = run_promtool("test", "rules", str(ALERT_TESTS))
    assert result.returncode == 0, result.stdout + result.stderr


def test_rule_tests_show_each_alert_firing_and_then_resolving() -> None:
    def quiet_firing_quiet(timeline: list[tuple[int, bool]]) -> bool:
        fired = [t for t, firing in timeline if firing]
        return bool(fired) and (
            # Quiet before it fires (its `for:` has not passed, or nothing happened yet) ...
            any(t < fired[0] and not firing for t, firing in timeline)
            # ... and quiet again after.
            and any(t > fired[-1] and not firing for t, firing in timeline)
        )

    shown: set[str] = set()
    for group in yaml.safe_load(ALERT_TESTS.read_text())["tests"]:
        timelines: dict[str, list[tuple[int, bool]]] = {}
        for case in group["alert_rule_test"]:
            minutes = int(str(case["eval_time"]).removesuffix("m"))
            timelines.setdefault(case["alertname"], []).append((minutes, bool(case["exp_alerts"])))
        shown |= {name for name, timeline in timelines.items() if quiet_firing_quiet(timeline)}
    assert {rule["alert"] for rule in alert_rules()} <= shown


@needs_promtool
def test_dashboard_queries_are_valid_promql(tmp_path: Path) -> None:
    # promtool parses recording rules; Grafana's variables become what Grafana would send.
    rules = [
        {"record": f"dashboard:query_{index}", "expr": expr}
        for index, expr in enumerate(dashboard_queries())
    ]
    path = tmp_path / "dashboard-rules.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
    result = run_promtool("check", "rules", str(path))
    assert result.returncode == 0, result.stdout + result.stderr
