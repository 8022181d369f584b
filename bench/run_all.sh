#!/usr/bin/env bash
# Reproduce the quality benchmarks from a fresh clone with one command:
#
#   bash bench/run_all.sh            # uses the committed judges in bench/weights/
#   bash bench/run_all.sh --retrain  # retrains the judges first (a few more minutes)
#
# Writes bench/results/{world_scorers,localization,quality_vs_compute}.{json,md} and the PNG plots.
# Needs the demo world model (demo/weights/lotts_demo_world.safetensors). Seeds are fixed; about 40 minutes
# on 2 CPU cores (one torch thread per script).
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
step "quality versus compute (the paper's attention signal, settings chosen on calib)"
"$PY" bench/quality_vs_compute.py
step "quality versus compute (noise-difference signal, as the demo workflows use)"
"$PY" bench/quality_vs_compute.py --signal "noise difference" --out quality_vs_compute_noise.json
step "done: bench/results/"
# The committed tables are the reference: an empty list below means this run reproduced them exactly.
if git -C "$REPO" rev-parse --git-dir >/dev/null 2>&1; then
  echo "tables that differ from the committed ones:"
  git -C "$REPO" diff --stat -- 'bench/results/*.md'
fi
