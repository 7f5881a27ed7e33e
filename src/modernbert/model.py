"""ModernBERT: embeddings → attention → MLP → layer → ModernBertModel → the five task heads.

The model runs on packed real tokens: padding is removed once after the token lookup and restored once at
the end, so every linear layer, norm and activation sees only real tokens. Module and parameter names are
the reference's (transformers' ModernBERT), so published checkpoints load with a strict state-dict load.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .attention import AttnBatch, attention, check_implementation, qkv_buffer
from .config import ModernBertConfig

# ----- outputs -----


class ModelOutput(OrderedDict):
    """Output with attribute and key access, like transformers' ModelOutput; `None` fields are left out."""

    _fields: tuple[str, ...] = ()

    def __init__(self, **kwargs: Any) -> None:
        unknown = set(kwargs) - set(self._fields)
        if unknown:
            raise TypeError(f"{type(self).__name__} has no fields {sorted(unknown)}")
        super().__init__((k, kwargs[k]) for k in self._fields if kwargs.get(k) is not None)

    def __getattr__(self, name: str) -> Any:
        if name in self:
            return self[name]
        if name in self._fields:
            return None
        raise AttributeError(f"{type(self).__name__} has no attribute {name!r}")

    def __getitem__(self, key: str | int | slice) -> Any:
        if isinstance(key, (int, slice)):
            return self.to_tuple()[key]
        return super().__getitem__(key)

    def to_tuple(self) -> tuple[Any, ...]:
        return tuple(self.values())


class BaseModelOutput(ModelOutput):
    _fields = ("last_hidden_state", "hidden_states")


class MaskedLMOutput(ModelOutput):
    _fields = ("loss", "logits", "hidden_states")


class SequenceClassifierOutput(ModelOutput):
    _fields = ("loss", "logits", "hidden_states")


class TokenClassifierOutput(ModelOutput):
    _fields = ("loss", "logits", "hidden_states")


class QuestionAnsweringModelOutput(ModelOutput):
    _fields = ("loss", "start_logits", "end_logits", "hidden_states")


class MultipleChoiceModelOutput(ModelOutput):
    _fields = ("loss", "logits", "hidden_states")


# ----- small pieces -----


def activation(name: str) -> nn.Module:
    """The transformers ACT2FN activations ModernBERT configs use."""
    if name in ("gelu", "gelu_python"):
        return nn.GELU()
    if name in ("gelu_new", "gelu_pytorch_tanh"):
        return nn.GELU(approximate="tanh")
    return {"relu": nn.ReLU, "silu": nn.SiLU, "swish": nn.SiLU, "tanh": nn.Tanh}[name]()


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


ROTARY_BLOCK = 256  # tokens rotated at a time: each block's five passes stay in cache (30% faster in bf16 here)


def apply_rotary_(x: Tensor, cos: Tensor, sin: Tensor) -> Tensor:
    """Rotate-half RoPE, in place, on x (tokens, 2, heads, head_dim) = query and key; the math in fp32 as the
    reference does it.

    Written on the two halves, (x1 cos - x2 sin, x2 cos + x1 sin), which is the reference's
    x cos + rotate_half(x) sin term for term (fused multiply-adds may differ from it in the last bit).
    """
    for xb, cb, sb in zip(x.split(ROTARY_BLOCK), cos.split(ROTARY_BLOCK), sin.split(ROTARY_BLOCK)):
        xf = xb.float()  # xb itself when x is fp32
        x1, x2 = xf.chunk(2, dim=-1)
        x1_sin = x1 * sb
        x1.mul_(cb).addcmul_(x2, sb, value=-1)
        x2.mul_(cb).add_(x1_sin)
        if xf is not xb:
            xb.copy_(xf)
    return x


# nn.Module's process-wide hooks (register_module_forward_hook); private, hence the fallback.
_GLOBAL_HOOKS = tuple(
    getattr(torch.nn.modules.module, name, {}) for name in ("_global_forward_hooks", "_global_forward_pre_hooks")
)


def _linear_into(linear: nn.Module, x: Tensor, out: Tensor) -> None:
    """out = linear(x), written into `out` (tokens, out_features) without an intermediate tensor when linear
    is a plain nn.Linear without hooks (otherwise through its forward, as anything wrapping it expects)."""
    hooks = (linear._forward_hooks, linear._forward_pre_hooks, *_GLOBAL_HOOKS)
    if type(linear) is nn.Linear and not any(hooks):
        weight = linear.weight.t()  # (in, out)
        if linear.bias is None:
            torch.mm(x, weight, out=out)
        else:
            torch.addmm(linear.bias, x, weight, out=out)
    else:
        out.copy_(linear(x))


