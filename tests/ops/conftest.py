"""Make the repo root importable for the pure-torch ops tests.

Appended, not inserted: ComfyUI's own `nodes` module must win over the pack's `nodes/` folder elsewhere.
"""

import sys
from pathlib import Path

_REPO_ROOT = str(Path(__file__).resolve().parents[2])
if _REPO_ROOT not in sys.path:
    sys.path.append(_REPO_ROOT)

import lotts_ops.attention_maps  # noqa: E402, F401
import lotts_ops.defect_map  # noqa: E402, F401
import lotts_ops.mask_ops  # noqa: E402, F401
import lotts_ops.schedule  # noqa: E402, F401
