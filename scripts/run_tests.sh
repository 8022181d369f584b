#!/usr/bin/env bash
# The README's test command: build/reuse both local ComfyUI hosts (0.3.75 and 0.33), lint, then run the whole
# suite on each. LOTTS_HOSTS="0.33" (or "0.3.75") runs one; extra arguments go to pytest.
set -euo pipefail
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$REPO"
HOSTS=${LOTTS_HOSTS:-0.3.75 0.33}
for version in $HOSTS; do env -u LOTTS_HOST bash "$REPO/scripts/setup_host.sh" "$version"; done
bash "$REPO/scripts/setup_browser.sh"   # Debian chromium for the UI test (no browser download)
host_dir() { if [ "$1" = 0.3.75 ]; then echo "$REPO/.host"; else echo "$REPO/.host-$1"; fi; }
"$(host_dir "${HOSTS%% *}")/venv/bin/python" -m ruff check .
status=0
for version in $HOSTS; do
  echo "== ComfyUI $version"
  # -v: the log names every test and its model family
  env -u COMFYUI_DIR LOTTS_HOST="$(host_dir "$version")" "$(host_dir "$version")/venv/bin/python" -m pytest -v -rs --durations=15 \
    -p no:cacheprovider "$@" || status=$?
done
exit $status
