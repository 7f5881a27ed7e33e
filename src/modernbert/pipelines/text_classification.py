"""text-classification (alias sentiment-analysis): labels and scores, in transformers' output format."""

from __future__ import annotations

from typing import Any, Literal, TypedDict

import numpy as np

from ..model import ModernBertForSequenceClassification
from .base import Batch, Pipeline, as_list, check_text, input_name, token_ids

FunctionToApply = Literal["softmax", "sigmoid", "none"]
FUNCTIONS: tuple[str, ...] = ("softmax", "sigmoid", "none")
_TOKENIZER_OPTIONS = frozenset({"truncation", "max_length", "add_special_tokens", "padding"})


class ClassificationResult(TypedDict):
    """One label and its score."""

    label: str  # config.id2label of the class
    score: float  # after function_to_apply (a probability for softmax / sigmoid, the raw logit for "none")


def sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def softmax(x: np.ndarray) -> np.ndarray:
    shifted = np.exp(x - np.max(x, axis=-1, keepdims=True))
    return shifted / shifted.sum(axis=-1, keepdims=True)


class TextClassificationPipeline(Pipeline):
    """Classify texts or text pairs with a sequence-classification model.

    Inputs: a str, a dict {"text": ..., "text_pair": ...} for a pair, or a list of either.

    Call options (also accepted by the constructor as defaults):
        top_k: how many labels to return, best first; None returns all of them. When top_k is not given, each
            input gets only its best label as one dict (transformers' legacy format, see below).
        function_to_apply: "softmax", "sigmoid" or "none". Default as transformers: "none" for regression,
            "sigmoid" for multi-label models or a single label, "softmax" otherwise.
        truncation, max_length, add_special_tokens: passed to the tokenizer.

    Returns, exactly as transformers: without top_k, `[{"label", "score"}]` for a str, a bare dict for a pair
    dict, and a list of dicts for a list; with top_k, a list of dicts per input (a list of such lists for a list).
    `run` always gives a list of dicts per input.
    """

    task = "text-classification"
    model_class = ModernBertForSequenceClassification

    def _sanitize(
        self,
        top_k: Any = "",
        function_to_apply: str | None = None,
        **tokenizer_kwargs: Any,
    ) -> dict[str, Any]:
        unknown = set(tokenizer_kwargs) - _TOKENIZER_OPTIONS
        if unknown:
            raise TypeError(
                f"TextClassificationPipeline got unexpected option(s) {sorted(unknown)}; options are top_k, "
                f"function_to_apply and the tokenizer's {sorted(_TOKENIZER_OPTIONS)}"
            )
        options: dict[str, Any] = {}
        tokenizer_kwargs.pop("padding", None)  # inputs are packed, never padded
        if tokenizer_kwargs:
            options["tokenizer_kwargs"] = tokenizer_kwargs
        if top_k is None or (isinstance(top_k, int) and not isinstance(top_k, bool)):
            if top_k is not None and top_k < 1:
                raise ValueError(f"top_k={top_k!r} must be a positive integer, or None for every label")
            options["top_k"] = top_k
            options["legacy"] = False
        elif top_k != "":
            raise ValueError(f"top_k={top_k!r} must be a positive integer, or None for every label")
        if function_to_apply is not None:
            name = str(getattr(function_to_apply, "value", function_to_apply)).lower()
            if name not in FUNCTIONS:
                raise ValueError(f"function_to_apply={function_to_apply!r} must be one of {FUNCTIONS}")
            options["function_to_apply"] = name
        return options

    def _default_function(self) -> str:
        config = self.model.config
        if config.problem_type == "regression":
            return "none"
        if config.problem_type == "multi_label_classification" or config.num_labels == 1:
            return "sigmoid"
        return "softmax"

    def run(self, inputs: list[str | dict[str, str]] | list[list[int]],
            **options: Any) -> list[list[ClassificationResult]]:
        """Classify each text (or text-pair dict): per input, a list of `{"label": str, "score": float}`.

        `inputs` may also be token ids, every input a list of ints with its special tokens (as the server and
        batch jobs hand them on after tokenizing once); they run as given, and the tokenizer options do not apply.

        Per-input shape: always a list, best label first, with transformers' top_k semantics: top_k not given →
        the best label only (a list of one); top_k=k → the k best; top_k=None → every label. Options as
        `__call__`'s.
        """
        return super().run(inputs, **options)

    def __call__(self, inputs: str | dict[str, str] | list[str | dict[str, str]], **kwargs: Any) -> Any:
        """Classify one input or a list of inputs. See the class docstring for options and output."""
        legacy_call = "top_k" not in kwargs
        options, batch_size, progress = self._options(kwargs)
        single = isinstance(inputs, (str, dict))
        items = [inputs] if single else as_list(inputs, "text")
        per_input = self._predict(items, options, batch_size, progress, single=single)
        legacy = options.get("legacy", True)
        results = [labels[0] if legacy else labels for labels in per_input]  # legacy: the best label, bare
        if single:
            result = results[0]
            return [result] if isinstance(inputs, str) and legacy_call else result
        return results

    def _predict(
        self, items: list[Any], options: dict[str, Any], batch_size: int, progress: bool, *, single: bool = False
    ) -> list[list[ClassificationResult]]:
        if all(isinstance(item, list) and item and all(isinstance(t, int) for t in item) for item in items):
            sequences = token_ids(items)  # already tokenized (special tokens included): run as given
        else:
            tokenizer_inputs = [_as_tokenizer_input(item, i, single) for i, item in enumerate(items)]
            sequences = self.tokenizer(tokenizer_inputs, return_attention_mask=False,
                                       **options.get("tokenizer_kwargs", {}))["input_ids"]
        model = self.model

        def step(batch: Batch) -> list[np.ndarray]:
            logits = model(input_ids=batch.input_ids, cu_seqlens=batch.cu_seqlens).logits
            return list(logits.float().cpu().numpy())

        logits = self._run(sequences, step, batch_size, progress, lambda i: input_name(i, single))
        function = options.get("function_to_apply") or self._default_function()
        top_k = options.get("top_k", 1)
        legacy = options.get("legacy", True)
        return [self._format(row, function, top_k, legacy) for row in logits]

    def _too_long_advice(self, limit: int) -> str:
        cut = "truncation=True" if self.tokenizer.model_max_length <= limit else f"truncation=True, max_length={limit}"
        return f"pass {cut} to cut it"

    def _format(self, logits: np.ndarray, function: str, top_k: int | None, legacy: bool) -> list[ClassificationResult]:
        if function == "sigmoid":
            scores = sigmoid(logits)
        elif function == "softmax":
            scores = softmax(logits)
        else:
            scores = logits
        id2label = self.model.config.id2label
        if top_k == 1 and legacy:
            return [{"label": id2label[scores.argmax().item()], "score": scores.max().item()}]
        results: list[ClassificationResult] = [
            {"label": id2label[i], "score": score.item()} for i, score in enumerate(scores)
        ]
        if not legacy:
            results.sort(key=lambda x: x["score"], reverse=True)
            if top_k is not None:
                results = results[:top_k]
        return results