class _RotateQK(torch.autograd.Function):
    """Training form of the rotary step: a copy of qkv (tokens, 3, heads, head_dim) with query and key rotated.

    RoPE is a rotation, so its backward is the rotation by -θ: one in-place pass over the gradient instead of
    autograd's chain of casts, products and concatenations (a tenth of a bf16 training step on CPU).
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


# ----- modules, small to large -----


class ModernBertEmbeddings(nn.Module):
    def __init__(self, config: ModernBertConfig) -> None:
        super().__init__()
        self.tok_embeddings = nn.Embedding(config.vocab_size, config.hidden_size)
        self.norm = nn.LayerNorm(config.hidden_size, eps=config.norm_eps, bias=config.norm_bias)
        self.drop = nn.Dropout(config.embedding_dropout)

    def forward(self, input_ids: Tensor | None = None, inputs_embeds: Tensor | None = None) -> Tensor:
        x = self.tok_embeddings(input_ids) if inputs_embeds is None else inputs_embeds  # (tokens, hidden)
        return self.drop(self.norm(x))


class ModernBertMLP(nn.Module):
    """GeGLU: Wi projects to 2 × intermediate, act(input) * gate, Wo projects back."""

    def __init__(self, config: ModernBertConfig) -> None:
        super().__init__()
        self.Wi = nn.Linear(config.hidden_size, 2 * config.intermediate_size, bias=config.mlp_bias)
        self.act = activation(config.hidden_activation)
        self.drop = nn.Dropout(config.mlp_dropout)
        self.Wo = nn.Linear(config.intermediate_size, config.hidden_size, bias=config.mlp_bias)

    def forward(self, x: Tensor) -> Tensor:
        input, gate = self.Wi(x).chunk(2, dim=-1)  # (tokens, intermediate) each
        h = self.act(input)
        h = h.mul_(gate) if not torch.is_grad_enabled() else h * gate  # in place when nothing needs h back
        return self.Wo(self.drop(h))


class ModernBertAttention(nn.Module):
    def __init__(self, config: ModernBertConfig, layer_idx: int) -> None:
        super().__init__()
        self.num_heads, self.head_dim = config.num_attention_heads, config.head_dim
        self.window = None if config.is_global(layer_idx) else config.sliding_window
        self.dropout = config.attention_dropout
        self.deterministic = config.deterministic_flash_attn
        self.Wqkv = nn.Linear(config.hidden_size, 3 * config.hidden_size, bias=config.attention_bias)
        self.Wo = nn.Linear(config.hidden_size, config.hidden_size, bias=config.attention_bias)
        self.out_drop = nn.Dropout(config.attention_dropout) if config.attention_dropout > 0 else nn.Identity()

    def forward(self, x: Tensor, rope: tuple[Tensor, Tensor], batch: AttnBatch, implementation: str) -> Tensor:
        tokens = x.shape[0]
        buffer = None
        if torch.is_grad_enabled():
            qkv = self.Wqkv(x).view(tokens, 3, self.num_heads, self.head_dim)  # (tokens, 3, heads, head_dim)
            qkv = _RotateQK.apply(qkv, *rope)
        else:  # inference: project straight into the kernel's buffer, rotate query and key in place
            heads, dim = self.num_heads, self.head_dim
            layout = None
            if not torch.is_autocast_enabled(x.device.type):  # autocast picks the projection's dtype itself
                layout = qkv_buffer(batch, self.window, implementation, heads, dim, x.dtype, x.device)
            if layout is None:
                qkv = self.Wqkv(x).view(tokens, 3, heads, dim)
            else:
                qkv, buffer = layout
                _linear_into(self.Wqkv, x, qkv.view(tokens, -1))
            apply_rotary_(qkv[:, :2], *rope)
        dropout = self.dropout if self.training else 0.0
        out = attention(qkv, batch, self.window, implementation, dropout, self.deterministic, buffer)
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

    def forward(self, x: Tensor, rope: tuple[Tensor, Tensor], batch: AttnBatch, implementation: str) -> Tensor:
        if torch.is_grad_enabled():
            x = x + self.attn(self.attn_norm(x), rope, batch, implementation)
            return x + self.mlp(self.mlp_norm(x))
        # Inference: residual adds in place; fresh activations cost page faults on CPU.
        x = x.add_(self.attn(self.attn_norm(x), rope, batch, implementation))
        return x.add_(self.mlp(self.mlp_norm(x)))


class ModernBertPredictionHead(nn.Module):
    def __init__(self, config: ModernBertConfig) -> None:
        super().__init__()
        self.dense = nn.Linear(config.hidden_size, config.hidden_size, bias=config.classifier_bias)
        self.act = activation(config.classifier_activation)
        self.norm = nn.LayerNorm(config.hidden_size, eps=config.norm_eps, bias=config.norm_bias)

    def forward(self, x: Tensor) -> Tensor:
        return self.norm(self.act(self.dense(x)))


# ----- packing -----


class Packed:
    """Real tokens of a padded (batch, length) input, and how to put them back."""

    def __init__(self, attention_mask: Tensor) -> None:
        self.shape = tuple(attention_mask.shape)  # (batch, length)
        mask = attention_mask.bool()
        self.indices = mask.flatten().nonzero().squeeze(1)  # (tokens,) into batch × length
        self.batch = AttnBatch.from_seqlens(mask.sum(1))

    def pack(self, x: Tensor) -> Tensor:
        """(batch, length, ...) -> (tokens, ...)"""
        return x.flatten(0, 1)[self.indices]

    def unpack(self, x: Tensor, fill: float = 0.0) -> Tensor:
        """(tokens, ...) -> (batch, length, ...), `fill` at padding."""
        out = x.new_full((self.shape[0] * self.shape[1], *x.shape[1:]), fill)
        out[self.indices] = x
        return out.view(*self.shape, *x.shape[1:])


# ----- the model -----


class ModernBertPreTrainedModel(nn.Module):
    """Shared init and the from_pretrained / save_pretrained mixin (the I/O lives in checkpoint.py)."""

    config: ModernBertConfig
    base_model_prefix = "model"
    # Parameters the task adds on top of the encoder; they may be missing from a checkpoint.
    task_head_prefixes: tuple[str, ...] = ()

    def __init__(self, config: ModernBertConfig, attn_implementation: str = "sdpa") -> None:
        super().__init__()
        self.config = config
        self.attn_implementation = attn_implementation

    @property
    def attn_implementation(self) -> str:
        return self._attn_implementation

    @attn_implementation.setter
    def attn_implementation(self, value: str) -> None:
        check_implementation(value, None if value != "flash_attention_2" else "cuda", torch.bfloat16)
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

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())

    def init_weights(self) -> None:
        """Initialise every parameter as the reference does."""
        for module in self.modules():
            self._init_module(module)
        self.tie_weights()

    def tie_weights(self) -> None:
        pass

    def _init_module(self, module: nn.Module) -> None:
        cfg = self.config
        cutoff = cfg.initializer_cutoff_factor if cfg.initializer_cutoff_factor is not None else 3.0
        std_in = cfg.initializer_range
        std_out = cfg.initializer_range / math.sqrt(2.0 * cfg.num_hidden_layers)

        def init(linear: nn.Module, std: float) -> None:
            nn.init.trunc_normal_(linear.weight, mean=0.0, std=std, a=-cutoff * std, b=cutoff * std)
            if getattr(linear, "bias", None) is not None:
                nn.init.zeros_(linear.bias)

        if isinstance(module, ModernBertEmbeddings):
            init(module.tok_embeddings, std_in)
        elif isinstance(module, ModernBertMLP):
            init(module.Wi, std_in)
            init(module.Wo, std_out)
        elif isinstance(module, ModernBertAttention):
            init(module.Wqkv, std_in)
            init(module.Wo, std_out)
        elif isinstance(module, ModernBertPredictionHead):
            init(module.dense, std_out)
        elif isinstance(module, nn.LayerNorm):
            nn.init.ones_(module.weight)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, ModernBertForMaskedLM):
            if not cfg.tie_word_embeddings:
                init(module.decoder, std_out)
            elif module.decoder.bias is not None:
                nn.init.zeros_(module.decoder.bias)
        elif isinstance(module, _CLASSIFIER_HEADS):
            init(module.classifier, cfg.hidden_size**-0.5)

    @classmethod
    def from_pretrained(cls, name_or_path: str, **kwargs: Any) -> Any:
        """Load a checkpoint from a folder or a hub repo id; see `modernbert.checkpoint.load_model`."""
        from .checkpoint import load_model

        return load_model(cls, name_or_path, **kwargs)

    def save_pretrained(self, folder: str, **kwargs: Any) -> None:
        """Write config.json and model.safetensors (atomically) in the reference's layout."""
        from .checkpoint import save_model

        save_model(self, folder, **kwargs)


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
        self.init_weights()

    def get_input_embeddings(self) -> nn.Embedding:
        return self.embeddings.tok_embeddings

    def forward_packed(
        self,
        input_ids: Tensor | None,
        batch: AttnBatch,
        inputs_embeds: Tensor | None = None,
        position_ids: Tensor | None = None,
        output_hidden_states: bool = False,
    ) -> tuple[Tensor, list[Tensor] | None]:
        """The encoder on packed tokens: input_ids (tokens,) or inputs_embeds (tokens, hidden).

        Returns the final hidden states (tokens, hidden) and, if asked, the hidden state after the
        embeddings and after each layer (the last one after the final norm, as the reference returns).
        """
        x = self.embeddings(input_ids, inputs_embeds)  # (tokens, hidden)
        if position_ids is None:
            position_ids = batch.positions(x.device)
        rope = {theta: r.cos_sin(position_ids, x.dtype) for theta, r in self._rotary.items()}
        hidden_states = [x] if output_hidden_states else None
        for i, layer in enumerate(self.layers):
            if hidden_states is not None and not torch.is_grad_enabled():
                x = x.clone()  # layers update x in place during inference
            x = layer(x, rope[self.config.rope_theta(i)], batch, self._attn_implementation)
            if hidden_states is not None:
                hidden_states.append(x)
        x = self.final_norm(x)
        if hidden_states is not None:
            hidden_states[-1] = x
        return x, hidden_states

    def encode(
        self,
        input_ids: Tensor | None = None,
        attention_mask: Tensor | None = None,
        position_ids: Tensor | None = None,
        inputs_embeds: Tensor | None = None,
        output_hidden_states: bool = False,
        cu_seqlens: Tensor | None = None,
        max_seqlen: int | None = None,
    ) -> tuple[Tensor, list[Tensor] | None, Packed | None, AttnBatch]:
        """Validate inputs, unpad once and run the encoder. Returns packed outputs and how to re-pad them."""
        if cu_seqlens is not None:
            batch = AttnBatch.from_cu_seqlens(cu_seqlens)
            _check_packed(self.config, input_ids, inputs_embeds, position_ids, batch)
            x, hs = self.forward_packed(input_ids, batch, inputs_embeds, position_ids, output_hidden_states)
            return x, hs, None, batch
        shape = _check_padded(self.config, input_ids, inputs_embeds, attention_mask, position_ids)
        device = (input_ids if input_ids is not None else inputs_embeds).device
        if attention_mask is None:
            attention_mask = torch.ones(shape, dtype=torch.bool, device=device)
        packed = Packed(attention_mask.to(device))
        ids = packed.pack(input_ids) if input_ids is not None else None
        embeds = packed.pack(inputs_embeds) if inputs_embeds is not None else None
        positions = packed.pack(position_ids.expand(shape)) if position_ids is not None else None
        x, hs = self.forward_packed(ids, packed.batch, embeds, positions, output_hidden_states)
        return x, hs, packed, packed.batch

    def forward(
        self,
        input_ids: Tensor | None = None,
        attention_mask: Tensor | None = None,
        position_ids: Tensor | None = None,
        inputs_embeds: Tensor | None = None,
        output_hidden_states: bool | None = None,
        cu_seqlens: Tensor | None = None,
        max_seqlen: int | None = None,
        return_dict: bool = True,
    ) -> BaseModelOutput:
        """input_ids (batch, length) with attention_mask, or packed input_ids (tokens,) with cu_seqlens.

        Returns last_hidden_state (batch, length, hidden), zero at padding; packed (tokens, hidden) when
        cu_seqlens is given.
        """
        x, hs, packed, _ = self.encode(
            input_ids, attention_mask, position_ids, inputs_embeds, bool(output_hidden_states), cu_seqlens
        )
        if packed is not None:
            x = packed.unpack(x)
            hs = [packed.unpack(h) for h in hs] if hs is not None else None
        return BaseModelOutput(last_hidden_state=x, hidden_states=tuple(hs) if hs is not None else None)


