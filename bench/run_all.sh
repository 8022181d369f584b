#!/usr/bin/env bash
# Reproduce the quality benchmarks on demo worlds v2 and v3 from a fresh clone with one command:
#
#   bash bench/run_all.sh            # uses the committed judges in bench/weights/
#   bash bench/run_all.sh --retrain  # retrains the judges of both worlds first (about 65 more minutes)
#
# Writes bench/results/{world_scorers,instrument,localization,quality_vs_compute}.{json,md}, the PNG plots and
# summary.json (the README's headline figures). Needs the demo world model (demo/weights/lotts_demo_world.safetensors);
# with demo/weights/lotts_demo_world_correlated.safetensors present (the image-correlated defects ablation) it
# also writes quality_vs_compute_correlated.* and instrument_correlated.*. World v3 (demo/weights/
# lotts_demo_world_v3.safetensors, judges in bench/weights/judges_v3.safetensors; `bench/judges_v3.py --retrain`
# retrains those) writes world3_cfg.json, world3_gates.json, world3_bench.json, world3.md and its summary keys.
# Seeds are fixed; one torch thread per script.
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
step "judges: world verifier and held-out segmenter"
"$PY" bench/world_scorers.py ${RETRAIN[@]+"${RETRAIN[@]}"} --roundtrip 300 --out world_scorers.json
step "judges: prompt-adherence checker"
"$PY" bench/adherence.py ${RETRAIN[@]+"${RETRAIN[@]}"}
step "instrument gates (generated samples)"
"$PY" bench/instrument.py
step "localization on planted defects"
"$PY" bench/localization.py
step "quality versus compute (noise-difference signal, as the demo workflows use)"
"$PY" bench/quality_vs_compute.py --signal "noise difference"
CORRELATED=demo/weights/lotts_demo_world_correlated.safetensors
if [ -f "$CORRELATED" ]; then
  step "quality versus compute, image-correlated defects (ablation)"
  "$PY" bench/quality_vs_compute.py --signal "noise difference" --demo-weights "$CORRELATED" \
    --out quality_vs_compute_correlated.json
  step "instrument gates, image-correlated defects (ablation)"
  "$PY" bench/instrument.py --demo-weights "$CORRELATED" --out instrument_correlated.json
fi
step "search beyond the paper: each addition against Best-of-N and pruned Best-of-N"
"$PY" bench/search_variants.py --prompts 12
step "summary"
"$PY" bench/summary.py
step "world v3: judges' held-out figures (with --retrain: the three v3 judges retrained first, about 45 minutes)"
"$PY" bench/judges_v3.py ${RETRAIN[@]+"${RETRAIN[@]}"}
step "world v3: guidance scale chosen on calib prompts by the selecting verifier"
"$PY" bench/world3_cfg.py
step "world v3: gates and localization per number of objects"
"$PY" bench/world3_gates.py
step "world v3: LoTTS against Best-of-N along the complexity axis (two halves at once, one per core)"
"$PY" bench/world3_bench.py --objects 1,2,3 --out world3_bench_part1.json > bench/results/world3_bench_part1.log 2>&1 &
part1=$!
"$PY" bench/world3_bench.py --objects 4,5,6 --out world3_bench_part2.json > bench/results/world3_bench_part2.log 2>&1 &
part2=$!
wait "$part1" || { tail -20 bench/results/world3_bench_part1.log; exit 1; }
wait "$part2" || { tail -20 bench/results/world3_bench_part2.log; exit 1; }
"$PY" bench/world3_bench.py --merge world3_bench_part1.json world3_bench_part2.json
rm -f bench/results/world3_bench_part{1,2}.{json,log}
step "world v3: tables and summary keys"
"$PY" bench/world3_report.py
step "done: bench/results/"
# The committed tables are the reference: an empty list below means this run reproduced them exactly.
if git -C "$REPO" rev-parse --git-dir >/dev/null 2>&1; then
  echo "tables that differ from the committed ones:"
  git -C "$REPO" diff --stat -- 'bench/results/*.md'
fi
