#!/usr/bin/env bash
# Makes `promtool` and the Prometheus server available for the ops checks (`promtool check
# config` / `check rules` / `test rules`, and tests/integration/test_ops_prometheus.py, which
# runs a real server): nothing to do when both are there; otherwise installs Debian's
# `prometheus` package (which ships both) when apt-get is usable, else says why not. Exits 0
# either way: the tests skip those checks when the tools are missing (and fail under CI=true,
# where this script has to have installed them), and CI sees the reason in the log.
set -euo pipefail

have_server() {
    [[ -x /usr/bin/prometheus ]] || command -v prometheus >/dev/null 2>&1
}

if command -v promtool >/dev/null 2>&1 && have_server; then
    echo "ensure-promtool: $(command -v promtool) and the prometheus server are there" >&2
    exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
    echo "ensure-promtool: promtool or prometheus missing and no apt-get here: install Prometheus by hand" >&2
    exit 0
fi
sudo=()
if [[ "$(id -u)" != 0 ]]; then
    if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
        sudo=(sudo -n)
    else
        echo "ensure-promtool: promtool or prometheus missing; apt-get needs root and sudo is not usable" >&2
        exit 0
    fi
fi

export DEBIAN_FRONTEND=noninteractive
# The package's own service must not start (no init system in containers and CI).
policy_rc=/usr/sbin/policy-rc.d
created_policy=0
if [[ ! -e "$policy_rc" ]]; then
    printf '#!/bin/sh\nexit 101\n' | "${sudo[@]}" tee "$policy_rc" >/dev/null
    "${sudo[@]}" chmod +x "$policy_rc"
    created_policy=1
fi
cleanup() {
    if ((created_policy)); then
        "${sudo[@]}" rm -f "$policy_rc"
    fi
}
trap cleanup EXIT

if ! "${sudo[@]}" apt-get install -y -q --no-install-recommends prometheus >/dev/null 2>&1; then
    # The package lists may be missing or stale on a fresh machine.
    "${sudo[@]}" apt-get update -q >/dev/null 2>&1 || true
    if ! "${sudo[@]}" apt-get install -y -q --no-install-recommends prometheus >/dev/null; then
        echo "ensure-promtool: apt-get install prometheus failed; the Prometheus checks will skip" >&2
        exit 0
    fi
fi
if command -v promtool >/dev/null 2>&1; then
    echo "ensure-promtool: installed $(promtool --version 2>&1 | head -n 1)" >&2
else
    echo "ensure-promtool: the prometheus package installed no promtool on PATH" >&2
fi
