"""Reads the deploy/ files and finds the metric names the dashboard and alert rules use."""

from __future__ import annotations

import importlib.util
import json
import re
from pathlib import Path
from types import ModuleType
from typing import Any

import yaml

REPO_ROOT = Path(__file__).resolve().parents[3]
DEPLOY = REPO_ROOT / "deploy"
DASHBOARD = DEPLOY / "grafana" / "segstream.json"
PROMETHEUS_CONFIG = DEPLOY / "prometheus" / "prometheus.yml"
ALERTS = DEPLOY / "prometheus" / "alerts.yml"
COMPOSE = DEPLOY / "compose.yaml"
K8S = DEPLOY / "k8s"
DOCKERFILE = DEPLOY / "docker" / "Dockerfile"
SETTINGS_SOURCE = REPO_ROOT / "src" / "segstream" / "app" / "settings.py"

ALERT_TESTS = REPO_ROOT / "tests" / "unit" / "ops" / "alerts_test.yml"

# Series Prometheus makes itself for every scrape target; no worker exports them.
PROMETHEUS_OWN_SERIES = frozenset({"up"})
# Series of `segstream lag-exporter` (kafka-lag-exporter's names), not of the worker.
LAG_EXPORTER_PREFIXES = ("kafka_", "segstream_lag_exporter_")


