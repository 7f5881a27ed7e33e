"""ModernBERT: embeddings → attention → MLP → layer → ModernBertModel → the five task heads.

The model runs on packed real tokens: padding is removed once after the token lookup and restored once at
the end, so every linear layer, norm and activation sees only real tokens. Module and parameter names are
the reference's (transformers' ModernBERT), so published checkpoints load with a strict state-dict load.
Each module initialises its own weights (`reset_parameters`), as the reference does.
"""

from __future__ import annotations

import contextlib
import functools
import math
from dataclasses import dataclass
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from . import checkpoint
from .attention import AttnBatch, get_kernel
from .config import ModernBertConfig
from .outputs import (
    BaseModelOutput,
    MaskedLMOutput,
    ModelOutput,
    MultipleChoiceModelOutput,
    QuestionAnsweringModelOutput,
    SequenceClassifierOutput,
    TokenClassifierOutput,
)
from .rotary import Rotary, apply_rotary_, rotate_qk

# ----- small pieces -----


def activation(name: str) -> nn.Module:
    """The transformers ACT2FN activations ModernBERT configs use."""
    if name in ("gelu", "gelu_python"):
        return nn.GELU()
    if name in ("gelu_new", "gelu_pytorch_tanh"):
        return nn.GELU(approximate="tanh")
    return {"relu": nn.ReLU, "silu": nn.SiLU, "swish": nn.SiLU, "tanh": nn.Tanh}[name]()


class _Init:
    """The reference's initialisation: truncated normals, std initializer_range on inputs and
    initializer_range / sqrt(2 × layers) on projections back into the residual stream; zero biases."""

    def __init__(self, config: ModernBertConfig) -> None:
        self.cutoff = config.initializer_cutoff_factor if config.initializer_cutoff_factor is not None else 3.0
        self.std_in = config.initializer_range
        self.std_out = config.initializer_range / math.sqrt(2.0 * config.num_hidden_layers)
        self.std_classifier = config.hidden_size**-0.5

    def __call__(self, module: nn.Module, std: float) -> None:
        nn.init.trunc_normal_(module.weight, mean=0.0, std=std, a=-self.cutoff * std, b=self.cutoff * std)
        if getattr(module, "bias", None) is not None:
            nn.init.zeros_(module.bias)


# The library that runs fp32 GEMMs on CPU: "onednn" (torch's mkldnn linear, the library torch's bf16
# matmuls and inductor's frozen graphs use), "mkl" (F.linear, torch's default fp32 path), or "auto": MKL on
# Intel CPUs, oneDNN on the others (MKL's sgemm is the slower library on AMD's; benchmarks/README.md).
CPU_FP32_GEMM: Literal["auto", "onednn", "mkl"] = "auto"


def fp32_gemm_library() -> Literal["onednn", "mkl"]:
    """The library fp32 CPU products go through: `CPU_FP32_GEMM`, with "auto" resolved for this CPU."""
    return _auto_fp32_gemm() if CPU_FP32_GEMM == "auto" else CPU_FP32_GEMM


@functools.cache
def _auto_fp32_gemm(cpuinfo: str = "/proc/cpuinfo") -> Literal["onednn", "mkl"]:
    try:
        with open(cpuinfo, encoding="utf-8", errors="replace") as f:
            intel = any(line.startswith("vendor_id") and "GenuineIntel" in line for line in f)
    except OSError:
        intel = False
    return "mkl" if intel else "onednn"


def _onednn_fp32(x: Tensor, weight: Tensor) -> bool:
    """Whether this product goes through oneDNN: fp32 on CPU, no autocast, not traced or compiled."""
    return (  # the library last: compiled and traced graphs never reach its lookup
        x.dtype is torch.float32
        and weight.dtype is torch.float32
        and x.device.type == "cpu"
        and not torch.is_autocast_enabled("cpu")
        and not torch.compiler.is_compiling()
        and not torch.compiler.is_exporting()
        and not torch.jit.is_tracing()
        and fp32_gemm_library() == "onednn"
        and _onednn_available()
    )


@functools.cache
def _onednn_available() -> bool:
    return torch.backends.mkldnn.is_available() and hasattr(torch.ops.mkldnn, "_linear_pointwise")


def _onednn_linear(x: Tensor, weight: Tensor, bias: Tensor | None) -> Tensor:
    return torch.ops.mkldnn._linear_pointwise(x, weight, bias, "none", [], "")


class _OneDnnLinear(torch.autograd.Function):
    """x @ weight.T + bias with all three GEMMs of training (output, input and weight gradients) in oneDNN."""

    @staticmethod
    def forward(ctx: Any, x: Tensor, weight: Tensor, bias: Tensor | None) -> Tensor:
        ctx.save_for_backward(x, weight)
        ctx.has_bias = bias is not None
        return _onednn_linear(x, weight, bias)

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor | None, Tensor | None, Tensor | None]:
        x, weight = ctx.saved_tensors
        grad2 = grad.reshape(-1, grad.shape[-1])  # (rows, out)
        grad_x = _onednn_linear(grad, weight.t(), None) if ctx.needs_input_grad[0] else None
        grad_w = None
        if ctx.needs_input_grad[1]:
            grad_w = _onednn_linear(grad2.t(), x.reshape(-1, x.shape[-1]).t(), None)  # (out, in)
        grad_b = grad2.sum(0) if ctx.has_bias and ctx.needs_input_grad[2] else None
        return grad_x, grad_w, grad_b


class Linear(nn.Linear):
    """nn.Linear (its parameters, state dict and hooks) whose fp32 CPU GEMMs run through the CPU's faster
    library (`CPU_FP32_GEMM`: oneDNN on the weight as it is, or MKL on Intel CPUs), in inference and in
    training; autocast, tracing and other devices take F.linear."""

    def forward(self, x: Tensor) -> Tensor:
        if not _onednn_fp32(x, self.weight):
            return F.linear(x, self.weight, self.bias)
        if torch.is_grad_enabled() and (x.requires_grad or self.weight.requires_grad
                                        or (self.bias is not None and self.bias.requires_grad)):
            return _OneDnnLinear.apply(x, self.weight, self.bias)
        return _onednn_linear(x, self.weight, self.bias)


class _IntoLinear(Linear):
    """Linear whose forward can write its product into a given tensor (an attention kernel's buffer).
    Called as a module, so hooks on it and process-wide module hooks run as for any nn.Linear."""

    def forward(self, x: Tensor, out: Tensor | None = None) -> Tensor:
        if out is None:
            return super().forward(x)
        if _onednn_fp32(x, self.weight):  # oneDNN writes only fresh tensors; its speed pays for the copy
            return out.copy_(super().forward(x))
        if self.bias is None:
            return torch.mm(x, self.weight.t(), out=out)
        return torch.addmm(self.bias, x, self.weight.t(), out=out)


