"""Auto classes: the transformers entry points (`AutoModelForMaskedLM.from_pretrained(...)`) for ModernBERT.

Every checkpoint this library runs is a ModernBERT one, so each Auto class maps to exactly one model class;
the point of these classes is that code written for transformers keeps working with only its import changed:

    from modernbert import AutoTokenizer, AutoModelForMaskedLM

    tokenizer = AutoTokenizer.from_pretrained("answerdotai/ModernBERT-base")
    model = AutoModelForMaskedLM.from_pretrained("answerdotai/ModernBERT-base")

A name may be a local folder, a hub repo id, or the name of a model bundled with the package
(`modernbert.bundled_models()`). A config.json whose model_type is not "modernbert" raises a
ValueError that names the type found.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, ClassVar

from .config import ModernBertConfig
from .hub import BUNDLED_DIR, bundled_models
from .model import (
    ModernBertForMaskedLM,
    ModernBertForMultipleChoice,
    ModernBertForQuestionAnswering,
    ModernBertForSequenceClassification,
    ModernBertForTokenClassification,
    ModernBertModel,
    ModernBertPreTrainedModel,
)
from .tokenizer import Tokenizer

__all__ = [
    "AutoConfig",
    "AutoModel",
    "AutoModelForMaskedLM",
    "AutoModelForMultipleChoice",
    "AutoModelForQuestionAnswering",
    "AutoModelForSequenceClassification",
    "AutoModelForTokenClassification",
    "AutoTokenizer",
    "resolve_name",
]


def resolve_name(name_or_path: str | os.PathLike) -> str | os.PathLike:
    """A bundled model name becomes the folder it lives in; anything else is returned unchanged."""
    if isinstance(name_or_path, (str, os.PathLike)) and not Path(name_or_path).expanduser().is_dir():
        name = os.fspath(name_or_path)
        if name in bundled_models():
            return str(BUNDLED_DIR / name)
    return name_or_path


class AutoConfig:
    """`AutoConfig.from_pretrained(name)` reads a ModernBERT config.json (4.x or 5.x layout)."""

    def __init__(self) -> None:
        raise TypeError("AutoConfig is not instantiated; use AutoConfig.from_pretrained(name_or_path)")

    @staticmethod
    def from_pretrained(name_or_path: str | os.PathLike, **kwargs: Any) -> ModernBertConfig:
        """Read config.json from a folder, a hub repo id or a bundled model name.

        Keyword arguments are `revision`, `cache_dir`, `local_files_only`, `token`, and config fields that
        override the file (`num_labels=3`, `classifier_pooling="mean"`, ...).
        Raises ValueError when the config's model_type is not "modernbert".
        """
        _check_name(name_or_path)
        return ModernBertConfig.from_pretrained(name_or_path, **kwargs)

    @staticmethod
    def for_model(model_type: str = "modernbert", **kwargs: Any) -> ModernBertConfig:
        """A fresh config with the given fields (`model_type` must be "modernbert")."""
        return ModernBertConfig.from_dict({"model_type": model_type, **kwargs})


class AutoTokenizer:
    """`AutoTokenizer.from_pretrained(name)` loads the ModernBERT tokenizer (`modernbert.Tokenizer`)."""

    def __init__(self) -> None:
        raise TypeError("AutoTokenizer is not instantiated; use AutoTokenizer.from_pretrained(name_or_path)")

    @staticmethod
    def from_pretrained(name_or_path: str | os.PathLike, **kwargs: Any) -> Tokenizer:
        """Load tokenizer.json (+ tokenizer_config.json, special_tokens_map.json) from a folder, a hub repo id
        or a bundled model name. Keyword arguments are those of `Tokenizer.from_pretrained`."""
        _check_name(name_or_path)
        return Tokenizer.from_pretrained(resolve_name(name_or_path), **kwargs)


class _AutoModel:
    """Shared loader: `_model_class.from_pretrained`, with the transformers keyword names."""

    _model_class: ClassVar[type[ModernBertPreTrainedModel]] = ModernBertModel

    def __init__(self) -> None:
        raise TypeError(
            f"{type(self).__name__} is not instantiated; use {type(self).__name__}.from_pretrained(name_or_path) "
            f"or {type(self).__name__}.from_config(config)"
        )

    @classmethod
    def from_pretrained(cls, name_or_path: str | os.PathLike, **kwargs: Any) -> Any:
        """Load the checkpoint into the matching ModernBERT class.

        Args:
            name_or_path: a folder, a hub repo id or a bundled model name.
            **kwargs: as the model classes' `from_pretrained`: `dtype` ("auto", a torch dtype or its name),
                `attn_implementation` ("sdpa", "eager", "flash_attention_2"), `device`, `revision`, `cache_dir`,
                `local_files_only`, `token`, `config` (a ModernBertConfig), and config fields that override
                config.json (`num_labels=3`, `id2label={...}`, ...).

        Raises:
            ValueError: the checkpoint's model_type is not "modernbert" (the message names the type found), or its
                weights do not match the model.
            FileNotFoundError: nothing is found under that name.
        """
        _check_name(name_or_path)
        return cls._model_class.from_pretrained(name_or_path, **kwargs)

    @classmethod
    def from_config(cls, config: ModernBertConfig, **kwargs: Any) -> Any:
        """A randomly initialised model of this kind (`attn_implementation=` may be given)."""
        if not isinstance(config, ModernBertConfig):
            raise TypeError(f"config must be a ModernBertConfig, got {type(config).__name__}")
        return cls._model_class(config, **kwargs)


class AutoModel(_AutoModel):
    """The bare encoder (`ModernBertModel`): last_hidden_state for every token."""

    _model_class = ModernBertModel


class AutoModelForMaskedLM(_AutoModel):
    """`ModernBertForMaskedLM`: vocabulary logits for every token."""

    _model_class = ModernBertForMaskedLM


class AutoModelForSequenceClassification(_AutoModel):
    """`ModernBertForSequenceClassification`: one row of label logits per sequence."""

    _model_class = ModernBertForSequenceClassification


class AutoModelForTokenClassification(_AutoModel):
    """`ModernBertForTokenClassification`: label logits for every token."""

    _model_class = ModernBertForTokenClassification


class AutoModelForQuestionAnswering(_AutoModel):
    """`ModernBertForQuestionAnswering`: start and end logits for every token."""

    _model_class = ModernBertForQuestionAnswering


class AutoModelForMultipleChoice(_AutoModel):
    """`ModernBertForMultipleChoice`: one logit per choice."""

    _model_class = ModernBertForMultipleChoice


def _check_name(name_or_path: Any) -> None:
    if not isinstance(name_or_path, (str, os.PathLike)):
        raise TypeError(
            f"name_or_path must be a folder path, a hub repo id or a bundled model name (str), got "
            f"{type(name_or_path).__name__}"
        )
