"""Shared by the quality benchmarks: a real ComfyUI in-process with the demo world model (the way
demo/evaluate.py starts it), the learned world judges, bootstrap intervals and Markdown/JSON output."""

import functools
import hashlib
import importlib
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
BENCH = REPO / "bench"
RESULTS = BENCH / "results"
if str(BENCH) not in sys.path:
    sys.path.append(str(BENCH))

import world_scorers  # noqa: E402  (bench/ itself)

DEMO_WEIGHTS = REPO / "demo" / "weights" / "lotts_demo_world.safetensors"


def demo_evaluate():
    """demo/evaluate.py as a module (its start_comfy, cell_labels, aurocs, encode, templates)."""
    return world_scorers.load_standalone("lotts_bench_demo_evaluate", "demo/evaluate.py")


def add_run_arguments(parser, out):
    """The arguments every quality benchmark takes: where to write, plots, threads, which weights."""
    parser.add_argument("--out", default=out,
                        help="in bench/results/ (or an absolute path); .md and .png next to it")
    parser.add_argument("--no-plot", action="store_true")
    parser.add_argument("--threads", type=int, default=int(os.environ.get("LOTTS_BENCH_THREADS", "1")),
                        help="torch threads (default 1, or $LOTTS_BENCH_THREADS: on a shared 2-core machine two "
                             "threads can be several times slower than one)")
    parser.add_argument("--demo-weights", default=None, help="a demo weights file (default: demo/weights/...)")
    parser.add_argument("--scorers", default=None, help="world scorers file (default: bench/weights/...)")


class Bench:
    """ComfyUI started in this process; `pack` is the pack module ComfyUI loaded, `demo` its demo package."""

    def __init__(self, env=None, weights=None, threads=2, scorers=None):
        """`env`: a harness environment already started in this process (tests), else ComfyUI is started here."""
        if threads:
            torch.set_num_threads(threads)
        if not DEMO_WEIGHTS.is_file() and weights is None:
            raise SystemExit(f"demo weights missing: {DEMO_WEIGHTS} (train them: python -m demo.train)")
        self.t0 = time.time()
        self.evaluate = demo_evaluate()
        if env is None:
            self.env, self.demo = self.evaluate.start_comfy()
        else:  # the same imports start_comfy makes, on the given environment
            self.env = env
            self.demo = importlib.import_module(env.pack.__name__ + ".demo")
            for sub in ("world", "model", "loader_node"):
                importlib.import_module(f"{self.demo.__name__}.{sub}")
        self.pack = self.env.pack
        self.nodes = self.env.nodes
        self.world = self.demo.world
        if weights is None:  # the committed demo model, through the pack's loader node
            self.model, self.clip, self.vae = self.demo.loader_node.LoTTSDemoModelLoader().load(DEMO_WEIGHTS.name)
        else:  # another demo weights file (e.g. a checkpoint), through the same builder
            self.model, self.clip, self.vae, _ = self.demo.model.load(weights)
        self.weights = str(weights or DEMO_WEIGHTS)
        self.scorers = world_scorers.load(scorers or world_scorers.WEIGHTS)
        self.verifier = self.scorers.verifier(self.pack.lotts_ops.verifiers.base.Verifier)

    def encode_text(self, text):
        return self.evaluate.encode(self.nodes, self.clip, text)

    def vae_encode(self, images_uint8, batch=32):
        """uint8 (B, H, W, 3) -> raw LATENT samples (B, 4, h, w) via ComfyUI's VAEEncode."""
        out = []
        for i in range(0, len(images_uint8), batch):
            pixels = torch.from_numpy(np.stack(images_uint8[i:i + batch])).float() / 255.0
            out.append(self.nodes.VAEEncode().encode(self.vae, pixels)[0]["samples"])
        return torch.cat(out)

    def vae_decode(self, latents, batch=32):
        return torch.cat([self.pack.nodes._search.decode(self.vae, latents[i:i + batch])
                          for i in range(0, latents.shape[0], batch)])

    def seconds(self):
        return round(time.time() - self.t0, 1)


def bootstrap(values_fn, n_items, reps=1000, seed=0):
    """95 % percentile interval of values_fn(indices) over resamples of n_items items with replacement.
    values_fn returns a float (nan allowed: dropped) or None (counted as 'never', i.e. +inf)."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(reps):
        v = values_fn(rng.integers(0, n_items, n_items))
        out.append(np.inf if v is None else float(v))
    out = np.array(out)
    out = out[~np.isnan(out)]
    if len(out) == 0:
        return [float("nan"), float("nan")]
    big = 1e300  # 'never' sorts above every budget; percentiles must not interpolate with inf
    bounds = np.percentile(np.where(np.isinf(out), big, out), [2.5, 97.5], method="lower")
    return [float("inf") if b >= big else float(b) for b in bounds]


def fmt(value, digits=3):
    if value is None:
        return "never"
    if isinstance(value, float) and np.isinf(value):
        return "never"
    if isinstance(value, float) and np.isnan(value):
        return "n/a"
    return f"{value:.{digits}f}"


def fmt_ci(value, ci, digits=3):
    return f"{fmt(value, digits)} [{fmt(ci[0], digits)}, {fmt(ci[1], digits)}]"


def markdown_table(header, rows):
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c).replace("|", "\\|") for c in row) + " |" for row in rows]  # |x| in names
    return "\n".join(lines) + "\n"


def weights_digest(path):
    """A short sha256 of a weights file: results and judges name the model they were made for. Hashed once per
    file version in a process (a v3 run names its model up to three times; the file is 20 MB)."""
    resolved = Path(path).resolve()
    stat = resolved.stat()
    return _digest_of_version(str(resolved), stat.st_mtime_ns, stat.st_size)


@functools.lru_cache(maxsize=16)
def _digest_of_version(path, _mtime_ns, _size):
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()[:16]


# a setting's paired per-image AUROC difference may fall this far below the reference's at its interval's lower
# end (two points: non-inferiority, not "the interval holds zero", which a noisy signal passes by default)
NON_INFERIORITY_MARGIN = -0.02

AUTOENCODER_PREFIXES = ("taesd_", "vae_")  # a demo model file's autoencoder tensors (demo/model.py's layout)


def autoencoder_digest(path):
    """A short sha256 of a demo model's autoencoder tensors only (names and bytes): a judge that reads the model's
    decodes depends on them, not on the UNet, so a continued UNet with the same autoencoder keeps its judges."""
    from safetensors.torch import load_file

    tensors = load_file(str(path))
    digest = hashlib.sha256()
    for name in sorted(k for k in tensors if k.startswith(AUTOENCODER_PREFIXES)):
        digest.update(name.encode())
        digest.update(tensors[name].contiguous().numpy().tobytes())
    return digest.hexdigest()[:16]


def write_json(name, data):
    """Into bench/results/ (an absolute `name` is used as it is)."""
    path = RESULTS / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=1, default=_json_default) + "\n")
    return path


def _json_default(o):
    if isinstance(o, (np.floating, np.integer)):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, torch.Tensor):
        return o.tolist()
    if isinstance(o, Path):
        return str(o)
    raise TypeError(type(o))


def plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as pyplot

    return pyplot
