import math
import time

import pytest
import torch

from lotts_ops.attention_maps import (
    attention_to_tokens,
    grid_shape,
    propagate_with_self_attention,
    split_heads,
    tokens_to_grid,
)
from lotts_ops.defect_map import defect_probability, iou, top_area_mask


def _naive_attention(q, k):
    return torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(q.shape[-1]), dim=-1)  # (B, h, Nq, Nk)


def test_split_heads_matches_comfy_layout():
    batch, tokens, heads, dim = 2, 5, 3, 4
    x = torch.arange(batch * tokens * heads * dim, dtype=torch.float32).reshape(batch, tokens, heads * dim)
    out = split_heads(x, heads)
    assert out.shape == (batch, heads, tokens, dim)
    # head 1 of token 2 is channels [4:8] of that token
    assert torch.equal(out[1, 1, 2], x[1, 2, 4:8])
    with pytest.raises(ValueError, match="heads"):
        split_heads(x, 5)


def test_attention_to_tokens_matches_naive_and_chunks():
    gen = torch.Generator().manual_seed(0)
    q = torch.randn(2, 3, 37, 8, generator=gen)
    k = torch.randn(2, 3, 11, 8, generator=gen)
    weights = torch.rand(2, 11, generator=gen)
    weights[:, -3:] = 0  # padding: in the softmax, not in the read-out
    expected = (_naive_attention(q, k) @ weights[:, None, :, None]).squeeze(-1).mean(1)
    for chunk in (1, 5, 1024):
        out = attention_to_tokens(q, k, weights, chunk_size=chunk)
        assert out.dtype == torch.float32
        torch.testing.assert_close(out, expected, rtol=1e-5, atol=1e-6)
    assert torch.equal(attention_to_tokens(q, k, torch.zeros(2, 11)), torch.zeros(2, 37))


def test_attention_to_tokens_half_precision_input_returns_float32():
    gen = torch.Generator().manual_seed(1)
    q = torch.randn(1, 2, 6, 4, generator=gen)
    k = torch.randn(1, 2, 5, 4, generator=gen)
    weights = torch.ones(1, 5)
    out = attention_to_tokens(q.half(), k.half(), weights)
    assert out.dtype == torch.float32
    # softmax rows sum to one, so full weights give exactly one per query
    torch.testing.assert_close(out, torch.ones(1, 6), atol=1e-3, rtol=0)


def test_attention_to_tokens_rejects_bad_weights():
    q, k = torch.zeros(1, 2, 4, 8), torch.zeros(1, 2, 3, 8)
    with pytest.raises(ValueError, match="token_weights"):
        attention_to_tokens(q, k, torch.ones(1, 4))
    with pytest.raises(ValueError, match="non-negative"):
        attention_to_tokens(q, k, -torch.ones(1, 3))
    with pytest.raises(ValueError, match="q .* and k"):
        attention_to_tokens(q, torch.zeros(1, 2, 3, 7), torch.ones(1, 3))


def test_propagate_equals_naive():
    gen = torch.Generator().manual_seed(2)
    q = torch.randn(2, 4, 50, 8, generator=gen)
    k = torch.randn(2, 4, 50, 8, generator=gen)
    maps = torch.rand(2, 50, 3, generator=gen)
    expected = (_naive_attention(q, k) @ maps[:, None]).mean(1)
    for chunk in (7, 1024):
        out = propagate_with_self_attention(q, k, maps, chunk_size=chunk)
        assert out.shape == (2, 50, 3)
        torch.testing.assert_close(out, expected, rtol=1e-4, atol=1e-5)


def test_propagate_with_sharp_identity_attention_keeps_maps():
    # Each token attends (almost) only to itself: propagation must return the maps unchanged.
    n = 16
    q = (torch.eye(n) * 20.0).reshape(1, 1, n, n)
    maps = torch.rand(1, n, 2, generator=torch.Generator().manual_seed(3))
    torch.testing.assert_close(propagate_with_self_attention(q, q, maps), maps, atol=1e-4, rtol=0)