def _as_tokenizer_input(item: Any, index: int, single: bool) -> str | tuple[str, str]:
    where = input_name(index, single)
    if isinstance(item, str):
        check_text(item, where)
        return item
    if isinstance(item, dict):
        unknown = set(item) - {"text", "text_pair"}
        if "text" not in item or unknown:
            raise ValueError(
                f"{where} is a dict with keys {sorted(item)}; a text pair is {{'text': ..., 'text_pair': ...}}"
            )
        text, pair = item["text"], item.get("text_pair")
        for name, value in (("text", text), ("text_pair", pair)):
            if (value is not None or name == "text") and not isinstance(value, str):
                raise TypeError(f"{where}[{name!r}] is a {type(value).__name__}; it must be a str")
        check_text(text, f"{where}['text']")
        if pair is not None and not pair.strip():
            raise ValueError(
                f"{where}['text_pair'] is an empty text" + (" (only whitespace)" if pair else "")
                + "; give the pair some text, or leave text_pair out to classify the text alone"
            )
        return (text, pair) if pair else text
    if isinstance(item, (list, tuple)):
        raise ValueError(
            f"{where} is a {type(item).__name__}; to classify a text pair send a dict "
            '{"text": "My text", "text_pair": "My pair"}'
        )
    raise TypeError(f"{where} is a {type(item).__name__} ({item!r:.60}); pass a str or a text-pair dict")