# ----- modules, small to large -----


class ModernBertEmbeddings(nn.Module):
    def __init__(self, config: ModernBertConfig) -> None:
        super().__init__()
        self.init = _Init(config)
        pad = config.pad_token_id
        padding_idx = pad if pad is not None and 0 <= pad < config.vocab_size else None
        # As the reference: the [PAD] row gets no gradient.
        self.tok_embeddings = nn.Embedding(config.vocab_size, config.hidden_size, padding_idx=padding_idx)
        self.norm = nn.LayerNorm(config.hidden_size, eps=config.norm_eps, bias=config.norm_bias)
        self.drop = nn.Dropout(config.embedding_dropout)

    def reset_parameters(self) -> None:
        self.init(self.tok_embeddings, self.init.std_in)

    def forward(self, input_ids: Tensor | None = None, inputs_embeds: Tensor | None = None) -> Tensor:
        x = self.tok_embeddings(input_ids) if inputs_embeds is None else inputs_embeds  # (tokens, hidden)
        return self.drop(self.norm(x))


class ModernBertMLP(nn.Module):
    """GeGLU: Wi projects to 2 × intermediate, act(input) * gate, Wo projects back."""

    def __init__(self, config: ModernBertConfig) -> None:
        super().__init__()
        self.init = _Init(config)
        self.Wi = Linear(config.hidden_size, 2 * config.intermediate_size, bias=config.mlp_bias)
        self.act = activation(config.hidden_activation)
        self.drop = nn.Dropout(config.mlp_dropout)
        self.Wo = Linear(config.intermediate_size, config.hidden_size, bias=config.mlp_bias)

    def reset_parameters(self) -> None:
        self.init(self.Wi, self.init.std_in)
        self.init(self.Wo, self.init.std_out)

    def forward(self, x: Tensor, inplace: bool = False) -> Tensor:
        input, gate = self.Wi(x).chunk(2, dim=-1)  # (tokens, intermediate) each
        h = self.act(input)
        h = h.mul_(gate) if inplace else h * gate
        return self.Wo(self.drop(h))


class ModernBertAttention(nn.Module):
    def __init__(self, config: ModernBertConfig, layer_idx: int) -> None:
        super().__init__()
        self.init = _Init(config)
        self.num_heads, self.head_dim = config.num_attention_heads, config.head_dim
        self.window = None if config.is_global(layer_idx) else config.sliding_window
        self.dropout = config.attention_dropout
        self.deterministic = config.deterministic_flash_attn
        self.Wqkv = _IntoLinear(config.hidden_size, 3 * config.hidden_size, bias=config.attention_bias)
        self.Wo = Linear(config.hidden_size, config.hidden_size, bias=config.attention_bias)
        self.out_drop = nn.Dropout(config.attention_dropout) if config.attention_dropout > 0 else nn.Identity()

    def reset_parameters(self) -> None:
        self.init(self.Wqkv, self.init.std_in)
        self.init(self.Wo, self.init.std_out)

    def forward(
        self, x: Tensor, rope: tuple[Tensor, Tensor], batch: AttnBatch, implementation: str, inplace: bool = False,
        weights: list[Tensor] | None = None,
    ) -> Tensor:
        """x (tokens, hidden) → (tokens, hidden); with `weights` (eager kernel), appends this layer's
        attention probabilities (sequences, heads, length, length)."""
        tokens, heads, dim = x.shape[0], self.num_heads, self.head_dim
        kernel = get_kernel(implementation)
        layout = None
        # In place (inference): project straight into the buffer the kernel offers (autocast picks the
        # projection's dtype itself, so not under autocast), then rotate query and key in place.
        if inplace and not torch.is_autocast_enabled(x.device.type) and isinstance(self.Wqkv, _IntoLinear):
            layout = kernel.qkv_buffer(batch, self.window, heads, dim, x.dtype, x.device)
        buffer = None
        if layout is not None:
            qkv, buffer = layout  # (tokens, 3, heads, head_dim) view into the kernel's buffer
            flat = qkv.view(tokens, -1)
            out = self.Wqkv(x, out=flat)
            if out.data_ptr() != flat.data_ptr():  # a hook replaced the product
                flat.copy_(out)
        else:
            qkv = self.Wqkv(x).view(tokens, 3, heads, dim)  # (tokens, 3, heads, head_dim)
        if inplace:
            apply_rotary_(qkv[:, :2], *rope)
        else:
            qkv = rotate_qk(qkv, *rope)
        dropout = self.dropout if self.training else 0.0
        if weights is not None:
            out, probs = kernel(qkv, batch, self.window, dropout, self.deterministic, buffer, return_weights=True)
            weights.append(probs)
        else:
            out = kernel(qkv, batch, self.window, dropout, self.deterministic, buffer)  # (tokens, heads, head_dim)
        return self.out_drop(self.Wo(out.reshape(tokens, -1)))  # (tokens, hidden)


class ModernBertEncoderLayer(nn.Module):
    def __init__(self, config: ModernBertConfig, layer_idx: int) -> None:
        super().__init__()
        # Layer 0 has no attn_norm: the embedding norm already normalised its input.
        self.attn_norm = (
            nn.Identity()
            if layer_idx == 0
            else nn.LayerNorm(config.hidden_size, eps=config.norm_eps, bias=config.norm_bias)
        )
        self.attn = ModernBertAttention(config, layer_idx)
        self.mlp_norm = nn.LayerNorm(config.hidden_size, eps=config.norm_eps, bias=config.norm_bias)
        self.mlp = ModernBertMLP(config)

    def forward(
        self, x: Tensor, rope: tuple[Tensor, Tensor], batch: AttnBatch, implementation: str, inplace: bool = False,
        weights: list[Tensor] | None = None,
    ) -> Tensor:
        """x (tokens, hidden) → (tokens, hidden); with `inplace` the residual adds update x itself."""
        h = self.attn(self.attn_norm(x), rope, batch, implementation, inplace, weights)
        x = x.add_(h) if inplace else x + h
        h = self.mlp(self.mlp_norm(x), inplace)
        return x.add_(h) if inplace else x + h


class ModernBertPredictionHead(nn.Module):
    def __init__(self, config: ModernBertConfig) -> None:
        super().__init__()
        self.init = _Init(config)
        self.dense = Linear(config.hidden_size, config.hidden_size, bias=config.classifier_bias)
        self.act = activation(config.classifier_activation)
        self.norm = nn.LayerNorm(config.hidden_size, eps=config.norm_eps, bias=config.norm_bias)

    def reset_parameters(self) -> None:
        self.init(self.dense, self.init.std_out)

    def forward(self, x: Tensor) -> Tensor:
        return self.norm(self.act(self.dense(x)))


