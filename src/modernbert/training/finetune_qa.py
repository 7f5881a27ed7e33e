"""The `question-answering` task of `modernbert finetune`: extractive QA as transformers' run_qa.py.

Data: SQuAD JSON (`{"data": [{"paragraphs": [{"context", "qas": [{"id", "question", "answers": [{"text",
"answer_start"}], "is_impossible"}]}]}]}`) or rows with `question`, `context` and `answers` (`{"text": [...],
"answer_start": [...]}`, the datasets library's SQuAD layout; an empty list: no answer). A question without an
answer (SQuAD v2) is trained to point at [CLS]; when the training data has such questions, a prediction is
empty when [CLS] scores above the best span.

A long context is cut into windows of `max_length` tokens overlapping by `doc_stride`; each window is a
training sequence, its labels the answer's first and last tokens, or [CLS] when the answer is not inside.
Evaluation scores every span of at most `max_answer_length` tokens over all windows of a question and reports
`eval_exact_match` and `eval_f1` (SQuAD's normalisation: lower case, no punctuation, no articles).
"""

from __future__ import annotations

import collections
import re
import string
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from .. import hub
from . import finetune_data as fd
from .finetune import Task

DOC_STRIDE = 128
MAX_ANSWER_LENGTH = 30
N_BEST = 20


def normalize_answer(s: str) -> str:
    """SQuAD's answer normalisation: lower case, punctuation and articles removed, whitespace collapsed."""
    s = "".join(ch for ch in s.lower() if ch not in set(string.punctuation))
    s = re.sub(r"\b(a|an|the)\b", " ", s)
    return " ".join(s.split())


def squad_scores(prediction: str, answers: list[str]) -> tuple[float, float]:
    """(exact match, token F1) of a prediction against its gold answers (the best of them); no answers: the
    prediction must be empty."""
    golds = [normalize_answer(a) for a in answers] or [""]
    pred = normalize_answer(prediction)
    exact = max(float(pred == g) for g in golds)
    best_f1 = 0.0
    for g in golds:
        p_tok, g_tok = pred.split(), g.split()
        if not p_tok or not g_tok:
            best_f1 = max(best_f1, float(p_tok == g_tok))
            continue
        common = sum((collections.Counter(p_tok) & collections.Counter(g_tok)).values())
        if common:
            precision, recall = common / len(p_tok), common / len(g_tok)
            best_f1 = max(best_f1, 2 * precision * recall / (precision + recall))
    return exact, best_f1


def _squad_json(path: Path) -> fd.Rows:
    data = hub.read_json(path, "SQuAD file")
    rows, sources = [], []
    for a, article in enumerate(data.get("data", []) if isinstance(data, dict) else []):
        for p, para in enumerate(article.get("paragraphs", [])):
            for q, qa in enumerate(para.get("qas", [])):
                answers = [] if qa.get("is_impossible") else qa.get("answers", [])
                rows.append({"id": str(qa.get("id", len(rows))), "question": qa.get("question"),
                             "context": para.get("context"),
                             "answers": {"text": [x.get("text") for x in answers],
                                         "answer_start": [x.get("answer_start") for x in answers]}})
                sources.append(fd.Source(f"{path} (data[{a}].paragraphs[{p}].qas[{q}])"))
    return fd.Rows(str(path), ["id", "question", "context", "answers"], rows, sources)


def read_qa(data: Any, name: str) -> fd.Rows:
    """SQuAD JSON (a file whose top level holds `data`), or rows of question, context and answers."""
    if isinstance(data, (str, Path)) and str(data).endswith(".json") and Path(data).is_file():
        text = Path(data).read_text(encoding="utf-8-sig").lstrip()
        if text.startswith("{") and '"paragraphs"' in text:
            rows = _squad_json(Path(data))
            if not rows.rows:
                raise fd.DataError(f"{data}: no questions; expected SQuAD's data[].paragraphs[].qas[]")
            return rows
    return fd.read_rows(data, name)


