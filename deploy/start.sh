#!/usr/bin/env bash
# A department on this machine: PostgreSQL, 3 replicas of the app, HAProxy in front (see deploy/department.py).
# Usage: deploy/start.sh [--replicas N] [--port 8600] [--max-sessions 60] [--bind 0.0.0.0] ...
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh --dev >/dev/null   # the app's requirements, and Debian's postgresql and haproxy if missing
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
exec .venv/bin/python deploy/department.py "$@"
