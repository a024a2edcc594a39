#!/usr/bin/env bash
# Create .venv in the repo root and install the pinned requirements (idempotent).
# Usage: scripts/setup.sh [--dev]   (--dev adds the test tools and, from Debian: chromium for the browser
# tests, postgresql for the poll's tests on a server database, haproxy for the department's; each only if missing)
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if [[ ! -x .venv/bin/python ]]; then
  "$PY" -m venv .venv
fi
stamp=.venv/.installed-$(cat requirements.txt requirements-dev.txt | sha1sum | cut -c1-12)${1:-}
if [[ ! -f $stamp ]]; then
  .venv/bin/pip install -q --upgrade pip >/dev/null || true
  .venv/bin/pip install -q torch==2.13.0  # the CPU wheel; an unpinned torch pulls a CUDA build
  if [[ ${1:-} == --dev ]]; then
    .venv/bin/pip install -q -r requirements-dev.txt
  else
    .venv/bin/pip install -q -r requirements.txt
  fi
  touch "$stamp"
fi
if [[ ${1:-} == --dev ]]; then
  missing=()
  command -v chromium >/dev/null 2>&1 || missing+=(chromium)
  compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null || missing+=(postgresql)
  command -v haproxy >/dev/null 2>&1 || [[ -x /usr/sbin/haproxy ]] || missing+=(haproxy)
  if (( ${#missing[@]} )); then
    SUDO=""; [[ $(id -u) -ne 0 ]] && SUDO=sudo
    $SUDO apt-get update -q >/dev/null
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q "${missing[@]}" >/dev/null
  fi
fi
