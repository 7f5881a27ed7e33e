"""`pipeline(task, model=...)`: transformers' pipelines for ModernBERT, with the same task names and outputs.

    from modernbert import pipeline

    fill = pipeline("fill-mask", model="answerdotai/ModernBERT-base")
    fill("The capital of France is [MASK].")          # transformers' shapes
    fill.run(["The capital of France is [MASK]."])    # one JSON-safe result per input, one shape per task

Tasks: fill-mask, text-classification (alias sentiment-analysis), token-classification (alias ner),
question-answering, zero-shot-classification, feature-extraction, sentence-embeddings and sentence-similarity.
"""

from __future__ import annotations

import os
from typing import Any

import torch

from ..checkpoint import resolve_dtype
from ..config import ModernBertConfig
from ..hub import resolve_folder
from ..model import ModernBertModel, ModernBertPreTrainedModel
from .base import (
    DEFAULT_BATCH_SIZE,
    Batch,
    MissingTokenizerError,
    Pipeline,
    Progress,
    default_device,
    load_tokenizer,
    resolve_device,
    run_batched,
    tokenizer_for_folder,
)
from .embeddings import SentenceEmbeddingPipeline, SentenceEncoder, SentenceSimilarityPipeline, cos_sim
from .feature_extraction import FeatureExtractionPipeline
from .fill_mask import FillMaskCandidate, FillMaskPipeline
from .question_answering import Answer, QuestionAnsweringPipeline
from .text_classification import ClassificationResult, TextClassificationPipeline
from .token_classification import GroupedEntity, TokenClassificationPipeline, TokenEntity
from .zero_shot_classification import ZeroShotClassificationPipeline, ZeroShotResult

__all__ = [
    "SUPPORTED_TASKS",
    "TASK_ALIASES",
    "Answer",
    "Batch",
    "ClassificationResult",
    "FeatureExtractionPipeline",
    "FillMaskCandidate",
    "FillMaskPipeline",
    "GroupedEntity",
    "MissingTokenizerError",
    "Pipeline",
    "Progress",
    "QuestionAnsweringPipeline",
    "SentenceEmbeddingPipeline",
    "SentenceEncoder",
    "SentenceSimilarityPipeline",
    "TextClassificationPipeline",
    "TokenClassificationPipeline",
    "TokenEntity",
    "ZeroShotClassificationPipeline",
    "ZeroShotResult",
    "cos_sim",
    "pipeline",
    "run_batched",
]

SUPPORTED_TASKS: dict[str, type[Pipeline]] = {
    "fill-mask": FillMaskPipeline,
    "text-classification": TextClassificationPipeline,
    "token-classification": TokenClassificationPipeline,
    "question-answering": QuestionAnsweringPipeline,
    "zero-shot-classification": ZeroShotClassificationPipeline,
    "feature-extraction": FeatureExtractionPipeline,
    "sentence-embeddings": SentenceEmbeddingPipeline,
    "sentence-similarity": SentenceSimilarityPipeline,
}
TASK_ALIASES: dict[str, str] = {"sentiment-analysis": "text-classification", "ner": "token-classification"}

# The task a checkpoint was trained for, from config.json's `architectures` (for pipeline(model=...) alone).
_ARCHITECTURE_TASKS: dict[str, str] = {
    "ModernBertForMaskedLM": "fill-mask",
    "ModernBertForSequenceClassification": "text-classification",
    "ModernBertForTokenClassification": "token-classification",
    "ModernBertForQuestionAnswering": "question-answering",
    "ModernBertModel": "feature-extraction",
}
_SENTENCE_TASKS = ("sentence-embeddings", "sentence-similarity")


def _task_names() -> str:
    aliases = ", ".join(f"{a} (= {t})" for a, t in TASK_ALIASES.items())
    return f"{', '.join(SUPPORTED_TASKS)}; aliases: {aliases}"


def check_task(task: Any) -> str:
    """The canonical task name; a ValueError that lists the valid ones otherwise."""
    if not isinstance(task, str):
        raise TypeError(f"task must be a str, got {type(task).__name__}; valid tasks: {_task_names()}")
    name = TASK_ALIASES.get(task, task)
    if name not in SUPPORTED_TASKS:
        raise ValueError(f"unknown task {task!r}; valid tasks: {_task_names()}")
    return name


