#!/usr/bin/env bash
# Set up (venv, pinned requirements, Debian chromium) and run the whole test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh --dev
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
.venv/bin/python -m ruff check .
# two processes, a test file each at a time (a file's fixtures are built once); the browser tests' servers and
# chromium wait on each other, so two processes keep both cores busy: 17 min instead of 24 on this 2-core machine.
# One thread per torch process (the CLIs and servers the tests start too): two processes already fill two cores,
# and more threads would only spin waiting for each other.
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1} MKL_NUM_THREADS=${MKL_NUM_THREADS:-1}
.venv/bin/python -m pytest -n "${PYTEST_WORKERS:-2}" --dist loadfile "$@"
