#!/usr/bin/env bash
# Sets everything up, then runs the linters, the type checker, the import contracts and the test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash scripts/setup-browser.sh
bash scripts/setup-postgres.sh
. .venv/bin/activate
ruff check src tests benchmarks
mypy
lint-imports
python -m pytest "$@"
