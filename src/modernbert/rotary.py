"""Rotary position embeddings (RoPE, NeoX rotate-half) on packed query and key, as the reference computes them.

`Rotary` holds one base's inverse frequencies and gives the cos / sin tables for a stream of positions;
`apply_rotary_` rotates query and key in place (inference); `rotate_qk` is the training form, with a
backward that is the rotation by -θ.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor


class Rotary:
    """RoPE tables (NeoX rotate-half), computed in fp32 exactly as the reference does."""

    def __init__(self, head_dim: int, theta: float) -> None:
        self.head_dim, self.theta = head_dim, theta
        self._inv_freq: dict[torch.device, Tensor] = {}

    def cos_sin(self, positions: Tensor, dtype: torch.dtype = torch.float32) -> tuple[Tensor, Tensor]:
        """positions (tokens,) → cos, sin (tokens, 1, 1, head_dim / 2) in fp32, rounded to `dtype` first as
        the reference does (it hands the tables over in the model's dtype and rotates in fp32)."""
        if positions.device not in self._inv_freq:
            exponents = torch.arange(0, self.head_dim, 2, dtype=torch.float) / self.head_dim
            self._inv_freq[positions.device] = (1.0 / (self.theta**exponents)).to(positions.device)
        freqs = positions[:, None].float() * self._inv_freq[positions.device]  # (tokens, head_dim / 2)
        cos, sin = freqs.cos().to(dtype).float(), freqs.sin().to(dtype).float()
        return cos[:, None, None, :], sin[:, None, None, :]


# tokens rotated at a time, so that each block's passes stay in cache; None: all at once (the ONNX export)
ROTARY_BLOCK: int | None = 256


def apply_rotary_(x: Tensor, cos: Tensor, sin: Tensor) -> Tensor:
    """Rotate-half RoPE, in place, on x (tokens, 2, heads, head_dim) = query and key; the math in fp32 as the
    reference does it.

    Written on the two halves, (x1 cos - x2 sin, x2 cos + x1 sin), which is the reference's
    x cos + rotate_half(x) sin term for term (fused multiply-adds may differ from it in the last bit).
    """
    blocks = zip(x.split(ROTARY_BLOCK), cos.split(ROTARY_BLOCK), sin.split(ROTARY_BLOCK)) if ROTARY_BLOCK else (
        (x, cos, sin),)
    for xb, cb, sb in blocks:
        xf = xb.float()  # xb itself when x is fp32
        x1, x2 = xf.chunk(2, dim=-1)
        x1_sin = x1 * sb
        x1.mul_(cb).addcmul_(x2, sb, value=-1)
        x2.mul_(cb).add_(x1_sin)
        if xf is not xb:
            xb.copy_(xf)
    return x


class _RotateQK(torch.autograd.Function):
    """Training form of the rotary step: a copy of qkv (tokens, 3, heads, head_dim) with query and key rotated.

    RoPE is a rotation, so its backward is the rotation by -θ: one in-place pass over the gradient instead of
    autograd's chain of casts, products and concatenations.
    """

    @staticmethod
    def forward(ctx: Any, qkv: Tensor, cos: Tensor, sin: Tensor) -> Tensor:
        ctx.save_for_backward(cos, sin)
        out = qkv.clone(memory_format=torch.contiguous_format)
        apply_rotary_(out[:, :2], cos, sin)
        return out

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor, None, None]:
        cos, sin = ctx.saved_tensors
        grad = grad.clone(memory_format=torch.contiguous_format)
        apply_rotary_(grad[:, :2], cos, -sin)
        return grad, None, None


def rotate_qk(qkv: Tensor, cos: Tensor, sin: Tensor) -> Tensor:
    """A copy of qkv (tokens, 3, heads, head_dim) with query and key rotated, differentiable."""
    return _RotateQK.apply(qkv, cos, sin)
