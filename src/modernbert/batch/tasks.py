"""The batch tasks: which pipeline each one runs, and how its results become Parquet columns.

An adapter is thin: it builds the existing pipeline and calls its `Pipeline.run(list) -> list`; it holds no model
code. `columns(results)` turns the per-row results into Arrow arrays (embeddings as fixed-size float32 lists,
labels and scores as columns, entities and fill-mask candidates as lists of structs).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa


@dataclass(frozen=True)
class Task:
    """One batch task.

    pipeline: the task name of `modernbert.pipelines.pipeline`. options: what its `run` gets on every call.
    columns: the result columns this task adds (an input column of the same name is an error).
    to_arrow: the per-row results of `run` → one Arrow array per result column.
    """

    pipeline: str
    columns: tuple[str, ...]
    to_arrow: Callable[[list[Any]], dict[str, pa.Array]]
    options: dict[str, Any] = field(default_factory=dict)


def _embeddings(results: list[list[float]]) -> dict[str, pa.Array]:
    import numpy as np

    values = np.asarray(results, dtype=np.float32)  # (rows, dim)
    dim = values.shape[1] if values.ndim == 2 else 0
    return {"embedding": pa.FixedSizeListArray.from_arrays(pa.array(values.reshape(-1)), dim)}


def _labels(results: list[list[dict[str, Any]]]) -> dict[str, pa.Array]:
    return {"label": pa.array([r[0]["label"] for r in results], pa.string()),
            "score": pa.array([r[0]["score"] for r in results], pa.float32())}


_ENTITY = pa.struct([("entity_group", pa.string()), ("score", pa.float32()), ("word", pa.string()),
                     ("start", pa.int64()), ("end", pa.int64())])
_CANDIDATE = pa.struct([("token", pa.int64()), ("token_str", pa.string()), ("score", pa.float32()),
                        ("sequence", pa.string())])


def _entities(results: list[list[dict[str, Any]]]) -> dict[str, pa.Array]:
    return {"entities": pa.array(results, pa.list_(_ENTITY))}


def _fill(results: list[list[list[dict[str, Any]]]]) -> dict[str, pa.Array]:
    return {"predictions": pa.array(results, pa.list_(pa.list_(_CANDIDATE)))}


TASKS: dict[str, Task] = {
    "embed": Task("sentence-embeddings", ("embedding",), _embeddings),
    "classify": Task("text-classification", ("label", "score"), _labels, {"top_k": 1}),
    "ner": Task("token-classification", ("entities",), _entities, {"aggregation_strategy": "simple"}),
    "fill-mask": Task("fill-mask", ("predictions",), _fill, {"top_k": 5}),
}


def check_task(task: str) -> Task:
    """The `Task` named `task`, or a ValueError listing the valid names."""
    if task not in TASKS:
        raise ValueError(f"unknown batch task {task!r}; valid tasks: {', '.join(TASKS)}")
    return TASKS[task]


class Runner:
    """A loaded pipeline and its task: `__call__(texts)` → (Arrow result columns, tokens).

    Rows are sorted by length and run in chunks of at most `batch_tokens` real tokens (a longer text runs
    alone), each chunk one `Pipeline.run` call with batch_size set to its length: one packed forward pass per
    chunk. Results come back in the rows' order. `batch_tokens=None` takes the device's default
    (`pipelines.base.DEFAULT_BATCH_TOKENS`): smaller chunks stay in cache on a CPU, a GPU needs large ones to fill.
    """

    def __init__(self, task: str, model: str, *, dtype: str = "auto", device: str | None = None,
                 batch_tokens: int | None = None) -> None:
        from ..hub import resolve_folder
        from ..pipelines import pipeline
        from ..pipelines.base import default_batch_tokens

        self.task = check_task(task)
        self.pipe = pipeline(self.task.pipeline, model=str(resolve_folder(model)), dtype=dtype, device=device)
        self.batch_tokens = default_batch_tokens(self.pipe.device) if batch_tokens is None else batch_tokens
        tok = self.pipe.tokenizer
        limit = getattr(getattr(self.pipe, "encoder", None), "max_seq_length", None)
        self.limit = limit or min(tok.model_max_length, self.pipe.model.config.max_position_embeddings)

    def count(self, texts: list[str]) -> list[int]:
        """Real tokens per text (special tokens included), capped at what the model reads of it."""
        ids = self.pipe.tokenizer(texts, truncation=False, max_length=self.limit, return_attention_mask=False)
        return [min(len(x), self.limit) for x in ids["input_ids"]]

    def __call__(self, texts: list[str]) -> tuple[dict[str, pa.Array], int]:
        counts = self.count(texts)
        # Chunks of similar lengths: attention pads each chunk's sequences to its longest.
        order = sorted(range(len(texts)), key=counts.__getitem__)
        results: list[Any] = [None] * len(texts)
        start = 0
        while start < len(order):
            end, budget = start, 0
            while end < len(order) and (end == start or budget + counts[order[end]] <= self.batch_tokens):
                budget += counts[order[end]]
                end += 1
            rows = order[start:end]
            try:
                out = self.pipe.run([texts[i] for i in rows], batch_size=len(rows), **self.task.options)
            except ValueError as e:
                raise ValueError(_batch_rows(str(e), rows)) from None
            for i, r in zip(rows, out):
                results[i] = r
            start = end
        return self.task.to_arrow(results), sum(counts)


def _batch_rows(message: str, rows: list[int]) -> str:
    """A pipeline's "inputs[i]" → "row r of the batch" (rows: the batch rows of the chunk it was given)."""
    import re

    return re.sub(r"inputs\[(\d+)\]", lambda m: f"row {rows[int(m.group(1))]} of the batch", message)