def test_propagate_runs_at_4096_tokens_without_dense_matrix():
    # A dense 8-head 4096 x 4096 float32 attention would need 512 MiB; the chunked SDPA path must instead
    # finish quickly at small memory (torch allocations are not visible to tracemalloc, so we time it).
    gen = torch.Generator().manual_seed(4)
    n, heads = 4096, 8
    q = torch.randn(1, heads, n, 8, generator=gen)
    maps = torch.rand(1, n, 2, generator=gen)
    start = time.perf_counter()
    out = propagate_with_self_attention(q, q, maps)
    assert time.perf_counter() - start < 5.0
    assert out.shape == (1, n, 2)
    # averages of values in [0, 1] stay in [0, 1]
    assert out.min() >= 0 and out.max() <= 1


@pytest.mark.parametrize(
    ("n_tokens", "height", "width", "expected"),
    [
        (64 * 64, 64, 64, (64, 64)),
        (32 * 48, 64, 96, (32, 48)),  # factor 2
        (8 * 12, 64, 96, (8, 12)),  # factor 8
        (33 * 17, 65, 33, (33, 17)),  # odd sizes round up
        (25 * 13, 97, 49, (25, 13)),  # 97 -> 49 -> 25, 49 -> 25 -> 13
        (24 * 16, 100, 64, (24, 16)),  # no exact factor: nearest-aspect divisor search
    ],
)
def test_grid_shape(n_tokens, height, width, expected):
    assert grid_shape(n_tokens, height, width) == expected


def test_grid_shape_raises_when_no_grid_fits():
    with pytest.raises(ValueError, match="n_tokens=97"):
        grid_shape(97, 64, 64)  # prime: only 1 x 97, far from square


def test_tokens_to_grid_layouts():
    x = torch.arange(2 * 6, dtype=torch.float32).reshape(2, 6)
    assert torch.equal(tokens_to_grid(x, 2, 3)[1, 1], torch.tensor([9.0, 10.0, 11.0]))
    y = torch.arange(2 * 6 * 4, dtype=torch.float32).reshape(2, 6, 4)
    grid = tokens_to_grid(y, 2, 3)
    assert grid.shape == (2, 4, 2, 3)
    assert grid[1, 3, 1, 2] == y[1, 5, 3]
    with pytest.raises(ValueError, match="N = h\\*w"):
        tokens_to_grid(x, 2, 2)


def test_planted_attention_difference_is_localized():
    # "low" queries inside a square attend more to the content tokens than "high" ones do.
    gen = torch.Generator().manual_seed(5)
    side, heads, dim, n_key = 16, 2, 8, 10
    square = torch.zeros(side, side)
    square[4:9, 6:11] = 1.0
    inside = square.reshape(1, 1, -1, 1)
    content = torch.zeros(1, n_key)
    content[0, 1:6] = 1.0  # BOS at 0 and padding after 5 excluded from the read-out
    keys = torch.randn(1, heads, n_key, dim, generator=gen) * 0.3
    keys[..., 1:6, 0] += 2.0  # content keys share a direction
    q_high = torch.randn(1, heads, side * side, dim, generator=gen) * 0.3
    direction = torch.zeros(dim)
    direction[0] = 2.0
    q_low = q_high + inside * direction
    weights = content / content.sum()
    ca_high = attention_to_tokens(q_high, keys, weights, chunk_size=50)
    ca_low = attention_to_tokens(q_low, keys, weights, chunk_size=50)
    ca_diff = tokens_to_grid(ca_low - ca_high, side, side)
    ca_orig = tokens_to_grid(ca_high, side, side)
    p = defect_probability(ca_diff, ca_orig, lam=0.1)
    mask = top_area_mask(p, area=float(square.mean()))
    assert iou(mask, square[None]).item() > 0.9
