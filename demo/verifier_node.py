"""ComfyUI node: the demo world's verifier (a LOTTS_VERIFIER) for selecting among demo-model candidates.

The world verifier is a small CNN trained on world images to tell clean ones from ones with defects
(bench/world_scorers.py; weights committed in bench/weights/). It stands in for ImageReward on the demo world:
NIQE, the pack's offline default, rates this world's defects as more natural than its clean flat colours
(localization AUROC 0.14 in bench/results/localization.md of world v1), so it is the wrong judge here.
"""

import importlib.util
import sys
from pathlib import Path

from ..lotts_ops.verifiers.base import LOTTS_VERIFIER, Verifier

REPO = Path(__file__).resolve().parents[1]
SCORERS_SOURCE = REPO / "bench" / "world_scorers.py"
SCORERS_WEIGHTS = REPO / "bench" / "weights" / "world_scorers.safetensors"


def world_scorers_module():
    """bench/world_scorers.py as a module (pure torch + numpy), loaded once under a name of its own."""
    name = "lotts_demo_world_scorers"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, SCORERS_SOURCE)
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


class LoTTSDemoWorldVerifier:
    CATEGORY = "LoTTS/demo"
    FUNCTION = "load"
    RETURN_TYPES = (LOTTS_VERIFIER,)
    RETURN_NAMES = ("verifier",)
    OUTPUT_TOOLTIPS = ("Scores demo-world images: -logit p(defect), higher is better. Wire it into LoTTS Search, "
                       "LoTTS Best-of-N or LoTTS Select Best.",)
    DESCRIPTION = ("The demo world's verifier: a small CNN trained on world images (clean vs with local defects), "
                   "the demo's stand-in for ImageReward. Only meaningful for images of the LoTTS demo model.")

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {}}

    def load(self):
        if not SCORERS_WEIGHTS.is_file():
            raise FileNotFoundError(f"demo world verifier weights missing: {SCORERS_WEIGHTS} "
                                    "(python bench/world_scorers.py --retrain writes them)")
        scorers = world_scorers_module().load(SCORERS_WEIGHTS)
        return (scorers.verifier(Verifier),)


NODE_CLASS_MAPPINGS = {"LoTTSDemoWorldVerifier": LoTTSDemoWorldVerifier}
NODE_DISPLAY_NAME_MAPPINGS = {"LoTTSDemoWorldVerifier": "LoTTS Demo World Verifier (synthetic world)"}
