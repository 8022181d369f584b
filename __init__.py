"""LoTTS node pack for ComfyUI (localized test-time scaling, arXiv 2511.19917).

The root stays importable without ComfyUI, so `lotts_ops` (pure torch) can be used and tested alone;
the nodes register only when ComfyUI's modules are present.
"""

try:
    import comfy.model_patcher  # noqa: F401  (probe: are we inside a ComfyUI host?)
except ImportError:
    NODE_CLASS_MAPPINGS = {}
    NODE_DISPLAY_NAME_MAPPINGS = {}
else:
    from .nodes import NODE_CLASS_MAPPINGS, NODE_DISPLAY_NAME_MAPPINGS

__all__ = ["NODE_CLASS_MAPPINGS", "NODE_DISPLAY_NAME_MAPPINGS"]
