"""question-answering: extractive answers (a span of the context), as transformers 4.57 gives them.

transformers 5 dropped its QuestionAnsweringPipeline; this one follows the last release that had it, 4.57
(fast-tokenizer path): long contexts are split into overlapping windows (max_seq_len, doc_stride), every window
is scored, start and end probabilities are combined into span scores (end >= start, at most max_answer_len
tokens, context tokens only), and each window gives its `top_k * 2 + 10` best spans (`top_k` with
align_to_words=False), since widening to whole words makes several spans one answer. Spans whose answer text is
the same (ignoring case), in any window, are one answer whose score is the sum of theirs (so a span seen by two
overlapping windows can score above 1), at the first one's offsets; the `top_k` best answers are returned.

Two differences from 4.57, both where 4.57 misbehaves:
- a span of probability zero is never an answer. When `top_k` asks for more spans than a window has, 4.57 fills
  the list with zero-score spans from the masked part of the score matrix (end before start, longer than
  max_answer_len, or starting at the masked [CLS]), which come out as empty, inverted or made-up answers;
- when a window holds exactly as many (start, end) pairs as the search asks for, 4.57's `decode_spans` raises a
  numpy error; here it returns them all, best first.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, TypedDict

import numpy as np
from tokenizers import Encoding

from ..model import ModernBertForQuestionAnswering
from .base import Batch, Pipeline, as_list, input_name

logger = logging.getLogger(__name__)


class Answer(TypedDict):
    """One answer span."""

    score: float  # probability of the span (start × end probability), summed over the spans with this text
    start: int  # character offsets of the answer in the context
    end: int
    answer: str  # context[start:end]


@dataclass
class _Example:
    question: str
    context: str


@dataclass
class _Span:
    example: int  # index of the example this window belongs to
    input_ids: list[int]
    p_mask: list[int]  # 1 where the token cannot be part of an answer
    encoding: Encoding


def decode_spans(
    start: np.ndarray, end: np.ndarray, topk: int, max_answer_len: int, undesired_tokens: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Best `topk` (start, end) token pairs by start × end probability, as transformers 4.57's `decode_spans`.

    Pairs with end < start or end - start >= max_answer_len score 0. `undesired_tokens` is 1 for tokens that may
    be part of an answer (transformers' name kept). Returns (starts, ends, scores), best first.
    """
    if start.ndim == 1:
        start = start[None]
    if end.ndim == 1:
        end = end[None]
    outer = np.matmul(np.expand_dims(start, -1), np.expand_dims(end, 1))
    candidates = np.tril(np.triu(outer), max_answer_len - 1)
    scores_flat = candidates.flatten()
    if topk == 1:
        idx_sort = [np.argmax(scores_flat)]
    elif len(scores_flat) <= topk:  # 4.57 has `<` here, and numpy raises when both are equal
        idx_sort = np.argsort(-scores_flat)
    else:
        idx = np.argpartition(-scores_flat, topk)[0:topk]
        idx_sort = idx[np.argsort(-scores_flat[idx])]
    starts, ends = np.unravel_index(idx_sort, candidates.shape)[1:]
    # As transformers: `nonzero()` of the 2-d mask also holds its row indices (0), so token 0 always passes.
    allowed = undesired_tokens.nonzero()
    desired = np.isin(starts, allowed) & np.isin(ends, allowed)
    starts, ends = starts[desired], ends[desired]
    return starts, ends, candidates[0, starts, ends]


