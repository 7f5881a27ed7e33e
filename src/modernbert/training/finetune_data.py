"""Data of a fine-tuning run: reading rows, choosing columns and labels, tokenising, packing batches.

- `read_rows` reads CSV, TSV, JSON (a list of objects, or an object holding one such list), JSONL and Parquet
  (through pyarrow, the `finetune` extra), or takes a list of dicts or a `datasets.Dataset`. Every row keeps
  where it came from (`Source`), so an error names the file, the line and the column.
- `text_columns` and `LabelSpace.infer` choose the text columns and the kind of problem as transformers'
  run_glue.py does: `sentence1`/`sentence2` when present, else the first two columns that are not the label
  column, else the first one; float labels are a regression, lists of labels a multi-label problem, any other
  labels classes, sorted.
- `PackPlan` orders the examples of an epoch: shuffled by `(seed, epoch)`, grouped by length in windows and
  cut into unpadded packed batches of at most `batch_tokens` tokens (and `batch_size` sequences).

A bad input raises `DataError` (a `ValueError`) on one line: `FILE, line N, column 'C': what; expected ...`.
"""

from __future__ import annotations

import csv
import json
import math
import os
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

FORMATS = {".csv": "csv", ".tsv": "tsv", ".json": "json", ".jsonl": "jsonl", ".ndjson": "jsonl",
           ".parquet": "parquet", ".pq": "parquet"}
PROBLEM_TYPES = ("single_label_classification", "multi_label_classification", "regression")
_INT = re.compile(r"^[+-]?\d+$")
_FLOAT = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$")


class DataError(ValueError):
    """A bad training, validation or test input, named by file, line and column."""


@dataclass(frozen=True)
class Source:
    """Where a row comes from: `file` and its `line` (CSV/TSV/JSONL), or the `record` number (JSON, Parquet,
    Python data)."""

    file: str
    line: int | None = None
    record: int | None = None

    def where(self, column: str | None = None) -> str:
        at = self.file
        if self.line is not None:
            at += f", line {self.line}"
        elif self.record is not None:
            at += f", record {self.record}"
        return at + (f", column {column!r}" if column is not None else "")


@dataclass
class Rows:
    """The rows of one input: `rows[i]` is a dict of its columns, `sources[i]` where it comes from."""

    name: str  # the file, or "train data" for Python data
    columns: list[str]
    rows: list[dict[str, Any]]
    sources: list[Source]
    header: bool = False  # the columns are named by a header line (CSV, TSV)
    item_lines: list[list[int]] | None = None  # CoNLL: the line of every word of every row

    def __len__(self) -> int:
        return len(self.rows)


def _empty(name: str, expected: str) -> DataError:
    return DataError(f"{name}: the file holds no rows; expected {expected}")


def _read_delimited(path: Path, delimiter: str) -> Rows:
    text = path.read_text(encoding="utf-8-sig")
    if not text.strip():
        raise _empty(str(path), "a header line naming the columns, then one row per example")
    reader = csv.reader(text.splitlines(keepends=True), delimiter=delimiter)
    header = next(reader)
    columns = [c.strip() for c in header]
    if len(set(columns)) != len(columns):
        dup = next(c for c in columns if columns.count(c) > 1)
        raise DataError(f"{path}, line 1: the header names column {dup!r} twice; expected unique column names")
    rows, sources = [], []
    for cells in reader:
        line = reader.line_num
        if not cells or all(not c.strip() for c in cells):
            continue
        if len(cells) != len(columns):
            raise DataError(
                f"{path}, line {line}: {len(cells)} fields; expected {len(columns)}, as in the header "
                f"({', '.join(columns)})"
            )
        rows.append(dict(zip(columns, cells)))
        sources.append(Source(str(path), line=line))
    if not rows:
        raise _empty(str(path), "one row per example after the header line")
    return Rows(str(path), columns, rows, sources, header=True)


def _read_jsonl(path: Path) -> Rows:
    rows, sources = [], []
    with path.open(encoding="utf-8-sig") as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as e:
                raise DataError(f"{path}, line {n}: not valid JSON ({e.msg}); expected one JSON object per "
                                "line") from None
            if not isinstance(row, dict):
                raise DataError(f"{path}, line {n}: a JSON {type(row).__name__}; expected one JSON object per line")
            rows.append(row)
            sources.append(Source(str(path), line=n))
    if not rows:
        raise _empty(str(path), "one JSON object per line")
    return Rows(str(path), _columns(rows), rows, sources)


