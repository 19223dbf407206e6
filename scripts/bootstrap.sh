#!/usr/bin/env bash
# Install javabase and its tools into .venv/ at the repository root.
# Idempotent: a second run only checks that everything is there.
# --runtime: javabase and what it runs only, not the development tools (CI jobs).
set -euo pipefail
cd "$(dirname "$0")/.."
extras='[dev]'
if [ "${1:-}" = --runtime ]; then
    extras=''
elif [ -n "${1:-}" ]; then
    echo "usage: scripts/bootstrap.sh [--runtime]" >&2
    exit 2
fi

PYTHON="${PYTHON:-python3}"
if ! "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
    echo "bootstrap: javabase needs Python 3.11 or newer ($PYTHON is $("$PYTHON" --version 2>&1))" >&2
    exit 1
fi
if ! "$PYTHON" -m venv --help >/dev/null 2>&1; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >/dev/null
fi
# `invoke update` checks Temurin's detached signatures with gpgv (Debian's gpgv:
# apt depends on it, so a Debian machine nearly always has it already).
if ! command -v gpgv >/dev/null && command -v apt-get >/dev/null; then
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends gpgv \
        >/dev/null; } || echo "bootstrap: could not install gpgv; \`invoke update\` cannot check signatures" >&2
fi
if [ ! -x .venv/bin/python ]; then
    echo "bootstrap: creating .venv" >&2
    "$PYTHON" -m venv .venv
fi
stamp=".venv/.javabase-installed"
want="$(sha256sum pyproject.toml | cut -d' ' -f1)$extras"
have="$(cat "$stamp" 2>/dev/null || true)"
if [ "$have" != "$want" ] && [ "$have" != "$want[dev]" ]; then  # a development install has the runtime too
    echo "bootstrap: installing javabase and its tools into .venv" >&2
    .venv/bin/python -m pip install -q --disable-pip-version-check --upgrade pip >/dev/null
    .venv/bin/python -m pip install -q --disable-pip-version-check -e ".$extras"
    echo "$want" >"$stamp"
fi
# The package is installed editable: compile its modules now, so that a run does
# not compile them on import (nor every time, where PYTHONDONTWRITEBYTECODE is set).
.venv/bin/python -m compileall -q javabase tasks.py >/dev/null
