#!/usr/bin/env python3
"""Evaluates every query of the Grafana dashboard and every alert rule loaded in a Prometheus
against that Prometheus, and fails when one returns no series.

    deploy/tools/check-prometheus-queries.py --prometheus http://127.0.0.1:9090

A query with no series is a panel that stays empty or an alert that can never fire: a wrong
metric name, a label that is not there, a job that is not scraped. Grafana's variables are
replaced by what Grafana sends (`$instance` and `$group` by `.*`, `$__rate_interval` and
`$__range` by the options below); an alert is checked without its comparisons (the
operands of `>`, `==`, `and`, `or`, ... each on its own), so a healthy system passes too.
The rules are the ones Prometheus has loaded (its /api/v1/rules), the dashboard the file.

Standard library only: it runs from a checkout with any Python 3.9+. Exit status 0 when every
query returns series, 1 when one does not, 2 when Prometheus cannot be asked.
tests/integration/test_ops_prometheus.py runs it (and its functions) against a live Prometheus.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

DASHBOARD = Path(__file__).resolve().parents[1] / "grafana" / "segstream.json"

_LABEL_VALUES = re.compile(r"\s*label_values\(\s*([^,\s)]+)\s*,.*\)\s*")
_COMPARISON = re.compile(r"==|!=|>=|<=|>|<|\b(?:and|or|unless)\b")
_NUMBER = re.compile(r"\s*[-+]?(\d+(\.\d*)?|\.\d+)([eE][-+]?\d+)?\s*")


def dashboard_exprs(dashboard: dict[str, Any]) -> list[str]:
    """Every PromQL expression of the dashboard: panel targets and query variables."""
    exprs = [
        target["expr"]
        for panel in dashboard["panels"]
        for target in panel.get("targets", [])
        if "expr" in target
    ]
    for variable in dashboard["templating"]["list"]:
        query = variable.get("query")
        if variable.get("type") == "query":
            exprs.append(query["query"] if isinstance(query, dict) else query)
    return exprs


def grafana_variables(rate_interval: str, time_range: str) -> dict[str, str]:
    """What Grafana sends for the dashboard's variables (`All` for the selections)."""
    # $__rate_interval before $__range: the longer name first, as they share a prefix.
    return {
        "$__rate_interval": rate_interval,
        "$__range": time_range,
        "$instance": ".*",
        "$group": ".*",
    }


def dashboard_queries(dashboard: dict[str, Any], variables: dict[str, str]) -> list[str]:
    """The dashboard's expressions as Prometheus gets them: variables substituted, and a
    `label_values(metric, label)` variable query as the `metric` selector it reads."""
    queries = []
    for expr in dashboard_exprs(dashboard):
        grafana = _LABEL_VALUES.fullmatch(expr)
        if grafana:
            expr = grafana.group(1)
        for variable, value in variables.items():
            expr = expr.replace(variable, value)
        if "$" in expr:
            raise ValueError(f"a dashboard variable this check does not know: {expr}")
        queries.append(expr)
    return queries


def alert_operands(expr: str) -> list[str]:
    """The parts of an alert expression its comparisons compare (numbers left out).

    `a > 10000 and b > 0` gives [a, b]; `x == 0 or y == 0` gives [x, y]. Only operators at
    the top level split: those inside parentheses, `{...}` matchers, `[...]` ranges or strings
    belong to an operand.
    """
    parts: list[str] = []
    depth = 0
    start = 0
    index = 0
    quote: str | None = None
    while index < len(expr):
        char = expr[index]
        if quote:
            if char == "\\":
                index += 1
            elif char == quote:
                quote = None
        elif char in "\"'`":
            quote = char
        elif char in "([{":
            depth += 1
        elif char in ")]}":
            depth -= 1
        elif depth == 0:
            match = _COMPARISON.match(expr, index)
            # A word operator must not be the tail of an identifier (`random_or_x`).
            if match and not (match.group().isalpha() and index and _is_word(expr[index - 1])):
                parts.append(expr[start:index])
                index = start = match.end()
                continue
        index += 1
    parts.append(expr[start:])
    operands = []
    for part in parts:
        if _NUMBER.fullmatch(part):
            continue
        inner = _unwrap(part.strip())
        # `(a > 1) and (b > 0)`, as Prometheus prints a rule: split the parts too.
        operands += alert_operands(inner) if inner != part.strip() else [" ".join(part.split())]
    return operands


