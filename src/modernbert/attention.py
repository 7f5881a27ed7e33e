"""Attention kernels on unpadded (packed) tokens, in one registry: `KERNELS` maps a name to a kernel.

Every kernel takes the same inputs: query, key and value of all real tokens of a batch packed one sequence
after another, `qkv (tokens, 3, heads, head_dim)`, and an `AttnBatch` describing where each sequence starts.
`window` is None for global layers; for local layers it is the half-width w: token i sees token j only
if |i - j| <= w and both are in the same sequence.

- "sdpa": PyTorch scaled_dot_product_attention. Global layers run one call per group of equal-length
  sequences (no padding, no mask), or one padded call when that pays; local layers run banded: the packed
  stream is cut into blocks of queries and each block attends to its own keys plus w on either side, so cost
  and memory are O(tokens × window).
- "eager": the reference math (scores, additive mask, fp32 softmax) on a padded batch. It builds the full
  (length × length) score matrix, so it is meant for checking the other kernels, not for long inputs.
- "flash_attention_2": flash-attn's varlen kernel, window (w, w) on local layers; CUDA, fp16/bf16 only.
- "banded": for graphs traced on the static layout (the ONNX export): local layers banded in blocks of w
  queries, each seeing its own and its two neighbour blocks (3w keys), global layers in GLOBAL_CHUNKS slices
  of queries, so that no tensor is (length × length). On packed tokens it is "sdpa", whose local layers are
  banded already.

A kernel is a `Kernel`: `check(device, dtype)` raises a clear error when it cannot run there (there is no
silent fallback), `__call__` computes attention, and `qkv_buffer` may offer the buffer it wants the qkv
projection written into. A new backend is one subclass and one entry in `KERNELS`.
"""

from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

import torch
import torch.nn.functional as F
from torch import Tensor

AttnImplementation = Literal["sdpa", "eager", "flash_attention_2", "banded"]
# Queries per block of the banded kernel; each block sees block + 2w keys. Smaller blocks waste fewer keys,
# larger ones make bigger matrix products (benchmarks/README.md has the measurements behind each value).
BAND_BLOCK = {"fp32": 16, "bf16": 32, "train": 64}
# Global layers of the "banded" kernel take their queries in this many slices: one slice's scores are
# (length / GLOBAL_CHUNKS × length), and a runtime that frees each slice before the next holds only one.
GLOBAL_CHUNKS = 16
SHORT_SEQUENCE = 64  # up to this length, one padded attention call beats a call per distinct length
# Whether short sequences share padded rows (block-diagonal mask) or get one row each, per precision.
PACK_SHORT = {"fp32": False, "bf16": True}


