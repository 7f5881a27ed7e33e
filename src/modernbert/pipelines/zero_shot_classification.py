"""zero-shot-classification: labels chosen at call time, scored by an NLI sequence classifier, as transformers does.

Each (text, candidate label) becomes a premise / hypothesis pair, `[CLS] text [SEP] This example is <label>. [SEP]`,
and the classifier's logit for "entailment" says how well the label fits. With one label per text
(multi_label=False) the entailment logits are softmaxed across the labels; with multi_label=True (or a single
candidate label) each label gets its own softmax of entailment against contradiction.

The model's config.label2id names the classes: the entailment class is the label starting with "entail" (any
case), as in transformers. The contradiction class is the label starting with "contradict"; a model without one
(a two-class "entailment" / "not_entailment" model) uses transformers' rule, the last class when entailment is
the first and the first class otherwise. transformers applies that rule to every model, which for labels such as
neutral / entailment / contradiction (in that order) sets entailment against neutral; here it is the contradiction.
"""

from __future__ import annotations

from string import Formatter
from typing import Any, TypedDict

import numpy as np

from ..config import ModernBertConfig
from ..model import ModernBertForSequenceClassification
from ..tokenizer import Tokenizer
from .base import Batch, Pipeline, as_list, check_text, check_texts, input_name
from .text_classification import softmax

DEFAULT_HYPOTHESIS_TEMPLATE = "This example is {}."


class ZeroShotResult(TypedDict):
    """The candidate labels of one text, best first."""

    sequence: str  # the text
    labels: list[str]  # the candidate labels, by decreasing score
    scores: list[float]  # their probabilities (summing to 1 unless multi_label)


def nli_label_ids(config: ModernBertConfig) -> tuple[int, int]:
    """(entailment id, contradiction id) from config.label2id; a ValueError naming the expected labels if the model
    has no entailment class. See the module docstring for the rule."""
    label2id = config.label2id or {}
    names = ", ".join(repr(name) for name in label2id) or "none"
    if (config.num_labels or 0) < 2:
        raise ValueError(
            f"zero-shot classification needs an NLI classifier with at least 2 classes, but the model has "
            f"{config.num_labels} (labels: {names}); use a checkpoint fine-tuned on NLI, with config.label2id such "
            "as {'entailment': 0, 'neutral': 1, 'contradiction': 2}"
        )
    entailment = next((int(i) for name, i in label2id.items() if name.lower().startswith("entail")), None)
    if entailment is None:
        raise ValueError(
            f"the model's config.label2id has no entailment label (labels: {names}); zero-shot classification needs "
            "an NLI classifier whose labels name the classes, one of them starting with 'entail' (any case), e.g. "
            "{'entailment': 0, 'neutral': 1, 'contradiction': 2}. If this model was trained on NLI with unnamed "
            "labels, set config.id2label and config.label2id to those names (from_pretrained(..., id2label=..., "
            "label2id=...))"
        )
    contradiction = next((int(i) for name, i in label2id.items() if name.lower().startswith("contradict")), None)
    if contradiction is None:
        contradiction = -1 if entailment == 0 else 0  # transformers' rule
    return entailment, contradiction % config.num_labels


def parse_labels(labels: Any) -> list[str]:
    """Candidate labels as a list: a str is split at commas (as transformers does), a list is kept; a ValueError
    or TypeError for no labels, a blank one or one that is not a str."""
    if labels is None:
        raise ValueError("no candidate_labels: pass candidate_labels=['sports', 'politics'] (or 'sports, politics')")
    if isinstance(labels, str):
        parsed = [label.strip() for label in labels.split(",") if label.strip()]
    elif isinstance(labels, (list, tuple)):
        parsed = list(labels)
        for i, label in enumerate(parsed):
            if not isinstance(label, str):
                raise TypeError(f"candidate_labels[{i}] is a {type(label).__name__} ({label!r:.60}); labels are str")
            if not label.strip():
                raise ValueError(f"candidate_labels[{i}] is an empty label; give every label some text")
    else:
        raise TypeError(
            f"candidate_labels is a {type(labels).__name__}; pass a list of str or one str of comma-separated labels"
        )
    if not parsed:
        raise ValueError(
            f"candidate_labels={labels!r} holds no label; pass at least one, as a list ['sports', 'politics'] or a "
            "comma-separated str 'sports, politics'"
        )
    return parsed


def check_template(template: Any) -> str:
    """`template` when it holds a `{}` for the label (and no other placeholder); a ValueError otherwise."""
    if not isinstance(template, str):
        raise TypeError(
            f"hypothesis_template is a {type(template).__name__}; pass a str such as 'This example is {{}}.'"
        )
    try:
        fields = [field for _, field, _, _ in Formatter().parse(template) if field is not None]
    except ValueError as e:
        raise ValueError(f"hypothesis_template={template!r} is not a valid format string ({e}); write the label's "
                         "place as {} and any literal brace as {{ or }}") from None
    if not fields:
        raise ValueError(f"hypothesis_template={template!r} has no {{}} where the label goes; write it as, e.g., "
                         "'This example is {}.'")
    if any(field not in ("", "0") for field in fields):
        raise ValueError(f"hypothesis_template={template!r} has a placeholder other than {{}}; the label is its only "
                         "value: write its place as {} (and any literal brace as {{ or }})")
    return template


