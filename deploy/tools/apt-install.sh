#!/usr/bin/env bash
# Sourced by the ensure-*.sh scripts: `apt_install NAME PACKAGE...` installs Debian packages
# with apt-get, as root or through a password-less sudo, refreshing the package lists once
# when they are missing or stale (a fresh machine). On failure it says why, prefixed with NAME,
# and returns 1; the caller decides what that means (the tests skip, or fail under CI).

apt_install() {
    local name=$1
    shift
    if ! command -v apt-get >/dev/null 2>&1; then
        echo "$name: no apt-get here: install $* by hand" >&2
        return 1
    fi
    APT_SUDO=()
    if [[ "$(id -u)" != 0 ]]; then
        if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
            APT_SUDO=(sudo -n)
        else
            echo "$name: apt-get needs root and sudo is not usable" >&2
            return 1
        fi
    fi
    export DEBIAN_FRONTEND=noninteractive
    if ! "${APT_SUDO[@]}" apt-get install -y -q --no-install-recommends "$@" >/dev/null 2>&1; then
        "${APT_SUDO[@]}" apt-get update -q >/dev/null 2>&1 || true
        if ! "${APT_SUDO[@]}" apt-get install -y -q --no-install-recommends "$@" >/dev/null; then
            echo "$name: apt-get install $* failed" >&2
            return 1
        fi
    fi
}