@dataclass
class AttnBatch:
    """Where the sequences of a packed batch lie, plus masks cached across layers of one forward."""

    cu_seqlens: Tensor  # (batch + 1,) int32, offsets of each sequence in the packed tokens
    max_seqlen: int  # longest sequence
    seqlens: list[int]  # lengths on the host, for the kernels that loop over sequences
    # For a batch unpadded from (batch, length): where each packed token was, to put it back.
    pad_indices: Tensor | None = None  # (tokens,) flat index into batch × length
    pad_shape: tuple[int, int] | None = None  # (batch, length)
    # When some mask row has a hole (a 0 between 1s): each token's column, which the sliding window measures
    # distance in (as the reference does), and the widest column span of a sequence.
    columns: Tensor | None = None  # (tokens,)
    max_span: int = 0
    # The static layout, for torch.compile and torch.export (`from_attention_mask_static`): every position of
    # the (batch, length) input is a token and this mask says which are real; no shape depends on the data.
    static_mask: Tensor | None = None  # (batch, length) bool
    _cache: dict = field(default_factory=dict, repr=False)

    @classmethod
    def from_seqlens(cls, seqlens: Tensor, **padding: Any) -> AttnBatch:
        seqlens = seqlens.to(torch.int32)
        cu = F.pad(torch.cumsum(seqlens, 0, dtype=torch.int32), (1, 0))
        host = seqlens.tolist()
        return cls(cu_seqlens=cu, max_seqlen=max(host) if host else 0, seqlens=host, **padding)

    @classmethod
    def from_attention_mask(cls, attention_mask: Tensor) -> AttnBatch:
        """The real tokens (mask 1) of a padded (batch, length) input; `pack` and `unpack` convert."""
        mask = attention_mask.bool()
        indices = mask.flatten().nonzero().squeeze(1)
        batch = cls.from_seqlens(mask.sum(1), pad_indices=indices, pad_shape=tuple(mask.shape))
        length = mask.shape[1]
        first = mask.int().argmax(1)
        last = length - 1 - mask.int().flip(1).argmax(1)
        spans = torch.where(mask.any(1), last - first + 1, 0).tolist()
        if spans != batch.seqlens:
            batch.columns = indices % length
            batch.max_span = max(spans)
        return batch

    @classmethod
    def from_attention_mask_static(cls, attention_mask: Tensor) -> AttnBatch:
        """The static layout of a (batch, length) input: no unpadding, no host sync, no data-dependent shape
        (what torch.compile(fullgraph=True) and torch.export need). Kernels mask padding instead."""
        batch, length = attention_mask.shape
        device = attention_mask.device
        return cls(
            cu_seqlens=torch.zeros(0, dtype=torch.int32, device=device), max_seqlen=length, seqlens=[],
            pad_indices=torch.arange(batch * length, device=device), pad_shape=(batch, length),
            static_mask=attention_mask.bool(),
        )

    @property
    def padded(self) -> bool:
        """Whether this batch was unpadded from a (batch, length) input."""
        return self.pad_indices is not None

    def pack(self, x: Tensor) -> Tensor:
        """(batch, length, ...) -> (tokens, ...): the real tokens."""
        return x.flatten(0, 1)[self.pad_indices]

    def unpack(self, x: Tensor, fill: float = 0.0) -> Tensor:
        """(tokens, ...) -> (batch, length, ...), `fill` at padding."""
        batch, length = self.pad_shape
        if self.static_mask is not None:
            keep = self.static_mask.view(batch, length, *([1] * (x.dim() - 1)))
            return x.view(batch, length, *x.shape[1:]).masked_fill(~keep, fill)
        out = x.new_full((batch * length, *x.shape[1:]), fill)
        out[self.pad_indices] = x
        return out.view(batch, length, *x.shape[1:])

    @classmethod
    def from_cu_seqlens(cls, cu_seqlens: Tensor) -> AttnBatch:
        cu = cu_seqlens.to(torch.int32)
        return cls.from_seqlens(cu[1:] - cu[:-1])

    @property
    def num_tokens(self) -> int:
        return int(self.cu_seqlens[-1])

    @property
    def pad_pays(self) -> bool:
        """Whether one padded attention call beats one call per distinct length: short sequences (the
        calls cost more than the attention) or little padding."""
        distinct = len(set(self.seqlens))
        if distinct <= 1:
            return False
        padded = len(self.seqlens) * self.max_seqlen**2
        return self.max_seqlen <= SHORT_SEQUENCE or padded <= 1.25 * sum(n * n for n in self.seqlens)

    @property
    def span(self) -> int:
        """The widest distance a sliding window must cover: the longest sequence, or with holes the widest
        column span."""
        return self.max_span if self.columns is not None else self.max_seqlen

    def positions(self, device: torch.device) -> Tensor:
        """(tokens,) position of each packed token inside its sequence, restarting at 0."""
        key = ("positions", device)
        if key not in self._cache:
            starts = self.cu_seqlens.to(device).long()[self.seq_ids(device)]
            self._cache[key] = torch.arange(self.num_tokens, device=device) - starts
        return self._cache[key]

    def seq_ids(self, device: torch.device) -> Tensor:
        """(tokens,) index of the sequence each packed token belongs to."""
        key = ("seq_ids", device)
        if key not in self._cache:
            lens = torch.tensor(self.seqlens, device=device)
            self._cache[key] = torch.repeat_interleave(torch.arange(len(self.seqlens), device=device), lens)
        return self._cache[key]


class Kernel:
    """An attention backend: `check` where it can run, `__call__` on packed qkv, optionally `qkv_buffer`."""

    name: ClassVar[str]

    def check(self, device: torch.device | str | None, dtype: torch.dtype) -> None:
        """Raise a ValueError naming the fix when this kernel cannot run on `device` in `dtype`."""

    def qkv_buffer(
        self, batch: AttnBatch, window: int | None, heads: int, head_dim: int, dtype: torch.dtype,
        device: torch.device,
    ) -> tuple[Tensor, Tensor] | None:
        """Where the kernel wants the qkv projection written, for inference: an uninitialised (tokens, 3,
        heads, head_dim) view for the projection and the buffer it lies in (pass it to `__call__`), or None
        when the kernel has no use for one."""
        return None

    def __call__(
        self, qkv: Tensor, batch: AttnBatch, window: int | None, dropout_p: float = 0.0,
        deterministic: bool = False, buffer: Tensor | None = None,
    ) -> Tensor:
        """qkv (tokens, 3, heads, head_dim) → (tokens, heads, head_dim)."""
        raise NotImplementedError


