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
# shellcheck source=deploy/tools/apt-install.sh
source "$(dirname "${BASH_SOURCE[0]}")/apt-install.sh"
if ! apt_install ensure-chromium chromium; then
    echo "ensure-chromium: without Chromium the browser tests will skip" >&2
    exit 0
fi
if [[ -x "$chromium" ]]; then
    echo "ensure-chromium: installed $("$chromium" --version 2>/dev/null | head -n 1)" >&2
else
    echo "ensure-chromium: the chromium package installed nothing at $chromium" >&2
fi
