"""ModernBERT: the encoder from Answer.AI and LightOn, faithfully and fast.

    from modernbert import pipeline, AutoTokenizer, AutoModelForMaskedLM

The package needs torch, tokenizers, safetensors, huggingface_hub and numpy; never transformers.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

# Public names and the submodule that defines each. They load on first use, so `import modernbert`
# (and the `modernbert --help` command line) does not pay for torch until a model is needed.
_EXPORTS: dict[str, str] = {
    "AutoConfig": "auto",
    "AutoModel": "auto",
    "AutoModelForMaskedLM": "auto",
    "AutoModelForMultipleChoice": "auto",
    "AutoModelForQuestionAnswering": "auto",
    "AutoModelForSequenceClassification": "auto",
    "AutoModelForTokenClassification": "auto",
    "AutoTokenizer": "auto",
    "bundled_models": "hub",
    "ModernBertConfig": "config",
    "ModernBertForMaskedLM": "model",
    "ModernBertForMultipleChoice": "model",
    "ModernBertForQuestionAnswering": "model",
    "ModernBertForSequenceClassification": "model",
    "ModernBertForTokenClassification": "model",
    "ModernBertModel": "model",
    "ModernBertPreTrainedModel": "model",
    "FeatureExtractionPipeline": "pipelines",
    "FillMaskPipeline": "pipelines",
    "Pipeline": "pipelines",
    "QuestionAnsweringPipeline": "pipelines",
    "SentenceEmbeddingPipeline": "pipelines",
    "SentenceEncoder": "pipelines",
    "SentenceSimilarityPipeline": "pipelines",
    "TextClassificationPipeline": "pipelines",
    "TokenClassificationPipeline": "pipelines",
    "cos_sim": "pipelines",
    "pipeline": "pipelines",
    "BatchEncoding": "tokenizer",
    "Tokenizer": "tokenizer",
    "CLIError": "errors",
    "DiskFullError": "errors",
    "HubUnavailableError": "errors",
    "LoadWarning": "errors",
    "MissingTokenizerError": "errors",
    "TokenizerInputError": "errors",
}


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        value = getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'modernbert' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)


if TYPE_CHECKING:
    from .auto import (  # noqa: F401
        AutoConfig,
        AutoModel,
        AutoModelForMaskedLM,
        AutoModelForMultipleChoice,
        AutoModelForQuestionAnswering,
        AutoModelForSequenceClassification,
        AutoModelForTokenClassification,
        AutoTokenizer,
    )
    from .config import ModernBertConfig  # noqa: F401
    from .errors import (  # noqa: F401
        CLIError,
        DiskFullError,
        HubUnavailableError,
        LoadWarning,
        MissingTokenizerError,
        TokenizerInputError,
    )
    from .hub import bundled_models  # noqa: F401
    from .model import (  # noqa: F401
        ModernBertForMaskedLM,
        ModernBertForMultipleChoice,
        ModernBertForQuestionAnswering,
        ModernBertForSequenceClassification,
        ModernBertForTokenClassification,
        ModernBertModel,
        ModernBertPreTrainedModel,
    )
    from .pipelines import (  # noqa: F401
        FeatureExtractionPipeline,
        FillMaskPipeline,
        Pipeline,
        QuestionAnsweringPipeline,
        SentenceEmbeddingPipeline,
        SentenceEncoder,
        SentenceSimilarityPipeline,
        TextClassificationPipeline,
        TokenClassificationPipeline,
        cos_sim,
        pipeline,
    )
    from .tokenizer import BatchEncoding, Tokenizer  # noqa: F401

__all__ = sorted([*_EXPORTS, "__version__"])