def select_starts_ends(
    start: np.ndarray,
    end: np.ndarray,
    p_mask: np.ndarray,
    attention_mask: np.ndarray | None,
    min_null_score: float = 1000000,
    top_k: int = 1,
    handle_impossible_answer: bool = False,
    max_answer_len: int = 15,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    """Normalise start / end logits over the allowed tokens, then `decode_spans`, as transformers 4.57's
    `select_starts_ends`. Also tracks the null score (probability of the first token as both start and end) for
    handle_impossible_answer."""
    undesired_tokens = np.abs(np.array(p_mask) - 1)
    if attention_mask is not None:
        undesired_tokens = undesired_tokens & attention_mask
    undesired_tokens_mask = undesired_tokens == 0.0
    start = np.where(undesired_tokens_mask, -10000.0, start)
    end = np.where(undesired_tokens_mask, -10000.0, end)
    start = np.exp(start - start.max(axis=-1, keepdims=True))
    start = start / start.sum()
    end = np.exp(end - end.max(axis=-1, keepdims=True))
    end = end / end.sum()
    if handle_impossible_answer:
        min_null_score = min(min_null_score, (start[0, 0] * end[0, 0]).item())
    start[0, 0] = end[0, 0] = 0.0
    starts, ends, scores = decode_spans(start, end, top_k, max_answer_len, undesired_tokens)
    return starts, ends, scores, min_null_score


class QuestionAnsweringPipeline(Pipeline):
    """Find the answer to a question as a span of a context, as transformers 4.57's QuestionAnsweringPipeline does
    (its span search, its merging of answers with the same text; see the module docstring for the two places
    where it differs on purpose).

    Inputs, as transformers accepts them: `qa(question=..., context=...)` (str or lists; a list of questions
    with one context asks them all of it), `qa({"question": ..., "context": ...})`, a list of such dicts, or
    `qa(question, context)`.

    Call options (also accepted by the constructor as defaults):
        top_k: number of answers (default 1), best first.
        max_answer_len: longest answer in tokens (default 15).
        max_seq_len: tokens per window, question included (default min(model_max_length, 384)).
        doc_stride: tokens of overlap between windows of a long context (default min(max_seq_len // 2, 128)).
        max_question_len: a question so long that the windows leave no room for the context is cut to this many
            tokens (default 64), with a warning; shorter questions are never cut (as in transformers).
        handle_impossible_answer: also consider the empty answer (score of the first token as start and end).
        align_to_words: widen the answer to whole words (default True); each window then gives top_k * 2 + 10
            candidate spans instead of top_k, as in 4.57.

    Returns one `Answer` when one is found (top_k=1), else a list of them (best first, fewer than top_k when the
    context has fewer distinct answers); for several questions, one such result per question. `run` always gives
    a list of answers per input.
    """

    task = "question-answering"
    model_class = ModernBertForQuestionAnswering

    def _sanitize(
        self,
        top_k: int | None = None,
        topk: int | None = None,
        doc_stride: int | None = None,
        max_answer_len: int | None = None,
        max_seq_len: int | None = None,
        max_question_len: int | None = None,
        handle_impossible_answer: bool | None = None,
        align_to_words: bool | None = None,
        padding: Any = None,
    ) -> dict[str, Any]:
        options: dict[str, Any] = {}
        if topk is not None and top_k is None:
            top_k = topk
        for name, value in (("top_k", top_k), ("max_answer_len", max_answer_len), ("max_seq_len", max_seq_len),
                            ("max_question_len", max_question_len)):
            if value is not None:
                if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                    raise ValueError(f"{name}={value!r} must be a positive integer")
                options[name] = value
        if doc_stride is not None:
            if not isinstance(doc_stride, int) or isinstance(doc_stride, bool) or doc_stride < 0:
                raise ValueError(f"doc_stride={doc_stride!r} must be a non-negative integer")
            options["doc_stride"] = doc_stride
        if handle_impossible_answer is not None:
            options["handle_impossible_answer"] = bool(handle_impossible_answer)
        if align_to_words is not None:
            options["align_to_words"] = bool(align_to_words)
        # `padding` is accepted for compatibility: windows are never padded here, which changes no score.
        return options

    def run(self, inputs: list[dict[str, str]], **options: Any) -> list[list[Answer]]:
        """Answer each `{"question": str, "context": str}`: per input, a list of answers, best first.

        Per-input shape: `[{"score": float, "start": int, "end": int, "answer": str}, ...]`, always a list (top_k
        answers at most; empty when no span qualifies); start / end are character offsets in the context and
        `answer` is context[start:end]. Options as `__call__`'s.
        """
        return super().run(inputs, **options)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        """Answer one question or several. See the class docstring for inputs, options and output."""
        question = kwargs.pop("question", None)
        context = kwargs.pop("context", None)
        for key in ("X", "data"):
            if key in kwargs and not args:
                args = (kwargs.pop(key),)
        items = _parse_inputs(args, question, context)
        options, batch_size, progress = self._options(kwargs)
        per_example = self._predict(items, options, batch_size, progress, single=len(items) == 1)
        results = [answers[0] if len(answers) == 1 else answers for answers in per_example]
        return results[0] if len(results) == 1 else results

    def _predict(
        self, items: list[Any], options: dict[str, Any], batch_size: int, progress: bool, *, single: bool = False
    ) -> list[list[Answer]]:
        examples = [_normalize(item, None if single else i) for i, item in enumerate(items)]
        max_seq_len = options.get("max_seq_len") or min(self.tokenizer.model_max_length, 384)
        doc_stride = options.get("doc_stride")
        if doc_stride is None:
            doc_stride = min(max_seq_len // 2, 128)
        if doc_stride > max_seq_len:
            raise ValueError(f"`doc_stride` ({doc_stride}) is larger than `max_seq_len` ({max_seq_len})")
        max_question_len = options.get("max_question_len", 64)

        spans: list[_Span] = []
        for i, example in enumerate(examples):
            spans.extend(self._windows(i, example, max_seq_len, doc_stride, max_question_len))
        model = self.model

        def step(batch: Batch) -> list[tuple[np.ndarray, np.ndarray]]:
            out = model(input_ids=batch.input_ids, cu_seqlens=batch.cu_seqlens)
            starts = out.start_logits.float().cpu().numpy()
            ends = out.end_logits.float().cpu().numpy()
            bounds = np.cumsum(batch.lengths)[:-1]
            return list(zip(np.split(starts, bounds), np.split(ends, bounds)))

        logits = self._run([s.input_ids for s in spans], step, batch_size, progress,
                           lambda i: f"a window of {input_name(spans[i].example, single)}")
        per_example: list[list[tuple[_Span, tuple[np.ndarray, np.ndarray]]]] = [[] for _ in examples]
        for span, logit in zip(spans, logits):
            per_example[span.example].append((span, logit))
        return [self._answers(example, mine, options) for example, mine in zip(examples, per_example)]

    def _too_long_advice(self, limit: int) -> str:
        return f"pass max_seq_len={limit} or less, so that each window fits"

    def _windows(
        self, index: int, example: _Example, max_seq_len: int, doc_stride: int, max_question_len: int
    ) -> list[_Span]:
        tok = self.tokenizer
        question_first = tok.padding_side == "right"
        question = example.question
        q_ids = tok(question, add_special_tokens=False, return_attention_mask=False,
                    return_offsets_mapping=True)
        specials = tok.num_special_tokens_to_add(pair=True)
        room = max_seq_len - len(q_ids["input_ids"]) - specials
        # The tokenizer cannot window the context when the question leaves it no more than doc_stride tokens
        # (the Rust tokenizer panics); only a problem when the pair does not fit in one window anyway.
        if room <= doc_stride and len(q_ids["input_ids"]) + specials + len(
            tok(example.context, add_special_tokens=False, return_attention_mask=False)["input_ids"]
        ) > max_seq_len:
            if len(q_ids["input_ids"]) > max_question_len:
                cut = q_ids["offset_mapping"][max_question_len - 1][1]
                logger.warning(
                    "the question has %d tokens and leaves no room for the context in windows of max_seq_len=%d "
                    "tokens; it is cut to max_question_len=%d tokens", len(q_ids["input_ids"]), max_seq_len,
                    max_question_len,
                )
                question = question[:cut]
                room = max_seq_len - max_question_len - specials
            if room <= doc_stride:
                raise ValueError(
                    f"the question takes {max_seq_len - room - specials} tokens, leaving {max(room, 0)} of "
                    f"max_seq_len={max_seq_len} for the context, which must be more than doc_stride={doc_stride}; "
                    "raise max_seq_len, lower doc_stride, or shorten the question (max_question_len)"
                )
        encoded = tok(
            question if question_first else example.context,
            example.context if question_first else question,
            truncation="only_second" if question_first else "only_first",
            max_length=max_seq_len,
            stride=doc_stride,
            return_token_type_ids=True,
            return_overflowing_tokens=True,
            return_offsets_mapping=True,
            return_special_tokens_mask=True,
        )
        spans = []
        for span_idx, input_ids in enumerate(encoded["input_ids"]):
            # p_mask: 1 for tokens that cannot be in the answer (question and special tokens), 0 for the context;
            # the [CLS] token stays unmasked (models use it for "no answer").
            p_mask = [int(t != 1) if question_first else 0 for t in encoded.sequence_ids(span_idx)]
            if tok.cls_token_id is not None:
                for j, t in enumerate(input_ids):
                    if t == tok.cls_token_id:
                        p_mask[j] = 0
            spans.append(_Span(index, list(input_ids), p_mask, encoded[span_idx]))
        return spans

    def _answers(
        self, example: _Example, spans: list[tuple[_Span, tuple[np.ndarray, np.ndarray]]], options: dict[str, Any]
    ) -> list[Answer]:
        top_k = options.get("top_k", 1)
        handle_impossible_answer = options.get("handle_impossible_answer", False)
        max_answer_len = options.get("max_answer_len", 15)
        align_to_words = options.get("align_to_words", True)
        question_first = self.tokenizer.padding_side == "right"
        sequence_index = 1 if question_first else 0
        min_null_score: float = 1000000
        answers: list[Answer] = []
        by_text: dict[str, Answer] = {}  # lower-cased answer text → its answer, to merge spans as 4.57 does
        candidates = top_k * 2 + 10 if align_to_words else top_k  # word alignment turns some spans into one
        for span, (start_logits, end_logits) in spans:
            attention_mask = np.ones((1, len(span.input_ids)), dtype=np.int64)
            starts, ends, scores, min_null_score = select_starts_ends(
                start_logits[None], end_logits[None], np.array([span.p_mask]), attention_mask, min_null_score,
                candidates, handle_impossible_answer, max_answer_len,
            )
            for s, e, score in zip(starts, ends, scores):
                if not score > 0:  # outside the allowed spans (see the module docstring): not an answer
                    continue
                start, end = _char_span(span.encoding, int(s), int(e), sequence_index, align_to_words)
                text = example.context[start:end]
                same = by_text.get(text.lower())
                if same is not None:
                    same["score"] += score.item()
                else:
                    answer: Answer = {"score": score.item(), "start": start, "end": end, "answer": text}
                    answers.append(answer)
                    by_text[text.lower()] = answer
        if handle_impossible_answer:
            answers.append({"score": min_null_score, "start": 0, "end": 0, "answer": ""})
        return sorted(answers, key=lambda x: x["score"], reverse=True)[:top_k]


def _char_span(enc: Encoding, s: int, e: int, sequence_index: int, align_to_words: bool) -> tuple[int, int]:
    """Character offsets of tokens s..e; widened to whole words when asked (and the tokens belong to words)."""
    if align_to_words:
        try:
            start_word, end_word = enc.token_to_word(s), enc.token_to_word(e)
            return (
                enc.word_to_chars(start_word, sequence_index=sequence_index)[0],
                enc.word_to_chars(end_word, sequence_index=sequence_index)[1],
            )
        except Exception:  # special tokens have no word: keep to the token offsets, as transformers does
            pass
    return enc.offsets[s][0], enc.offsets[e][1]


def _parse_inputs(args: tuple[Any, ...], question: Any, context: Any) -> list[Any]:
    """transformers' QuestionAnsweringArgumentHandler, with clearer errors: the inputs as a list of dicts (each
    checked later, by `_normalize`)."""
    if args:
        if question is not None or context is not None:
            raise TypeError("pass the inputs either positionally or as question= and context=, not both")
        if len(args) == 1:
            inputs = args[0]
        elif len(args) == 2 and all(isinstance(a, str) for a in args):
            inputs = [{"question": args[0], "context": args[1]}]
        else:
            inputs = list(args)
    elif question is not None or context is not None:
        if question is None or context is None:
            missing = "question" if question is None else "context"
            raise ValueError(f"no {missing} given: pass both question= and context=")
        if isinstance(question, str) and isinstance(context, str):
            inputs = [{"question": question, "context": context}]
        elif isinstance(question, (list, tuple)) and isinstance(context, str):
            inputs = [{"question": q, "context": context} for q in as_list(question, "question")]
        elif isinstance(question, (list, tuple)) and isinstance(context, (list, tuple)):
            if len(question) != len(context):
                raise ValueError(
                    f"{len(question)} questions but {len(context)} contexts: pass one context per question, or "
                    "a single context (str) for all of them"
                )
            inputs = [{"question": q, "context": c} for q, c in zip(as_list(question, "question"), context)]
        else:
            raise TypeError(
                f"question is a {type(question).__name__} and context a {type(context).__name__}; pass str, a list "
                "of questions with one context, or two lists of the same length"
            )
    else:
        raise ValueError("no input: pass question= and context=, or {'question': ..., 'context': ...}")
    if isinstance(inputs, dict):
        inputs = [inputs]
    return as_list(inputs, "{'question': ..., 'context': ...} dict")


def _normalize(item: Any, index: int | None) -> _Example:
    where = "the input" if index is None else f"inputs[{index}]"
    if not isinstance(item, dict):
        raise TypeError(
            f"{where} is a {type(item).__name__} ({item!r:.60}); pass {{'question': ..., 'context': ...}} or "
            "question= and context="
        )
    for key in ("question", "context"):
        if key not in item:
            raise ValueError(f"{where} has no {key!r}; pass a dict with keys 'question' and 'context'")
        value = item[key]
        if value is None:
            raise ValueError(f"{where}: `{key}` cannot be None")
        if not isinstance(value, str):
            raise TypeError(f"{where}: `{key}` is a {type(value).__name__} ({value!r:.60}); it must be a str")
        if not value.strip():
            raise ValueError(
                f"{where}: `{key}` is empty" + (" (only whitespace)" if value else "")
                + f"; pass a non-empty {key}"
            )
    return _Example(item["question"], item["context"])
