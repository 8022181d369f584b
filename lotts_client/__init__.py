"""LoTTS API-mode client: run ComfyUI workflows (API JSON) with overrides on one or several servers.

    python -m lotts_client workflows/api/lotts_sd15.json --server http://127.0.0.1:8188 \\
        --prompt "a red fox in the snow" --seed 7 --budget 9 --output out/

Library use::

    from lotts_client import ComfyClient, overrides
    graph = overrides.apply(json.load(open(path)), prompt="a red fox", seed=7)
    result = ComfyClient("http://127.0.0.1:8188").run(graph, output_dir="out")

Standard library plus websocket-client (falls back to polling /history without it). Independent of the
node pack: no torch or ComfyUI import.
"""

from . import overrides, workflow
from .api import (
    ClientError,
    ComfyClient,
    ExecutionFailed,
    OutputFile,
    RunResult,
    ServerUnavailable,
    ValidationFailed,
)
from .batch import Job, JobResult, run_batch

__all__ = ["ClientError", "ComfyClient", "ExecutionFailed", "Job", "JobResult", "OutputFile", "RunResult",
           "ServerUnavailable", "ValidationFailed", "overrides", "run_batch", "workflow"]
