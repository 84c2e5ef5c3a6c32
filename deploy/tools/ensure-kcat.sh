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
# shellcheck source=deploy/tools/apt-install.sh
source "$(dirname "${BASH_SOURCE[0]}")/apt-install.sh"
if ! apt_install ensure-kcat kcat; then
    echo "ensure-kcat: without kcat the foreign-client tests will skip" >&2
    exit 0
fi
if command -v kcat >/dev/null 2>&1; then
    echo "ensure-kcat: installed $(kcat -V 2>&1 | head -n 1)" >&2
else
    echo "ensure-kcat: the kcat package installed no kcat on PATH" >&2
fi