class _TaskModel(ModernBertPreTrainedModel):
    """A head on top of `self.model`."""

    def _build_classifier(self, config: ModernBertConfig, attn_implementation: str, out_features: int) -> None:
        """encoder → prediction head → dropout → classifier, as the reference's classification heads."""
        self.num_labels = config.num_labels
        self.model = ModernBertModel(config, attn_implementation)
        self.head = ModernBertPredictionHead(config)
        self.drop = nn.Dropout(config.classifier_dropout)
        self.classifier = nn.Linear(config.hidden_size, out_features)
        self.init_weights()

    def _encode(self, **kwargs: Any) -> tuple[Tensor, tuple[Tensor, ...] | None, Packed | None, AttnBatch]:
        x, hs, packed, batch = self.model.encode(**kwargs)
        if hs is not None:
            hs = tuple(packed.unpack(h) for h in hs) if packed is not None else tuple(hs)
        return x, hs, packed, batch

    def _pool(self, x: Tensor, batch: AttnBatch) -> Tensor:
        """(tokens, hidden) -> (batch, hidden): first token ([CLS]) or mean over real tokens."""
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

    def __init__(self, config: ModernBertConfig, attn_implementation: str = "sdpa") -> None:
        super().__init__(config, attn_implementation)
        self.model = ModernBertModel(config, attn_implementation)
        self.head = ModernBertPredictionHead(config)
        self.decoder = nn.Linear(config.hidden_size, config.vocab_size, bias=config.decoder_bias)
        self.init_weights()

    def tie_weights(self) -> None:
        if self.config.tie_word_embeddings:
            self.decoder.weight = self.model.embeddings.tok_embeddings.weight

    def forward(
        self,
        input_ids: Tensor | None = None,
        attention_mask: Tensor | None = None,
        position_ids: Tensor | None = None,
        inputs_embeds: Tensor | None = None,
        labels: Tensor | None = None,
        output_hidden_states: bool | None = None,
        cu_seqlens: Tensor | None = None,
        max_seqlen: int | None = None,
        return_dict: bool = True,
    ) -> MaskedLMOutput:
        """Logits (batch, length, vocab); with config.sparse_prediction and labels, only for labelled tokens
        (n_labelled, vocab) in row-major order, as the reference returns them."""
        x, hs, packed, _ = self._encode(
            input_ids=input_ids, attention_mask=attention_mask, position_ids=position_ids,
            inputs_embeds=inputs_embeds, output_hidden_states=bool(output_hidden_states), cu_seqlens=cu_seqlens,
        )
        if labels is not None:
            labels = _check_labels(labels, packed, x.shape[0], "labels")
        if self.config.sparse_prediction and labels is not None:
            keep = labels != self.config.sparse_pred_ignore_index
            x, labels = x[keep], labels[keep]
            logits = self.decoder(self.head(x))  # (labelled, vocab)
        else:
            logits = self.decoder(self.head(x))  # (tokens, vocab)
        loss = None
        if labels is not None:
            loss = F.cross_entropy(logits.float(), labels.to(logits.device), ignore_index=-100)
        if packed is not None and not (self.config.sparse_prediction and labels is not None):
            logits = packed.unpack(logits)
        return MaskedLMOutput(loss=loss, logits=logits, hidden_states=hs)

    def logits_at(self, rows: Tensor, input_ids: Tensor, cu_seqlens: Tensor) -> Tensor:
        """Logits (len(rows), vocab) at the packed token positions `rows` only, for packed input_ids (tokens,)
        with cu_seqlens: the vocabulary projection, the costly part, runs on those rows alone."""
        x, _, _, _ = self.model.encode(input_ids=input_ids, cu_seqlens=cu_seqlens)  # (tokens, hidden)
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
        cu_seqlens: Tensor | None = None,
        max_seqlen: int | None = None,
        return_dict: bool = True,
    ) -> SequenceClassifierOutput:
        """Logits (batch, num_labels) from the pooled sequence (config.classifier_pooling)."""
        x, hs, _, batch = self._encode(
            input_ids=input_ids, attention_mask=attention_mask, position_ids=position_ids,
            inputs_embeds=inputs_embeds, output_hidden_states=bool(output_hidden_states), cu_seqlens=cu_seqlens,
        )
        logits = self.classifier(self.drop(self.head(self._pool(x, batch))))  # (batch, num_labels)
        loss = None if labels is None else self._loss(logits, labels.to(logits.device))
        return SequenceClassifierOutput(loss=loss, logits=logits, hidden_states=hs)

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
        cu_seqlens: Tensor | None = None,
        max_seqlen: int | None = None,
        return_dict: bool = True,
    ) -> TokenClassifierOutput:
        """Logits (batch, length, num_labels), zero at padding."""
        x, hs, packed, _ = self._encode(
            input_ids=input_ids, attention_mask=attention_mask, position_ids=position_ids,
            inputs_embeds=inputs_embeds, output_hidden_states=bool(output_hidden_states), cu_seqlens=cu_seqlens,
        )
        logits = self.classifier(self.drop(self.head(x)))  # (tokens, num_labels)
        loss = None
        if labels is not None:
            labels = _check_labels(labels, packed, x.shape[0], "labels")
            loss = F.cross_entropy(logits.float(), labels.to(logits.device), ignore_index=-100)
        if packed is not None:
            logits = packed.unpack(logits)
        return TokenClassifierOutput(loss=loss, logits=logits, hidden_states=hs)


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
        cu_seqlens: Tensor | None = None,
        max_seqlen: int | None = None,
        return_dict: bool = True,
    ) -> QuestionAnsweringModelOutput:
        """start_logits and end_logits (batch, length); padding gets the dtype's lowest value."""
        x, hs, packed, _ = self._encode(
            input_ids=input_ids, attention_mask=attention_mask, position_ids=position_ids,
            inputs_embeds=inputs_embeds, output_hidden_states=bool(output_hidden_states), cu_seqlens=cu_seqlens,
        )
        logits = self.classifier(self.drop(self.head(x)))  # (tokens, 2)
        if packed is not None:  # padding can never be an answer: lowest logit there, so softmax ignores it
            logits = packed.unpack(logits, fill=torch.finfo(logits.dtype).min)  # (batch, length, 2)
        start_logits, end_logits = (t.squeeze(-1).contiguous() for t in logits.split(1, dim=-1))
        loss = None
        if start_positions is not None and end_positions is not None:
            # Positions outside the input are ignored, as in the reference.
            ignored = start_logits.shape[-1]
            start = start_positions.to(logits.device).view(-1).clamp(0, ignored)
            end = end_positions.to(logits.device).view(-1).clamp(0, ignored)
            loss = (
                F.cross_entropy(start_logits.float(), start, ignore_index=ignored)
                + F.cross_entropy(end_logits.float(), end, ignore_index=ignored)
            ) / 2
        return QuestionAnsweringModelOutput(
            loss=loss, start_logits=start_logits, end_logits=end_logits, hidden_states=hs
        )


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
        return_dict: bool = True,
    ) -> MultipleChoiceModelOutput:
        """input_ids (batch, choices, length) → logits (batch, choices)."""
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

        x, hs, _, batch = self._encode(
            input_ids=flat(input_ids, 1), attention_mask=flat(attention_mask, 1),
            position_ids=flat(position_ids, 1), inputs_embeds=flat(inputs_embeds, 2),
            output_hidden_states=bool(output_hidden_states),
        )
        logits = self.classifier(self.drop(self.head(self._pool(x, batch)))).view(-1, num_choices)
        loss = None if labels is None else F.cross_entropy(logits, labels.to(logits.device))
        return MultipleChoiceModelOutput(loss=loss, logits=logits, hidden_states=hs)