# ----- the model -----


@dataclass
class _Checkpointing:
    """Activation checkpointing settings (`activation_checkpointing_enable`)."""

    kwargs: dict[str, Any]  # for torch.utils.checkpoint.checkpoint
    every_n_layers: int
    offload: bool


@dataclass
class Encoded:
    """What the encoder returns: the packed final hidden states and how to re-pad them."""

    hidden: Tensor  # (tokens, hidden) after the final norm
    hidden_states: list[Tensor] | None  # (tokens, hidden) after the embeddings and each layer, if asked
    batch: AttnBatch  # where each sequence lies; `batch.padded` when the input was (batch, length)
    attentions: list[Tensor] | None = None  # (sequences, heads, length, length) per layer, if asked

    def repad(self, x: Tensor, fill: float = 0.0) -> Tensor:
        """(tokens, ...) → (batch, length, ...) for a padded input, `fill` at padding; packed input: x itself."""
        return self.batch.unpack(x, fill) if self.batch.padded else x

    def repadded_hidden_states(self) -> tuple[Tensor, ...] | None:
        return None if self.hidden_states is None else tuple(self.repad(h) for h in self.hidden_states)

    def repadded_attentions(self) -> tuple[Tensor, ...] | None:
        """Attention weights per layer, (batch, heads, length, length) over the input's columns for a padded
        input (zero at padding), (sequences, heads, longest, longest) for a packed one."""
        if self.attentions is None or not self.batch.padded:
            return None if self.attentions is None else tuple(self.attentions)
        batch, length = self.batch.pad_shape
        cols = self.batch.pad_indices % length
        starts = self.batch.cu_seqlens.tolist()
        out = []
        for probs in self.attentions:
            full = probs.new_zeros(batch, probs.shape[1], length, length)
            for r, n in enumerate(self.batch.seqlens):
                c = cols[starts[r] : starts[r] + n]
                full[r][:, c[:, None], c[None, :]] = probs[r, :, :n, :n]
            out.append(full)
        return tuple(out)


class ModernBertPreTrainedModel(nn.Module):
    """Shared init and the from_pretrained / save_pretrained mixin (the I/O lives in checkpoint.py)."""

    config: ModernBertConfig
    config_class = ModernBertConfig
    base_model_prefix = "model"
    main_input_name = "input_ids"
    supports_gradient_checkpointing = True
    # Parameters the task adds on top of the encoder; they may be missing from a checkpoint.
    task_head_prefixes: tuple[str, ...] = ()

    def __init__(self, config: ModernBertConfig, attn_implementation: str = "sdpa") -> None:
        super().__init__()
        self.config = config
        self.init = _Init(config)
        self.attn_implementation = attn_implementation
        self.name_or_path = ""

    @property
    def attn_implementation(self) -> str:
        return self._attn_implementation

    @attn_implementation.setter
    def attn_implementation(self, value: str) -> None:
        get_kernel(value).check(None if value != "flash_attention_2" else "cuda", torch.bfloat16)
        self._attn_implementation = value
        for module in self.modules():
            if module is not self and isinstance(module, ModernBertPreTrainedModel):
                module._attn_implementation = value

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    @property
    def dtype(self) -> torch.dtype:
        return next(self.parameters()).dtype

    @property
    def base_model(self) -> ModernBertModel:
        """The encoder (the model itself for ModernBertModel)."""
        return getattr(self, "model", self)

    def num_parameters(self, only_trainable: bool = False, exclude_embeddings: bool = False) -> int:
        """Parameter count; tied parameters counted once."""
        skip = {id(self.get_input_embeddings().weight)} if exclude_embeddings else set()
        params = {id(p): p for p in self.parameters() if id(p) not in skip}
        return sum(p.numel() for p in params.values() if p.requires_grad or not only_trainable)

    # ----- embeddings -----

    def get_input_embeddings(self) -> nn.Embedding:
        return self.base_model.embeddings.tok_embeddings

    def set_input_embeddings(self, value: nn.Embedding) -> None:
        self.base_model.embeddings.tok_embeddings = value
        self.tie_weights()

    def get_output_embeddings(self) -> nn.Linear | None:
        """The MLM decoder; None for the other heads, as in the reference."""
        return None

    def resize_token_embeddings(
        self, new_num_tokens: int | None = None, pad_to_multiple_of: int | None = None, mean_resizing: bool = True
    ) -> nn.Embedding:
        """Grow or shrink the vocabulary (after `tokenizer.add_tokens`), as transformers does: new rows start
        at the mean of the old ones (mean_resizing) or from the model's init; the MLM decoder follows."""
        old = self.get_input_embeddings()
        if new_num_tokens is None and pad_to_multiple_of is None:
            return old
        n = new_num_tokens if new_num_tokens is not None else old.num_embeddings
        if not isinstance(n, int) or isinstance(n, bool) or n <= 0:
            raise ValueError(f"new_num_tokens={new_num_tokens!r} must be a positive integer")
        if pad_to_multiple_of is not None:
            if not isinstance(pad_to_multiple_of, int) or pad_to_multiple_of <= 0:
                raise ValueError(f"pad_to_multiple_of={pad_to_multiple_of!r} must be a positive integer")
            n = math.ceil(n / pad_to_multiple_of) * pad_to_multiple_of
        if n == old.num_embeddings:
            return old
        keep = min(n, old.num_embeddings)
        new = nn.Embedding(n, old.embedding_dim, padding_idx=old.padding_idx if (old.padding_idx or 0) < n else None,
                           device=old.weight.device, dtype=old.weight.dtype)
        with torch.no_grad():
            if mean_resizing:
                new.weight.copy_(old.weight.mean(0, keepdim=True).expand(n, -1))
            else:
                self.init(new, self.init.std_in)
            new.weight[:keep] = old.weight[:keep]
        new.weight.requires_grad_(old.weight.requires_grad)
        self.base_model.embeddings.tok_embeddings = new
        self._resize_output(n, keep, mean_resizing)
        self.config.vocab_size = n
        self.base_model.config.vocab_size = n
        self.tie_weights()
        return new

    def _resize_output(self, n: int, keep: int, mean_resizing: bool) -> None:
        """Resize what projects onto the vocabulary (the MLM decoder); nothing for other heads."""

    def enable_input_require_grads(self) -> None:
        """Make the input embeddings' output require grad (PEFT with gradient checkpointing needs it)."""
        def hook(module: nn.Module, args: Any, output: Tensor) -> None:
            output.requires_grad_(True)

        self._require_grads_hook = self.get_input_embeddings().register_forward_hook(hook)

    def disable_input_require_grads(self) -> None:
        handle = getattr(self, "_require_grads_hook", None)
        if handle is not None:
            handle.remove()
            self._require_grads_hook = None

    # ----- gradient checkpointing -----

    def activation_checkpointing_enable(
        self, activation_checkpointing_kwargs: dict[str, Any] | None = None, every_n_layers: int = 1,
        offload: bool = False,
    ) -> None:
        """Recompute layers' activations in the backward instead of storing them (torch.utils.checkpoint, with
        use_reentrant=False unless the kwargs say otherwise), as transformers' method of the same name.

        every_n_layers: checkpoint every n-th layer only; offload: keep what is saved for the recompute in
        host memory (torch.autograd.graph.save_on_cpu; nothing to gain on CPU)."""
        if not isinstance(every_n_layers, int) or isinstance(every_n_layers, bool) or every_n_layers < 1:
            raise ValueError(f"every_n_layers={every_n_layers!r} must be a positive integer")
        kwargs = {"use_reentrant": False, **(activation_checkpointing_kwargs or {})}
        self.base_model._checkpointing = _Checkpointing(kwargs, every_n_layers, bool(offload))
        if kwargs["use_reentrant"]:
            self.enable_input_require_grads()  # a reentrant checkpoint needs an input that requires grad

    def activation_checkpointing_disable(self) -> None:
        self.base_model._checkpointing = None

    def gradient_checkpointing_enable(
        self, gradient_checkpointing_kwargs: dict[str, Any] | None = None, **kwargs: Any
    ) -> None:
        """The older name of `activation_checkpointing_enable` (transformers 4.x)."""
        self.activation_checkpointing_enable(gradient_checkpointing_kwargs, **kwargs)

    def gradient_checkpointing_disable(self) -> None:
        self.activation_checkpointing_disable()

    @property
    def is_gradient_checkpointing(self) -> bool:
        return getattr(self.base_model, "_checkpointing", None) is not None

    is_activation_checkpointing = is_gradient_checkpointing

    def reset_parameters(self) -> None:
        """Initialise the parameters this module owns directly (a head's classifier or decoder)."""

    def init_weights(self) -> None:
        """Initialise every parameter as the reference does: each module initialises its own."""
        for module in self.modules():
            init_own_parameters(module)
        self.tie_weights()

    def tie_weights(self) -> None:
        pass

    def init_missing_weights(self, device: torch.device, dtype: torch.dtype) -> None:
        """Materialise the parameters still on the meta device after a load (a task head the checkpoint
        lacks) and initialise them as the reference does, each through the module that owns it."""
        modules = dict(self.named_modules())
        owners: dict[str, nn.Module] = {}
        for name, p in list(self.named_parameters()):
            if not p.is_meta:
                continue
            leaf_name, _, attr = name.rpartition(".")
            leaf = modules[leaf_name]
            setattr(leaf, attr, nn.Parameter(torch.empty(p.shape, device=device, dtype=dtype), p.requires_grad))
            # A plain torch leaf (a head's classifier Linear) is initialised by the module holding it.
            owner = leaf_name if _initialises_itself(leaf) else leaf_name.rpartition(".")[0]
            owners[owner] = modules[owner]
        for module in owners.values():
            init_own_parameters(module)
        if any(p.is_meta for p in self.parameters()):
            raise RuntimeError("internal error: some parameters were neither loaded nor initialised")

    @classmethod
    def from_pretrained(cls, name_or_path: str, **kwargs: Any) -> Any:
        """Load a checkpoint from a folder or a hub repo id; see `modernbert.checkpoint.load_model`."""
        return checkpoint.load_model(cls, name_or_path, **kwargs)

    def save_pretrained(self, folder: str, **kwargs: Any) -> None:
        """Write config.json and the weights in the reference's layout, replacing the folder as a whole; see
        `modernbert.checkpoint.save_model` for state_dict=, max_shard_size= and safe_serialization=."""
        checkpoint.save_model(self, folder, **kwargs)