def _read_json(path: Path) -> Rows:
    text = path.read_text(encoding="utf-8-sig")
    if not text.strip():
        raise _empty(str(path), "a JSON list of objects")
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        hint = ("; it looks like JSON Lines (one object per line): name it .jsonl"
                if text.lstrip().startswith("{") and "\n{" in text.strip() else "")
        raise DataError(f"{path}, line {e.lineno}: not valid JSON ({e.msg}){hint}") from None
    if isinstance(data, dict):
        lists = [k for k, v in data.items() if isinstance(v, list)]
        if len(lists) != 1:
            raise DataError(f"{path}: a JSON object; expected a list of objects, or an object holding one such list "
                            "(as {\"data\": [...]})")
        data = data[lists[0]]
    if not isinstance(data, list):
        raise DataError(f"{path}: a JSON {type(data).__name__}; expected a list of objects")
    return _python_rows(data, str(path))


def _read_parquet(path: Path) -> Rows:
    try:
        import pyarrow.parquet as pq
    except ImportError:
        raise DataError(
            f"{path}: reading Parquet needs pyarrow; install it with pip install 'modernbert[finetune]'"
        ) from None
    table = pq.read_table(path)
    rows = table.to_pylist()
    if not rows:
        raise _empty(str(path), "one row per example")
    return Rows(str(path), list(table.column_names), rows, [Source(str(path), record=i + 1) for i in range(len(rows))])


def _columns(rows: list[dict[str, Any]]) -> list[str]:
    seen: dict[str, None] = {}
    for row in rows:
        seen.update(dict.fromkeys(row))
    return list(seen)


def _python_rows(data: Iterable[Any], name: str) -> Rows:
    rows, sources = [], []
    for i, row in enumerate(data, 1):
        if not isinstance(row, dict):
            raise DataError(f"{name}, record {i}: a {type(row).__name__}; expected a dict of columns")
        rows.append(dict(row))
        sources.append(Source(name, record=i))
    if not rows:
        raise DataError(f"{name}: no rows; expected at least one example")
    return Rows(name, _columns(rows), rows, sources)


def read_rows(data: str | os.PathLike | Sequence[dict[str, Any]] | Any, name: str = "data") -> Rows:
    """The rows of a data file (by its extension), a list of dicts or a `datasets.Dataset`.

    data: the file path, or the rows themselves.
    name: what Python data is called in errors ("train data").
    """
    if isinstance(data, (str, os.PathLike)):
        path = Path(data)
        if not path.is_file():
            raise DataError(f"{path}: no such file")
        fmt = FORMATS.get(path.suffix.lower())
        if fmt is None:
            raise DataError(f"{path}: unknown file type {path.suffix!r}; expected one of {', '.join(sorted(FORMATS))}")
        if fmt == "csv":
            return _read_delimited(path, ",")
        if fmt == "tsv":
            return _read_delimited(path, "\t")
        if fmt == "jsonl":
            return _read_jsonl(path)
        if fmt == "json":
            return _read_json(path)
        return _read_parquet(path)
    return _python_rows(data, name)


# ----- columns and labels -----


def text_columns(rows: Rows, label_column: str, text_column: str | None, pair_column: str | None,
                 ) -> tuple[str, str | None]:
    """The text column and the pair column (or None), run_glue.py's defaults unless given."""
    for given, flag in ((text_column, "--text-column"), (pair_column, "--text-pair-column")):
        if given is not None and given not in rows.columns:
            raise missing_column(rows, given, flag)
    if text_column is not None:
        return text_column, pair_column
    others = [c for c in rows.columns if c != label_column]
    if "sentence1" in others and "sentence2" in others:
        return "sentence1", "sentence2"
    if not others:
        raise DataError(f"{rows.name}: no text column besides the label column {label_column!r}; "
                        "expected a column of texts (--text-column)")
    if pair_column is not None:
        return others[0] if others[0] != pair_column else others[1], pair_column
    return others[0], (others[1] if len(others) >= 2 else None)


def missing_column(rows: Rows, column: str, flag: str) -> DataError:
    """The error of a column that no row of `rows` has."""
    at = f"{rows.name}, line 1 (header)" if rows.header else rows.name
    return DataError(f"{at}: no column {column!r}; expected one of the columns {', '.join(rows.columns)} "
                     f"(choose one with {flag})")


