"""token-classification (alias ner): a label per token, or entities grouped from them, in transformers' format."""

from __future__ import annotations

import logging
from typing import Any, TypedDict

import numpy as np

from ..model import ModernBertForTokenClassification
from .base import Batch, Pipeline, as_list, check_text, input_name

logger = logging.getLogger(__name__)

AGGREGATION_STRATEGIES: tuple[str, ...] = ("none", "simple", "first", "average", "max")


class TokenEntity(TypedDict):
    """One token and its label (aggregation_strategy="none")."""

    entity: str  # the token's label (config.id2label)
    score: np.float32  # its probability
    index: int  # position of the token in the tokenized input (special tokens counted)
    word: str  # the token as the vocabulary spells it (e.g. "Ġname" in a byte-level BPE)
    start: int  # character offsets of the token in the text
    end: int


class GroupedEntity(TypedDict):
    """Adjacent tokens (or words) with the same entity, merged (any other aggregation_strategy)."""

    entity_group: str  # the label without its B- / I- prefix
    score: np.float32  # mean score of the merged tokens / words
    word: str  # the merged tokens decoded
    start: int  # character offsets of the group in the text
    end: int


class TokenClassificationPipeline(Pipeline):
    """Label each token of a text; with an aggregation strategy, group the tokens into entities.

    Inputs: a str or a list of str; with is_split_into_words=True, a list of words or a list of such lists.

    Call options (also accepted by the constructor as defaults):
        aggregation_strategy: "none" (one dict per token, default), "simple" (merge adjacent tokens of one
            entity: B-X then I-X ...), or "first" / "average" / "max" (first settle one label per word: the first
            token's, the averaged scores', or the most confident token's; then merge as "simple").
        ignore_labels: labels left out of the output (default ["O"]).
        stride: split texts longer than one window (the tokenizer's model_max_length, at most the model's
            max_position_embeddings) into windows overlapping by this many tokens (needs an aggregation strategy
            other than "none"); overlapping entities are resolved as transformers does. Without stride a longer
            text is cut to one window, as transformers does, with a warning that names this option.
        is_split_into_words, delimiter: the inputs are lists of words, joined by delimiter (default " ") to build
            the text that start / end refer to.

    Returns a list of `TokenEntity` (strategy "none") or `GroupedEntity` per input; a list of such lists for a
    list of inputs (and for one pre-split input, as transformers does). Scores are numpy float32, as in
    transformers. `run` gives one plain list of entities per input (float scores).
    """

    task = "token-classification"
    model_class = ModernBertForTokenClassification

    def _sanitize(
        self,
        ignore_labels: list[str] | None = None,
        aggregation_strategy: str | None = None,
        stride: int | None = None,
        is_split_into_words: bool | None = None,
        delimiter: str | None = None,
    ) -> dict[str, Any]:
        options: dict[str, Any] = {}
        if is_split_into_words is not None:
            options["is_split_into_words"] = bool(is_split_into_words)
        if delimiter is not None:
            if not isinstance(delimiter, str):
                raise TypeError(f"delimiter must be a str, got {type(delimiter).__name__}")
            options["delimiter"] = delimiter
        strategy = None
        if aggregation_strategy is not None:
            strategy = str(getattr(aggregation_strategy, "value", aggregation_strategy)).lower()
            if strategy not in AGGREGATION_STRATEGIES:
                raise ValueError(
                    f"aggregation_strategy={aggregation_strategy!r} must be one of {AGGREGATION_STRATEGIES}"
                )
            options["aggregation_strategy"] = strategy
        if ignore_labels is not None:
            if isinstance(ignore_labels, str) or not all(isinstance(x, str) for x in ignore_labels):
                raise TypeError(f"ignore_labels must be a list of label names, got {ignore_labels!r:.80}")
            options["ignore_labels"] = list(ignore_labels)
        if stride is not None:
            if not isinstance(stride, int) or isinstance(stride, bool) or stride < 0:
                raise ValueError(f"stride={stride!r} must be a non-negative integer")
            window = self._window()
            room = window - self.tokenizer.num_special_tokens_to_add(pair=False)
            if stride >= room:
                raise ValueError(
                    f"stride={stride} must be less than {room}: the overlap between windows has to leave room in "
                    f"each window of {window} tokens (the tokenizer's model_max_length, at most the model's "
                    f"max_position_embeddings) beside its special tokens; pass a smaller stride"
                )
            if strategy == "none":
                raise ValueError(
                    '`stride` was provided to process all the text but `aggregation_strategy="none"`; choose '
                    '"simple", "first", "average" or "max" to merge the windows'
                )
            options["stride"] = stride
        return options

    def run(self, inputs: list[str] | list[list[str]], **options: Any) -> list[list[TokenEntity | GroupedEntity]]:
        """Label the tokens of each text: per input, a list of entities (possibly empty), in text order.

        Per-input shape: `[{"entity": str, "score": float, "index": int, "word": str, "start": int, "end": int},
        ...]` with aggregation_strategy "none", else `[{"entity_group": str, "score": float, "word": str,
        "start": int, "end": int}, ...]`; start / end are character offsets in the text. With
        is_split_into_words=True each input is a list of words. Options as `__call__`'s; with stride, a text
        longer than the window is labelled whole, in overlapping windows.
        """
        return super().run(inputs, **options)

    def __call__(self, inputs: str | list[str] | list[list[str]], **kwargs: Any) -> Any:
        """Label the tokens of one text or a list of texts. See the class docstring for options and output."""
        options, batch_size, progress = self._options(kwargs)
        if options.get("is_split_into_words", False):
            items = as_list(inputs, "list of words")
            if not all(isinstance(x, list) for x in items):
                items = [items]  # one pre-split input: still a list of results, as transformers returns
            return self._predict(items, options, batch_size, progress)
        if isinstance(inputs, str):
            return self._predict([inputs], options, batch_size, progress, single=True)[0]
        return self._predict(as_list(inputs, "text"), options, batch_size, progress)

    def _window(self) -> int:
        """Tokens per window: the tokenizer's model_max_length, or the model's limit when that is lower."""
        limits = (self.tokenizer.model_max_length, self.model.config.max_position_embeddings)
        return min(m for m in limits if m and m > 0)

    def _predict(
        self, items: list[Any], options: dict[str, Any], batch_size: int, progress: bool, *, single: bool = False
    ) -> list[list[dict[str, Any]]]:
        split_words = options.get("is_split_into_words", False)
        delimiter = options.get("delimiter", " ")
        strategy = options.get("aggregation_strategy", "none")
        ignore_labels = options.get("ignore_labels", ["O"])
        stride = options.get("stride")

        char_maps: list[list[tuple[int, int]]] | None = None
        if split_words:
            for i, words in enumerate(items):
                if not isinstance(words, (list, tuple)) or not words or not all(isinstance(w, str) for w in words):
                    raise TypeError(
                        f"inputs[{i}] must be a non-empty list of str (words) with is_split_into_words=True, "
                        f"got {words!r:.60}"
                    )
            sentences = [delimiter.join(words) for words in items]
            for i, sentence in enumerate(sentences):
                check_text(sentence, f"inputs[{i}] (its words joined)")
            char_maps = []
            for words in items:
                offset, spans = 0, []
                for word in words:
                    spans.append((offset, offset + len(word)))
                    offset += len(word) + len(delimiter)
                char_maps.append(spans)
            to_tokenize: list[Any] = [list(w) for w in items]
        else:
            for i, s in enumerate(items):
                if not isinstance(s, str):
                    raise TypeError(
                        f"{input_name(i, single)} is a {type(s).__name__} ({s!r:.60}); pass a str, or lists of words "
                        "with is_split_into_words=True"
                    )
                check_text(s, input_name(i, single))
            sentences = to_tokenize = list(items)

        tok = self.tokenizer
        window = self._window()
        extra: dict[str, Any] = {"return_overflowing_tokens": True, "stride": stride} if stride is not None else {}
        encoded = tok(
            to_tokenize,
            truncation=True,
            max_length=window,
            return_attention_mask=False,
            return_special_tokens_mask=True,
            return_offsets_mapping=True,
            is_split_into_words=split_words,
            **extra,
        )
        if stride is None:
            self._warn_truncated(encoded, sentences, char_maps, window, single)
        rows = len(encoded["input_ids"])
        sample_of_row = encoded.get("overflow_to_sample_mapping") or list(range(rows))
        model = self.model

        def step(batch: Batch) -> list[np.ndarray]:
            logits = model(input_ids=batch.input_ids, cu_seqlens=batch.cu_seqlens).logits.float().cpu().numpy()
            return _split(logits, batch.lengths)

        logits_rows = self._run(encoded["input_ids"], step, batch_size, progress,
                                lambda row: input_name(sample_of_row[row], single))

        per_sample: list[list[int]] = [[] for _ in sentences]
        for row, sample in enumerate(sample_of_row):
            per_sample[sample].append(row)
        results = []
        for sample, row_ids in enumerate(per_sample):
            entities: list[dict[str, Any]] = []
            for row in row_ids:
                logits = logits_rows[row]
                shifted = np.exp(logits - np.max(logits, axis=-1, keepdims=True))
                scores = shifted / shifted.sum(axis=-1, keepdims=True)
                pre = self._gather_pre_entities(
                    sentences[sample],
                    encoded["input_ids"][row],
                    scores,
                    encoded["offset_mapping"][row],
                    encoded["special_tokens_mask"][row],
                    word_ids=encoded.word_ids(row) if char_maps is not None else None,
                    word_to_chars_map=char_maps[sample] if char_maps is not None else None,
                )
                grouped = self._aggregate(pre, strategy)
                entities.extend(
                    e for e in grouped
                    if e.get("entity") not in ignore_labels and e.get("entity_group") not in ignore_labels
                )
            if len(row_ids) > 1:
                entities = _merge_overlapping(entities)
            results.append(entities)
        return results

    def _warn_truncated(
        self,
        encoded: Any,
        sentences: list[str],
        char_maps: list[list[tuple[int, int]]] | None,
        window: int,
        single: bool,
    ) -> None:
        """Without stride a text longer than one window is cut (as transformers does): say so, and the way out."""
        cut = [i for i, e in enumerate(encoded.encodings or []) if e.overflowing]
        if not cut:
            return
        i = cut[0]
        if char_maps is None:
            labelled = max((end for _, end in encoded["offset_mapping"][i]), default=0)
        else:  # pre-split words: offsets are inside each word
            words = [w for w in encoded.word_ids(i) if w is not None]
            labelled = char_maps[i][words[-1]][1] if words else 0
        others = f" (and {len(cut) - 1} more input(s))" if len(cut) > 1 else ""
        logger.warning(
            "%s%s is longer than one window of %d tokens: only its first %d of %d characters are labelled. Pass "
            "stride=N, the overlap in tokens (e.g. stride=%d), with aggregation_strategy='simple', 'first', "
            "'average' or 'max', to label the whole text in overlapping windows.",
            input_name(i, single), others, window, labelled, len(sentences[i]), max(1, window // 8),
        )

    # ----- transformers' TokenClassificationPipeline post-processing -----

    def _gather_pre_entities(
        self,
        sentence: str,
        input_ids: list[int],
        scores: np.ndarray,
        offset_mapping: list[tuple[int, int]],
        special_tokens_mask: list[int],
        word_ids: list[int | None] | None = None,
        word_to_chars_map: list[tuple[int, int]] | None = None,
    ) -> list[dict[str, Any]]:
        """One dict per non-special token: its token string, scores, offsets and whether it continues a word."""
        tok = self.tokenizer
        prefix = getattr(tok.backend_tokenizer.model, "continuing_subword_prefix", None)
        pre_entities = []
        for idx, token_scores in enumerate(scores):
            if special_tokens_mask[idx]:
                continue
            word = tok.convert_ids_to_tokens(int(input_ids[idx]))
            start, end = offset_mapping[idx]
            if word_ids is not None and word_to_chars_map is not None:
                word_index = word_ids[idx]
                if word_index is not None:  # pre-split input: offsets are inside the word; make them absolute
                    start += word_to_chars_map[word_index][0]
                    end += word_to_chars_map[word_index][0]
            word_ref = sentence[start:end]
            if prefix:  # a word-aware tokenizer: a continuation is spelled differently from the text
                is_subword = len(word) != len(word_ref)
            else:  # transformers' fallback heuristic: no space right before or at the token's start
                is_subword = start > 0 and " " not in sentence[start - 1 : start + 1]
            if int(input_ids[idx]) == tok.unk_token_id:
                word = word_ref
                is_subword = False
            pre_entities.append(
                {"word": word, "scores": token_scores, "start": start, "end": end, "index": idx,
                 "is_subword": is_subword}
            )
        return pre_entities

    def _aggregate(self, pre_entities: list[dict[str, Any]], strategy: str) -> list[dict[str, Any]]:
        id2label = self.model.config.id2label
        if strategy in ("none", "simple"):
            entities = []
            for pre in pre_entities:
                idx = pre["scores"].argmax()
                entities.append({
                    "entity": id2label[int(idx)],
                    "score": pre["scores"][idx],
                    "index": pre["index"],
                    "word": pre["word"],
                    "start": pre["start"],
                    "end": pre["end"],
                })
        else:
            entities = self._aggregate_words(pre_entities, strategy)
        if strategy == "none":
            return entities
        return self._group_entities(entities)

    def _aggregate_word(self, entities: list[dict[str, Any]], strategy: str) -> dict[str, Any]:
        id2label = self.model.config.id2label
        word = self.tokenizer.convert_tokens_to_string([e["word"] for e in entities])
        if strategy == "first":
            scores = entities[0]["scores"]
            idx = scores.argmax()
            score = scores[idx]
        elif strategy == "max":
            scores = max(entities, key=lambda e: e["scores"].max())["scores"]
            idx = scores.argmax()
            score = scores[idx]
        else:  # average
            average = np.nanmean(np.stack([e["scores"] for e in entities]), axis=0)
            idx = average.argmax()
            score = average[idx]
        return {
            "entity": id2label[int(idx)],
            "score": score,
            "word": word,
            "start": entities[0]["start"],
            "end": entities[-1]["end"],
        }

    def _aggregate_words(self, entities: list[dict[str, Any]], strategy: str) -> list[dict[str, Any]]:
        """Tokens of one word get one label (first / average / max)."""
        words: list[dict[str, Any]] = []
        group: list[dict[str, Any]] | None = None
        for entity in entities:
            if group is None:
                group = [entity]
            elif entity["is_subword"]:
                group.append(entity)
            else:
                words.append(self._aggregate_word(group, strategy))
                group = [entity]
        if group is not None:
            words.append(self._aggregate_word(group, strategy))
        return words

    def _group_sub_entities(self, entities: list[dict[str, Any]]) -> GroupedEntity:
        label = entities[0]["entity"].split("-", 1)[-1]
        scores = np.nanmean([e["score"] for e in entities])
        return {
            "entity_group": label,
            "score": np.mean(scores),
            "word": self.tokenizer.convert_tokens_to_string([e["word"] for e in entities]),
            "start": entities[0]["start"],
            "end": entities[-1]["end"],
        }

    def _group_entities(self, entities: list[dict[str, Any]]) -> list[GroupedEntity]:
        """Merge adjacent entities of one type; a B- tag always starts a new group."""
        groups: list[GroupedEntity] = []
        current: list[dict[str, Any]] = []
        for entity in entities:
            if not current:
                current.append(entity)
                continue
            bi, tag = _tag(entity["entity"])
            _, last_tag = _tag(current[-1]["entity"])
            if tag == last_tag and bi != "B":
                current.append(entity)
            else:
                groups.append(self._group_sub_entities(current))
                current = [entity]
        if current:
            groups.append(self._group_sub_entities(current))
        return groups


def _tag(name: str) -> tuple[str, str]:
    if name.startswith("B-"):
        return "B", name[2:]
    if name.startswith("I-"):
        return "I", name[2:]
    return "I", name  # no B-/I- prefix: a continuation


def _merge_overlapping(entities: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Entities of overlapping windows: of two that overlap keep the longer one (then the higher score)."""
    if not entities:
        return entities
    entities = sorted(entities, key=lambda x: x["start"])
    merged = []
    previous = entities[0]
    for entity in entities:
        if previous["start"] <= entity["start"] < previous["end"]:
            length, previous_length = entity["end"] - entity["start"], previous["end"] - previous["start"]
            if length > previous_length or (length == previous_length and entity["score"] > previous["score"]):
                previous = entity
        else:
            merged.append(previous)
            previous = entity
    merged.append(previous)
    return merged


def _split(x: np.ndarray, lengths: list[int]) -> list[np.ndarray]:
    return list(np.split(x, np.cumsum(lengths)[:-1]))
