"""Every attention backend against `eager` (the reference math), on packed batches."""

from __future__ import annotations

import pytest
import torch

from modernbert.attention import AttnBatch, attention, check_implementation, qkv_buffer

CASES = [
    [5, 9, 5, 9, 9, 1],  # short: one padded call
    [100, 70, 100, 70],  # repeated lengths, not adjacent: grouped by gather
    [7, 7, 7],  # all equal: one call
    [3, 50, 3, 40],  # longer than the window
    [1],
    [200, 1, 64, 65, 66, 130],  # around block and window edges
    [30, 40, 20, 64, 1, 33, 33, 7],  # short: packed whole into several rows of 64, block-diagonal
    [100, 98, 100],  # little padding: one padded row per sequence
    [0, 5, 9, 0, 3],  # empty sequences (all-padding rows of a batch) get no padded row
]


@pytest.mark.parametrize("lengths", CASES, ids=[str(c) for c in CASES])
@pytest.mark.parametrize("window", [None, 4, 16, 64])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_sdpa_matches_eager(lengths, window, dtype):
    torch.manual_seed(0)
    batch = AttnBatch.from_seqlens(torch.tensor(lengths))
    qkv = torch.randn(batch.num_tokens, 3, 2, 16).to(dtype)
    ours = attention(qkv, batch, window, "sdpa")
    ref = attention(qkv, batch, window, "eager")
    tol = 1e-5 if dtype == torch.float32 else 2e-2
    assert ours.shape == ref.shape == qkv[:, 0].shape
    assert (ours.float() - ref.float()).abs().max() < tol


def test_eager_is_the_definition():
    """eager itself, checked against a direct loop over tokens: i sees j iff same sequence and |i - j| <= w."""
    torch.manual_seed(1)
    lengths, window = [6, 11], 3
    batch = AttnBatch.from_seqlens(torch.tensor(lengths))
    qkv = torch.randn(17, 3, 1, 4)
    q, k, v = qkv.unbind(1)
    out = attention(qkv, batch, window, "eager")
    start = 0
    for n in lengths:
        for i in range(n):
            js = [j for j in range(n) if abs(i - j) <= window]
            scores = torch.stack([q[start + i, 0] @ k[start + j, 0] for j in js]) / 2.0
            expected = torch.softmax(scores, 0) @ v[[start + j for j in js], 0]
            assert (out[start + i, 0] - expected).abs().max() < 1e-5
        start += n


@pytest.mark.parametrize(
    "lengths",
    [[40, 7, 100, 7, 40], [5, 9, 5, 1], [30, 40, 20, 64, 1, 33], [0, 5, 9, 0, 1]],
    ids=["grouped", "padded", "rows", "empty"],
)
@pytest.mark.parametrize("window", [None, 8])
def test_gradients_match_eager(window, lengths):
    torch.manual_seed(2)
    batch = AttnBatch.from_seqlens(torch.tensor(lengths))
    base = torch.randn(batch.num_tokens, 3, 2, 8)
    grads = []
    for impl in ("sdpa", "eager"):
        x = base.clone().requires_grad_(True)
        attention(x, batch, window, impl).square().sum().backward()
        grads.append(x.grad)
    assert torch.isfinite(grads[0]).all()
    assert (grads[0] - grads[1]).abs().max() < 1e-4


@pytest.mark.parametrize("window", [5, 17, 20, 64, 67])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_banded_blocks_forward_and_backward(window, dtype):
    """The banded kernel when training: blocks that divide 2w (shifted-add backward of `_Windows`) and, for
    w = 67 (2w = 134 has no divisor near the block size 64), plain unfold and its own backward."""
    import modernbert.attention as A

    assert ((2 * window) % A._band_block(window, torch.float32, training=True) == 0) == (window != 67)
    torch.manual_seed(3)
    batch = AttnBatch.from_seqlens(torch.tensor([3 * window + 5, 1, window + 2, 2 * window]))
    base = torch.randn(batch.num_tokens, 3, 2, 8)
    outs, grads = [], []
    for impl in ("sdpa", "eager"):
        x = base.clone().to(dtype).requires_grad_(True)
        out = attention(x, batch, window, impl)
        out.float().square().sum().backward()
        outs.append(out.float())
        grads.append(x.grad.float())
    tol = 1e-5 if dtype == torch.float32 else 3e-2
    assert (outs[0] - outs[1]).abs().max() < tol
    assert (grads[0] - grads[1]).abs().max() < tol * (10 if dtype == torch.float32 else 4)