def _initialises_itself(module: nn.Module) -> bool:
    """This package's modules (they carry the reference's `_Init`) and LayerNorms (ones and zeros, torch's
    own reset) initialise their parameters; other torch leaves are initialised by the module holding them."""
    return isinstance(module, nn.LayerNorm) or isinstance(getattr(module, "init", None), _Init)


def init_own_parameters(module: nn.Module) -> None:
    """Initialise the parameters `module` owns directly, as the reference does."""
    if _initialises_itself(module):
        module.reset_parameters()


class ModernBertModel(ModernBertPreTrainedModel):
    """The encoder: packed embeddings, alternating global / sliding-window layers, final norm."""

    base_model_prefix = ""

    def __init__(self, config: ModernBertConfig, attn_implementation: str = "sdpa") -> None:
        super().__init__(config, attn_implementation)
        self.embeddings = ModernBertEmbeddings(config)
        self.layers = nn.ModuleList(ModernBertEncoderLayer(config, i) for i in range(config.num_hidden_layers))
        self.final_norm = nn.LayerNorm(config.hidden_size, eps=config.norm_eps, bias=config.norm_bias)
        thetas = sorted({config.rope_theta(i) for i in range(config.num_hidden_layers)})
        self._rotary = {theta: Rotary(config.head_dim, theta) for theta in thetas}
        self._checkpointing: _Checkpointing | None = None  # set by activation_checkpointing_enable
        self.init_weights()

    def forward_packed(
        self,
        input_ids: Tensor | None,
        batch: AttnBatch,
        inputs_embeds: Tensor | None = None,
        position_ids: Tensor | None = None,
        output_hidden_states: bool = False,
        output_attentions: bool = False,
    ) -> Encoded:
        """The encoder on packed tokens: input_ids (tokens,) or inputs_embeds (tokens, hidden).

        Returns the final hidden states (tokens, hidden) and, if asked, the hidden state after the
        embeddings and after each layer (the last one after the final norm, as the reference returns), and
        each layer's attention weights (eager kernel only).
        """
        if output_attentions and self._attn_implementation != "eager":
            raise ValueError(
                f"output_attentions=True needs attn_implementation='eager': the {self._attn_implementation!r} "
                "kernel never forms attention weights. Load with attn_implementation='eager'"
            )
        attentions = [] if output_attentions else None
        # Without autograd the layers update activations in place; with it they must not.
        inplace = not torch.is_grad_enabled()
        x = self.embeddings(input_ids, inputs_embeds)  # (tokens, hidden)
        if position_ids is None:
            position_ids = batch.positions(x.device)
        rope = {theta: r.cos_sin(position_ids, x.dtype) for theta, r in self._rotary.items()}
        hidden_states = [x] if output_hidden_states else None
        checkpointing = self._checkpointing if self.training and torch.is_grad_enabled() else None
        for i, layer in enumerate(self.layers):
            if hidden_states is not None and inplace:
                x = x.clone()  # keep the hidden state just recorded
            args = (x, rope[self.config.rope_theta(i)], batch, self._attn_implementation, inplace, attentions)
            if checkpointing is not None and i % checkpointing.every_n_layers == 0:
                with torch.autograd.graph.save_on_cpu() if checkpointing.offload else contextlib.nullcontext():
                    x = torch.utils.checkpoint.checkpoint(layer, *args, **checkpointing.kwargs)
            else:
                x = layer(*args)
            if hidden_states is not None:
                hidden_states.append(x)
        x = self.final_norm(x)
        if hidden_states is not None:
            hidden_states[-1] = x
        return Encoded(x, hidden_states, batch, attentions)

    def encode(
        self,
        input_ids: Tensor | None = None,
        attention_mask: Tensor | None = None,
        position_ids: Tensor | None = None,
        inputs_embeds: Tensor | None = None,
        output_hidden_states: bool | None = None,
        cu_seqlens: Tensor | None = None,
        max_seqlen: int | None = None,
        output_attentions: bool | None = None,
    ) -> Encoded:
        """Validate inputs, unpad once and run the encoder: packed outputs and how to re-pad them.

        output_hidden_states / output_attentions: None takes the config's setting.
        max_seqlen: with cu_seqlens, the longest sequence, as transformers passes it; checked, not trusted.
        """
        flags = (
            self.config.output_hidden_states if output_hidden_states is None else bool(output_hidden_states),
            self.config.output_attentions if output_attentions is None else bool(output_attentions),
        )
        if cu_seqlens is not None:
            batch = AttnBatch.from_cu_seqlens(cu_seqlens)
            _check_packed(self.config, input_ids, inputs_embeds, position_ids, batch, max_seqlen)
            return self.forward_packed(input_ids, batch, inputs_embeds, position_ids, *flags)
        if max_seqlen is not None:
            raise ValueError("max_seqlen goes with packed input (cu_seqlens); a padded input needs neither")
        static = torch.compiler.is_compiling()  # torch.compile / torch.export: no data-dependent shapes
        shape = _check_padded(self.config, input_ids, inputs_embeds, attention_mask, position_ids, static)
        device = (input_ids if input_ids is not None else inputs_embeds).device
        if attention_mask is None:
            attention_mask = torch.ones(shape, dtype=torch.bool, device=device)
        if static:
            batch = AttnBatch.from_attention_mask_static(attention_mask.to(device))
        else:
            batch = AttnBatch.from_attention_mask(attention_mask.to(device))
        ids = batch.pack(input_ids) if input_ids is not None else None
        embeds = batch.pack(inputs_embeds) if inputs_embeds is not None else None
        # Rotary positions are column indices, as in the reference (masks with holes or left padding too).
        if position_ids is not None:
            positions = batch.pack(position_ids.expand(shape))
        elif static:  # the same columns, without a remainder by a symbolic length (which ONNX export cannot take)
            positions = torch.arange(shape[1], device=device).expand(shape).flatten()
        else:
            positions = batch.pad_indices % shape[1]
        return self.forward_packed(ids, batch, embeds, positions, *flags)

    def forward(
        self,
        input_ids: Tensor | None = None,
        attention_mask: Tensor | None = None,
        position_ids: Tensor | None = None,
        inputs_embeds: Tensor | None = None,
        output_hidden_states: bool | None = None,
        output_attentions: bool | None = None,
        cu_seqlens: Tensor | None = None,
        max_seqlen: int | None = None,
        return_dict: bool | None = None,
    ) -> BaseModelOutput | tuple[Tensor, ...]:
        """input_ids (batch, length) with attention_mask, or packed input_ids (tokens,) with cu_seqlens.

        Returns last_hidden_state (batch, length, hidden), zero at padding; packed (tokens, hidden) when
        cu_seqlens is given. return_dict=False gives the reference's tuple.
        """
        enc = self.encode(
            input_ids, attention_mask, position_ids, inputs_embeds, output_hidden_states, cu_seqlens, max_seqlen,
            output_attentions,
        )
        out = BaseModelOutput(last_hidden_state=enc.repad(enc.hidden), hidden_states=enc.repadded_hidden_states(),
            attentions=enc.repadded_attentions())
        return _returned(out, return_dict, self.config)


