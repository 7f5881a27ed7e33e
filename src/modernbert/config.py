"""ModernBertConfig: one typed dataclass that reads and writes both config.json layouts.

Published checkpoints use the transformers 4.x keys (`global_rope_theta`, `local_rope_theta`,
`global_attn_every_n_layers`, `torch_dtype`); transformers 5.x writes `layer_types`, `rope_parameters`
and `dtype`. We read either, keep unknown keys, and write both so that every transformers version loads it.
"""

from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from .hub import CONFIG_NAME, DTYPES, dtype_name, read_json, resolve_folder, write_atomic

LayerType = Literal["full_attention", "sliding_attention"]
ProblemType = Literal["regression", "single_label_classification", "multi_label_classification"]

ACTIVATIONS = ("gelu", "gelu_new", "gelu_pytorch_tanh", "gelu_python", "relu", "silu", "swish", "tanh")
# Bookkeeping keys that transformers rewrites on every save; dropped on read, never written back.
_IGNORED_KEYS = {"transformers_version", "_name_or_path"}


@dataclass
class ModernBertConfig:
    """Hyper-parameters of a ModernBERT model, with the reference's field names and defaults."""

    vocab_size: int = 50368  # rows of the token embedding (and of the tied decoder)
    hidden_size: int = 768  # model width
    intermediate_size: int = 1152  # GeGLU width: Wi projects to 2 × this, Wo back
    num_hidden_layers: int = 22  # encoder layers
    num_attention_heads: int = 12  # heads; hidden_size must divide evenly
    hidden_activation: str = "gelu"  # activation inside the GeGLU
    max_position_embeddings: int = 8192  # longest sequence the model was trained for
    initializer_range: float = 0.02  # std of the truncated-normal init
    initializer_cutoff_factor: float = 2.0  # init truncated at ± this × std
    norm_eps: float = 1e-5  # LayerNorm epsilon
    norm_bias: bool = False  # LayerNorms carry a bias
    local_attention: int = 128  # sliding window width: token i sees j iff |i - j| <= local_attention // 2
    global_attn_every_n_layers: int = 3  # layers 0, n, 2n, ... attend globally
    global_rope_theta: float = 160_000.0  # RoPE base of the global layers
    local_rope_theta: float = 10_000.0  # RoPE base of the local (sliding) layers
    layer_types: list[LayerType] | None = None  # per layer; derived from global_attn_every_n_layers if None
    attention_bias: bool = False  # Wqkv and Wo carry a bias
    attention_dropout: float = 0.0  # dropout on attention probabilities and output
    embedding_dropout: float = 0.0  # dropout after the embedding norm
    mlp_bias: bool = False  # Wi and Wo of the MLP carry a bias
    mlp_dropout: float = 0.0  # dropout inside the MLP
    decoder_bias: bool = True  # the MLM decoder carries a bias
    classifier_pooling: Literal["cls", "mean"] = "cls"  # sequence pooling of the classification heads
    classifier_dropout: float = 0.0  # dropout before the classifier
    classifier_bias: bool = False  # the prediction head's dense layer carries a bias
    classifier_activation: str = "gelu"  # activation of the prediction head
    deterministic_flash_attn: bool = False  # flash-attn's deterministic backward
    sparse_prediction: bool = False  # MLM: compute logits only where labels != sparse_pred_ignore_index
    sparse_pred_ignore_index: int = -100  # the label that marks an ignored token
    pad_token_id: int | None = 50283  # [PAD] (not 0 in ModernBERT's vocabulary)
    bos_token_id: int | None = 50281  # [CLS]
    eos_token_id: int | None = 50282  # [SEP]
    cls_token_id: int | None = 50281  # [CLS]
    sep_token_id: int | None = 50282  # [SEP]
    num_labels: int | None = None  # classifier outputs; from id2label when None (2 if neither is given)
    id2label: dict[int, str] | None = None  # class index -> label name
    label2id: dict[str, int] | None = None  # label name -> class index
    problem_type: ProblemType | None = None  # sequence classification loss; inferred from labels when None
    tie_word_embeddings: bool = True  # the MLM decoder shares the token embedding matrix
    dtype: Literal["float32", "float16", "bfloat16"] | None = None  # dtype the weights were saved in
    architectures: list[str] | None = None  # model classes this checkpoint was saved from
    output_hidden_states: bool = False  # forward returns every layer's hidden states unless told otherwise
    output_attentions: bool = False  # forward returns attention weights unless told otherwise (eager kernel)
    return_dict: bool = True  # forward returns output objects (False: the reference's tuples)
    extra: dict[str, Any] = field(default_factory=dict)  # unknown config.json keys, written back unchanged

    def __post_init__(self) -> None:
        for name in ("vocab_size", "hidden_size", "intermediate_size", "num_hidden_layers",
                     "num_attention_heads", "max_position_embeddings", "global_attn_every_n_layers"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
                raise ValueError(f"{name}={value!r} must be a positive integer")
        if self.hidden_size % self.num_attention_heads:
            raise ValueError(
                f"hidden_size={self.hidden_size} must be divisible by "
                f"num_attention_heads={self.num_attention_heads}"
            )
        if self.head_dim % 2:
            raise ValueError(f"head_dim={self.head_dim} (hidden_size / num_attention_heads) must be even for RoPE")
        local_attention = self.local_attention
        if not isinstance(local_attention, int) or local_attention <= 0 or local_attention % 2:
            raise ValueError(f"{local_attention=} must be a positive even integer")
        for name in ("hidden_activation", "classifier_activation"):
            if getattr(self, name) not in ACTIVATIONS:
                raise ValueError(f"{name}={getattr(self, name)!r} is not supported; choose one of {ACTIVATIONS}")
        if self.classifier_pooling not in ("cls", "mean"):
            raise ValueError(f"classifier_pooling={self.classifier_pooling!r} must be 'cls' or 'mean'")
        if self.problem_type not in (None, "regression", "single_label_classification",
                                     "multi_label_classification"):
            raise ValueError(
                f"problem_type={self.problem_type!r} must be 'regression', 'single_label_classification' "
                "or 'multi_label_classification'"
            )
        if self.dtype is not None:
            self.dtype = dtype_name(self.dtype)
        if self.layer_types is None:
            n = self.global_attn_every_n_layers
            self.layer_types = [
                "full_attention" if i % n == 0 else "sliding_attention" for i in range(self.num_hidden_layers)
            ]
        self.layer_types = list(self.layer_types)
        if len(self.layer_types) != self.num_hidden_layers:
            raise ValueError(
                f"layer_types has {len(self.layer_types)} entries but num_hidden_layers={self.num_hidden_layers}"
            )
        bad = sorted(set(self.layer_types) - {"full_attention", "sliding_attention"})
        if bad:
            raise ValueError(f"layer_types holds {bad}; only 'full_attention' and 'sliding_attention' exist")
        # Labels: transformers derives num_labels from id2label, and LABEL_i names from num_labels.
        if self.id2label is not None:
            self.id2label = {int(k): str(v) for k, v in self.id2label.items()}
            if self.num_labels is not None and self.num_labels != len(self.id2label):
                raise ValueError(f"num_labels={self.num_labels} does not match id2label's {len(self.id2label)} labels")
            self.num_labels = len(self.id2label)
        else:
            if self.num_labels is None:
                self.num_labels = 2
            if self.num_labels <= 0:
                raise ValueError(f"num_labels={self.num_labels} must be positive")
            self.id2label = {i: f"LABEL_{i}" for i in range(self.num_labels)}
        if self.label2id is None:
            self.label2id = {v: k for k, v in self.id2label.items()}
        else:
            self.label2id = {str(k): int(v) for k, v in self.label2id.items()}
        self.__dict__["_ready"] = True

    def __setattr__(self, name: str, value: Any) -> None:
        super().__setattr__(name, value)
        # As transformers' num_labels setter: new LABEL_i names when the count changes after construction.
        if name == "num_labels" and self.__dict__.get("_ready") and len(self.id2label or {}) != value:
            if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
                raise ValueError(f"num_labels={value!r} must be a positive integer")
            super().__setattr__("id2label", {i: f"LABEL_{i}" for i in range(value)})
            super().__setattr__("label2id", {f"LABEL_{i}": i for i in range(value)})

    # ----- derived -----
    model_type = "modernbert"  # transformers' registry name (a class constant, not a field)

    @property
    def use_return_dict(self) -> bool:
        return self.return_dict

    @property
    def head_dim(self) -> int:
        return self.hidden_size // self.num_attention_heads

    @property
    def sliding_window(self) -> int:
        """Half of local_attention: the largest |i - j| a local layer lets through."""
        return self.local_attention // 2

    def is_global(self, layer_idx: int) -> bool:
        return self.layer_types[layer_idx] == "full_attention"

    def rope_theta(self, layer_idx: int) -> float:
        return self.global_rope_theta if self.is_global(layer_idx) else self.local_rope_theta

    # ----- presets -----
    @classmethod
    def from_preset(cls, name: str, **overrides: Any) -> ModernBertConfig:
        """A published shape: `base` or `large`."""
        if name not in PRESETS:
            raise ValueError(f"unknown preset {name!r}; choose one of {sorted(PRESETS)}")
        return cls(**{**PRESETS[name], **overrides})

    # ----- dict / json -----
    @classmethod
    def from_dict(cls, data: dict[str, Any], **overrides: Any) -> ModernBertConfig:
        """Build from a config.json dict in the 4.x or the 5.x layout; unknown keys go to `extra`."""
        if "num_labels" in overrides and "id2label" not in overrides:
            labels = data.get("id2label")
            if labels is not None and len(labels) != overrides["num_labels"]:  # re-derived LABEL_i names
                data = {k: v for k, v in data.items() if k not in ("id2label", "label2id")}
        if "id2label" in overrides and "num_labels" not in overrides:  # the count follows the new labels
            data = {k: v for k, v in data.items() if k not in ("num_labels", "label2id")}
        data = {**data, **overrides}
        model_type = data.pop("model_type", "modernbert")
        if model_type != "modernbert":
            raise ValueError(
                f"config has model_type={model_type!r}, but this library only runs 'modernbert' checkpoints"
            )
        names = {f.name for f in dataclasses.fields(cls)} - {"extra"}
        kwargs: dict[str, Any] = {}
        extra: dict[str, Any] = dict(data.pop("extra", {}) or {})
        # 5.x: dtype; 4.x: torch_dtype.
        torch_dtype = data.pop("torch_dtype", None)
        if data.get("dtype") is None and torch_dtype is not None:
            data["dtype"] = torch_dtype
        # 5.x: rope_parameters per layer type; 4.x: global_/local_rope_theta.
        rope = data.pop("rope_parameters", None)
        if rope:
            for layer_type, key in (("full_attention", "global_rope_theta"), ("sliding_attention", "local_rope_theta")):
                params = rope.get(layer_type) or {}
                rope_type = params.get("rope_type", "default")
                if rope_type != "default":
                    raise ValueError(f"rope_parameters[{layer_type!r}] has rope_type={rope_type!r}; only 'default' "
                                     "RoPE is supported")
                if "rope_theta" in params:
                    data.setdefault(key, params["rope_theta"])
        if data.get("rope_scaling"):
            raise ValueError(f"rope_scaling={data['rope_scaling']!r} is not supported; only default RoPE is")
        data.pop("rope_scaling", None)
        if "layer_norm_eps" in data and "norm_eps" not in data:
            extra["layer_norm_eps"] = data.pop("layer_norm_eps")
        for key, value in data.items():
            if key in names:
                kwargs[key] = value
            elif key not in _IGNORED_KEYS:
                extra[key] = value
        return cls(**kwargs, extra=extra)

    def to_dict(self) -> dict[str, Any]:
        """A config.json dict that transformers 4.x and 5.x both load."""
        out: dict[str, Any] = {"architectures": self.architectures} if self.architectures else {}
        out["model_type"] = "modernbert"
        for f in dataclasses.fields(self):
            if f.name in ("extra", "architectures", "dtype"):
                continue
            out[f.name] = getattr(self, f.name)
        out["id2label"] = {str(k): v for k, v in self.id2label.items()}
        out["rope_parameters"] = {
            "full_attention": {"rope_type": "default", "rope_theta": self.global_rope_theta},
            "sliding_attention": {"rope_type": "default", "rope_theta": self.local_rope_theta},
        }
        if self.dtype is not None:
            out["dtype"] = out["torch_dtype"] = self.dtype
        for key, value in self.extra.items():
            out.setdefault(key, value)
        return out

    def to_json_string(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True) + "\n"

    def to_json_file(self, path: str | os.PathLike) -> None:
        """Write the config.json dict to `path` (atomically)."""
        write_atomic(Path(path), self.to_json_string().encode())

    def get(self, key: str, default: Any = None) -> Any:
        """A field or an extra key, as `getattr(config, key, default)` on a transformers config."""
        return getattr(self, key, self.extra.get(key, default))

    def __getattr__(self, name: str) -> Any:
        # Keys transformers configs carry and this dataclass keeps in `extra` read as attributes there.
        extra = self.__dict__.get("extra")
        if extra is not None and name in extra:
            return extra[name]
        raise AttributeError(f"{type(self).__name__} has no attribute {name!r}")

    def updated(self, **overrides: Any) -> ModernBertConfig:
        """A copy with `overrides` applied as `from_pretrained(..., **overrides)` applies them: num_labels
        without id2label re-derives the labels, as transformers' `num_labels` setter does."""
        return type(self).from_dict(self.to_dict(), **overrides)

    def accepts(self, key: str) -> bool:
        """Whether `key` names a field, a 4.x / 5.x spelling of one, or a key this config already holds."""
        return key in _FIELD_NAMES or key in _LAYOUT_KEYS or key in self.extra

    @classmethod
    def from_json_file(cls, path: str | os.PathLike, **overrides: Any) -> ModernBertConfig:
        path = Path(path)
        data = read_json(path, "config file")
        if not isinstance(data, dict):
            raise ValueError(f"{path} must hold a JSON object, found {type(data).__name__}")
        return cls.from_dict(data, **overrides)

    @classmethod
    def from_folder(cls, folder: str | os.PathLike, **overrides: Any) -> ModernBertConfig:
        """Read `folder`/config.json; errors name the file."""
        path = Path(folder) / CONFIG_NAME
        if not path.is_file():
            raise FileNotFoundError(f"{folder} has no {CONFIG_NAME}; is it a ModernBERT checkpoint folder?")
        try:
            return cls.from_json_file(path, **overrides)
        except (TypeError, ValueError) as e:
            raise ValueError(f"{path}: {e}") from None

    @classmethod
    def from_pretrained(
        cls,
        name_or_path: str | os.PathLike,
        *,
        revision: str | None = None,
        cache_dir: str | os.PathLike | None = None,
        local_files_only: bool = False,
        token: str | bool | None = None,
        subfolder: str = "",
        return_unused_kwargs: bool = False,
        **overrides: Any,
    ) -> ModernBertConfig | tuple[ModernBertConfig, dict[str, Any]]:
        """Read config.json from a folder, a bundled model or a hub repo id; keyword arguments override fields
        (keys that are not fields are kept, as transformers keeps them). transformers' loader-only flags
        (trust_remote_code, force_download, ...) are accepted and never stored. return_unused_kwargs=True
        returns (config, {}) as transformers does."""
        for key in _LOADER_ONLY:
            overrides.pop(key, None)
        patterns = [f"{subfolder}/{CONFIG_NAME}"] if subfolder else [CONFIG_NAME]
        folder = resolve_folder(
            name_or_path, patterns=patterns, revision=revision, cache_dir=cache_dir,
            local_files_only=local_files_only, token=token,
        )
        config = cls.from_folder(folder / subfolder if subfolder else folder, **overrides)
        return (config, {}) if return_unused_kwargs else config

    def save_pretrained(self, folder: str | os.PathLike) -> None:
        """Write `folder`/config.json atomically."""
        write_atomic(Path(folder) / CONFIG_NAME, self.to_json_string().encode())

    def replace(self, **changes: Any) -> ModernBertConfig:
        return dataclasses.replace(self, **changes)


def _dtype_name(dtype: Any) -> str:
    name = str(dtype).removeprefix("torch.")
    name = {"float": "float32", "half": "float16", "bf16": "bfloat16", "fp16": "float16", "fp32": "float32"}.get(
        name, name
    )
    if name not in DTYPES:
        raise ValueError(f"dtype={dtype!r} is not supported; choose one of {DTYPES}")
    return name


_FIELD_NAMES = frozenset(f.name for f in dataclasses.fields(ModernBertConfig))
# config.json keys that name a field in another layout (4.x / 5.x) and are translated on read.
_LAYOUT_KEYS = frozenset({"torch_dtype", "rope_parameters", "rope_scaling", "layer_norm_eps", "model_type"})
_dataclass_init = ModernBertConfig.__init__
# from_pretrained arguments of transformers that are about loading, never config values.
_LOADER_ONLY = frozenset({
    "trust_remote_code", "force_download", "resume_download", "proxies", "_from_pipeline", "_from_auto",
    "_commit_hash", "use_auth_token", "user_agent", "code_revision",
})


def _tolerant_init(self: ModernBertConfig, *args: Any, **kwargs: Any) -> None:
    """Like transformers configs, keep keyword arguments that are not fields (in `extra`, written back); the
    other layout's spellings (rope_parameters, torch_dtype) set their fields."""
    if any(key in kwargs for key in ("rope_parameters", "torch_dtype", "rope_scaling")):
        translated = ModernBertConfig.from_dict({k: v for k, v in kwargs.items()})
        kwargs = {f.name: getattr(translated, f.name) for f in dataclasses.fields(ModernBertConfig)}
    extra = dict(kwargs.pop("extra", None) or {})
    for key in [k for k in kwargs if k not in _FIELD_NAMES]:
        extra[key] = kwargs.pop(key)
    _dataclass_init(self, *args, **kwargs, extra=extra)


_tolerant_init.__doc__ = ModernBertConfig.__doc__
ModernBertConfig.__init__ = _tolerant_init  # type: ignore[method-assign]


PRESETS: dict[str, dict[str, Any]] = {
    "base": dict(hidden_size=768, intermediate_size=1152, num_hidden_layers=22, num_attention_heads=12),
    "large": dict(hidden_size=1024, intermediate_size=2624, num_hidden_layers=28, num_attention_heads=16),
}