_CLASSIFIER_HEADS = (
    ModernBertForSequenceClassification,
    ModernBertForTokenClassification,
    ModernBertForQuestionAnswering,
    ModernBertForMultipleChoice,
)


# ----- input checks (clear errors instead of tracebacks from inside torch) -----


def _check_ids(config: ModernBertConfig, input_ids: Tensor) -> None:
    if input_ids.dtype not in (torch.long, torch.int, torch.int16, torch.uint8, torch.int8):
        raise ValueError(f"input_ids must be an integer tensor (torch.long), got dtype {input_ids.dtype}")
    if input_ids.numel():
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
        _check_ids(config, input_ids)
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
        if attention_mask.dtype.is_floating_point and not torch.all((attention_mask == 0) | (attention_mask == 1)):
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
    if batch.max_seqlen > config.max_position_embeddings:
        raise ValueError(
            f"a sequence has {batch.max_seqlen} tokens, more than "
            f"max_position_embeddings={config.max_position_embeddings}"
        )


def _check_labels(labels: Tensor, packed: Packed | None, tokens: int, name: str) -> Tensor:
    """Labels (batch, length) or packed (tokens,) → packed (tokens,)."""
    if packed is None:
        if labels.shape != (tokens,):
            raise ValueError(f"{name} has shape {tuple(labels.shape)}, expected packed ({tokens},)")
        return labels
    if tuple(labels.shape) != packed.shape:
        raise ValueError(f"{name} has shape {tuple(labels.shape)} but the input has shape {packed.shape}")
    return packed.pack(labels.to(packed.indices.device))
