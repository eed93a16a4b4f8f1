"""The transformer's layers: the masks of a decode step and of a chunk, the key/value cache, 2-D rotary positions."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from vqgen.priors.attention import Block, KVCache, Positions, attend, rotary_factors, rotate

B, HEADS, S, D = 2, 3, 7, 8


def qkv(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    return tuple(torch.randn(B, HEADS, S, D, generator=generator) for _ in range(3))


def test_a_decode_step_sees_every_cached_key():
    """One query against S cached keys attends to all of them: the last row of full causal attention.

    The trap this guards against: ``scaled_dot_product_attention(..., is_causal=True)`` with one query and S keys
    aligns the mask to the upper left, and the query sees only the first key.
    """
    q, k, v = qkv()
    full = F.scaled_dot_product_attention(q, k, v, is_causal=True)  # (B, h, S, d)
    step = attend(q[:, :, -1:], k, v)  # (B, h, 1, d)
    torch.testing.assert_close(step, full[:, :, -1:], rtol=1e-5, atol=1e-6)
    trap = F.scaled_dot_product_attention(q[:, :, -1:], k, v, is_causal=True)
    torch.testing.assert_close(trap, v[:, :, :1])  # what the trap computes: the first value only
    assert not torch.allclose(step, trap, atol=1e-3)


def test_a_chunk_of_queries_gets_the_lower_right_triangle():
    """T queries that are the last T of S positions: query r sees keys [0, S - T + r], as the full pass has it."""
    q, k, v = qkv(1)
    full = F.scaled_dot_product_attention(q, k, v, is_causal=True)
    for t in (2, 4, S):
        torch.testing.assert_close(attend(q[:, :, -t:], k, v), full[:, :, -t:], rtol=1e-5, atol=1e-6)


def test_a_block_run_token_by_token_with_a_cache_equals_the_whole_sequence():
    """Through a KVCache, one token per call (and a prefix in one call, then single tokens) gives the full pass."""
    block = Block(16, 2, num_layers=2).eval()
    generator = torch.Generator().manual_seed(2)
    h = torch.randn(B, S, 16, generator=generator)
    rows, cols = torch.arange(S) // 3, torch.arange(S) % 3
    positions = Positions(rotary_factors(rows, cols, 8), rotary_factors(rows - 1, cols, 8))
    with torch.no_grad():
        full = block(h, positions)
        for prefix in (0, 3):
            cache = KVCache(S)
            outs = [block(h[:, :prefix], positions.window(0, prefix), cache, 0)] if prefix else []
            for t in range(prefix, S):
                outs.append(block(h[:, t : t + 1], positions.window(t, t + 1), cache, t))
            torch.testing.assert_close(torch.cat(outs, 1), full, rtol=1e-5, atol=1e-5)


def test_kv_cache_is_allocated_once_and_filled_in_place():
    cache = KVCache(5)
    assert cache.nbytes == 0
    k, v = torch.randn(2, 3, 2, 4), torch.randn(2, 3, 2, 4)
    keys, values = cache.write(0, k, v)
    assert cache.keys.shape == (2, 3, 5, 4) and cache.nbytes == 2 * 2 * 3 * 5 * 4 * 4
    pointer = cache.keys.data_ptr()
    keys, values = cache.write(2, k[:, :, :1], v[:, :, :1])
    assert cache.keys.data_ptr() == pointer and keys.shape == (2, 3, 3, 4)
    assert keys.data_ptr() == pointer  # a view of the buffer, not a concatenated copy
    torch.testing.assert_close(keys, torch.cat([k, k[:, :, :1]], dim=2))


def test_kv_cache_refuses_to_grow_past_its_buffer_or_change_batch():
    cache = KVCache(3)
    cache.write(0, torch.zeros(1, 2, 2, 4), torch.zeros(1, 2, 2, 4))
    with pytest.raises(ValueError, match=r"holds 3 positions; writing positions \[2, 4\) would grow past its buffer"):
        cache.write(2, torch.zeros(1, 2, 2, 4), torch.zeros(1, 2, 2, 4))
    with pytest.raises(ValueError, match="allocated for a batch of 1"):
        cache.write(2, torch.zeros(4, 2, 1, 4), torch.zeros(4, 2, 1, 4))


def test_rotary_scores_depend_on_the_offset_only():
    """q·k after rotation by positions p and p' depends on p' - p: the same for a shifted pair, on both axes."""
    generator = torch.Generator().manual_seed(3)
    q, k = torch.randn(1, 1, 1, 8, generator=generator), torch.randn(1, 1, 1, 8, generator=generator)

    def score(query_at: tuple[int, int], key_at: tuple[int, int]) -> torch.Tensor:
        rq = rotate(q, rotary_factors(torch.tensor([query_at[0]]), torch.tensor([query_at[1]]), 8))
        rk = rotate(k, rotary_factors(torch.tensor([key_at[0]]), torch.tensor([key_at[1]]), 8))
        return (rq * rk).sum()

    torch.testing.assert_close(score((5, 2), (4, 2)), score((40, 31), (39, 31)), rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(score((0, 0), (-1, 6)), score((9, 3), (8, 9)), rtol=1e-4, atol=1e-5)
    assert not torch.allclose(score((5, 2), (4, 2)), score((5, 2), (5, 1)), atol=1e-3)  # rows and columns differ


def test_rotation_keeps_the_input_dtype_and_norm():
    x = torch.randn(2, 3, 5, 8)
    factors = rotary_factors(torch.arange(5), torch.arange(5) * 2, 8)
    turned = rotate(x, factors)
    torch.testing.assert_close(turned.norm(dim=-1), x.norm(dim=-1))
    assert rotate(x.bfloat16(), factors).dtype == torch.bfloat16
    with pytest.raises(ValueError, match="head_dim must be a multiple of 4"):
        rotary_factors(torch.arange(3), torch.arange(3), 6)