class _TaskModel(ModernBertPreTrainedModel):
    """A head on top of `self.model`."""

    def _build_classifier(self, config: ModernBertConfig, attn_implementation: str, out_features: int) -> None:
        """encoder → prediction head → dropout → classifier, as the reference's classification heads."""
        self.num_labels = config.num_labels
        self.model = ModernBertModel(config, attn_implementation)
        self.head = ModernBertPredictionHead(config)
        self.drop = nn.Dropout(config.classifier_dropout)
        self.classifier = Linear(config.hidden_size, out_features)
        self.init_weights()

    def reset_parameters(self) -> None:
        self.init(self.classifier, self.init.std_classifier)

    def _pool(self, x: Tensor, batch: AttnBatch) -> Tensor:
        """(tokens, hidden) -> (batch, hidden): first token ([CLS]) or mean over real tokens."""
        if batch.static_mask is not None:
            mask = batch.static_mask
            x = x.view(*mask.shape, x.shape[-1])  # (batch, length, hidden)
            if self.config.classifier_pooling == "cls":
                return x[torch.arange(mask.shape[0], device=x.device), mask.int().argmax(1)]
            return (x * mask.unsqueeze(-1)).sum(1) / mask.sum(1, keepdim=True).to(x.dtype)
        if min(batch.seqlens, default=1) == 0:
            raise ValueError("attention_mask has a row with no tokens; every sequence needs at least one")
        cu = batch.cu_seqlens.to(x.device).long()
        if self.config.classifier_pooling == "cls":
            return x[cu[:-1]]
        seq_ids = batch.seq_ids(x.device)
        sums = x.new_zeros(len(batch.seqlens), x.shape[-1]).index_add_(0, seq_ids, x)
        return sums / (cu[1:] - cu[:-1]).to(x.dtype).unsqueeze(1)