class ZeroShotClassificationPipeline(Pipeline):
    """Classify texts into labels chosen at call time, with an NLI sequence classifier, as transformers'
    ZeroShotClassificationPipeline does.

    Inputs: a str or a list of str, and the candidate labels: `zsc(text, candidate_labels=[...])` or
    `zsc(text, [...])`.

    Call options (also accepted by the constructor as defaults):
        candidate_labels: the labels to choose from: a list of str, or one str of comma-separated labels.
        hypothesis_template: the hypothesis each label becomes (default "This example is {}."); `{}` is the label.
        multi_label: False (default): the labels exclude each other, scores sum to 1 (softmax of the entailment
            logits across labels). True: each label is scored alone (softmax of its entailment logit against its
            contradiction logit), as for a single candidate label.

    The text is cut (only the text, never the hypothesis) so that each pair fits the model. Returns, as
    transformers: for a str, `{"sequence": str, "labels": [str, ...], "scores": [float, ...]}` with the labels
    best first; for a list, a list of those. `run` gives one such dict per input.

    Raises at construction a ValueError when the model's config.label2id has no entailment label (see
    `nli_label_ids`).
    """

    task = "zero-shot-classification"
    model_class = ModernBertForSequenceClassification

    def __init__(self, model: ModernBertForSequenceClassification, tokenizer: Tokenizer, **kwargs: Any) -> None:
        super().__init__(model, tokenizer, **kwargs)
        self.entailment_id, self.contradiction_id = nli_label_ids(self.model.config)

    def _sanitize(
        self,
        candidate_labels: Any = None,
        hypothesis_template: Any = None,
        multi_label: Any = None,
    ) -> dict[str, Any]:
        options: dict[str, Any] = {}
        if candidate_labels is not None:
            options["candidate_labels"] = parse_labels(candidate_labels)
        if hypothesis_template is not None:
            options["hypothesis_template"] = check_template(hypothesis_template)
        if multi_label is not None:
            if not isinstance(multi_label, (bool, np.bool_)):
                raise TypeError(f"multi_label={multi_label!r} must be True or False")
            options["multi_label"] = bool(multi_label)
        return options

    def run(self, inputs: list[str], **options: Any) -> list[ZeroShotResult]:
        """Score the candidate labels for each text: per input, `{"sequence": str, "labels": [str, ...],
        "scores": [float, ...]}`, labels best first. Options as `__call__`'s (candidate_labels is required)."""
        return super().run(inputs, **options)

    def __call__(self, sequences: str | list[str], *args: Any, **kwargs: Any) -> Any:
        """Classify one text or a list of texts. See the class docstring for options and output."""
        if args:
            if len(args) > 1 or "candidate_labels" in kwargs:
                raise TypeError(
                    f"unexpected extra argument(s) {args!r:.80}: pass the texts, then the candidate labels once "
                    "(positionally or as candidate_labels=)"
                )
            kwargs["candidate_labels"] = args[0]
        options, batch_size, progress = self._options(kwargs)
        single = isinstance(sequences, str)
        items = [sequences] if single else as_list(sequences, "text")
        results = self._predict(items, options, batch_size, progress, single=single)
        return results[0] if single else results

    def _predict(
        self, items: list[Any], options: dict[str, Any], batch_size: int, progress: bool, *, single: bool = False
    ) -> list[ZeroShotResult]:
        texts = check_texts(items, single)
        for i, text in enumerate(texts):
            check_text(text, input_name(i, single))
        labels = parse_labels(options.get("candidate_labels"))
        template = options.get("hypothesis_template", DEFAULT_HYPOTHESIS_TEMPLATE)
        hypotheses = [template.format(label) for label in labels]
        n = len(labels)
        sequences = self._encode([(text, hypothesis) for text in texts for hypothesis in hypotheses])
        model = self.model

        def step(batch: Batch) -> list[np.ndarray]:
            logits = model(input_ids=batch.input_ids, cu_seqlens=batch.cu_seqlens).logits
            return list(logits.float().cpu().numpy())

        def where(i: int) -> str:
            return f"{input_name(i // n, single)} with candidate label {labels[i % n]!r:.40}"

        logits = np.stack(self._run(sequences, step, batch_size, progress, where)).reshape(len(texts), n, -1)
        if options.get("multi_label", False) or n == 1:
            pair = logits[..., [self.contradiction_id, self.entailment_id]]  # (texts, labels, 2)
            scores = softmax(pair)[..., 1]
        else:
            scores = softmax(logits[..., self.entailment_id])  # (texts, labels)
        results: list[ZeroShotResult] = []
        for text, row in zip(texts, scores):
            order = list(reversed(row.argsort()))  # transformers' order, ties included
            results.append({"sequence": text, "labels": [labels[j] for j in order], "scores": row[order].tolist()})
        return results

    def _encode(self, pairs: list[tuple[str, str]]) -> list[list[int]]:
        """Token ids of each (text, hypothesis): the text cut to fit the model, the hypothesis kept whole. A pair
        whose hypothesis alone is too long is left whole, as transformers does (the length check then names it)."""
        max_length = min(self.tokenizer.model_max_length, self.model.config.max_position_embeddings)
        kwargs: dict[str, Any] = {"truncation": "only_first", "max_length": max_length, "return_attention_mask": False}
        try:
            return self.tokenizer(pairs, **kwargs)["input_ids"]
        except ValueError as e:
            if "too short" not in str(e):
                raise
        ids = []
        for pair in pairs:
            try:
                ids.append(self.tokenizer([pair], **kwargs)["input_ids"][0])
            except ValueError as e:
                if "too short" not in str(e):
                    raise
                ids.append(self.tokenizer([pair], return_attention_mask=False)["input_ids"][0])
        return ids

    def _too_long_advice(self, limit: int) -> str:
        return "its hypothesis alone is too long for the model: shorten the candidate label or hypothesis_template"