class SdpaKernel(Kernel):
    name = "sdpa"

    def qkv_buffer(
        self, batch: AttnBatch, window: int | None, heads: int, head_dim: int, dtype: torch.dtype,
        device: torch.device,
    ) -> tuple[Tensor, Tensor] | None:
        # The banded kernel reads query, key and value from one buffer with w zero rows before the tokens and
        # w plus the last block's padding after them; qkv written there saves it a copy.
        if batch.static_mask is not None or not _is_banded(batch, window):
            return None
        tokens = batch.num_tokens
        block = _band_block(window, dtype, training=False)
        padded = math.ceil(tokens / block) * block
        buffer = _band_buffer(tokens, padded, window, (3, heads, head_dim), dtype, device)
        return buffer[window : window + tokens], buffer

    def __call__(
        self, qkv: Tensor, batch: AttnBatch, window: int | None, dropout_p: float = 0.0,
        deterministic: bool = False, buffer: Tensor | None = None,
    ) -> Tensor:
        if batch.static_mask is not None:
            _no_buffer(self, buffer)
            return _static(qkv, batch, window, dropout_p, sdpa=True)[0]
        if _is_banded(batch, window):
            return _sdpa_banded(qkv, batch, window, dropout_p, buffer)
        _no_buffer(self, buffer)
        # The window, if any, covers every sequence: global attention.
        if batch.pad_pays:
            return _sdpa_padded(qkv, batch, dropout_p)
        return _sdpa_global(*qkv.unbind(dim=1), batch, dropout_p)


class EagerKernel(Kernel):
    """The reference math; the one kernel that can also return the attention weights (return_weights)."""

    name = "eager"

    def __call__(
        self, qkv: Tensor, batch: AttnBatch, window: int | None, dropout_p: float = 0.0,
        deterministic: bool = False, buffer: Tensor | None = None, return_weights: bool = False,
    ) -> Tensor | tuple[Tensor, Tensor]:
        """With return_weights, also the probabilities (sequences, heads, longest, longest), zero at padding."""
        _no_buffer(self, buffer)
        if batch.static_mask is not None:
            out, probs = _static(qkv, batch, window, dropout_p, sdpa=False)
        else:
            out, probs = _eager(qkv, batch, window, dropout_p)
        return (out, probs) if return_weights else out


class FlashVarlenKernel(Kernel):
    name = "flash_attention_2"

    def check(self, device: torch.device | str | None, dtype: torch.dtype) -> None:
        try:
            import flash_attn  # noqa: F401
        except ImportError:
            raise ValueError(
                "attn_implementation='flash_attention_2' needs the flash-attn package: "
                "pip install flash-attn --no-build-isolation (CUDA only); or use attn_implementation='sdpa'"
            ) from None
        if torch.device(device or "cpu").type != "cuda":
            raise ValueError(
                f"attn_implementation='flash_attention_2' runs on CUDA only, not on "
                f"device={str(device or 'cpu')!r}; pass device='cuda' or use attn_implementation='sdpa'"
            )
        if dtype not in (torch.float16, torch.bfloat16):
            raise ValueError(
                f"attn_implementation='flash_attention_2' needs dtype float16 or bfloat16, not {dtype}; "
                "pass dtype=torch.bfloat16 or use attn_implementation='sdpa'"
            )

    def __call__(
        self, qkv: Tensor, batch: AttnBatch, window: int | None, dropout_p: float = 0.0,
        deterministic: bool = False, buffer: Tensor | None = None,
    ) -> Tensor:
        _no_buffer(self, buffer)
        self.check(qkv.device, qkv.dtype)
        if batch.static_mask is not None:
            raise ValueError(
                "attn_implementation='flash_attention_2' runs on packed tokens only, not on the static padded "
                "layout of torch.compile / torch.export; use attn_implementation='sdpa' there"
            )
        from flash_attn import flash_attn_varlen_func

        if window is not None and batch.columns is not None and _is_banded(batch, window):
            raise ValueError(
                "attn_implementation='flash_attention_2' cannot window by column an attention_mask with holes "
                "(a 0 between 1s in a row); use attn_implementation='sdpa' or remove the holes"
            )
        q, k, v = qkv.unbind(dim=1)
        cu = batch.cu_seqlens.to(q.device, torch.int32)
        return flash_attn_varlen_func(
            q, k, v, cu, cu, batch.max_seqlen, batch.max_seqlen,
            dropout_p=dropout_p,
            softmax_scale=q.shape[-1] ** -0.5,
            causal=False,
            window_size=(-1, -1) if window is None else (window, window),
            deterministic=deterministic,
        )


class BandedKernel(SdpaKernel):
    """The static layout without any (length × length) tensor, for exported graphs (`_static_banded`)."""

    name = "banded"

    def __call__(
        self, qkv: Tensor, batch: AttnBatch, window: int | None, dropout_p: float = 0.0,
        deterministic: bool = False, buffer: Tensor | None = None,
    ) -> Tensor:
        if batch.static_mask is None:
            return super().__call__(qkv, batch, window, dropout_p, deterministic, buffer)
        _no_buffer(self, buffer)
        if dropout_p:
            raise ValueError("attn_implementation='banded' is for inference graphs; train with 'sdpa' (no dropout)")
        return _static_banded(qkv, batch, window)


