#!/usr/bin/env bash
# Installs what building and testing need on a fresh Debian/Ubuntu machine, and says what is missing
# elsewhere: a Rust toolchain (1.95+), a C compiler, libpq's headers and pkg-config (the PostgreSQL
# client library diesel links), Python 3.10+ with venv (Synapse and PostgreSQL for the tests run in
# a cached virtualenv that tests/support/testenv.sh installs from PyPI), and flock.
set -euo pipefail

missing=()
command -v cargo >/dev/null || { echo "setup: cargo is missing: install Rust 1.95 or newer with rustup (https://rustup.rs)." >&2; exit 1; }
command -v cc >/dev/null || missing+=(gcc)
command -v pkg-config >/dev/null || missing+=(pkg-config)
pkg-config --exists libpq 2>/dev/null || missing+=(libpq-dev)
command -v python3 >/dev/null || missing+=(python3)
python3 -c 'import venv, ensurepip' 2>/dev/null || missing+=(python3-venv)
command -v flock >/dev/null || missing+=(util-linux)
command -v make >/dev/null || missing+=(make)

if ((${#missing[@]})); then
    if [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null; then
        echo "setup: installing ${missing[*]}" >&2
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
    else
        echo "setup: missing ${missing[*]}: install them with your package manager (Debian: sudo apt-get install ${missing[*]})." >&2
        exit 1
    fi
fi
