#!/usr/bin/env bash
# Set everything up and open the app on the shipped defaults: http://localhost:${PORT:-8501}
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
exec .venv/bin/python scripts/serve.py --server.port "${PORT:-8501}" --server.headless true \
  --browser.gatherUsageStats false "$@"