def _unwrap(expr: str) -> str:
    """`expr` without parentheses around all of it (`(a > 1)` -> `a > 1`)."""
    while expr.startswith("(") and expr.endswith(")"):
        depth = 0
        for index, char in enumerate(expr):
            depth += {"(": 1, ")": -1}.get(char, 0)
            if depth == 0 and index < len(expr) - 1:
                return expr  # `(a) + (b)`: the first parenthesis closes early
        expr = expr[1:-1].strip()
    return expr


def _is_word(char: str) -> bool:
    return char.isalnum() or char in "_:"


def _get(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=10) as response:  # noqa: S310 - the user's URL
        return json.loads(response.read())


def query_series(prometheus: str, expr: str) -> int:
    """How many series (or 1 for a scalar) `expr` returns now; raises on API errors."""
    url = f"{prometheus}/api/v1/query?" + urllib.parse.urlencode({"query": expr})
    try:
        answer = _get(url)
    except urllib.error.HTTPError as error:
        raise RuntimeError(f"{expr}: {error.read().decode(errors='replace')}") from None
    if answer.get("status") != "success":
        raise RuntimeError(f"{expr}: {answer}")
    data = answer["data"]
    if data["resultType"] in ("scalar", "string"):
        return 1
    return len(data["result"])


def loaded_alerts(prometheus: str) -> dict[str, str]:
    """{alert name: expression} of the alerting rules Prometheus has loaded."""
    answer = _get(f"{prometheus}/api/v1/rules?type=alert")
    return {
        rule["name"]: rule["query"] for group in answer["data"]["groups"] for rule in group["rules"]
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--prometheus", default="http://127.0.0.1:9090", help="base URL")
    parser.add_argument("--dashboard", type=Path, default=DASHBOARD, help="dashboard JSON")
    parser.add_argument(
        "--rate-interval", default="1m", help="$__rate_interval (4 x the scrape interval)"
    )
    parser.add_argument("--range", default="1h", help="$__range (the dashboard's time range)")
    parser.add_argument(
        "--alert-prefix", default="Segstream", help="only alerts whose names start so"
    )
    args = parser.parse_args(argv)
    base = args.prometheus.rstrip("/")
    dashboard = json.loads(args.dashboard.read_text())
    checks = [
        ("dashboard", q)
        for q in dashboard_queries(dashboard, grafana_variables(args.rate_interval, args.range))
    ]
    try:
        alerts = {
            name: expr
            for name, expr in loaded_alerts(base).items()
            if name.startswith(args.alert_prefix)
        }
    except (OSError, ValueError, KeyError) as exc:
        print(f"cannot read {base}/api/v1/rules: {exc}", file=sys.stderr)
        return 2
    if not alerts:
        print(f"no {args.alert_prefix}* alert rules are loaded in {base}", file=sys.stderr)
        return 1
    checks += [
        (f"alert {name}", op) for name, expr in alerts.items() for op in alert_operands(expr)
    ]
    empty = 0
    for where, expr in checks:
        try:
            count = query_series(base, expr)
        except (OSError, RuntimeError, ValueError) as exc:
            print(f"ERROR  {where}: {exc}", file=sys.stderr)
            return 2
        if count == 0:
            empty += 1
        print(f"{'ok' if count else 'EMPTY':5}  {count:4}  {where}: {expr}")
    print(f"{len(checks) - empty} of {len(checks)} queries return series", file=sys.stderr)
    return 1 if empty else 0


if __name__ == "__main__":
    sys.exit(main())
