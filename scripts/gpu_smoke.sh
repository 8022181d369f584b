#!/usr/bin/env bash
# GPU smoke check on a device machine (never in CI): bench/gpu_smoke.py on ComfyUI 0.33 with CUDA.
#   here:   bash scripts/gpu_smoke.sh --prepare   # .gpu/: the 0.33 tarball and the wheels the device image lacks
#   device: bash scripts/gpu_smoke.sh             # (carry .gpu) unpack, install the wheels, run; results to $OUT
# The device image has CUDA torch, torchvision, torchaudio, transformers, safetensors, scipy, aiohttp and the like;
# ComfyUI 0.33 needs a few more packages, fetched here with --no-deps for Python 3.12. Measured 2026-12-02: they
# come to 115 MB (comfy-kitchen 58 MB and av 41 MB, both imported at start), which with the 44 MB tree is over one
# device call's 64 MiB: install them over several calls on a warm machine (carry .gpu/whl in parts, the install
# line below is idempotent), then run. Not yet run on a device.
set -euo pipefail
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PREP=$REPO/.gpu
TARBALL=comfyui-0.33.0-783545f6.tar.gz
WHEELS="torchsde==0.2.6 trampoline==0.1.2 av==16.0.1 spandrel==0.4.2 kornia==0.9.0 kornia_rs==0.2.0 alembic==1.20.1
  Mako==1.3.10 SQLAlchemy==2.1.9 pydantic-settings==2.16.3 python-dotenv==1.2.1 comfy-kitchen==0.2.31
  comfy-aimdo==0.4.13 simpleeval==1.0.8 blake3==1.0.11"
if [ "${1:-}" = --prepare ]; then
  mkdir -p "$PREP/whl"
  cp "${LOTTS_SHARED:-$REPO/../shared}/hosts/$TARBALL" "$PREP/"
  # shellcheck disable=SC2086
  python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
    --platform any -d "$PREP/whl" $WHEELS
  du -sh "$PREP"
  exit 0
fi
[ -d "$PREP/whl" ] || { echo "run 'bash scripts/gpu_smoke.sh --prepare' here first and carry .gpu" >&2; exit 2; }
python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site "$PREP"/whl/*.whl
export PYTHONPATH=/tmp/site
mkdir -p /tmp/lotts-host && tar xzf "$PREP/$TARBALL" -C /tmp/lotts-host
ln -sfn "$REPO" /tmp/lotts-host/ComfyUI/custom_nodes/lotts
export COMFYUI_DIR=/tmp/lotts-host/ComfyUI LOTTS_BENCH_THREADS=8
python3 "$REPO/bench/gpu_smoke.py" --out "${OUT:-$REPO/bench/results}/gpu_smoke.json"
