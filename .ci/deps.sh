#!/usr/bin/env bash
# Installs what pvwatch needs to build and test, on Debian 12. Sourced by
# examples/demo.sh, tests/run-all.sh and .ci/run. As root it installs with
# apt-get; otherwise it names the packages to install and stops.
set -euo pipefail

PV_BUILD_PACKAGES=(build-essential cmake pkg-config liblua5.4-dev libuv1-dev
                   libsqlite3-dev libcurl4-openssl-dev nettle-dev
                   libsystemd-dev libmicrohttpd-dev libsodium-dev)
PV_TEST_PACKAGES=(sqlite3 python3 python3-aiosmtpd clang libclang-rt-14-dev
                  valgrind lua-check clang-format nodejs npm
                  prometheus chromium curl)
# The package build (.ci/deb.sh) and the packaging tests (bash completion,
# the man page, systemd-analyze).
PV_DEB_PACKAGES=(debhelper dpkg-dev fakeroot bash-completion man-db systemd)

pv_missing() {
    local p missing=()
    for p in "$@"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" ||
            missing+=("$p")
    done
    echo "${missing[@]:-}"
}

pv_install() {
    local missing
    missing=$(pv_missing "$@")
    [ -z "$missing" ] && return 0
    if [ "$(id -u)" -eq 0 ]; then
        echo "installing: $missing" >&2
        # node and npm may come from outside Debian (nodesource); do not
        # fight an existing installation.
        if command -v node >/dev/null && command -v npm >/dev/null; then
            missing=$(echo "$missing" | tr ' ' '\n' |
                      { grep -vx -e nodejs -e npm || true; } | tr '\n' ' ')
        fi
        [ -z "${missing// /}" ] && return 0
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq >/dev/null
        # shellcheck disable=SC2086
        apt-get install -y -qq $missing >/dev/null
    else
        echo "pvwatch needs these packages; as root run:" >&2
        echo "  apt-get install -y $missing" >&2
        exit 1
    fi
}
