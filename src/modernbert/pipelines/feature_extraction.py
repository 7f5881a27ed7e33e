"""feature-extraction: the model's first output for every token, as transformers' FeatureExtractionPipeline."""

from __future__ import annotations

from typing import Any

from torch import Tensor

from ..model import ModernBertPreTrainedModel
from .base import Batch, Pipeline, as_text_list, check_texts, input_name, token_ids

_TOKENIZER_OPTIONS = frozenset({"truncation", "max_length", "add_special_tokens", "padding"})


class FeatureExtractionPipeline(Pipeline):
    """Hidden states of every token (the first output of the model: last_hidden_state for the bare encoder).

    Call options (also accepted by the constructor as defaults):
        return_tensors: return torch tensors (on the CPU) instead of nested lists.
        truncation: truncate inputs longer than the tokenizer's model_max_length.
        tokenize_kwargs: other tokenizer arguments (max_length, add_special_tokens).

    Returns, as transformers: for one text a (1, tokens, hidden) nested list (or tensor); for a list of texts,
    a list of those (`run` gives one (tokens, hidden) nested list per text). Special tokens ([CLS], [SEP]) are
    included. For sentence embeddings (one vector per text, pooled and normalised like sentence-transformers) use
    `SentenceEncoder` or the "sentence-embeddings" task.
    """

    task = "feature-extraction"
    model_class = ModernBertPreTrainedModel
    default_model = "answerdotai/ModernBERT-base"

    def _sanitize(
        self,
        truncation: bool | str | None = None,
        tokenize_kwargs: dict[str, Any] | None = None,
        return_tensors: bool | None = None,
    ) -> dict[str, Any]:
        tokenize_kwargs = dict(tokenize_kwargs or {})
        unknown = set(tokenize_kwargs) - _TOKENIZER_OPTIONS
        if unknown:
            raise TypeError(f"tokenize_kwargs holds {sorted(unknown)}; accepted: {sorted(_TOKENIZER_OPTIONS)}")
        if truncation is not None:
            if "truncation" in tokenize_kwargs:
                raise ValueError(
                    "truncation parameter defined twice (given as keyword argument as well as in tokenize_kwargs)"
                )
            tokenize_kwargs["truncation"] = truncation
        tokenize_kwargs.pop("padding", None)  # inputs are packed, never padded
        options: dict[str, Any] = {}
        if tokenize_kwargs:
            options["tokenize_kwargs"] = tokenize_kwargs
        if return_tensors is not None:
            options["return_tensors"] = bool(return_tensors)
        return options

    def run(self, inputs: list[str] | list[list[int]], **options: Any) -> list[list[list[float]]]:
        """The features of each text (or of each list of token ids, already tokenized, run as given): per text,
        one list of floats per token, (tokens, hidden) as nested lists.

        Per-input shape: `[[float, ...], ...]`, one row per token, special tokens included (transformers' leading
        dimension of 1 dropped); for a model whose first output is one vector per sequence (a classifier's
        logits), that vector, `[float, ...]`. Options as `__call__`'s; return_tensors=True is refused, as `run`
        returns plain lists.
        """
        if options.get("return_tensors"):
            raise ValueError(
                "run returns plain (JSON-safe) lists; for torch tensors call the pipeline: pipe(texts, "
                "return_tensors=True)"
            )
        return super().run(inputs, **options)

    def __call__(self, inputs: str | list[str], **kwargs: Any) -> Any:
        """Features of one text or a list of texts. See the class docstring for options and output."""
        options, batch_size, progress = self._options(kwargs)
        texts, batched = as_text_list(inputs)
        features = self._predict(texts, options, batch_size, progress, single=not batched)
        outputs: list[Any] = [f.unsqueeze(0) for f in features]  # (1, tokens, hidden), as transformers
        if not options.get("return_tensors", False):
            outputs = [o.tolist() for o in outputs]
        return outputs if batched else outputs[0]

    def _predict(
        self, items: list[Any], options: dict[str, Any], batch_size: int, progress: bool, *, single: bool = False
    ) -> list[Tensor]:
        ids = token_ids(items)  # already tokenized (special tokens included): run as given
        if ids is None:
            texts = check_texts(items, single)
            ids = self.tokenizer(texts, return_attention_mask=False, **options.get("tokenize_kwargs", {}))["input_ids"]
        model = self.model

        def step(batch: Batch) -> list[Tensor]:
            first = model(input_ids=batch.input_ids, cu_seqlens=batch.cu_seqlens)[0]
            if first.shape[0] == batch.input_ids.shape[0]:  # per token (tokens, ...)
                parts = batch.split(first)
            else:  # per sequence (batch, ...)
                parts = list(first)
            return [p.cpu() for p in parts]

        return self._run(ids, step, batch_size, progress, lambda i: input_name(i, single))

    def _too_long_advice(self, limit: int) -> str:
        if self.tokenizer.model_max_length <= limit:
            return "pass truncation=True to cut it"
        return f"pass truncation=True, tokenize_kwargs={{'max_length': {limit}}} to cut it"
