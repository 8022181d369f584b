"""LoTTS demo: a synthetic "quality world" and a tiny text-to-image model trained on it (apart from the
product nodes in nodes/). `demo.world` is pure numpy/PIL; the loader and verifier nodes register only inside ComfyUI."""

def _inside_comfyui_pack():
    """Nodes register only as the pack's subpackage inside ComfyUI; imported as top-level `demo` (scripts, tests,
    benchmarks, also in a process that has ComfyUI) the nodes' relative imports of the pack cannot resolve."""
    if "." not in __name__:
        return False
    try:
        import comfy.model_patcher  # noqa: F401  (probe: are we inside a ComfyUI host?)
    except ImportError:
        return False
    return True


if not _inside_comfyui_pack():
    NODE_CLASS_MAPPINGS = {}
    NODE_DISPLAY_NAME_MAPPINGS = {}
else:
    from . import loader_node, verifier_node

    NODE_CLASS_MAPPINGS = {**loader_node.NODE_CLASS_MAPPINGS, **verifier_node.NODE_CLASS_MAPPINGS}
    NODE_DISPLAY_NAME_MAPPINGS = {**loader_node.NODE_DISPLAY_NAME_MAPPINGS, **verifier_node.NODE_DISPLAY_NAME_MAPPINGS}

__all__ = ["NODE_CLASS_MAPPINGS", "NODE_DISPLAY_NAME_MAPPINGS"]