KERNELS: dict[str, Kernel] = {
    k.name: k for k in (SdpaKernel(), EagerKernel(), FlashVarlenKernel(), BandedKernel())
}
ATTN_IMPLEMENTATIONS: tuple[str, ...] = tuple(KERNELS)


def get_kernel(implementation: str) -> Kernel:
    """The kernel registered under `implementation`; a ValueError listing the choices for an unknown name."""
    kernel = KERNELS.get(implementation) if isinstance(implementation, str) else None
    if kernel is None:
        raise ValueError(f"attn_implementation={implementation!r} is unknown; choose one of {ATTN_IMPLEMENTATIONS}")
    return kernel


def check_implementation(implementation: str, device: torch.device | str | None, dtype: torch.dtype) -> None:
    """Raise a clear error if `implementation` cannot run on this device and dtype (no silent fallback)."""
    get_kernel(implementation).check(device, dtype)


def attention(
    qkv: Tensor,
    batch: AttnBatch,
    window: int | None,
    implementation: str = "sdpa",
    dropout_p: float = 0.0,
    deterministic: bool = False,
    buffer: Tensor | None = None,
) -> Tensor:
    """Bidirectional attention over packed sequences with the named kernel.

    qkv: (tokens, 3, heads, head_dim), query, key and value. Returns (tokens, heads, head_dim).
    buffer: the buffer `qkv_buffer` returned with qkv, if qkv was written there (saves the kernel a copy).
    """
    return get_kernel(implementation)(qkv, batch, window, dropout_p, deterministic, buffer)


def qkv_buffer(
    batch: AttnBatch, window: int | None, implementation: str, heads: int, head_dim: int, dtype: torch.dtype,
    device: torch.device,
) -> tuple[Tensor, Tensor] | None:
    """The named kernel's `Kernel.qkv_buffer`."""
    return get_kernel(implementation).qkv_buffer(batch, window, heads, head_dim, dtype, device)


def _no_buffer(kernel: Kernel, buffer: Tensor | None) -> None:
    if buffer is not None:
        raise ValueError(
            f"the {kernel.name!r} kernel offered no buffer for this layer; pass the one its qkv_buffer returned, "
            "or None"
        )


# ----- sdpa -----


def _length_groups(batch: AttnBatch, device: torch.device) -> tuple[list[tuple[int, int]], Tensor | None]:
    """Sequences grouped by length: [(length, count)] and the token order that lays the groups out one after
    another (None when the packed order already does)."""
    key = ("groups", device)
    if key not in batch._cache:
        by_length: dict[int, list[int]] = {}
        for i, n in enumerate(batch.seqlens):
            if n:
                by_length.setdefault(n, []).append(i)
        starts = batch.cu_seqlens.tolist()
        groups = sorted(by_length.items(), key=lambda item: item[1][0])
        seq_order = [i for _, seqs in groups for i in seqs]
        order = None
        if seq_order != sorted(seq_order):
            first = torch.tensor([starts[i] for i in seq_order])
            lengths = torch.tensor([batch.seqlens[i] for i in seq_order])
            order = torch.repeat_interleave(first - torch.cumsum(lengths, 0) + lengths, lengths)
            order = (order + torch.arange(int(lengths.sum()))).to(device)
        batch._cache[key] = ([(n, len(seqs)) for n, seqs in groups], order)
    return batch._cache[key]


def _sdpa_global(q: Tensor, k: Tensor, v: Tensor, batch: AttnBatch, dropout_p: float) -> Tensor:
    # One call per sequence length: (count, heads, length, head_dim), no padding and no mask. Split and
    # cat (not slice-assign) keep the backward to one pass over the tokens, however many groups there are.
    groups, order = _length_groups(batch, q.device)
    if order is not None:
        q, k, v = (t.index_select(0, order) for t in (q, k, v))
    sizes = [n * count for n, count in groups]
    tail = q.shape[1:]
    outs = []
    for (n, count), qs, ks, vs in zip(groups, q.split(sizes), k.split(sizes), v.split(sizes)):
        qs, ks, vs = (t.view(count, n, *tail).transpose(1, 2) for t in (qs, ks, vs))
        o = F.scaled_dot_product_attention(qs, ks, vs, dropout_p=dropout_p)  # (count, heads, n, head_dim)
        outs.append(o.transpose(1, 2).reshape(count * n, *tail))
    out = torch.cat(outs) if len(outs) > 1 else outs[0]
    if order is not None:
        out = torch.empty_like(out).index_copy_(0, order, out)
    return out


