"""Rotary embeddings against the reference's formula, forward and backward."""

from __future__ import annotations

import pytest
import torch

import modernbert.rotary as R


@pytest.mark.parametrize("block", [256, 16, None], ids=["one-block", "blocks-16", "unblocked"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_rotary_matches_reference_formula_and_its_backward(dtype, block, monkeypatch):
    """In-place rotary = the reference's x cos + rotate_half(x) sin in fp32; the training form's backward
    (rotation by -θ) = autograd through that formula. Also in blocks of 16 tokens (37 = 16 + 16 + 5)."""
    monkeypatch.setattr(R, "ROTARY_BLOCK", block)
    torch.manual_seed(4)
    tokens, heads, head_dim = 37, 3, 8
    cos, sin = R.Rotary(head_dim, 10_000.0).cos_sin(torch.arange(tokens) % 13, dtype)
    qkv = torch.randn(tokens, 3, heads, head_dim).to(dtype)

    def reference(x):  # transformers' apply_rotary_pos_emb, tables already broadcast
        x1, x2 = x.float().chunk(2, dim=-1)
        c, s = torch.cat((cos, cos), -1), torch.cat((sin, sin), -1)
        return (x.float() * c + torch.cat((-x2, x1), -1) * s).to(x.dtype)

    tol = 1e-6 if dtype == torch.float32 else 4e-2  # bf16: one rounding apart at most (values < 8)
    ours = R.apply_rotary_(qkv[:, :2].clone(), cos, sin)
    assert (ours.float() - reference(qkv[:, :2]).float()).abs().max() < tol

    x = qkv.clone().requires_grad_(True)
    y = qkv.clone().requires_grad_(True)
    grad = torch.randn(tokens, 3, heads, head_dim).to(dtype)
    R.rotate_qk(x, cos, sin).backward(grad)
    torch.cat((reference(y[:, :2]), y[:, 2:]), 1).backward(grad)
    assert (x.grad.float() - y.grad.float()).abs().max() < tol
    assert torch.equal(x.grad[:, 2], grad[:, 2])
