"""fill-mask: the most likely tokens at each [MASK], in transformers' FillMaskPipeline output format."""

from __future__ import annotations

import logging
from typing import Any, TypedDict

import numpy as np
import torch

from ..model import ModernBertForMaskedLM
from .base import Batch, Pipeline, as_text_list, check_texts, input_name, token_ids

logger = logging.getLogger(__name__)


class FillMaskCandidate(TypedDict):
    """One prediction for one [MASK]."""

    score: float  # probability of the token at this mask (softmax over the whole vocabulary)
    token: int  # the predicted token id
    token_str: str  # the token decoded on its own
    sequence: str  # the input with this token in place of the mask


class FillMaskPipeline(Pipeline):
    """Predict the token behind each mask token of a text.

    Call options (also accepted by the constructor as defaults):
        top_k: number of candidates per mask (default 5; capped by the number of targets).
        targets: a token or list of tokens to restrict the candidates to; a target that is not in the vocabulary
            is tokenized and its first token used (with a warning).
        tokenizer_kwargs: extra keyword arguments for the tokenizer (e.g. {"truncation": True}).

    Returns, as transformers does: for one text with one mask, a list of `FillMaskCandidate`; with several masks,
    one such list per mask (and `sequence` then keeps the special tokens); for a list of texts, one result per text
    (a list holding a single text gives that text's result, not a list of one). `run` always gives, per text, one
    list of candidates per mask.
    """

    task = "fill-mask"
    model_class = ModernBertForMaskedLM
    default_model = "answerdotai/ModernBERT-base"

    def _sanitize(
        self,
        top_k: int | None = None,
        targets: str | list[str] | None = None,
        tokenizer_kwargs: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        if self.tokenizer.mask_token_id is None:
            raise ValueError("the tokenizer defines no mask_token, so the fill-mask pipeline cannot find the masks")
        options: dict[str, Any] = {}
        if top_k is not None:
            if not isinstance(top_k, int) or isinstance(top_k, bool) or top_k < 1:
                raise ValueError(f"top_k={top_k!r} must be a positive integer")
            options["top_k"] = top_k
        if targets is not None:
            options["target_ids"] = self._target_ids(targets)
        if tokenizer_kwargs is not None:
            if not isinstance(tokenizer_kwargs, dict):
                raise TypeError(f"tokenizer_kwargs must be a dict, got {type(tokenizer_kwargs).__name__}")
            options["tokenizer_kwargs"] = dict(tokenizer_kwargs)
        return options

    def _target_ids(self, targets: str | list[str]) -> np.ndarray:
        if isinstance(targets, str):
            targets = [targets]
        if not isinstance(targets, (list, tuple)) or not all(isinstance(t, str) for t in targets):
            raise TypeError(f"targets must be a str or a list of str, got {targets!r:.80}")
        vocab = self.tokenizer.get_vocab()
        ids: list[int] = []
        for target in targets:
            id_ = vocab.get(target)
            if id_ is None:
                tokens = self.tokenizer(target, add_special_tokens=False, return_attention_mask=False,
                                        max_length=1, truncation=True)["input_ids"]
                if len(tokens) == 0:
                    logger.warning(
                        "The specified target token `%s` does not exist in the model vocabulary. We cannot replace "
                        "it with anything meaningful, ignoring it", target,
                    )
                    continue
                id_ = tokens[0]
                logger.warning(
                    "The specified target token `%s` does not exist in the model vocabulary. Replacing with `%s`.",
                    target, self.tokenizer.convert_ids_to_tokens(id_),
                )
            ids.append(id_)
        ids = list(set(ids))  # transformers' order, so that ties break the same way
        if not ids:
            raise ValueError(f"none of the targets {targets!r} maps to a token; pass at least one usable target")
        return np.array(ids)

    def run(self, inputs: list[str] | list[list[int]], **options: Any) -> list[list[list[FillMaskCandidate]]]:
        """Fill the masks of each text: per text, one list of candidates per mask, in the order of the masks.

        `inputs` may also be token ids, every input a list of ints with its special tokens (as the server hands
        them on after tokenizing once); they run as given, and `tokenizer_kwargs` does not apply.

        Per-input shape: `[[{"score": float, "token": int, "token_str": str, "sequence": str}, ...], ...]`, a list
        per mask even when the text has one mask; top_k candidates per mask, best first. `sequence` follows
        transformers: special tokens skipped for a text with one mask, kept for several. Options as `__call__`'s.
        """
        return super().run(inputs, **options)

    def __call__(self, inputs: str | list[str], **kwargs: Any) -> Any:
        """Fill the masks of one text or a list of texts. See the class docstring for options and output."""
        options, batch_size, progress = self._options(kwargs)
        texts, batched = as_text_list(inputs)
        per_text = self._predict(texts, options, batch_size, progress, single=not batched)
        results = [per_mask[0] if len(per_mask) == 1 else per_mask for per_mask in per_text]
        if not batched or len(results) == 1:
            return results[0]
        return results

    def _predict(
        self, items: list[Any], options: dict[str, Any], batch_size: int, progress: bool, *, single: bool = False
    ) -> list[list[list[FillMaskCandidate]]]:
        top_k: int = options.get("top_k", 5)
        target_ids: np.ndarray | None = options.get("target_ids")
        if target_ids is not None and target_ids.shape[0] < top_k:
            top_k = target_ids.shape[0]
        tok = self.tokenizer
        mask_id = tok.mask_token_id
        given = token_ids(items)  # already tokenized (special tokens included): run as given
        if given is not None:
            sequences: list[list[int]] = given
        else:
            texts = check_texts(items, single)
            sequences = tok(texts, return_attention_mask=False, **options.get("tokenizer_kwargs", {}))["input_ids"]
        positions: list[list[int]] = []
        for i, ids in enumerate(sequences):
            pos = [j for j, t in enumerate(ids) if t == mask_id]
            if not pos:
                text = tok.decode(ids) if given is not None else texts[i]
                raise ValueError(
                    f"no mask token {tok.mask_token} found in {input_name(i, single)} ({text!r:.80}); fill-mask "
                    f"predicts the token at each {tok.mask_token}: put one where the missing word goes, e.g. "
                    f"'The capital of France is {tok.mask_token}.'"
                )
            positions.append(pos)
        targets = torch.as_tensor(target_ids) if target_ids is not None else None
        model = self.model

        def step(batch: Batch) -> list[tuple[list[list[float]], list[list[int]]]]:
            starts = batch.cu_seqlens[:-1].tolist()
            rows = [start + p for start, i in zip(starts, batch.indices) for p in positions[i]]
            logits = model.logits_at(torch.tensor(rows), batch.input_ids, batch.cu_seqlens)
            probs = logits.float().softmax(dim=-1)  # (masks in batch, vocab)
            if targets is not None:
                probs = probs[..., targets.to(probs.device)]
            values, predictions = probs.topk(min(top_k, probs.shape[-1]))
            values_l, predictions_l = values.tolist(), predictions.tolist()
            out, k = [], 0
            for i in batch.indices:
                n = len(positions[i])
                out.append((values_l[k : k + n], predictions_l[k : k + n]))
                k += n
            return out

        raw = self._run(sequences, step, batch_size, progress, lambda i: input_name(i, single))
        return [
            self._format(sequences[i], positions[i], values, predictions, target_ids)
            for i, (values, predictions) in enumerate(raw)
        ]

    def _too_long_advice(self, limit: int) -> str:
        cut = "True" if self.tokenizer.model_max_length <= limit else f"True, 'max_length': {limit}"
        return (f"pass tokenizer_kwargs={{'truncation': {cut}}} to cut it (a mask past the cut is lost), or shorten "
                "the text around its masks")

    def _format(
        self,
        input_ids: list[int],
        positions: list[int],
        values: list[list[float]],
        predictions: list[list[int]],
        target_ids: np.ndarray | None,
    ) -> list[list[FillMaskCandidate]]:
        tok = self.tokenizer
        single_mask = len(positions) == 1
        result: list[list[FillMaskCandidate]] = []
        for position, row_values, row_predictions in zip(positions, values, predictions):
            row: list[FillMaskCandidate] = []
            for v, p in zip(row_values, row_predictions):
                if target_ids is not None:
                    p = target_ids[p].tolist()
                tokens = list(input_ids)
                tokens[position] = p
                tokens = [t for t in tokens if t != tok.pad_token_id]
                # One mask: skip special tokens for a readable sequence; several: keep them, or the other masks
                # would vanish from it (transformers' behaviour).
                sequence = tok.decode(tokens, skip_special_tokens=single_mask)
                row.append({"score": v, "token": p, "token_str": tok.decode([p]), "sequence": sequence})
            result.append(row)
        return result
