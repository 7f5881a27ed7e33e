"""The `token-classification` task of `modernbert finetune`: word-level tags, as transformers' run_ner.py.

Data: CoNLL files (`.conll`, `.iob`, `.bio`: one word a line, its tag in the last column, a blank line between
sentences, `-DOCSTART-` lines skipped) or any table `finetune_data.read_rows` reads, with a list of words and
a list of tags per row: the `tokens` and `ner_tags` columns when present, else the first and the second column
(run_ner.py's rule). Tags are sorted into the label list (run_ner.py's order).

The words of a sentence are joined by single spaces and tokenised as running text (so the model sees what the
NER pipeline gives it); the first sub-token of every word carries the word's tag, the other sub-tokens -100,
or with `label_all_tokens` the word's tag too (`B-X` becomes `I-X`, as run_ner.py does). Evaluation is at
word level, on the words the truncation kept: entity precision, recall and F1 (`metrics.entity_metrics`) and
accuracy.
"""

from __future__ import annotations

import bisect
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from . import finetune_data as fd
from . import metrics as M
from .finetune import Task

CONLL_SUFFIXES = (".conll", ".conllu", ".iob", ".iob2", ".bio")
IGNORE = -100


def read_conll(path: str | os.PathLike) -> fd.Rows:
    """The sentences of a CoNLL file as rows `{"tokens": [...], "ner_tags": [...]}`, each from the line of its
    first word."""
    path = Path(path)
    rows, sources, item_lines, words, tags, lines = [], [], [], [], [], []
    text = path.read_text(encoding="utf-8-sig")

    def close() -> None:
        if words:
            rows.append({"tokens": list(words), "ner_tags": list(tags)})
            sources.append(fd.Source(str(path), line=lines[0]))
            item_lines.append(list(lines))
            for x in (words, tags, lines):
                x.clear()

    for n, line in enumerate(text.splitlines(), 1):
        fields = line.split()
        if not fields:
            close()
            continue
        if fields[0] == "-DOCSTART-":
            close()
            continue
        if len(fields) < 2:
            raise fd.DataError(f"{path}, line {n}: {line.strip()!r} has no tag; expected a word and its tag "
                               "(the last column), separated by whitespace")
        words.append(fields[0])
        tags.append(fields[-1])
        lines.append(n)
    close()
    if not rows:
        raise fd.DataError(f"{path}: the file holds no sentences; expected one word and its tag a line, a blank "
                           "line between sentences")
    return fd.Rows(str(path), ["tokens", "ner_tags"], rows, sources, item_lines=item_lines)


def read_tagged(data: Any, name: str) -> fd.Rows:
    """CoNLL by its suffix, else any table `finetune_data.read_rows` reads."""
    if isinstance(data, (str, os.PathLike)) and Path(data).suffix.lower() in CONLL_SUFFIXES:
        if not Path(data).is_file():
            raise fd.DataError(f"{data}: no such file")
        return read_conll(data)
    return fd.read_rows(data, name)


def _words(rows: fd.Rows, column: str, label_column: str) -> list[tuple[list[str], list[Any]]]:
    for col, flag in ((column, "--text-column"), (label_column, "--label-column")):
        if col not in rows.columns:
            raise fd.missing_column(rows, col, flag)
    out = []
    for row, src in zip(rows.rows, rows.sources):
        words, tags = row.get(column), row.get(label_column)
        for value, col, what in ((words, column, "words"), (tags, label_column, "tags")):
            if not isinstance(value, (list, tuple)):
                raise fd.DataError(f"{src.where(col)}: a {type(value).__name__}; expected a list of {what}")
        if len(words) != len(tags):
            raise fd.DataError(f"{src.where(label_column)}: {len(tags)} tags for {len(words)} words; expected one "
                               "tag per word")
        for w in words:
            if not isinstance(w, str) or not w.strip() or any(c.isspace() for c in w):
                raise fd.DataError(f"{src.where(column)}: word {w!r}; expected words of text without spaces")
        out.append((list(words), list(tags)))
    return out


@dataclass
class TaggedSplit:
    """A tokenised split of tagged sentences (the fields of `finetune.Split`, and the words)."""

    rows: fd.Rows
    ids: list[list[int]]
    labels: list[torch.Tensor]  # (tokens,) per sentence: tag ids, -100 where no tag is learnt
    words: list[list[str]]
    tags: list[list[str]]
    firsts: list[list[int]]  # the words the truncation kept, per sentence
    positions: list[list[int]]  # the token position of the first sub-token of each kept word

    @property
    def lengths(self) -> list[int]:
        return [len(x) for x in self.ids]


