"""Batch inference over files: `modernbert batch TASK` and `modernbert.batch.run`.

    from modernbert import batch

    summary = batch.run(["docs/"], "embed", "modernbert-tiny", output="out/")      # local engine
    summary = batch.run(["docs/"], "embed", "modernbert-tiny", output="out/", engine="ray", actors=4)
    ds = batch.run(ray.data.read_parquet("s3://..."), "classify", "my-classifier")  # a Dataset in, one out

Inputs are Parquet, JSONL or CSV files, or directories of them; the output is Parquet with every input column
kept plus the task's results (`TASKS`). Re-running into the same output directory skips the inputs already
complete: see `io` for the layout and docs/batch.md for the semantics. Never imports torch or Ray at import.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any, TextIO

from .tasks import TASKS, Task, check_task

__all__ = ["ENGINES", "TASKS", "Task", "run", "summary_line"]

ENGINES = ("local", "ray")


def run(
    ds_or_paths: Any,
    task: str,
    model: str | os.PathLike,
    *,
    output: str | os.PathLike | None = None,
    text_column: str = "text",
    id_column: str | None = None,
    batch_tokens: int | None = None,
    dtype: str = "auto",
    device: str | None = None,
    engine: str = "local",
    ray_address: str | None = None,
    actors: int = 1,
    threads_per_actor: int = 1,
    progress: bool = False,
    stream: TextIO | None = None,
) -> Any:
    """Run `task` over files (or a Ray Dataset) with `model`.

    Args:
        ds_or_paths: a path or a list of paths (Parquet, JSONL or CSV files, or directories of them), or a
            `ray.data.Dataset` (then the ray engine is used, and the result is a Dataset).
        task: "embed", "classify", "ner" or "fill-mask".
        model: a checkpoint folder, a bundled model name or a hub id.
        output: the output directory (needed for paths; optional for a Dataset: given, the Dataset is written
            there as Parquet and its summary returned).
        text_column: the column holding the texts. id_column: a column every input must have (checked before
            any work is done), e.g. to match results to their rows later.
        batch_tokens: most real tokens per forward pass (a longer text runs alone); None: 4096 on a CPU, 16384
            on CUDA.
        dtype: "auto" (the checkpoint's), "float32", "bfloat16" or "float16". device: local engine only.
        engine: "local" (this process, streaming) or "ray" (Ray Data, an actor pool).
        ray_address, actors, threads_per_actor: the Ray cluster to join (None: a running session, else a new
            local one), the actor pool size, and the CPUs (torch threads) each actor takes.
        progress: show a progress bar (local engine; Ray shows its own).

    Returns:
        For paths: the summary, a dict with rows, tokens, seconds, rows_per_second, tokens_per_second, inputs,
        skipped (inputs already complete) and, for Ray, nodes (batches, rows, tokens per node id). For a
        Dataset without output: the Dataset with the result columns.

    Raises:
        ValueError: an unknown task or engine, a missing or unreadable file, an empty input, a missing column,
            an output directory holding another job. ImportError: engine="ray" without Ray installed.
    """
    spec = check_task(task)
    if engine not in ENGINES:
        raise ValueError(f"unknown engine {engine!r}; valid engines: {', '.join(ENGINES)}")
    for name, value in (("batch_tokens", batch_tokens), ("actors", actors), ("threads_per_actor", threads_per_actor)):
        if name == "batch_tokens" and value is None:
            continue
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ValueError(f"{name}={value!r} must be a positive integer")
    model = os.fspath(model)
    if _is_dataset(ds_or_paths):
        return _run_dataset(ds_or_paths, spec, task, model, output, text_column, dtype, batch_tokens, actors,
                            threads_per_actor, ray_address)
    if output is None:
        raise ValueError("output= is needed: the directory to write the Parquet results to")
    paths = [ds_or_paths] if isinstance(ds_or_paths, (str, os.PathLike)) else list(ds_or_paths)
    from .io import check_input, check_job, find_inputs, is_done

    items = find_inputs(paths)
    for item in items:
        check_input(item, text_column, id_column, spec.columns)
    out = Path(output)
    check_job(out, {"task": task, "model": model, "text_column": text_column, "dtype": dtype})
    pending = [i for i in items if not is_done(out, i)]
    if not pending:
        result: dict[str, Any] = {"rows": 0, "tokens": 0, "seconds": 0.0}
    elif engine == "local":
        from .local import run_local

        result = run_local(pending, out, task=task, model=model, text_column=text_column, dtype=dtype,
                           device=device, batch_tokens=batch_tokens, progress=progress, stream=stream)
    else:
        from .ray_engine import run_ray

        result = run_ray(pending, out, task=task, model=model, text_column=text_column, dtype=dtype,
                         batch_tokens=batch_tokens, actors=actors, threads_per_actor=threads_per_actor,
                         address=ray_address)
    return _summary(result, engine, len(items), len(items) - len(pending), out)


def _is_dataset(obj: Any) -> bool:
    if "ray.data" not in sys.modules:  # a Dataset cannot exist without Ray Data imported
        return False
    import ray.data

    return isinstance(obj, ray.data.Dataset)


def _run_dataset(ds: Any, spec: Task, task: str, model: str, output: Any, text_column: str, dtype: str,
                 batch_tokens: int | None, actors: int, threads: int, address: str | None) -> Any:
    from ..hub import resolve_folder
    from .ray_engine import connect, predict

    names = ds.schema().names
    if text_column not in names:
        raise ValueError(f"the Dataset has no column {text_column!r} (columns: {', '.join(names)}); pass "
                         "text_column=")
    connect(address)
    result = predict(ds, task=task, model=str(resolve_folder(model)), text_column=text_column, dtype=dtype,
                     batch_tokens=batch_tokens, actors=actors, threads_per_actor=threads, batch_rows=256,
                     log_dir=None)
    if output is None:
        return result
    import time

    start = time.perf_counter()
    result.write_parquet(os.fspath(output))
    import pyarrow.parquet as pq

    rows = sum(pq.ParquetFile(f).metadata.num_rows for f in Path(output).glob("*.parquet"))
    return _summary({"rows": rows, "tokens": 0, "seconds": time.perf_counter() - start}, "ray", 1, 0,
                    Path(output))


def _summary(result: dict[str, Any], engine: str, inputs: int, skipped: int, output: Path) -> dict[str, Any]:
    seconds = result["seconds"]
    return {"engine": engine, "inputs": inputs, "skipped": skipped, "output": str(output), **result,
            "rows_per_second": result["rows"] / seconds if seconds > 0 else 0.0,
            "tokens_per_second": result["tokens"] / seconds if seconds > 0 else 0.0}


def summary_line(summary: dict[str, Any]) -> str:
    """The end-of-job line: rows, tokens, seconds, throughput (and per node, for Ray)."""
    text = (f"{summary['rows']} rows, {summary['tokens']} tokens in {summary['seconds']:.1f} s "
            f"({summary['rows_per_second']:.1f} rows/s, {summary['tokens_per_second']:.0f} tokens/s); "
            f"{summary['inputs'] - summary['skipped']} input(s) run, {summary['skipped']} already complete")
    for node, n in summary.get("nodes", {}).items():
        text += f"\n  node {node[:12]}: {n['actors']} actor(s), {n['batches']} batches, {n['rows']} rows"
    return text
