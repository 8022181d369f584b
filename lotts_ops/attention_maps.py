"""Attention read-outs for LoTTS: cross-attention onto prompt tokens and self-attention propagation.

Layouts: ComfyUI hands attention patches projected tensors shaped (B, N, heads*d); these helpers work
heads-first, (B, heads, N, d). All math runs in float32 whatever the input dtype and returns float32.
"""

import math

import torch
import torch.nn.functional as F


def split_heads(x: torch.Tensor, heads: int) -> torch.Tensor:
    """Reshape ComfyUI's projected layout (B, N, heads*d) to heads-first (B, heads, N, d)."""
    if x.ndim != 3:
        raise ValueError(f"x must be (B, N, heads*d), got shape {tuple(x.shape)}")
    if heads < 1 or x.shape[-1] % heads != 0:
        raise ValueError(f"heads={heads} must be >= 1 and divide the channel size {x.shape[-1]} of x")
    batch, tokens, channels = x.shape
    return x.reshape(batch, tokens, heads, channels // heads).transpose(1, 2)


def _check_qk(q: torch.Tensor, k: torch.Tensor) -> None:
    if q.ndim != 4 or k.ndim != 4:
        raise ValueError(f"q and k must be (B, heads, N, d), got q {tuple(q.shape)} and k {tuple(k.shape)}")
    if q.shape[0] != k.shape[0] or q.shape[1] != k.shape[1] or q.shape[3] != k.shape[3]:
        raise ValueError(f"q {tuple(q.shape)} and k {tuple(k.shape)} must agree in batch, heads and head dim")


def _check_chunk(chunk_size: int) -> None:
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be >= 1, got {chunk_size}")


def attention_to_tokens(
    q: torch.Tensor, k: torch.Tensor, token_weights: torch.Tensor, chunk_size: int = 1024
) -> torch.Tensor:
    """Weighted cross-attention mass each query puts on the keys, averaged over heads.

    q: (B, h, Nq, d), k: (B, h, Nk, d), token_weights: (B, Nk) non-negative (the caller normalises;
    an all-zero row gives zeros). Returns (B, Nq) float32: mean_h softmax(q k^T / sqrt(d)) @ token_weights.
    The softmax runs over all Nk keys (padding included) because that is the distribution the model
    really uses; only the read-out is weighted. The weights act as attention values (see
    _attention_with_values), so fused kernels never hold the Nq x Nk matrix; chunks over queries bound any other.
    """
    _check_qk(q, k)
    _check_chunk(chunk_size)
    batch, n_key = q.shape[0], k.shape[2]
    if token_weights.shape != (batch, n_key):
        raise ValueError(f"token_weights must be (B, Nk) = {(batch, n_key)}, got {tuple(token_weights.shape)}")
    if (token_weights < 0).any():
        raise ValueError("token_weights must be non-negative")
    weights = token_weights.to(device=q.device, dtype=torch.float32).unsqueeze(-1)  # (B, Nk, 1)
    return _attention_with_values(q, k, weights, chunk_size)[..., 0]


def _attention_with_values(q, k, values, chunk_size):
    """mean_h softmax(q k^T / sqrt(d)) @ values for values (B, Nk, M) shared by every head; (B, Nq, M) float32.

    The values are zero-padded to the head dim: scaled_dot_product_attention runs its fused kernels only when
    values and keys have the same width, and falls back to materialising softmax(q k^T) otherwise (4x slower
    on CPU at SDXL's 4096 tokens). The padding columns are zeros and are dropped; the read columns are exact.
    """
    batch, heads, n_query, head_dim = q.shape
    width = values.shape[2]
    keys = k.float()
    padded = F.pad(values, (0, max(head_dim - width, 0))).unsqueeze(1)
    padded = padded.expand(batch, heads, *padded.shape[2:])  # a view: one copy for all heads
    out = torch.empty(batch, n_query, width, dtype=torch.float32, device=q.device)
    for start in range(0, n_query, chunk_size):
        q_chunk = q[:, :, start : start + chunk_size].float()
        out[:, start : start + chunk_size] = F.scaled_dot_product_attention(q_chunk, keys, padded)[..., :width].mean(1)
    return out


def propagate_with_self_attention(
    q: torch.Tensor, k: torch.Tensor, maps: torch.Tensor, chunk_size: int = 1024
) -> torch.Tensor:
    """Propagate per-token maps through self-attention: mean_h softmax(q k^T / sqrt(d)) @ maps.

    q, k: (B, h, N, d) self-attention queries/keys; maps: (B, N, M). Returns (B, N, M) float32.
    The maps act as attention values, so scaled_dot_product_attention never needs the N x N matrix in
    memory (fused kernels stream over keys); chunking over queries bounds any fallback kernel too.
    """
    _check_qk(q, k)
    _check_chunk(chunk_size)
    batch, n_key = q.shape[0], k.shape[2]
    if maps.ndim != 3 or maps.shape[0] != batch or maps.shape[1] != n_key:
        raise ValueError(f"maps must be (B, N, M) with B={batch}, N={n_key}, got {tuple(maps.shape)}")
    return _attention_with_values(q, k, maps.to(device=q.device, dtype=torch.float32), chunk_size)


def _halved_sizes(height: int, width: int, max_halvings: int = 8):
    """Token grids of UNet-style downsampling: each stride-2 stage rounds odd sizes up."""
    h, w = height, width
    yield h, w
    for _ in range(max_halvings):
        h, w = (h + 1) // 2, (w + 1) // 2
        yield h, w


def grid_shape(n_tokens: int, height: int, width: int) -> tuple[int, int]:
    """The (h, w) token grid with h*w == n_tokens matching a latent of height x width.

    First tries exact downscales (factor 2^k, odd sizes rounded up as UNet convolutions and DiT patch
    padding do). Otherwise, like ComfyUI's SAG, searches divisors of n_tokens around
    sqrt(n_tokens * height / width) and accepts the nearest one whose aspect is within 1.5x of the
    latent's. Raises ValueError when no such grid exists.
    """
    if n_tokens < 1:
        raise ValueError(f"n_tokens must be >= 1, got {n_tokens}")
    if height < 1 or width < 1:
        raise ValueError(f"height and width must be >= 1, got {height} x {width}")
    for h, w in _halved_sizes(height, width):
        if h * w == n_tokens:
            return h, w
    target_aspect = height / width
    guess = round(math.sqrt(n_tokens * target_aspect))
    for offset in range(n_tokens + 1):
        for h in (guess + offset, guess - offset):
            if h < 1 or h > n_tokens or n_tokens % h != 0:
                continue
            w = n_tokens // h
            if abs(math.log((h / w) / target_aspect)) <= math.log(1.5):
                return h, w
        if guess - offset < 1 and guess + offset > n_tokens:
            break
    raise ValueError(f"n_tokens={n_tokens} cannot be arranged as a grid matching the latent aspect {height} x {width}")


def tokens_to_grid(x: torch.Tensor, h: int, w: int) -> torch.Tensor:
    """Reshape token maps to image grids: (B, N) -> (B, h, w); (B, N, M) -> (B, M, h, w)."""
    if x.ndim not in (2, 3) or x.shape[1] != h * w:
        raise ValueError(f"x must be (B, N) or (B, N, M) with N = h*w = {h * w}, got {tuple(x.shape)}")
    if x.ndim == 2:
        return x.reshape(x.shape[0], h, w)
    return x.transpose(1, 2).reshape(x.shape[0], x.shape[2], h, w)
