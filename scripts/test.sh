#!/usr/bin/env bash
# Set up (venv, pinned requirements, Debian chromium) and run the whole test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh --dev
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
.venv/bin/python -m ruff check .
# two processes, a test file each at a time (a file's fixtures are built once); the browser tests' servers and
# chromium wait on each other, so two processes keep both cores busy: 17 min instead of 24 on this 2-core machine
.venv/bin/python -m pytest -n "${PYTEST_WORKERS:-2}" --dist loadfile "$@"
