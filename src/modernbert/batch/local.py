"""The local engine: one process streams each input file through one loaded pipeline.

Memory stays bounded whatever the input size: a file is read `read_rows` rows at a time (Parquet row groups,
JSONL/CSV blocks), and its results are written as they come, one Parquet part per `part_rows` rows.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any, TextIO

import pyarrow as pa

from .io import Input, done_parts, mark_done, part_path, read_batches, texts_of, write_part
from .tasks import Runner


def run_input(runner: Runner, item: Input, output: Path, text_column: str, *, read_rows: int = 1024,
              part_rows: int = 8192, bar: Any = None) -> dict[str, Any]:
    """Run one input file into `output/<name>/`, resuming after its parts already written; its summary."""
    folder = output / item.name
    folder.mkdir(parents=True, exist_ok=True)
    skip = done_parts(folder)
    row, tokens, start = 0, 0, time.perf_counter()
    pending: list[pa.Table] = []
    first = skip

    def flush() -> None:
        nonlocal pending, first
        if pending:
            table = pa.concat_tables(pending).combine_chunks()
            write_part(part_path(folder, first, table.num_rows), table)
            first += table.num_rows
            pending = []

    for batch in read_batches(item, read_rows):
        if row + batch.num_rows <= skip:
            row += batch.num_rows
            continue
        if row < skip:
            batch = batch.slice(skip - row)
            row = skip
        texts = texts_of(batch, text_column, str(item.path), row)
        try:
            columns, n_tokens = runner(texts)
        except ValueError as e:
            raise ValueError(f"{item.path}, rows {row}-{row + batch.num_rows - 1}: {e}") from None
        table = pa.Table.from_batches([batch])
        for name, values in columns.items():
            table = table.append_column(name, values)
        pending.append(table)
        tokens += n_tokens
        row += batch.num_rows
        if bar is not None:
            bar.update(batch.num_rows)
        if sum(t.num_rows for t in pending) >= part_rows:
            flush()
    flush()
    summary = {"rows": row - skip, "tokens": tokens, "seconds": time.perf_counter() - start, "total_rows": row}
    mark_done(output, item, {"rows": row, "engine": "local"})
    return summary


def run_local(items: list[Input], output: Path, *, task: str, model: str, text_column: str, dtype: str,
              device: str | None, batch_tokens: int | None, progress: bool, stream: TextIO | None = None,
              read_rows: int = 1024, part_rows: int = 8192) -> dict[str, Any]:
    """Run every (pending) input with one pipeline loaded once; the totals."""
    from ..pipelines import Progress

    runner = Runner(task, model, dtype=dtype, device=device, batch_tokens=batch_tokens)
    rows = tokens = 0
    start = time.perf_counter()
    total = sum(_rows_hint(i) for i in items)
    with Progress(total, f"batch {task}", progress and total > 0, stream=stream or sys.stderr, unit="row") as bar:
        for item in items:
            s = run_input(runner, item, output, text_column, read_rows=read_rows, part_rows=part_rows, bar=bar)
            rows += s["rows"]
            tokens += s["tokens"]
    return {"rows": rows, "tokens": tokens, "seconds": time.perf_counter() - start}


def _rows_hint(item: Input) -> int:
    """The row count of a Parquet file (from its footer); 0 for JSONL/CSV (unknown without reading them)."""
    if item.format != "parquet":
        return 0
    import pyarrow.parquet as pq

    return pq.ParquetFile(item.path).metadata.num_rows
