#!/usr/bin/env bash
# Set up (venv, pinned requirements, Debian chromium) and run the whole test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh --dev
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
.venv/bin/python -m ruff check .
.venv/bin/python -m pytest "$@"