def _precision(dtype: torch.dtype) -> str:
    """Key of the per-precision tunings (BAND_BLOCK, PACK_SHORT): "fp32", or "bf16" for half precision."""
    return "fp32" if dtype == torch.float32 else "bf16"


def _additive(allowed: Tensor, dtype: torch.dtype) -> Tensor:
    """Boolean mask → additive SDPA mask: 0 where allowed, -inf elsewhere."""
    return torch.zeros(allowed.shape, dtype=dtype, device=allowed.device).masked_fill_(~allowed, float("-inf"))


def _pad(qkv: Tensor, batch: AttnBatch) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Packed qkv → query, key, value (batch, heads, length, head_dim) padded with zeros, and the
    (batch, length) mask of real tokens."""
    n, length = len(batch.seqlens), batch.max_seqlen
    padded = qkv.new_zeros(n, length, *qkv.shape[1:])
    padded[batch.seq_ids(qkv.device), batch.positions(qkv.device)] = qkv  # (batch, length, 3, heads, head_dim)
    qp, kp, vp = padded.permute(2, 0, 3, 1, 4)
    lens = torch.tensor(batch.seqlens, device=qkv.device)
    valid = torch.arange(length, device=qkv.device) < lens.view(-1, 1)
    return qp, kp, vp, valid


def _unpad(out: Tensor, batch: AttnBatch) -> Tensor:
    """(batch, heads, length, head_dim) → packed (tokens, heads, head_dim)."""
    return out.transpose(1, 2)[batch.seq_ids(out.device), batch.positions(out.device)]


def _rows(batch: AttnBatch, dtype: torch.dtype, device: torch.device) -> tuple[Tensor, Tensor, Tensor]:
    """Layout of the padded kernel, cached per batch: the token each of the rows * row_len slots reads (padding
    slots read token 0: masked as keys, discarded as queries), each token's slot row * row_len + col, and
    the additive mask, (rows, 1, row_len, row_len) or (rows, 1, 1, row_len).

    Short sequences (all ≤ SHORT_SEQUENCE) in half precision are packed whole, in order, into rows of up to
    SHORT_SEQUENCE tokens with a block-diagonal mask: fewer, fuller rows than one per sequence (at these sizes
    the CPU kernel's bf16 cost goes mostly by rows × heads). Otherwise each sequence has its own row and
    padding keys are masked.
    """
    key = ("rows", dtype, device)
    if key not in batch._cache:
        pack = batch.max_seqlen <= SHORT_SEQUENCE and PACK_SHORT[_precision(dtype)]
        row_of, col_of, fills = [], [], []
        for n in batch.seqlens:
            if n == 0:  # an empty sequence gets no row: it has no token to attend or be attended to
                row_of.append(0)
                col_of.append(0)
                continue
            if not fills or not pack or fills[-1] + n > SHORT_SEQUENCE:
                fills.append(0)
            row_of.append(len(fills) - 1)
            col_of.append(fills[-1])
            fills[-1] += n
        rows, row_len = max(len(fills), 1), max(fills, default=1)
        seq_ids = batch.seq_ids(device)
        row = torch.tensor(row_of, device=device)[seq_ids]  # (tokens,)
        col = torch.tensor(col_of, device=device)[seq_ids] + batch.positions(device)
        flat = row * row_len + col
        slot_seq = torch.full((rows * row_len,), -1, device=device).index_put_((flat,), seq_ids).view(rows, row_len)
        if pack:  # a slot sees its own sequence; padding slots see each other (never an all-masked row)
            allowed = (slot_seq[:, :, None] == slot_seq[:, None, :]).unsqueeze(1)
        else:
            allowed = (slot_seq >= 0)[:, None, None, :]
        mask = _additive(allowed, dtype)
        source = torch.zeros(rows * row_len, dtype=torch.long, device=device)
        source[flat] = torch.arange(batch.num_tokens, device=device)
        batch._cache[key] = source, flat, mask
    return batch._cache[key]


def _sdpa_padded(qkv: Tensor, batch: AttnBatch, dropout_p: float) -> Tensor:
    """One SDPA call over rows of padded tokens (see `_rows`), padding and other sequences masked."""
    source, flat, mask = _rows(batch, qkv.dtype, qkv.device)
    rows, row_len = mask.shape[0], mask.shape[-1]
    # A gather, not a scatter into zeros: no fill, and index_select copies whole rows (index_copy_ goes
    # element by element in bf16). What padding slots hold is never seen, so its gradient is 0.
    padded = qkv.index_select(0, source)  # (rows * row_len, 3, heads, head_dim)
    q, k, v = padded.view(rows, row_len, *qkv.shape[1:]).permute(2, 0, 3, 1, 4)  # (rows, heads, row_len, d)
    o = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=dropout_p)
    # o's memory is (rows, row_len, heads, head_dim), like the query's: gather the real slots from it.
    return o.transpose(1, 2).reshape(-1, *qkv.shape[2:]).index_select(0, flat)  # (tokens, heads, head_dim)


def _is_banded(batch: AttnBatch, window: int | None) -> bool:
    """Whether a local layer needs the banded kernel: some sequence is longer than the window reaches."""
    return window is not None and window + 1 < batch.span


def _band_buffer(
    tokens: int, padded: int, window: int, tail: tuple[int, ...], dtype: torch.dtype, device: torch.device
) -> Tensor:
    """The banded kernel's input buffer, (w + padded + w, *tail): uninitialised where the tokens go (rows
    w to w + tokens), zero before and after (the window's margins and the last block's padding)."""
    buffer = torch.empty(padded + 2 * window, *tail, dtype=dtype, device=device)
    buffer[:window].zero_()
    buffer[window + tokens :].zero_()
    return buffer


def _band_block(window: int, dtype: torch.dtype, training: bool) -> int:
    """Queries per block of the banded kernel; a divisor of 2w where one is near the target size, so that
    windows overlap by whole blocks (the cheap backward of `_Windows`)."""
    target = BAND_BLOCK["train" if training else _precision(dtype)]
    target = min(window, target)
    divisor = max(d for d in range(1, target + 1) if (2 * window) % d == 0)
    return divisor if 2 * divisor >= target else target


def _band_mask(batch: AttnBatch, window: int, block: int, dtype: torch.dtype, device: torch.device) -> Tensor:
    """(blocks, 1, block, block + 2w) additive mask of the banded kernel (0 allowed, -inf not), cached per batch."""
    key = ("band", window, block, dtype, device)
    if key not in batch._cache:
        tokens = batch.num_tokens
        n_blocks = math.ceil(tokens / block)
        padded = n_blocks * block
        # Sequence id of each key slot; padding gets -1, so padded queries see only padding (never an empty row).
        ids = F.pad(batch.seq_ids(device), (window, padded - tokens + window), value=-1)
        q_ids = ids[window : window + padded].view(n_blocks, block, 1)
        k_ids = ids.unfold(0, block + 2 * window, block).unsqueeze(1)  # (blocks, 1, block + 2w)
        i = torch.arange(block, device=device).view(-1, 1)
        j = torch.arange(block + 2 * window, device=device).view(1, -1)
        band = (j - window - i).abs() <= window  # (block, block + 2w)
        allowed = (q_ids == k_ids) & band  # (blocks, block, block + 2w)
        if batch.columns is not None:  # holes: the window measures distance in columns, not packed tokens
            cols = F.pad(batch.columns.to(device), (window, padded - tokens + window))
            q_cols = cols[window : window + padded].view(n_blocks, block, 1)
            allowed &= (q_cols - cols.unfold(0, block + 2 * window, block).unsqueeze(1)).abs() <= window
        batch._cache[key] = _additive(allowed, dtype).unsqueeze(1)
    return batch._cache[key]


class _Windows(torch.autograd.Function):
    """Overlapping windows of `span` rows every `block` rows, as a view: (rows, ...) -> (blocks, ..., span).

    Tensor.unfold does the same, but its generic backward is slow on CPU; since span is a whole number of
    blocks, the gradient is span / block shifted adds.
    """

    @staticmethod
    def forward(ctx: Any, t: Tensor, span: int, block: int) -> Tensor:
        ctx.shape, ctx.span, ctx.block = t.shape, span, block
        return t.unfold(0, span, block)  # (blocks, ..., span)

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor, None, None]:
        block, shifts = ctx.block, ctx.span // ctx.block
        n_blocks = grad.shape[0]
        grad = grad.movedim(-1, 1).unflatten(1, (shifts, block))  # (blocks, shifts, block, ...)
        out = grad.new_zeros(ctx.shape)
        rows = out.view(n_blocks + shifts - 1, block, *ctx.shape[1:])
        for s in range(shifts):
            rows[s : s + n_blocks] += grad[:, s]
        return out, None, None


def _sdpa_banded(qkv: Tensor, batch: AttnBatch, window: int, dropout_p: float, buf: Tensor | None) -> Tensor:
    tokens, _, heads, head_dim = qkv.shape
    dtype = qkv.dtype
    if qkv.requires_grad and qkv.device.type == "cpu" and dtype in (torch.float16, torch.bfloat16):
        # SDPA's CPU backward is slower in bf16 than in fp32: train this kernel in fp32 (the copy
        # below casts for free) and keep autocast from casting back.
        dtype = torch.float32
    block = _band_block(window, dtype, qkv.requires_grad)
    mask = _band_mask(batch, window, block, dtype, qkv.device)
    n_blocks = mask.shape[0]
    padded = n_blocks * block
    # qkv with w zero rows before and w + (padded - tokens) after; query, key and value are views of it.
    if buf is None:  # one copy
        buf = _band_buffer(tokens, padded, window, qkv.shape[1:], dtype, qkv.device)
        buf[window : window + tokens] = qkv
    elif buf.shape != (padded + 2 * window, *qkv.shape[1:]) or buf[window].data_ptr() != qkv.data_ptr():
        raise ValueError("buffer does not hold qkv as the banded kernel lays it out; pass what qkv_buffer returned")
    q = buf[window : window + padded, 0].view(n_blocks, block, heads, head_dim).transpose(1, 2)
    span = block + 2 * window
    if span % block == 0:
        k, v = (_Windows.apply(buf[:, i], span, block) for i in (1, 2))
    else:
        k, v = (buf[:, i].unfold(0, span, block) for i in (1, 2))
    k, v = k.permute(0, 1, 3, 2), v.permute(0, 1, 3, 2)  # (blocks, heads, span, head_dim)
    with torch.autocast(qkv.device.type, enabled=False) if dtype != qkv.dtype else contextlib.nullcontext():
        o = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=dropout_p)  # (blocks, heads, block, d)
    return o.transpose(1, 2).reshape(padded, heads, head_dim)[:tokens].to(qkv.dtype)


# ----- eager (reference math) -----


def _eager(qkv: Tensor, batch: AttnBatch, window: int | None, dropout_p: float) -> tuple[Tensor, Tensor]:
    qp, kp, vp, valid = _pad(qkv, batch)  # (batch, heads, len, head_dim) each
    n, length, head_dim = valid.shape[0], valid.shape[1], qkv.shape[-1]
    allowed = valid[:, None, None, :].expand(n, 1, length, length)
    if window is not None:
        idx = torch.arange(length, device=qkv.device).expand(n, length)
        if batch.columns is not None:  # holes: distance in columns
            idx = torch.zeros(n, length, dtype=torch.long, device=qkv.device)
            idx[batch.seq_ids(qkv.device), batch.positions(qkv.device)] = batch.columns.to(qkv.device)
        allowed = allowed & ((idx[:, None, :, None] - idx[:, None, None, :]).abs() <= window)
    dtype = qkv.dtype
    bias = torch.zeros(allowed.shape, dtype=dtype, device=qkv.device).masked_fill(~allowed, torch.finfo(dtype).min)
    scores = qp @ kp.transpose(-1, -2) * head_dim**-0.5 + bias  # (batch, heads, len, len)
    probs = torch.softmax(scores, dim=-1, dtype=torch.float32).to(dtype)
    probs = F.dropout(probs, p=dropout_p, training=dropout_p > 0)
    return _unpad(probs @ vp, batch), probs * valid[:, None, :, None]


# ----- static padded layout (torch.compile / torch.export) -----


def _static(
    qkv: Tensor, batch: AttnBatch, window: int | None, dropout_p: float, sdpa: bool
) -> tuple[Tensor, Tensor | None]:
    """Attention on the static layout: qkv (batch × length, 3, heads, head_dim) of every position, padding
    masked as keys, the window by column. Returns the output (batch × length, heads, head_dim) and, for the
    eager math, the probabilities (batch, heads, length, length), zero at padding.

    A padding query sees every position (its output is discarded), so that no row of the softmax is empty.
    """
    n, length = batch.pad_shape
    valid = batch.static_mask
    q, k, v = qkv.view(n, length, *qkv.shape[1:]).permute(2, 0, 3, 1, 4)  # (batch, heads, length, head_dim)
    allowed = valid[:, None, None, :]  # (batch, 1, 1, length)
    if window is not None:
        idx = torch.arange(length, device=qkv.device)
        allowed = allowed & ((idx.view(-1, 1) - idx.view(1, -1)).abs() <= window)
    allowed = allowed | ~valid[:, None, :, None]  # (batch, 1, length, length)
    if sdpa:
        o = F.scaled_dot_product_attention(q, k, v, attn_mask=_additive(allowed, qkv.dtype), dropout_p=dropout_p)
        return o.transpose(1, 2).reshape(qkv.shape[0], *qkv.shape[2:]), None
    dtype = qkv.dtype
    bias = torch.zeros(allowed.shape, dtype=dtype, device=qkv.device).masked_fill(~allowed, torch.finfo(dtype).min)
    scores = q @ k.transpose(-1, -2) * qkv.shape[-1] ** -0.5 + bias  # (batch, heads, length, length)
    probs = torch.softmax(scores, dim=-1, dtype=torch.float32).to(dtype)
    probs = F.dropout(probs, p=dropout_p, training=dropout_p > 0)
    out = (probs @ v).transpose(1, 2).reshape(qkv.shape[0], *qkv.shape[2:])
    return out, probs * valid[:, None, :, None]


def _static_banded(qkv: Tensor, batch: AttnBatch, window: int | None) -> Tensor:
    """The static layout's attention with no (length × length) tensor: qkv (batch × length, 3, heads,
    head_dim) → (batch × length, heads, head_dim). Same masking as `_static` (window by column, padding keys
    masked, padding queries see every position); only matmul, softmax and reshapes, so that it exports."""
    n, length = batch.pad_shape
    valid = batch.static_mask  # (batch, length)
    q, k, v = qkv.view(n, length, *qkv.shape[1:]).permute(2, 0, 3, 1, 4)  # (batch, heads, length, head_dim)
    if window is None:
        out = _chunked_global(q * q.shape[-1] ** -0.5, k, v, valid)
    else:
        out = _banded_local(q * q.shape[-1] ** -0.5, k, v, valid, window)
    return out.transpose(1, 2).reshape(qkv.shape[0], *qkv.shape[2:])


def _softmax_av(scores: Tensor, allowed: Tensor, v: Tensor) -> Tensor:
    """softmax(scores masked to `allowed`) @ v, the softmax in fp32 as the reference computes it."""
    scores = scores.float().masked_fill(~allowed, float("-inf"))
    return torch.softmax(scores, dim=-1).to(v.dtype) @ v


def _banded_local(q: Tensor, k: Tensor, v: Tensor, valid: Tensor, window: int) -> Tensor:
    """Sliding window |i - j| <= w on (batch, heads, length, head_dim), q already scaled. Queries go in blocks
    of B = w; block b sees key blocks b - 1, b, b + 1 (3B keys), which hold every key within w of it.
    Scores are (batch, heads, blocks, B, 3B)."""
    n, heads, length, dim = q.shape
    block = window
    pad = (block - length % block) % block
    blocks = (length + pad) // block
    q = F.pad(q, (0, 0, 0, pad)).view(n, heads, blocks, block, dim)
    # keys and values with one zero block before and (padding + one block) after: (batch, heads, blocks + 2, B, d)
    k, v = (F.pad(t, (0, 0, block, pad + block)).view(n, heads, blocks + 2, block, dim) for t in (k, v))
    k, v = (torch.cat([t[:, :, :-2], t[:, :, 1:-1], t[:, :, 2:]], dim=3) for t in (k, v))  # (.., blocks, 3B, d)
    keys_ok = F.pad(valid, (block, pad + block)).view(n, blocks + 2, block)
    keys_ok = torch.cat([keys_ok[:, :-2], keys_ok[:, 1:-1], keys_ok[:, 2:]], dim=2)  # (batch, blocks, 3B)
    queries_ok = F.pad(valid, (0, pad)).view(n, blocks, block)
    i = torch.arange(block, device=q.device).view(-1, 1)
    j = torch.arange(3 * block, device=q.device).view(1, -1)
    band = (j - block - i).abs() <= window  # (B, 3B): key slot j of a block is at distance j - B - i
    allowed = (band & keys_ok[:, :, None, :]) | ~queries_ok[:, :, :, None]  # (batch, blocks, B, 3B)
    out = _softmax_av(q @ k.transpose(-1, -2), allowed[:, None], v)  # (batch, heads, blocks, B, head_dim)
    return out.reshape(n, heads, blocks * block, dim)[:, :, :length]


def _chunked_global(q: Tensor, k: Tensor, v: Tensor, valid: Tensor) -> Tensor:
    """Full attention on (batch, heads, length, head_dim), q already scaled, in GLOBAL_CHUNKS slices of
    queries: each slice's scores are (batch, heads, length / GLOBAL_CHUNKS, length)."""
    length = q.shape[2]
    size = (length + GLOBAL_CHUNKS - 1) // GLOBAL_CHUNKS
    q = F.pad(q, (0, 0, 0, size * GLOBAL_CHUNKS - length))
    queries_ok = F.pad(valid, (0, size * GLOBAL_CHUNKS - length))
    keys_ok = valid[:, None, None, :]  # (batch, 1, 1, length)
    kt = k.transpose(-1, -2)
    outs = []
    for c in range(GLOBAL_CHUNKS):
        qc = q[:, :, c * size : (c + 1) * size]  # (batch, heads, size, head_dim)
        allowed = keys_ok | ~queries_ok[:, None, c * size : (c + 1) * size, None]  # (batch, 1, size, length)
        outs.append(_softmax_av(qc @ kt, allowed, v))
    return torch.cat(outs, dim=2)[:, :, :length]
