#!/usr/bin/env bash
# Makes `kcat` (librdkafka's command-line client) available for the tests that write input
# with a client other than ours (tests/integration/test_foreign_clients.py): its default
# partitioner (CRC32) and its compression codecs are what other producers send. Nothing to do
# when it is on PATH; otherwise installs Debian's `kcat` package when apt-get is usable, else
# says why not. Exits 0 either way: those tests skip when kcat is missing, with the reason.
set -euo pipefail

if command -v kcat >/dev/null 2>&1; then
    echo "ensure-kcat: $(command -v kcat) is there" >&2
    exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
    echo "ensure-kcat: kcat missing and no apt-get here: install kcat by hand" >&2
    exit 0
fi
sudo=()
if [[ "$(id -u)" != 0 ]]; then
    if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
        sudo=(sudo -n)
    else
        echo "ensure-kcat: kcat missing; apt-get needs root and sudo is not usable" >&2
        exit 0
    fi
fi

export DEBIAN_FRONTEND=noninteractive
if ! "${sudo[@]}" apt-get install -y -q --no-install-recommends kcat >/dev/null 2>&1; then
    # The package lists may be missing or stale on a fresh machine.
    "${sudo[@]}" apt-get update -q >/dev/null 2>&1 || true
    if ! "${sudo[@]}" apt-get install -y -q --no-install-recommends kcat >/dev/null; then
        echo "ensure-kcat: apt-get install kcat failed; the foreign-client tests will skip" >&2
        exit 0
    fi
fi
if command -v kcat >/dev/null 2>&1; then
    echo "ensure-kcat: installed $(kcat -V 2>&1 | head -n 1)" >&2
else
    echo "ensure-kcat: the kcat package installed no kcat on PATH" >&2
fi