def as_number(value: Any) -> int | float | None:
    """A value as a number (CSV cells are strings: typed as a CSV reader would), or None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return value
    if isinstance(value, str):
        s = value.strip()
        if _INT.match(s):
            return int(s)
        if _FLOAT.match(s):
            return float(s)
    return None


def _label_values(rows: Rows, column: str) -> list[Any]:
    if column not in rows.columns:
        raise missing_column(rows, column, "--label-column")
    out = []
    for row, src in zip(rows.rows, rows.sources):
        if column not in row:
            raise DataError(f"{src.where()}: no column {column!r}; expected a label on every row (--label-column)")
        value = row[column]
        if value is None or (isinstance(value, str) and not value.strip()):
            raise DataError(f"{src.where(column)}: the label is empty; expected a label on every row")
        out.append(value)
    return out


def _as_list(value: Any, src: Source, column: str) -> list[str]:
    if isinstance(value, (list, tuple)):
        return [str(v) for v in value]
    if isinstance(value, str):  # CSV: comma-separated labels, as run_classification.py splits them
        return [v.strip() for v in value.split(",") if v.strip()]
    raise DataError(f"{src.where(column)}: {value!r}; expected a list of labels (multi-label classification)")


def _class_name(value: Any) -> str:
    number = as_number(value)
    return str(number) if isinstance(number, int) else str(value)


@dataclass
class LabelSpace:
    """The labels of a sequence-classification problem: its kind and the class names (index order)."""

    problem_type: str
    names: list[str]  # class names; ["score"] for a regression

    @property
    def num_labels(self) -> int:
        return len(self.names)

    @property
    def id2label(self) -> dict[int, str]:
        return dict(enumerate(self.names))

    @property
    def label2id(self) -> dict[str, int]:
        return {n: i for i, n in enumerate(self.names)}

    @classmethod
    def infer(cls, rows: Rows, column: str, problem_type: str | None = None) -> LabelSpace:
        """The problem of the training rows: forced by `problem_type`, or inferred as run_glue.py does."""
        values = _label_values(rows, column)
        if problem_type is not None and problem_type not in PROBLEM_TYPES:
            raise DataError(f"problem_type={problem_type!r}; expected one of {', '.join(PROBLEM_TYPES)}")
        if problem_type is None:
            if all(isinstance(v, (list, tuple)) for v in values):
                problem_type = "multi_label_classification"
            else:
                numbers = [as_number(v) for v in values]
                regression = all(n is not None for n in numbers) and any(isinstance(n, float) for n in numbers)
                problem_type = "regression" if regression else "single_label_classification"
        if problem_type == "regression":
            for v, src in zip(values, rows.sources):
                if as_number(v) is None:
                    raise DataError(f"{src.where(column)}: {v!r} is not a number; expected a number (regression)")
            return cls("regression", ["score"])
        if problem_type == "multi_label_classification":
            names = {n for v, src in zip(values, rows.sources) for n in _as_list(v, src, column)}
            return cls(problem_type, sorted(names))
        for v, src in zip(values, rows.sources):
            if isinstance(v, (list, tuple, dict)):
                raise DataError(f"{src.where(column)}: {v!r}; expected one label per row (single-label "
                                "classification; lists of labels are multi-label: --problem-type)")
        classes = {_class_name(v): as_number(v) for v in values}
        numeric = all(isinstance(n, int) for n in classes.values())
        order = sorted(classes, key=(lambda c: classes[c]) if numeric else None)
        return cls(problem_type, order)

    def encode(self, rows: Rows, column: str, split: str) -> torch.Tensor:
        """The label tensor of `rows`: (n,) class ids, (n,) floats or (n, num_labels) multi-hot floats.

        Raises `DataError` for a label the training set does not have.
        """
        values = _label_values(rows, column)
        if self.problem_type == "regression":
            out = []
            for v, src in zip(values, rows.sources):
                n = as_number(v)
                if n is None:
                    raise DataError(f"{src.where(column)}: {v!r} is not a number; expected a number (regression)")
                out.append(float(n))
            return torch.tensor(out, dtype=torch.float32)
        ids = self.label2id
        known = ", ".join(self.names[:20]) + (", …" if len(self.names) > 20 else "")

        def class_id(name: str, src: Source) -> int:
            if name not in ids:
                raise DataError(f"{src.where(column)}: label {name!r} of the {split} data is not among the "
                                f"training labels ({known}); expected one of those")
            return ids[name]

        if self.problem_type == "multi_label_classification":
            out = torch.zeros(len(values), self.num_labels)
            for i, (v, src) in enumerate(zip(values, rows.sources)):
                for name in _as_list(v, src, column):
                    out[i, class_id(name, src)] = 1.0
            return out
        return torch.tensor([class_id(_class_name(v), src) for v, src in zip(values, rows.sources)], dtype=torch.long)


def texts(rows: Rows, column: str, flag: str) -> list[str]:
    """The strings of one text column; a missing column or a cell that is not text is a `DataError`."""
    if column not in rows.columns:
        raise missing_column(rows, column, flag)
    out = []
    for row, src in zip(rows.rows, rows.sources):
        if column not in row:
            raise DataError(f"{src.where()}: no column {column!r}; expected it on every row (as {flag})")
        value = row[column]
        if not isinstance(value, str):
            raise DataError(f"{src.where(column)}: a {type(value).__name__}; expected text")
        out.append(value)
    return out


# ----- packing -----


@dataclass
class Packed:
    """One unpadded batch: the tokens of its sequences end to end, and where each one starts."""

    index: torch.Tensor  # (sequences,) example indices
    input_ids: torch.Tensor  # (tokens,)
    cu_seqlens: torch.Tensor  # (sequences + 1,) int32
    max_seqlen: int
    group_sizes: list[int] | None = None  # sequences per example, for tasks whose examples pack several

    @property
    def num_tokens(self) -> int:
        return int(self.input_ids.numel())


def pack(ids: Sequence[Sequence[int]], index: Sequence[int]) -> Packed:
    """The examples `index` of the tokenised `ids`, packed into one batch."""
    lengths = [len(ids[i]) for i in index]
    flat = [t for i in index for t in ids[i]]
    cu = torch.zeros(len(index) + 1, dtype=torch.int32)
    cu[1:] = torch.tensor(lengths, dtype=torch.int32).cumsum(0)
    return Packed(torch.tensor(list(index)), torch.tensor(flat, dtype=torch.long), cu, max(lengths))


def cut_batches(order: Sequence[int], lengths: Sequence[int], batch_tokens: int, batch_size: int | None,
                ) -> list[list[int]]:
    """Cut `order` into consecutive batches of at most `batch_tokens` tokens and `batch_size` sequences."""
    batches, current, tokens = [], [], 0
    for i in order:
        n = lengths[i]
        if current and (tokens + n > batch_tokens or (batch_size is not None and len(current) >= batch_size)):
            batches.append(current)
            current, tokens = [], 0
        current.append(i)
        tokens += n
    if current:
        batches.append(current)
    return batches


class PackPlan:
    """The batches of each epoch, fixed by `(seed, epoch)`: the examples are shuffled, sorted by length
    within windows of about `window` batches (so a batch holds sequences of similar length) and cut to the
    token budget; the batches are then shuffled.

    lengths: tokens of every example.
    batch_tokens: most tokens of a batch (a longer single example is a batch of its own).
    batch_size: most sequences of a batch, or None.
    """

    def __init__(self, lengths: Sequence[int], batch_tokens: int, batch_size: int | None, seed: int,
                 window: int = 50) -> None:
        self.lengths, self.batch_tokens, self.batch_size = list(lengths), batch_tokens, batch_size
        self.seed, self.window = seed, window
        self._cache: dict[int, list[list[int]]] = {}

    def epoch(self, epoch: int) -> list[list[int]]:
        """The batches (lists of example indices) of `epoch`, in training order."""
        if epoch not in self._cache:
            g = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
            order = torch.randperm(len(self.lengths), generator=g).tolist()
            mean = max(1.0, sum(self.lengths) / max(len(self.lengths), 1))
            per_batch = max(1, int(self.batch_tokens / mean))
            if self.batch_size is not None:
                per_batch = min(per_batch, self.batch_size)
            span = per_batch * self.window
            grouped = []
            for start in range(0, len(order), span):
                grouped += sorted(order[start : start + span], key=lambda i: -self.lengths[i])
            batches = cut_batches(grouped, self.lengths, self.batch_tokens, self.batch_size)
            shuffle = torch.randperm(len(batches), generator=g).tolist()
            self._cache = {epoch: [batches[i] for i in shuffle]}  # one epoch at a time is enough
        return self._cache[epoch]

    def steps_in_epoch(self, epoch: int, accumulation: int) -> int:
        return math.ceil(len(self.epoch(epoch)) / accumulation)


def eval_batches(lengths: Sequence[int], batch_tokens: int, batch_size: int | None) -> list[list[int]]:
    """Evaluation batches: examples sorted by length (longest first) and cut to the token budget."""
    order = sorted(range(len(lengths)), key=lambda i: (-lengths[i], i))
    return cut_batches(order, lengths, batch_tokens, batch_size)
