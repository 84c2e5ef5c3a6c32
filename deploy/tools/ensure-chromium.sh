#!/usr/bin/env bash
# Makes Debian's Chromium available at /usr/bin/chromium for the browser tests (tests/browser/,
# driven by Playwright with executable_path=/usr/bin/chromium; no `playwright install`):
# nothing to do when it is there; otherwise installs Debian's `chromium` package when apt-get
# is usable, else says why not. Exits 0 either way: the browser tests skip when Chromium is
# missing, and CI sees the reason in the log. SEGSTREAM_CHROMIUM overrides the path.
set -euo pipefail

chromium="${SEGSTREAM_CHROMIUM:-/usr/bin/chromium}"
if [[ -x "$chromium" ]]; then
    echo "ensure-chromium: $chromium is there" >&2
    exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
    echo "ensure-chromium: $chromium missing and no apt-get here: install Chromium by hand" >&2
    exit 0
fi
sudo=()
if [[ "$(id -u)" != 0 ]]; then
    if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
        sudo=(sudo -n)
    else
        echo "ensure-chromium: $chromium missing; apt-get needs root and sudo is not usable" >&2
        exit 0
    fi
fi

export DEBIAN_FRONTEND=noninteractive
if ! "${sudo[@]}" apt-get install -y -q --no-install-recommends chromium >/dev/null 2>&1; then
    # The package lists may be missing or stale on a fresh machine.
    "${sudo[@]}" apt-get update -q >/dev/null 2>&1 || true
    if ! "${sudo[@]}" apt-get install -y -q --no-install-recommends chromium >/dev/null; then
        echo "ensure-chromium: apt-get install chromium failed; browser tests will skip" >&2
        exit 0
    fi
fi
if [[ -x "$chromium" ]]; then
    echo "ensure-chromium: installed $("$chromium" --version 2>/dev/null | head -n 1)" >&2
else
    echo "ensure-chromium: the chromium package installed nothing at $chromium" >&2
fi