@dataclass
class QASplit:
    """Windows of (question, context) as training sequences, and what maps them back to the questions."""

    rows: fd.Rows
    ids: list[list[int]]  # per window
    labels: torch.Tensor | None  # (windows, 2) first and last answer token, 0 ([CLS]) when not inside
    example: list[int]  # the question of each window
    offsets: list[list[tuple[int, int] | None]]  # character span of each context token, None elsewhere
    contexts: list[str]
    answers: list[list[str]]
    qids: list[str]

    @property
    def lengths(self) -> list[int]:
        return [len(x) for x in self.ids]


class QuestionAnswering(Task):
    """Extractive question answering (`ModernBertForQuestionAnswering`)."""

    name = "question-answering"
    architecture = "ModernBertForQuestionAnswering"
    auto_class = "AutoModelForQuestionAnswering"
    pipeline_tag = "question-answering"

    def __init__(self, cfg: Any, tokenizer: Any, max_length: int) -> None:
        self.cfg, self.tokenizer, self.max_length = cfg, tokenizer, max_length
        self.stride = min(DOC_STRIDE, max_length // 4)
        self.with_negative = False
        self.train = self._split(read_qa(cfg.train, "train data"), True)
        self.with_negative = any(not a for a in self.train.answers)
        self.validation = None if cfg.validation is None else self._split(read_qa(cfg.validation,
                                                                                   "validation data"), True)
        self.test = None if cfg.test is None else self._split(read_qa(cfg.test, "test data"), False)

    def _split(self, rows: fd.Rows, need_answers: bool) -> QASplit:
        questions = fd.texts(rows, "question", "a 'question' column")
        contexts = fd.texts(rows, "context", "a 'context' column")
        answers, starts = [], []
        for row, src, ctx in zip(rows.rows, rows.sources, contexts):
            a = row.get("answers")
            if a is None and not need_answers:
                answers.append([])
                starts.append([])
                continue
            if not isinstance(a, dict) or not isinstance(a.get("text"), list) or not isinstance(
                    a.get("answer_start"), list) or len(a["text"]) != len(a["answer_start"]):
                raise fd.DataError(f"{src.where('answers')}: {a!r}; expected {{\"text\": [...], \"answer_start\": "
                                   "[...]}} with one start per answer text")
            for text, start in zip(a["text"], a["answer_start"]):
                if not isinstance(start, int) or not isinstance(text, str) or ctx[start : start + len(text)] != text:
                    raise fd.DataError(f"{src.where('answers')}: answer {text!r} is not in the context at character "
                                       f"{start!r}; expected answer_start to point at the answer's first character")
            answers.append(list(a["text"]))
            starts.append(list(a["answer_start"]))
        enc = self.tokenizer(questions, contexts, truncation="only_second", max_length=self.max_length,
                             stride=self.stride, return_overflowing_tokens=True, return_offsets_mapping=True)
        ids, labels, example, offsets = [], [], [], []
        for w, n in enumerate(enc["overflow_to_sample_mapping"]):
            seq = enc.sequence_ids(w)
            spans = [tuple(o) if s == 1 else None for o, s in zip(enc["offset_mapping"][w], seq)]
            ids.append(list(enc["input_ids"][w]))
            example.append(int(n))
            offsets.append(spans)
            start_tok = end_tok = 0
            if answers[n]:
                a_start = starts[n][0]
                a_end = a_start + len(answers[n][0])
                inside = [i for i, sp in enumerate(spans) if sp is not None]
                if spans[inside[0]][0] <= a_start and spans[inside[-1]][1] >= a_end:
                    start_tok = next(i for i in inside if spans[i][1] > a_start)
                    end_tok = max(i for i in inside if spans[i][0] < a_end)
            labels.append((start_tok, end_tok))
        qids = [str(r.get("id", i)) for i, r in enumerate(rows.rows)]
        label_tensor = torch.tensor(labels) if need_answers or any(answers) else None
        return QASplit(rows, ids, label_tensor, example, offsets, contexts, answers, qids)

    def model_options(self) -> dict[str, Any]:
        return {"num_labels": 2}

    def load_model(self, folder: Path) -> torch.nn.Module:
        return self.model_class().from_pretrained(str(folder), dtype=torch.float32, num_labels=2)

    def forward(self, model: torch.nn.Module, batch: fd.Packed, device: torch.device) -> torch.Tensor:
        out = model(input_ids=batch.input_ids.to(device), cu_seqlens=batch.cu_seqlens.to(device),
                    max_seqlen=batch.max_seqlen)
        return torch.stack([out.start_logits, out.end_logits], -1)  # (tokens, 2)

    def outputs(self, logits: torch.Tensor, batch: fd.Packed) -> list[torch.Tensor]:
        """(tokens, 2) start and end logits of each window."""
        return self.token_outputs(logits, batch)

    def batch_loss(self, logits: torch.Tensor, labels: torch.Tensor, batch: fd.Packed) -> torch.Tensor:
        lengths = (batch.cu_seqlens[1:] - batch.cu_seqlens[:-1]).tolist()
        return self.window_loss(list(logits.float().split(lengths)), labels)

    def window_loss(self, windows: list[torch.Tensor], labels: torch.Tensor) -> torch.Tensor:
        """The summed loss of windows: (start + end cross-entropy over each window's tokens) / 2, as the model's."""
        total = windows[0].new_zeros(())
        for w, (s, e) in zip(windows, labels.tolist()):
            total = total + (F.cross_entropy(w[:, 0], torch.tensor(s, device=w.device))
                             + F.cross_entropy(w[:, 1], torch.tensor(e, device=w.device))) / 2
        return total

    def metric_names(self) -> list[str]:
        return ["eval_loss", "eval_exact_match", "eval_f1"]

    def answer(self, outputs: list[torch.Tensor], split: QASplit) -> list[str]:
        """The best answer of every question over its windows ("" when [CLS] wins, with unanswerable training)."""
        best: dict[int, tuple[float, str]] = {}
        null: dict[int, float] = {}
        for w, logits in enumerate(outputs):
            n, spans = split.example[w], split.offsets[w]
            start, end = logits[:, 0], logits[:, 1]
            null[n] = min(null.get(n, float("inf")), float(start[0] + end[0]))
            for i in torch.argsort(start, descending=True)[:N_BEST].tolist():
                for j in torch.argsort(end, descending=True)[:N_BEST].tolist():
                    if spans[i] is None or spans[j] is None or j < i or j - i + 1 > MAX_ANSWER_LENGTH:
                        continue
                    score = float(start[i] + end[j])
                    if n not in best or score > best[n][0]:
                        # A context token's span may hold the space before it: the answer is stripped.
                        best[n] = (score, split.contexts[n][spans[i][0] : spans[j][1]].strip())
        out = []
        for n in range(len(split.contexts)):
            score, text = best.get(n, (float("-inf"), ""))
            out.append("" if self.with_negative and null.get(n, float("-inf")) > score else text)
        return out

    def evaluate(self, outputs: list[torch.Tensor], split: QASplit) -> dict[str, float]:
        loss = float(self.window_loss(outputs, split.labels)) / len(outputs)
        scores = [squad_scores(p, a) for p, a in zip(self.answer(outputs, split), split.answers)]
        return {"loss": loss, "exact_match": 100 * sum(s[0] for s in scores) / len(scores),
                "f1": 100 * sum(s[1] for s in scores) / len(scores)}

    def predictions(self, outputs: list[torch.Tensor], split: QASplit) -> list[dict[str, Any]]:
        return [{"id": q, "prediction": p} for q, p in zip(split.qids, self.answer(outputs, split))]

    def describe(self) -> dict[str, Any]:
        return {"columns": {"question": "question", "context": "context", "answers": "answers"},
                "problem_type": "extractive" + (" with unanswerable questions" if self.with_negative else ""),
                "labels": []}