def _load_query_check() -> ModuleType:
    """deploy/tools/check-prometheus-queries.py, the check operators run on a deployment."""
    path = DEPLOY / "tools" / "check-prometheus-queries.py"
    spec = importlib.util.spec_from_file_location("segstream_check_prometheus_queries", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


QUERY_CHECK = _load_query_check()
#: What Grafana sends for the dashboard's variables, in the tests (scrapes there are 1 s apart;
#: Grafana's $__rate_interval is at least four scrape intervals).
GRAFANA_VARIABLES: dict[str, str] = QUERY_CHECK.grafana_variables("15s", "5m")
# Histograms are exported as <base>_bucket/_sum/_count; queries name those, the worker the base.
_HISTOGRAM_SUFFIXES = ("_bucket", "_sum", "_count")
_PROMQL_KEYWORDS = frozenset(
    {"by", "without", "on", "ignoring", "group_left", "group_right", "bool", "offset"}
    | {"and", "or", "unless", "atan2", "inf", "nan"}
)
_LABEL_LISTS = re.compile(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)")
_IDENTIFIER = re.compile(r"(?<![\w.$:])([a-zA-Z_:][a-zA-Z0-9_:]*)(?!\s*\(|[\w:])")


def dashboard() -> dict[str, Any]:
    """deploy/grafana/segstream.json."""
    data: dict[str, Any] = json.loads(DASHBOARD.read_text())
    return data


def dashboard_exprs() -> list[str]:
    """Every PromQL expression of the dashboard: panel targets and query variables."""
    exprs: list[str] = QUERY_CHECK.dashboard_exprs(dashboard())
    return exprs


def alert_rules() -> list[dict[str, Any]]:
    """The rules of deploy/prometheus/alerts.yml, all groups."""
    doc = yaml.safe_load(ALERTS.read_text())
    return [rule for group in doc["groups"] for rule in group["rules"]]


def metric_names(expr: str) -> set[str]:
    """Series names a PromQL expression selects (histograms as <base>_bucket etc.).

    A small lexer, not a parser: strings, label matchers, ranges and label lists are removed;
    what is left that is an identifier and not a function call or keyword is a metric name.
    Grafana's `label_values(metric, label)` names its metric first.
    """
    grafana = re.fullmatch(r"\s*label_values\(\s*([^,\s)]+)\s*,.*\)\s*", expr)
    if grafana:
        expr = grafana.group(1)
    text = re.sub(r'"(?:[^"\\]|\\.)*"', "", expr)
    text = re.sub(r"\{[^}]*\}", " ", text)
    text = re.sub(r"\[[^\]]*\]", " ", text)
    text = _LABEL_LISTS.sub(" ", text)
    return {word for word in _IDENTIFIER.findall(text) if word.lower() not in _PROMQL_KEYWORDS}


def referenced_metrics() -> dict[str, set[str]]:
    """{metric name: where it is used} over the dashboard and the alert rules."""
    used: dict[str, set[str]] = {}
    for expr in dashboard_exprs():
        for name in metric_names(expr):
            used.setdefault(name, set()).add("dashboard")
    for rule in alert_rules():
        for name in metric_names(rule["expr"]):
            used.setdefault(name, set()).add(f"alert {rule['alert']}")
    return used


def exported_series(exposition: str) -> dict[str, str]:
    """{series name a query can select: its family} for Prometheus text.

    Counters are selected as <name>_total, histograms as <base>_bucket, _sum and _count;
    a family is listed even before it has samples (its `# TYPE` line is enough).
    """
    series: dict[str, str] = {}
    for line in exposition.splitlines():
        if not line.startswith("# TYPE "):
            continue
        name, kind = line.split()[2:4]
        if kind == "counter":
            family = name if name.endswith("_total") else f"{name}_total"
            series[family] = family
        elif kind == "histogram":
            for suffix in _HISTOGRAM_SUFFIXES:
                series[name + suffix] = name
        else:
            series[name] = name
    return series


def unexported(exposition: str, lag_exposition: str | None = None) -> dict[str, set[str]]:
    """Metrics the dashboard or alert rules use that the worker's `exposition` (or, for the
    lag exporter's names, `lag_exposition`; default a fresh exporter's) lacks, with where."""
    if lag_exposition is None:
        from segstream.app.lag_metrics import LagMetrics

        lag_exposition = LagMetrics("default").render().decode()
    series = exported_series(exposition)
    lag_series = exported_series(lag_exposition)
    return {
        name: where
        for name, where in referenced_metrics().items()
        if name not in PROMETHEUS_OWN_SERIES
        and name not in (lag_series if name.startswith(LAG_EXPORTER_PREFIXES) else series)
    }


def dashboard_queries() -> list[str]:
    """The dashboard's expressions as Prometheus gets them (GRAFANA_VARIABLES substituted)."""
    queries: list[str] = QUERY_CHECK.dashboard_queries(dashboard(), GRAFANA_VARIABLES)
    return queries


def alert_operands(expr: str) -> list[str]:
    """The operands of an alert expression's comparisons (deploy/tools' check splits so)."""
    operands: list[str] = QUERY_CHECK.alert_operands(expr)
    return operands


def settings_variables() -> set[str]:
    """SEGSTREAM_* variables WorkerSettings.from_env reads (from its source)."""
    source = SETTINGS_SOURCE.read_text()
    names = re.findall(r'reader\.\w+\(\s*"([A-Z0-9_]+)"', source)
    # A secret may also come from the file NAME_FILE names.
    names += [f"{n}_FILE" for n in re.findall(r'reader\.secret\(\s*"([A-Z0-9_]+)"', source)]
    return {f"SEGSTREAM_{name}" for name in names}


def k8s_documents() -> dict[str, list[dict[str, Any]]]:
    """Every YAML document under deploy/k8s, by file name."""
    return {
        path.name: [doc for doc in yaml.safe_load_all(path.read_text()) if doc is not None]
        for path in sorted(K8S.glob("*.yaml"))
    }


def k8s_object(kind: str, name: str | None = None) -> dict[str, Any]:
    """The one object of `kind` (named `name`, if given) in deploy/k8s."""
    found = [
        doc
        for docs in k8s_documents().values()
        for doc in docs
        if doc["kind"] == kind and name in (None, doc["metadata"]["name"])
    ]
    assert len(found) == 1, f"{len(found)} objects of kind {kind} named {name or 'anything'}"
    return found[0]