class ModernBertForMaskedLM(_TaskModel):
    """Masked-LM head: dense → act → norm → decoder tied to the token embeddings."""

    # A base-model checkpoint has no MLM head: initialised, with one warning.
    task_head_prefixes = ("head.", "decoder.")

    def __init__(self, config: ModernBertConfig, attn_implementation: str = "sdpa") -> None:
        super().__init__(config, attn_implementation)
        self.model = ModernBertModel(config, attn_implementation)
        self.head = ModernBertPredictionHead(config)
        self.decoder = Linear(config.hidden_size, config.vocab_size, bias=config.decoder_bias)
        self.init_weights()

    def reset_parameters(self) -> None:
        if not self.config.tie_word_embeddings:
            self.init(self.decoder, self.init.std_out)
        elif self.decoder.bias is not None:
            nn.init.zeros_(self.decoder.bias)

    def tie_weights(self) -> None:
        if self.config.tie_word_embeddings:
            self.decoder.weight = self.model.embeddings.tok_embeddings.weight

    def get_output_embeddings(self) -> nn.Linear:
        return self.decoder

    def set_output_embeddings(self, value: nn.Linear) -> None:
        self.decoder = value
        self.tie_weights()

    def _resize_output(self, n: int, keep: int, mean_resizing: bool) -> None:
        old = self.decoder
        new = Linear(old.in_features, n, bias=old.bias is not None, device=old.weight.device,
                        dtype=old.weight.dtype)
        with torch.no_grad():
            if not self.config.tie_word_embeddings:
                new.weight.copy_(old.weight.mean(0, keepdim=True).expand(n, -1))
                new.weight[:keep] = old.weight[:keep]
            if new.bias is not None:
                new.bias.fill_(old.bias.mean() if mean_resizing else 0.0)
                new.bias[:keep] = old.bias[:keep]
        self.decoder = new

    def forward(
        self,
        input_ids: Tensor | None = None,
        attention_mask: Tensor | None = None,
        position_ids: Tensor | None = None,
        inputs_embeds: Tensor | None = None,
        labels: Tensor | None = None,
        output_hidden_states: bool | None = None,
        output_attentions: bool | None = None,
        cu_seqlens: Tensor | None = None,
        max_seqlen: int | None = None,
        return_dict: bool | None = None,
    ) -> MaskedLMOutput:
        """Logits (batch, length, vocab); with config.sparse_prediction and labels, only for labelled tokens
        (n_labelled, vocab) in row-major order, as the reference returns them."""
        enc = self.model.encode(
            input_ids, attention_mask, position_ids, inputs_embeds, output_hidden_states, cu_seqlens, max_seqlen,
            output_attentions,
        )
        x = enc.hidden
        if labels is not None:
            labels = _check_labels(labels, enc.batch, x.shape[0], "labels")
        if self.config.sparse_prediction and labels is not None:
            if enc.batch.static_mask is not None:
                raise ValueError(
                    "sparse_prediction with labels gives a data-dependent shape, which torch.compile(fullgraph=True)"
                    " and torch.export cannot trace; set config.sparse_prediction=False to compile the loss"
                )
            keep = labels != self.config.sparse_pred_ignore_index
            x, labels = x[keep], labels[keep]
            logits = self.decoder(self.head(x))  # (labelled, vocab)
        else:
            logits = self.decoder(self.head(x))  # (tokens, vocab)
        loss = None
        if labels is not None:
            loss = F.cross_entropy(logits.float(), labels.to(logits.device), ignore_index=-100)
        if not (self.config.sparse_prediction and labels is not None):
            logits = enc.repad(logits)
        out = MaskedLMOutput(loss=loss, logits=logits, hidden_states=enc.repadded_hidden_states(),
            attentions=enc.repadded_attentions())
        return _returned(out, return_dict, self.config)

    def logits_at(self, rows: Tensor, input_ids: Tensor, cu_seqlens: Tensor) -> Tensor:
        """Logits (len(rows), vocab) at the packed token positions `rows` only, for packed input_ids (tokens,)
        with cu_seqlens: the vocabulary projection, the costly part, runs on those rows alone."""
        x = self.model.encode(input_ids=input_ids, cu_seqlens=cu_seqlens).hidden  # (tokens, hidden)
        return self.decoder(self.head(x[rows.to(x.device)]))


class ModernBertForSequenceClassification(_TaskModel):
    task_head_prefixes = ("head.", "classifier.")

    def __init__(self, config: ModernBertConfig, attn_implementation: str = "sdpa") -> None:
        super().__init__(config, attn_implementation)
        self._build_classifier(config, attn_implementation, config.num_labels)

    def forward(
        self,
        input_ids: Tensor | None = None,
        attention_mask: Tensor | None = None,
        position_ids: Tensor | None = None,
        inputs_embeds: Tensor | None = None,
        labels: Tensor | None = None,
        output_hidden_states: bool | None = None,
        output_attentions: bool | None = None,
        cu_seqlens: Tensor | None = None,
        max_seqlen: int | None = None,
        return_dict: bool | None = None,
    ) -> SequenceClassifierOutput:
        """Logits (batch, num_labels) from the pooled sequence (config.classifier_pooling)."""
        enc = self.model.encode(
            input_ids, attention_mask, position_ids, inputs_embeds, output_hidden_states, cu_seqlens, max_seqlen,
            output_attentions,
        )
        logits = self.classifier(self.drop(self.head(self._pool(enc.hidden, enc.batch))))  # (batch, num_labels)
        loss = None if labels is None else self._loss(logits, labels.to(logits.device))
        out = SequenceClassifierOutput(loss=loss, logits=logits, hidden_states=enc.repadded_hidden_states(),
            attentions=enc.repadded_attentions())
        return _returned(out, return_dict, self.config)

    def _loss(self, logits: Tensor, labels: Tensor) -> Tensor:
        problem_type = self.config.problem_type
        if problem_type is None:  # inferred once, as the reference does
            if self.num_labels == 1:
                problem_type = "regression"
            elif labels.dtype in (torch.long, torch.int):
                problem_type = "single_label_classification"
            else:
                problem_type = "multi_label_classification"
            self.config.problem_type = problem_type
        if problem_type == "regression":
            if self.num_labels == 1:
                return F.mse_loss(logits.squeeze(), labels.squeeze().to(logits.dtype))
            return F.mse_loss(logits, labels.to(logits.dtype))
        if problem_type == "single_label_classification":
            if labels.dtype.is_floating_point:
                raise ValueError(f"single-label classification needs integer class labels, got {labels.dtype}")
            return F.cross_entropy(logits.view(-1, self.num_labels), labels.view(-1))
        if labels.shape != logits.shape:
            raise ValueError(
                f"multi-label classification needs labels of shape {tuple(logits.shape)}, got {tuple(labels.shape)}"
            )
        return F.binary_cross_entropy_with_logits(logits, labels.to(logits.dtype))


