#!/usr/bin/env bash
# Reproduce the quality benchmarks from a fresh clone with one command:
#
#   bash bench/run_all.sh            # uses the committed judges in bench/weights/
#   bash bench/run_all.sh --retrain  # retrains the judges first (a few more minutes)
#
# Writes bench/results/{world_scorers,localization,quality_vs_compute}.{json,md} and the PNG plots.
# Needs the demo world model (demo/weights/lotts_demo_world.safetensors). Seeds are fixed; about 20 minutes
# on 2 CPU cores.
set -euo pipefail
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$REPO"
bash scripts/setup_host.sh
PY=${LOTTS_HOST:-$REPO/.host}/venv/bin/python
RETRAIN=()
for arg in "$@"; do
  case $arg in
    --retrain) RETRAIN=(--retrain) ;;
    *) echo "unknown argument: $arg (only --retrain)" >&2; exit 2 ;;
  esac
done
start=$(date +%s)
step() { echo "== $* ($(( $(date +%s) - start )) s)"; }
step "judges"
"$PY" bench/world_scorers.py ${RETRAIN[@]+"${RETRAIN[@]}"} --roundtrip 300 --out world_scorers.json
step "localization"
"$PY" bench/localization.py
step "quality versus compute"
"$PY" bench/quality_vs_compute.py
step "done: bench/results/"