class TokenClassification(Task):
    """Word-level tagging (`ModernBertForTokenClassification`)."""

    name = "token-classification"
    architecture = "ModernBertForTokenClassification"
    auto_class = "AutoModelForTokenClassification"
    pipeline_tag = "token-classification"

    def __init__(self, cfg: Any, tokenizer: Any, max_length: int) -> None:
        self.cfg, self.tokenizer, self.max_length = cfg, tokenizer, max_length
        train = read_tagged(cfg.train, "train data")
        self.text_column = cfg.text_column or ("tokens" if "tokens" in train.columns else train.columns[0])
        if cfg.label_column:
            self.label_column = cfg.label_column
        elif "ner_tags" in train.columns:
            self.label_column = "ner_tags"
        else:
            rest = [c for c in train.columns if c != self.text_column]
            if not rest:
                raise fd.DataError(f"{train.name}: one column only; expected a column of words and one of tags")
            self.label_column = rest[0]
        tagged = _words(train, self.text_column, self.label_column)
        names = sorted({str(t) for _, tags in tagged for t in tags})
        self.names = names
        self.label2id = {n: i for i, n in enumerate(names)}
        # run_ner.py's b_to_i_label: the tag of the later sub-tokens of a word with label_all_tokens.
        self.inside = [self.label2id.get("I-" + n[2:], i) if n.startswith("B-") else i for i, n in enumerate(names)]
        self.train = self._split(train, tagged, "training")
        self.validation = self._load(cfg.validation, "validation")
        self.test = self._load(cfg.test, "test")

    def _load(self, data: Any, split: str) -> Any:
        if data is None:
            return None
        rows = read_tagged(data, f"{split} data")
        return self._split(rows, _words(rows, self.text_column, self.label_column), split)

    def _split(self, rows: fd.Rows, tagged: list[tuple[list[str], list[Any]]], split: str) -> Any:
        texts, starts = [], []
        for words, _ in tagged:
            offsets, at = [], 0
            for w in words:
                offsets.append(at)
                at += len(w) + 1
            texts.append(" ".join(words))
            starts.append(offsets)
        enc = self.tokenizer(texts, truncation=True, max_length=self.max_length, return_offsets_mapping=True,
                             return_special_tokens_mask=True)
        ids, labels, firsts, positions = [], [], [], []
        for n, ((_, tags), src) in enumerate(zip(tagged, rows.sources)):
            tag_ids = []
            for k, t in enumerate(tags):
                if str(t) not in self.label2id:
                    if rows.item_lines is not None:
                        src = fd.Source(src.file, line=rows.item_lines[n][k])
                    raise fd.DataError(f"{src.where(self.label_column)}: tag {str(t)!r} of the {split} data is not "
                                       f"among the training tags ({', '.join(self.names)}); expected one of those")
                tag_ids.append(self.label2id[str(t)])
            label, kept, at, previous = [], [], [], None
            for position, ((s, _), special) in enumerate(zip(enc["offset_mapping"][n], enc["special_tokens_mask"][n])):
                word = None if special else bisect.bisect_right(starts[n], s) - 1
                if word is None:
                    label.append(IGNORE)
                elif word != previous:
                    label.append(tag_ids[word])
                    kept.append(word)
                    at.append(position)
                else:
                    label.append(self.inside[tag_ids[word]] if self.cfg.label_all_tokens else IGNORE)
                previous = word
            ids.append(list(enc["input_ids"][n]))
            labels.append(torch.tensor(label))
            firsts.append(kept)
            positions.append(at)
        return TaggedSplit(rows, ids, labels, [w for w, _ in tagged], [[str(t) for t in tags] for _, tags in tagged],
                           firsts, positions)

    def model_options(self) -> dict[str, Any]:
        return {"num_labels": len(self.names), "id2label": dict(enumerate(self.names)), "label2id": self.label2id}

    def load_model(self, folder: Path) -> torch.nn.Module:
        return self.model_class().from_pretrained(
            str(folder), dtype=torch.float32, ignore_mismatched_sizes=self.cfg.ignore_mismatched_sizes,
            **self.model_options(),
        )

    def batch_labels(self, split: Any, index: torch.Tensor) -> torch.Tensor:
        return torch.cat([split.labels[i] for i in index.tolist()])

    def count(self, labels: torch.Tensor) -> int:
        """What the loss is averaged over: the labelled tokens."""
        return int((labels != IGNORE).sum())

    def outputs(self, logits: torch.Tensor, batch: Any) -> list[torch.Tensor]:
        """The logits of each sequence of a batch: (its tokens, num_labels) each."""
        return self.token_outputs(logits, batch)

    def loss_sum(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(logits.float(), labels, ignore_index=IGNORE, reduction="sum")

    def metric_names(self) -> list[str]:
        return ["eval_loss", "eval_precision", "eval_recall", "eval_f1", "eval_accuracy"]

    def evaluate(self, outputs: list[torch.Tensor], split: Any) -> dict[str, float]:
        """`loss` over the labelled tokens, and the entity metrics of the kept words."""
        loss = sum(float(self.loss_sum(o, y)) for o, y in zip(outputs, split.labels))
        count = sum(self.count(y) for y in split.labels)
        true = [[split.tags[n][w] for w in split.firsts[n]] for n in range(len(outputs))]
        pred = [[self.names[int(o[p].argmax())] for p in split.positions[n]] for n, o in enumerate(outputs)]
        return {"loss": loss / max(1, count), **M.entity_metrics(true, pred)}

    def predictions(self, outputs: list[torch.Tensor], split: Any) -> list[dict[str, Any]]:
        preds = []
        for n, o in enumerate(outputs):
            tags: list[str | None] = [None] * len(split.words[n])
            for w, p in zip(split.firsts[n], split.positions[n]):
                tags[w] = self.names[int(o[p].argmax())]
            preds.append({"index": n, "tokens": split.words[n], "prediction": tags})
        return preds

    def describe(self) -> dict[str, Any]:
        return {"columns": {"words": self.text_column, "tags": self.label_column}, "problem_type": "word-level tags",
                "labels": self.names}
