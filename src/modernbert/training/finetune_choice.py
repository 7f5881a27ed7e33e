"""The `multiple-choice` task of `modernbert finetune`, as transformers' run_swag.py.

Rows hold a context, its choices and the index of the right one (`label`):

- SWAG's columns: `sent1` (the context), `sent2` (the start of every choice) and `ending0` ... `endingN`; each
  choice is the pair (`sent1`, `sent2 + " " + ending`), as run_swag.py builds it;
- or a text column (`--text-column`, default `context`, else `question`, else the first column) and a
  `choices` column holding the list of choices: each choice is the pair (text, choice).

Every example has the same number of choices. The choices of an example are packed one after another; the
model (`ModernBertForMultipleChoice`) scores each from its pooled sequence, and the loss is the cross-entropy
over an example's choices. Evaluation: `eval_loss` and `eval_accuracy`.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from . import finetune_data as fd
from .finetune import Task
from .finetune_pairs import PairSplit, pack_groups

_ENDING = re.compile(r"^ending(\d+)$")


class MultipleChoice(Task):
    """Choosing the right continuation or answer among a fixed number of choices."""

    name = "multiple-choice"
    architecture = "ModernBertForMultipleChoice"
    auto_class = "AutoModelForMultipleChoice"
    pipeline_tag = "multiple-choice"

    def __init__(self, cfg: Any, tokenizer: Any, max_length: int) -> None:
        self.cfg, self.tokenizer, self.max_length = cfg, tokenizer, max_length
        self.label_column = cfg.label_column or "label"
        train = fd.read_rows(cfg.train, "train data")
        endings = sorted((int(m[1]), c) for c in train.columns if (m := _ENDING.match(c)))
        if "sent1" in train.columns and endings and cfg.text_column is None:
            self.layout, self.endings = "swag", [c for _, c in endings]
            self.text_column = "sent1"
        else:
            if "choices" not in train.columns:
                raise fd.missing_column(train, "choices", "a 'choices' column holding a list of choices, or SWAG's "
                                        "sent1, sent2, ending0 ... columns; the text is --text-column")
            self.layout, self.endings = "choices", []
            self.text_column = cfg.text_column or next(
                (c for c in ("context", "question") if c in train.columns),
                next(c for c in train.columns if c not in ("choices", self.label_column)))
        self.num_choices: int | None = None
        self.train = self._split(train, "training")
        self.validation = None if cfg.validation is None else self._split(
            fd.read_rows(cfg.validation, "validation data"), "validation")
        self.test = None if cfg.test is None else self._split(fd.read_rows(cfg.test, "test data"), "test",
                                                              need_labels=False)

    def _choices(self, rows: fd.Rows) -> tuple[list[str], list[list[str]]]:
        firsts = fd.texts(rows, self.text_column, "--text-column")
        if self.layout == "swag":
            starts = fd.texts(rows, "sent2", "sent2") if "sent2" in rows.columns else [""] * len(rows)
            ends = [fd.texts(rows, c, c) for c in self.endings]
            return firsts, [[f"{s} {e[i]}".strip() for e in ends] for i, s in enumerate(starts)]
        out = []
        for row, src in zip(rows.rows, rows.sources):
            value = row.get("choices")
            if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) for v in value):
                raise fd.DataError(f"{src.where('choices')}: {value!r}; expected a list of choices (texts)")
            out.append(list(value))
        return firsts, out

    def _split(self, rows: fd.Rows, split: str, need_labels: bool = True) -> PairSplit:
        firsts, choices = self._choices(rows)
        for c, src in zip(choices, rows.sources):
            if self.num_choices is None:
                self.num_choices = len(c)
            if len(c) != self.num_choices or len(c) < 2:
                raise fd.DataError(f"{src.where()}: {len(c)} choices; expected {self.num_choices} (at least 2), as "
                                   "on the first training row")
        k = self.num_choices
        flat_first = [f for f in firsts for _ in range(k)]
        flat_second = [c for cs in choices for c in cs]
        enc = self.tokenizer(flat_first, flat_second, truncation=True, max_length=self.max_length)["input_ids"]
        groups = [[list(enc[i * k + j]) for j in range(k)] for i in range(len(rows))]
        labels = None
        if need_labels or all(self.label_column in r for r in rows.rows):
            if self.label_column not in rows.columns:
                raise fd.missing_column(rows, self.label_column, "--label-column")
            values = []
            for row, src in zip(rows.rows, rows.sources):
                v = fd.as_number(row.get(self.label_column))
                if not isinstance(v, int) or not 0 <= v < k:
                    raise fd.DataError(f"{src.where(self.label_column)}: {row.get(self.label_column)!r}; expected "
                                       f"the index of the right choice, 0 to {k - 1}")
                values.append(v)
            labels = torch.tensor(values)
        return PairSplit(rows, groups, labels)

    def model_options(self) -> dict[str, Any]:
        return {}

    def load_model(self, folder: Path) -> torch.nn.Module:
        return self.model_class().from_pretrained(str(folder), dtype=torch.float32)

    def pack(self, split: PairSplit, index: list[int]) -> fd.Packed:
        """The choices of each example, one after another."""
        return pack_groups(split.ids, index)

    def forward(self, model: torch.nn.Module, batch: fd.Packed, device: torch.device) -> torch.Tensor:
        """Scores (examples, choices): the multiple-choice head on the pooled packed sequences."""
        return model(input_ids=batch.input_ids.to(device), cu_seqlens=batch.cu_seqlens.to(device),
                     max_seqlen=batch.max_seqlen, num_choices=self.num_choices).logits

    def loss_sum(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(logits.float(), labels, reduction="sum")

    def metric_names(self) -> list[str]:
        return ["eval_loss", "eval_accuracy"]

    def evaluate(self, outputs: list[torch.Tensor], split: PairSplit) -> dict[str, float]:
        logits = torch.stack(outputs)
        return {"loss": float(self.loss_sum(logits, split.labels)) / len(outputs),
                "accuracy": float((logits.argmax(-1) == split.labels).float().mean())}

    def predictions(self, outputs: list[torch.Tensor], split: PairSplit) -> list[dict[str, Any]]:
        return [{"index": i, "prediction": int(o.argmax()), "scores": torch.softmax(o, -1).tolist()}
                for i, o in enumerate(outputs)]

    def describe(self) -> dict[str, Any]:
        columns = {"context": self.text_column, "choices": ", ".join(self.endings) if self.endings else "choices",
                   "label": self.label_column}
        return {"columns": columns, "problem_type": f"{self.num_choices} choices", "labels": []}
