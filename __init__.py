"""LoTTS node pack for ComfyUI (localized test-time scaling, arXiv 2511.19917).

The root stays importable without ComfyUI, so `lotts_ops` (pure torch) can be used and tested alone;
the nodes register only when ComfyUI's modules are present. The demo model loader (synthetic world)
lives apart from the product nodes, in demo/.
"""

import logging

NODE_CLASS_MAPPINGS = {}
NODE_DISPLAY_NAME_MAPPINGS = {}
WEB_DIRECTORY = "./web"  # docs/<NodeId>.md: the pages of ComfyUI's node-docs panel (docs/node_help.py writes them)

try:
    import comfy.model_patcher  # noqa: F401  (probe: are we inside a ComfyUI host?)
except ImportError:
    pass
else:
    from .nodes import NODE_CLASS_MAPPINGS as _PRODUCT_NODES
    from .nodes import NODE_DISPLAY_NAME_MAPPINGS as _PRODUCT_NAMES

    NODE_CLASS_MAPPINGS.update(_PRODUCT_NODES)
    NODE_DISPLAY_NAME_MAPPINGS.update(_PRODUCT_NAMES)
    try:
        from .demo import NODE_CLASS_MAPPINGS as _DEMO_NODES
        from .demo import NODE_DISPLAY_NAME_MAPPINGS as _DEMO_NAMES
    except Exception as exc:  # the demo is optional; the product nodes must load without it
        logging.warning("[LoTTS] demo nodes not loaded: %r", exc)
    else:
        NODE_CLASS_MAPPINGS.update(_DEMO_NODES)
        NODE_DISPLAY_NAME_MAPPINGS.update(_DEMO_NAMES)

__all__ = ["NODE_CLASS_MAPPINGS", "NODE_DISPLAY_NAME_MAPPINGS", "WEB_DIRECTORY"]
