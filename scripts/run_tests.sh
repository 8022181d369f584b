#!/usr/bin/env bash
# The README's test command: build/reuse the local ComfyUI host, lint, then run the whole suite on it.
set -euo pipefail
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
bash "$REPO/scripts/setup_host.sh"
bash "$REPO/scripts/setup_browser.sh"   # Debian chromium for the UI test (no browser download)
PY="${LOTTS_HOST:-$REPO/.host}/venv/bin/python"
cd "$REPO"
"$PY" -m ruff check .
exec "$PY" -m pytest -v -rs --durations=15 "$@"   # -v: the log names every test and its model family
