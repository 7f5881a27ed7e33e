"""Batch inputs and outputs: finding the input files, checking them, reading them in bounded pieces, and the
output directory's layout (parts, completion markers, the job record).

Output layout, for each input file (its output name: the file's stem and a hash of its absolute path):

    OUTPUT/_job.json                     what the directory holds (task, model, columns): a re-run must match
    OUTPUT/<name>/part-<first row>-<rows>.parquet   the rows of the input, in order, written atomically
    OUTPUT/<name>/_SUCCESS.json          written last: the input is complete (rows, tokens, seconds)

Readers of the output (`pyarrow.dataset`, Ray, pandas, DuckDB) skip names starting with `_` or `.`, so the
whole directory reads as one table. Never torch.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa

from ..hub import write_json_atomic

FORMATS = {".parquet": "parquet", ".jsonl": "json", ".json": "json", ".csv": "csv"}
SUCCESS = "_SUCCESS.json"
JOB = "_job.json"
_PART = re.compile(r"part-(\d{12})-(\d+)\.parquet$")


@dataclass(frozen=True)
class Input:
    """One input file: its path, its format ("parquet", "json" or "csv") and its output name."""

    path: Path
    format: str
    name: str


def find_inputs(paths: list[str | os.PathLike]) -> list[Input]:
    """The input files of `paths` (files, or directories whose Parquet/JSONL/CSV files are taken, recursively, in
    name order), each once; a ValueError for a missing path, a file of another format or no file at all."""
    files: list[Path] = []
    for p in paths:
        path = Path(p)
        if path.is_dir():
            found = sorted(f for f in path.rglob("*") if f.is_file() and f.suffix.lower() in FORMATS
                           and not any(part.startswith(("_", ".")) for part in f.relative_to(path).parts))
            if not found:
                raise ValueError(f"{path}: empty input, no {', '.join(FORMATS)} file in this directory")
            files.extend(found)
        elif path.is_file():
            if path.suffix.lower() not in FORMATS:
                raise ValueError(f"{path}: not an input file; batch reads {', '.join(FORMATS)} files")
            files.append(path)
        else:
            raise ValueError(f"{path}: no such file or directory")
    if not files:
        raise ValueError("empty input: no input file given")
    seen: dict[Path, Input] = {}
    for f in files:
        absolute = f.resolve()
        if absolute not in seen:
            digest = hashlib.sha1(str(absolute).encode()).hexdigest()[:10]
            stem = re.sub(r"[^A-Za-z0-9._-]", "_", f.stem)[:80]
            seen[absolute] = Input(f, FORMATS[f.suffix.lower()], f"{stem}-{digest}")
    return list(seen.values())


def read_batches(item: Input, rows: int) -> Iterator[pa.RecordBatch]:
    """The rows of `item` as record batches of about `rows` rows, read piecewise (never the whole file)."""
    if item.format == "parquet":
        import pyarrow.parquet as pq

        yield from pq.ParquetFile(item.path).iter_batches(batch_size=rows)
        return
    if item.format == "csv":
        import pyarrow.csv as pcsv

        reader = pcsv.open_csv(item.path, read_options=pcsv.ReadOptions(block_size=1 << 22))
    else:
        import pyarrow.json as pjson

        if not hasattr(pjson, "open_json"):  # pyarrow < 19: no streaming JSON reader
            yield from pjson.read_json(item.path).to_batches(max_chunksize=rows)
            return
        reader = pjson.open_json(item.path, read_options=pjson.ReadOptions(block_size=1 << 22))
    for batch in reader:
        for start in range(0, batch.num_rows, rows):
            yield batch.slice(start, rows)


def check_input(item: Input, text_column: str, id_column: str | None, result_columns: tuple[str, ...]) -> pa.Schema:
    """The schema of `item`, after checking that it can be read, has rows, has the text (and id) column and no
    column named as a result; a ValueError naming the file otherwise."""
    try:
        schema, empty = _peek(item)
    except (OSError, pa.ArrowException, ValueError) as e:
        message = " ".join(str(e).split())[:300]
        raise ValueError(f"{item.path}: unreadable {item.format} file ({message})") from None
    if empty:
        raise ValueError(f"{item.path}: empty input, the file has no rows")
    for column, option in ((text_column, "--text-column"), (id_column, "--id-column")):
        if column is not None and column not in schema.names:
            raise ValueError(f"{item.path}: no column {column!r} (columns: {', '.join(schema.names)}); pass "
                             f"{option} NAME")
    if not pa.types.is_string(schema.field(text_column).type) and \
            not pa.types.is_large_string(schema.field(text_column).type):
        raise ValueError(f"{item.path}: column {text_column!r} holds {schema.field(text_column).type}, not text")
    clash = [c for c in result_columns if c in schema.names]
    if clash:
        raise ValueError(f"{item.path}: has a column named {clash[0]!r}, which the results would overwrite; "
                         "rename it")
    return schema


def _peek(item: Input) -> tuple[pa.Schema, bool]:
    if item.format == "parquet":
        import pyarrow.parquet as pq

        meta = pq.ParquetFile(item.path).metadata
        return meta.schema.to_arrow_schema(), meta.num_rows == 0
    if item.path.stat().st_size == 0:
        return pa.schema([]), True
    for batch in read_batches(item, 1):
        return batch.schema, False
    return pa.schema([]), True


def texts_of(batch: pa.RecordBatch | pa.Table, column: str, where: str, first_row: int) -> list[str]:
    """The text column as a list of str; a ValueError naming the row for a missing (null) text."""
    texts = batch.column(column).to_pylist()
    for i, t in enumerate(texts):
        if t is None:
            raise ValueError(f"{where}: row {first_row + i} has no {column!r} (null); every row needs a text")
    return texts


# ----- the output directory -----


def check_job(output: Path, job: dict[str, Any]) -> None:
    """Record `job` in `output`, or check that the directory already holds the same job (a resume)."""
    path = output / JOB
    if path.is_file():
        held = json.loads(path.read_text(encoding="utf-8"))
        if held != job:
            diff = ", ".join(f"{k} {held.get(k)!r} (now {v!r})" for k, v in job.items() if held.get(k) != v)
            raise ValueError(f"{output} holds the output of another job ({diff}); pass another --output, or "
                             "delete it to start over")
        return
    output.mkdir(parents=True, exist_ok=True)
    write_json_atomic(path, job)


def is_done(output: Path, item: Input) -> bool:
    """Whether `item`'s output is complete (its marker is written)."""
    return (output / item.name / SUCCESS).is_file()


def done_parts(folder: Path) -> int:
    """How many leading rows of the input are already written as parts (0 when none); parts that do not
    continue the run from row 0 (left by an earlier layout) are removed."""
    if not folder.is_dir():
        return 0
    parts = sorted((int(m.group(1)), int(m.group(2)), f) for f in folder.iterdir() if (m := _PART.match(f.name)))
    end = 0
    for first, rows, f in parts:
        if first != end:
            f.unlink()
            continue
        end = first + rows
    return end


def part_path(folder: Path, first_row: int, rows: int) -> Path:
    return folder / f"part-{first_row:012d}-{rows}.parquet"


def write_part(path: Path, table: pa.Table) -> None:
    """Write `table` to `path` as Parquet, atomically (a killed job leaves no half part)."""
    import pyarrow.parquet as pq

    from ..hub import atomic_write

    with atomic_write(path) as f:
        pq.write_table(table, f)


def mark_done(output: Path, item: Input, summary: dict[str, Any]) -> None:
    write_json_atomic(output / item.name / SUCCESS, {"input": str(item.path.resolve()), **summary})