class ModernBertForTokenClassification(_TaskModel):
    task_head_prefixes = ("head.", "classifier.")

    def __init__(self, config: ModernBertConfig, attn_implementation: str = "sdpa") -> None:
        super().__init__(config, attn_implementation)
        self._build_classifier(config, attn_implementation, config.num_labels)

    def forward(
        self,
        input_ids: Tensor | None = None,
        attention_mask: Tensor | None = None,
        position_ids: Tensor | None = None,
        inputs_embeds: Tensor | None = None,
        labels: Tensor | None = None,
        output_hidden_states: bool | None = None,
        output_attentions: bool | None = None,
        cu_seqlens: Tensor | None = None,
        max_seqlen: int | None = None,
        return_dict: bool | None = None,
    ) -> TokenClassifierOutput:
        """Logits (batch, length, num_labels), zero at padding."""
        enc = self.model.encode(
            input_ids, attention_mask, position_ids, inputs_embeds, output_hidden_states, cu_seqlens, max_seqlen,
            output_attentions,
        )
        logits = self.classifier(self.drop(self.head(enc.hidden)))  # (tokens, num_labels)
        loss = None
        if labels is not None:
            labels = _check_labels(labels, enc.batch, logits.shape[0], "labels")
            loss = F.cross_entropy(logits.float(), labels.to(logits.device), ignore_index=-100)
        out = TokenClassifierOutput(loss=loss, logits=enc.repad(logits), hidden_states=enc.repadded_hidden_states(),
            attentions=enc.repadded_attentions())
        return _returned(out, return_dict, self.config)


class ModernBertForQuestionAnswering(_TaskModel):
    task_head_prefixes = ("head.", "classifier.")

    def __init__(self, config: ModernBertConfig, attn_implementation: str = "sdpa") -> None:
        super().__init__(config, attn_implementation)
        if config.num_labels != 2:
            raise ValueError(f"question answering needs num_labels=2 (start, end), got num_labels={config.num_labels}")
        self._build_classifier(config, attn_implementation, config.num_labels)

    def forward(
        self,
        input_ids: Tensor | None = None,
        attention_mask: Tensor | None = None,
        position_ids: Tensor | None = None,
        inputs_embeds: Tensor | None = None,
        start_positions: Tensor | None = None,
        end_positions: Tensor | None = None,
        output_hidden_states: bool | None = None,
        output_attentions: bool | None = None,
        cu_seqlens: Tensor | None = None,
        max_seqlen: int | None = None,
        return_dict: bool | None = None,
    ) -> QuestionAnsweringModelOutput:
        """start_logits and end_logits (batch, length); padding gets the dtype's lowest value."""
        enc = self.model.encode(
            input_ids, attention_mask, position_ids, inputs_embeds, output_hidden_states, cu_seqlens, max_seqlen,
            output_attentions,
        )
        logits = self.classifier(self.drop(self.head(enc.hidden)))  # (tokens, 2)
        # Padding can never be an answer: the lowest logit there, so softmax ignores it.
        logits = enc.repad(logits, fill=torch.finfo(logits.dtype).min)  # (batch, length, 2)
        start_logits, end_logits = (t.squeeze(-1).contiguous() for t in logits.split(1, dim=-1))
        loss = None
        if start_positions is not None and end_positions is not None:
            # Positions outside the input are ignored, as in the reference; so are positions at padding, where
            # ours has no logit (the reference scores its padded rows there).
            ignored = start_logits.shape[-1]
            start = start_positions.to(logits.device).view(-1).clamp(0, ignored)
            end = end_positions.to(logits.device).view(-1).clamp(0, ignored)
            if enc.batch.padded:
                if enc.batch.static_mask is not None:
                    real = enc.batch.static_mask.to(logits.device)
                else:
                    real = torch.zeros(enc.batch.pad_shape, dtype=torch.bool, device=logits.device).view(-1)
                    real[enc.batch.pad_indices] = True
                real = F.pad(real.view(enc.batch.pad_shape), (0, 1), value=True)  # column `ignored` stays
                rows = torch.arange(len(start), device=logits.device)
                start = start.masked_fill(~real[rows, start], ignored)
                end = end.masked_fill(~real[rows, end], ignored)
            loss = (
                F.cross_entropy(start_logits.float(), start, ignore_index=ignored)
                + F.cross_entropy(end_logits.float(), end, ignore_index=ignored)
            ) / 2
        out = QuestionAnsweringModelOutput(
            loss=loss, start_logits=start_logits, end_logits=end_logits, hidden_states=enc.repadded_hidden_states(),
            attentions=enc.repadded_attentions()
        )
        return _returned(out, return_dict, self.config)


class ModernBertForMultipleChoice(_TaskModel):
    task_head_prefixes = ("head.", "classifier.")

    def __init__(self, config: ModernBertConfig, attn_implementation: str = "sdpa") -> None:
        super().__init__(config, attn_implementation)
        self._build_classifier(config, attn_implementation, 1)

    def forward(
        self,
        input_ids: Tensor | None = None,
        attention_mask: Tensor | None = None,
        position_ids: Tensor | None = None,
        inputs_embeds: Tensor | None = None,
        labels: Tensor | None = None,
        output_hidden_states: bool | None = None,
        output_attentions: bool | None = None,
        return_dict: bool | None = None,
        cu_seqlens: Tensor | None = None,
        max_seqlen: int | None = None,
        num_choices: int | None = None,
    ) -> MultipleChoiceModelOutput:
        """input_ids (batch, choices, length) → logits (batch, choices).

        Packed: input_ids (tokens,) with cu_seqlens (batch * choices + 1,), the choices of one example
        consecutive, and num_choices.
        """
        if cu_seqlens is not None:
            if not isinstance(num_choices, int) or num_choices < 1:
                raise ValueError(f"packed multiple choice (cu_seqlens) needs num_choices, a positive int; got "
                                 f"{num_choices!r}")
            if (cu_seqlens.numel() - 1) % num_choices:
                raise ValueError(f"cu_seqlens holds {cu_seqlens.numel() - 1} sequences, not a multiple of "
                                 f"{num_choices=}")
            enc = self.model.encode(input_ids, attention_mask, position_ids, inputs_embeds, output_hidden_states,
                                    cu_seqlens, max_seqlen, output_attentions)
        else:
            if num_choices is not None or max_seqlen is not None:
                raise ValueError("num_choices and max_seqlen go with packed input (cu_seqlens); a padded input "
                                 "(batch, choices, length) needs neither")
            first = input_ids if input_ids is not None else inputs_embeds
            if first is None:
                raise ValueError(
                    "pass input_ids (batch, choices, length) or inputs_embeds (batch, choices, length, hidden)"
                )
            expected = 3 if input_ids is not None else 4
            if first.dim() != expected:
                raise ValueError(
                    f"multiple choice needs {'input_ids' if input_ids is not None else 'inputs_embeds'} with "
                    f"{expected} dimensions (batch, choices, length{'' if expected == 3 else ', hidden'}), "
                    f"got shape {tuple(first.shape)}"
                )
            num_choices = first.shape[1]

            def flat(t: Tensor | None, keep: int) -> Tensor | None:
                return None if t is None else t.reshape(-1, *t.shape[t.dim() - keep :])

            enc = self.model.encode(
                flat(input_ids, 1), flat(attention_mask, 1), flat(position_ids, 1), flat(inputs_embeds, 2),
                output_hidden_states, output_attentions=output_attentions,
            )
        logits = self.classifier(self.drop(self.head(self._pool(enc.hidden, enc.batch)))).view(-1, num_choices)
        loss = None if labels is None else F.cross_entropy(logits, labels.to(logits.device))
        out = MultipleChoiceModelOutput(loss=loss, logits=logits, hidden_states=enc.repadded_hidden_states(),
            attentions=enc.repadded_attentions())
        return _returned(out, return_dict, self.config)


