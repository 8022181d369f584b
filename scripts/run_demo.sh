#!/usr/bin/env bash
# The README's main command: build/reuse the local ComfyUI host, then run the example workflow through a
# real headless ComfyUI's HTTP API on the embedded demo model. Outputs land in output/demo/.
set -euo pipefail
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
bash "$REPO/scripts/setup_host.sh"
exec "${LOTTS_HOST:-$REPO/.host}/venv/bin/python" "$REPO/scripts/run_demo.py" "$@"
