"""Thin ComfyUI adapters, one feature per module. Every module here that defines NODE_CLASS_MAPPINGS is
registered; a module that fails to import (e.g. an optional library missing) is logged and skipped, so
one broken feature never takes the whole pack down."""

import importlib
import logging
import pkgutil

NODE_CLASS_MAPPINGS = {}
NODE_DISPLAY_NAME_MAPPINGS = {}
FAILED_MODULES = {}

for _info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
    if _info.name.startswith("_"):
        continue
    try:
        _module = importlib.import_module(f".{_info.name}", __name__)
    except Exception as exc:  # keep the rest of the pack usable, but say loudly what is missing
        FAILED_MODULES[_info.name] = repr(exc)
        logging.warning("[LoTTS] nodes.%s not loaded: %r", _info.name, exc)
        continue
    NODE_CLASS_MAPPINGS.update(getattr(_module, "NODE_CLASS_MAPPINGS", {}))
    NODE_DISPLAY_NAME_MAPPINGS.update(getattr(_module, "NODE_DISPLAY_NAME_MAPPINGS", {}))