# ----- input checks (clear errors instead of tracebacks from inside torch) -----


def _check_ids(config: ModernBertConfig, input_ids: Tensor, static: bool = False) -> None:
    if input_ids.dtype not in (torch.long, torch.int, torch.int16, torch.uint8, torch.int8):
        raise ValueError(f"input_ids must be an integer tensor (torch.long), got dtype {input_ids.dtype}")
    if input_ids.numel() and not static:  # the range check reads values: not while tracing
        lo, hi = int(input_ids.min()), int(input_ids.max())
        if lo < 0 or hi >= config.vocab_size:
            bad = lo if lo < 0 else hi
            raise ValueError(
                f"input_ids holds id {bad}, outside the vocabulary [0, {config.vocab_size}); "
                "was the input tokenized with this model's tokenizer?"
            )


def _check_padded(
    config: ModernBertConfig,
    input_ids: Tensor | None,
    inputs_embeds: Tensor | None,
    attention_mask: Tensor | None,
    position_ids: Tensor | None,
    static: bool = False,
) -> tuple[int, int]:
    if (input_ids is None) == (inputs_embeds is None):
        raise ValueError("pass exactly one of input_ids or inputs_embeds")
    if input_ids is not None:
        if not isinstance(input_ids, Tensor):
            raise ValueError(f"input_ids must be a torch.Tensor, got {type(input_ids).__name__}")
        if input_ids.dim() == 1:
            raise ValueError(
                f"input_ids has shape {tuple(input_ids.shape)}; pass a batch (batch, length), e.g. "
                "input_ids.unsqueeze(0), or packed tokens together with cu_seqlens"
            )
        if input_ids.dim() != 2:
            raise ValueError(f"input_ids must have shape (batch, length), got {tuple(input_ids.shape)}")
        _check_ids(config, input_ids, static)
        shape = tuple(input_ids.shape)
    else:
        if inputs_embeds.dim() != 3 or inputs_embeds.shape[-1] != config.hidden_size:
            raise ValueError(
                f"inputs_embeds must have shape (batch, length, {config.hidden_size}), "
                f"got {tuple(inputs_embeds.shape)}"
            )
        shape = tuple(inputs_embeds.shape[:2])
    if shape[0] == 0 or shape[1] == 0:
        raise ValueError(f"empty batch: input of shape {shape}; pass at least one sequence of one token")
    if attention_mask is not None:
        if not isinstance(attention_mask, Tensor):
            raise ValueError(f"attention_mask must be a torch.Tensor, got {type(attention_mask).__name__}")
        if tuple(attention_mask.shape) != shape:
            raise ValueError(
                f"attention_mask has shape {tuple(attention_mask.shape)} but the input has shape {shape}"
            )
        if attention_mask.dtype.is_floating_point and not static and not torch.all(
            (attention_mask == 0) | (attention_mask == 1)
        ):
            raise ValueError("attention_mask must hold only 0 and 1 (1 = real token, 0 = padding)")
    if position_ids is not None and tuple(position_ids.shape) not in (shape, (1, shape[1])):
        raise ValueError(f"position_ids has shape {tuple(position_ids.shape)} but the input has shape {shape}")
    if shape[1] > config.max_position_embeddings:
        raise ValueError(
            f"input has {shape[1]} tokens, more than max_position_embeddings={config.max_position_embeddings}; "
            "truncate it (tokenizer(..., truncation=True))"
        )
    return shape


def _check_packed(
    config: ModernBertConfig,
    input_ids: Tensor | None,
    inputs_embeds: Tensor | None,
    position_ids: Tensor | None,
    batch: AttnBatch,
    max_seqlen: int | None = None,
) -> None:
    if (input_ids is None) == (inputs_embeds is None):
        raise ValueError("pass exactly one of input_ids or inputs_embeds")
    tokens = (input_ids if input_ids is not None else inputs_embeds).shape[0]
    if input_ids is not None:
        if input_ids.dim() != 1:
            raise ValueError(f"with cu_seqlens, input_ids must be packed (tokens,), got {tuple(input_ids.shape)}")
        _check_ids(config, input_ids)
    if tokens == 0:
        raise ValueError("empty batch: no tokens")
    if batch.num_tokens != tokens or min(batch.seqlens, default=0) < 0:
        raise ValueError(f"cu_seqlens ends at {batch.num_tokens} but there are {tokens} packed tokens")
    if position_ids is not None and tuple(position_ids.shape) != (tokens,):
        raise ValueError(f"position_ids has shape {tuple(position_ids.shape)}, expected ({tokens},)")
    if max_seqlen is not None and max_seqlen < batch.max_seqlen:
        raise ValueError(f"max_seqlen={max_seqlen} but cu_seqlens holds a sequence of {batch.max_seqlen} tokens")
    if batch.max_seqlen > config.max_position_embeddings:
        raise ValueError(
            f"a sequence has {batch.max_seqlen} tokens, more than "
            f"max_position_embeddings={config.max_position_embeddings}"
        )


def _check_labels(labels: Tensor, batch: AttnBatch, tokens: int, name: str) -> Tensor:
    """Labels (batch, length) for a padded input or (tokens,) for a packed one → packed (tokens,)."""
    if not batch.padded:
        if labels.shape != (tokens,):
            raise ValueError(f"{name} has shape {tuple(labels.shape)}, expected packed ({tokens},)")
        return labels
    if tuple(labels.shape) != batch.pad_shape:
        raise ValueError(f"{name} has shape {tuple(labels.shape)} but the input has shape {batch.pad_shape}")
    if batch.static_mask is not None:  # every position is a token: padding is ignored by its label
        labels = labels.to(batch.static_mask.device).masked_fill(~batch.static_mask, -100)
    return batch.pack(labels.to(batch.pad_indices.device))


def _returned(out: ModelOutput, return_dict: bool | None, config: ModernBertConfig) -> ModelOutput | tuple[Any, ...]:
    """The output object, or with return_dict=False (or config.return_dict=False) the reference's tuple: its
    fields that are not None, in order."""
    return out if (config.return_dict if return_dict is None else return_dict) else out.to_tuple()