def pipeline(
    task: str | None = None,
    model: str | os.PathLike | ModernBertPreTrainedModel | SentenceEncoder | None = None,
    tokenizer: str | os.PathLike | Any | None = None,
    device: str | int | torch.device | None = None,
    dtype: str | torch.dtype | None = "auto",
    batch_size: int = DEFAULT_BATCH_SIZE,
    *,
    progress: bool = False,
    attn_implementation: str | None = None,
    revision: str | None = None,
    cache_dir: str | os.PathLike | None = None,
    local_files_only: bool = False,
    token: str | bool | None = None,
    model_kwargs: dict[str, Any] | None = None,
    **kwargs: Any,
) -> Any:
    """Build the pipeline for a task, as `transformers.pipeline` does.

    Args:
        task: "fill-mask", "text-classification" ("sentiment-analysis"), "token-classification" ("ner"),
            "question-answering", "zero-shot-classification" (an NLI sequence classifier), "feature-extraction",
            "sentence-embeddings" or "sentence-similarity". None: taken from the checkpoint's config.json
            `architectures`.
        model: a folder, a hub repo id, a bundled model name, or a loaded model (a ModernBert* model, or a
            SentenceEncoder for the sentence tasks). None: the task's default ("answerdotai/ModernBERT-base" for
            fill-mask and feature-extraction).
        tokenizer: a `Tokenizer`, or a folder / hub id to load one from. None: the model's folder (for a loaded
            model, its `name_or_path`).
        device: "cpu", "cuda", "cuda:1", an int (-1 = CPU) or a torch.device. None: CUDA when available (a loaded
            model stays where it is).
        dtype: "auto" (the checkpoint's dtype), a torch dtype or its name ("bfloat16", ...).
        batch_size: inputs per forward pass; a list of inputs runs in length-sorted batches, results in input order.
        progress: show a progress bar over the inputs (tqdm if installed, else a counter on stderr).
        attn_implementation, revision, cache_dir, local_files_only, token: passed to `from_pretrained`.
        model_kwargs: more `from_pretrained` arguments (config overrides such as {"num_labels": 3}).
        **kwargs: the task's options, used as defaults for every call (top_k=..., aggregation_strategy=...,
            candidate_labels=...).

    Returns:
        The task's pipeline object; call it on a text or a list of texts.

    Raises:
        ValueError: unknown task (the message lists the valid ones), no model for a task without a default, a
            checkpoint that is not ModernBERT, a model folder without a tokenizer (`MissingTokenizerError`).
        TypeError: a model of the wrong kind for the task, or options the task does not know.
    """
    load_kwargs: dict[str, Any] = dict(model_kwargs or {})
    if attn_implementation is not None:
        load_kwargs["attn_implementation"] = attn_implementation
    hub_kwargs = {"revision": revision, "cache_dir": cache_dir, "local_files_only": local_files_only, "token": token}
    device_ = resolve_device(device)

    if task is None:
        task = _infer_task(model, hub_kwargs)
    task = check_task(task)
    cls = SUPPORTED_TASKS[task]
    options = {"batch_size": batch_size, "progress": progress, **kwargs}

    if task in _SENTENCE_TASKS:
        if isinstance(model, SentenceEncoder):
            encoder = model
        elif isinstance(model, ModernBertModel):
            encoder = SentenceEncoder(model, _tokenizer_of_loaded(model, tokenizer))
        elif isinstance(model, (str, os.PathLike)):
            encoder = SentenceEncoder.from_pretrained(
                model, device=device_, dtype=dtype, tokenizer=tokenizer, **hub_kwargs, **load_kwargs
            )
        elif model is None:
            raise ValueError(f"the {task!r} task has no default model; pass model=<folder or hub id>")
        else:
            raise TypeError(
                f"model for {task!r} must be a folder, a hub id, a SentenceEncoder or a ModernBertModel, got "
                f"{type(model).__name__}"
            )
        if device is not None and encoder.device != device_:
            encoder.model.to(device_)
        return cls(encoder, **options)  # type: ignore[call-arg]

    if model is None:
        if cls.default_model is None:
            raise ValueError(
                f"the {task!r} task has no default model; pass model=<folder, hub id or loaded model> "
                f"(a {cls.model_class.__name__} checkpoint)"
            )
        model = cls.default_model
    if isinstance(model, (str, os.PathLike)):
        name = os.fspath(model)
        folder = resolve_folder(name, **hub_kwargs)  # a hub snapshot holds every json file: tokenizer included
        tok = load_tokenizer(tokenizer, **_tokenizer_hub_kwargs(hub_kwargs)) if tokenizer is not None \
            else tokenizer_for_folder(folder, name)
        model_cls = ModernBertModel if cls.model_class is ModernBertPreTrainedModel else cls.model_class
        loaded = model_cls.from_pretrained(folder, dtype=dtype, device=device_ or default_device(), **load_kwargs)
        loaded.name_or_path = name
    elif isinstance(model, ModernBertPreTrainedModel):
        loaded = model
        tok = _tokenizer_of_loaded(model, tokenizer)
        if device_ is not None:
            loaded.to(device_)
        if dtype not in (None, "auto"):
            loaded.to(resolve_dtype(dtype, loaded.config))
    else:
        raise TypeError(
            f"model must be a folder, a hub repo id, a bundled model name or a loaded ModernBERT model, got "
            f"{type(model).__name__}"
        )
    return cls(loaded, tok, **options)


def _tokenizer_hub_kwargs(hub_kwargs: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in hub_kwargs.items() if v not in (None, False)}


def _tokenizer_of_loaded(model: ModernBertPreTrainedModel, tokenizer: Any) -> Any:
    if tokenizer is not None:
        return load_tokenizer(tokenizer)
    name = getattr(model, "name_or_path", None)
    if not name:
        raise ValueError(
            f"a loaded {type(model).__name__} was passed without tokenizer=, and the model does not say where it "
            "was loaded from (model.name_or_path); pass tokenizer=<Tokenizer, folder or hub id>"
        )
    try:
        return load_tokenizer(name)
    except FileNotFoundError as e:
        raise MissingTokenizerError(
            f"no tokenizer for the loaded model: {e} Pass tokenizer=<Tokenizer, folder or hub id>."
        ) from None


def _infer_task(model: Any, hub_kwargs: dict[str, Any]) -> str:
    if model is None:
        raise ValueError(f"pass a task or a model (or both); valid tasks: {_task_names()}")
    if isinstance(model, SentenceEncoder):
        return "sentence-embeddings"
    if isinstance(model, ModernBertPreTrainedModel):
        architectures = [type(model).__name__]
    elif isinstance(model, (str, os.PathLike)):
        architectures = ModernBertConfig.from_pretrained(model, **hub_kwargs).architectures or []
    else:
        raise TypeError(f"cannot infer the task of a {type(model).__name__}; pass task=")
    for arch in architectures:
        if arch in _ARCHITECTURE_TASKS:
            return _ARCHITECTURE_TASKS[arch]
    raise ValueError(
        f"cannot infer the task of {model!r:.80} (architectures {architectures}); pass task= ({_task_names()})"
    )
