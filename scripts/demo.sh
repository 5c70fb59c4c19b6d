#!/usr/bin/env bash
# Sets everything up, runs the demo experiment on the bundled offline model, prints its
# results table and writes its report (HTML, Markdown, figures). Running it again shows the
# stored results without recomputing them.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
. .venv/bin/activate
amlab run examples/demo.yaml --db runs/demo.db --resume
amlab report runs/demo.db
echo "Each trial's actions, their results and the state they changed: amlab view runs/demo.db"