def test_short_sequences_packed_into_rows(monkeypatch):
    """Short sequences sharing rows (block-diagonal mask), forced on in fp32 too: output and gradients."""
    import modernbert.attention as A

    monkeypatch.setitem(A.PACK_SHORT, "fp32", True)
    torch.manual_seed(5)
    batch = AttnBatch.from_seqlens(torch.tensor([30, 40, 20, 64, 1, 33, 33, 7]))
    source, flat, mask = A._rows(batch, torch.float32, torch.device("cpu"))
    assert mask.shape == (5, 1, 64, 64)  # [30], [40, 20], [64], [1, 33], [33, 7]
    base = torch.randn(batch.num_tokens, 3, 2, 8)
    outs, grads = [], []
    for impl in ("sdpa", "eager"):
        x = base.clone().requires_grad_(True)
        out = attention(x, batch, None, impl)
        out.square().sum().backward()
        outs.append(out)
        grads.append(x.grad)
    assert (outs[0] - outs[1]).abs().max() < 1e-5
    assert (grads[0] - grads[1]).abs().max() < 1e-4


def test_each_global_strategy_is_used():
    """The three sdpa strategies for global layers are all exercised above."""
    short = AttnBatch.from_seqlens(torch.tensor([5, 9, 5]))
    mixed = AttnBatch.from_seqlens(torch.tensor([200, 1, 64]))
    similar = AttnBatch.from_seqlens(torch.tensor([100, 98, 100]))
    same = AttnBatch.from_seqlens(torch.tensor([7, 7, 7]))
    assert short.pad_pays and similar.pad_pays
    assert not mixed.pad_pays and not same.pad_pays


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_qkv_buffer_saves_the_banded_copy(dtype):
    """qkv written into qkv_buffer's view gives the banded kernel's result exactly, without its copy; kernels
    with no use for a buffer get None; a buffer that does not hold qkv is refused."""
    torch.manual_seed(5)
    batch = AttnBatch.from_seqlens(torch.tensor([200, 1, 64, 65, 66, 130]))
    heads, head_dim, window = 2, 16, 16
    qkv, buf = qkv_buffer(batch, window, "sdpa", heads, head_dim, dtype, torch.device("cpu"))
    assert qkv.shape == (batch.num_tokens, 3, heads, head_dim) and buf.shape[0] > batch.num_tokens + 2 * window
    qkv.copy_(torch.randn(qkv.shape).to(dtype))
    expected = attention(qkv.clone(), batch, window, "sdpa")
    assert torch.equal(attention(qkv, batch, window, "sdpa", buffer=buf), expected)
    assert (attention(qkv, batch, window, "eager").float() - expected.float()).abs().max() < 2e-2

    cpu = torch.device("cpu")
    assert qkv_buffer(batch, None, "sdpa", heads, head_dim, dtype, cpu) is None  # global
    assert qkv_buffer(batch, 300, "sdpa", heads, head_dim, dtype, cpu) is None  # window covers every sequence
    assert qkv_buffer(batch, window, "eager", heads, head_dim, dtype, cpu) is None
    with pytest.raises(ValueError, match="does not hold qkv"):
        attention(qkv.clone(), batch, window, "sdpa", buffer=buf)
    with pytest.raises(ValueError, match="offered no buffer for this layer"):
        attention(qkv, batch, None, "sdpa", buffer=buf)


def test_unknown_backend_and_flash_without_cuda():
    with pytest.raises(ValueError, match="unknown; choose one of"):
        check_implementation("flex", "cpu", torch.float32)
    with pytest.raises(ValueError, match="flash_attention_2"):
        check_implementation("flash_attention_2", "cpu", torch.bfloat16)
