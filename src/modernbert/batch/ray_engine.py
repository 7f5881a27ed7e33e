"""The Ray engine: Ray Data reads the inputs, an actor pool runs the pipeline (loaded once per actor), Ray's
Parquet writer writes the results.

Ray is the optional extra `modernbert[ray]`, imported only here, inside the functions. The output directory
must be one every node sees (a shared filesystem): Ray's workers write the parts there.
"""

from __future__ import annotations

import json
import os
import shutil
import time
import uuid
from pathlib import Path
from typing import Any

import pyarrow as pa

from .io import Input, mark_done
from .tasks import Runner

INSTALL_HINT = "the ray engine needs Ray: pip install 'modernbert[ray]'"
_SOURCE = "_modernbert_input"  # the column that tells which input a row came from (a partition, not written)
_IO_CPUS = 0.1  # reading and writing wait on files: they must not queue behind the actors for whole CPUs
LOGS = "_logs"


def import_ray() -> Any:
    """The `ray` module, or an ImportError that says how to install it."""
    try:
        import ray
        import ray.data  # noqa: F401
    except ImportError:
        raise ImportError(INSTALL_HINT) from None
    return ray


class Predictor:
    """The callable class of `map_batches`: Ray builds one per actor, which loads the pipeline once.

    Each batch (a pyarrow Table) comes back with the task's result columns appended. The node and process of
    every batch are logged (one JSON line per batch in `log_dir/<node>-<pid>.jsonl`, when a log_dir is given).
    """

    def __init__(self, task: str, model: str, text_column: str, dtype: str = "auto", batch_tokens: int | None = None,
                 threads: int = 1, log_dir: str | None = None) -> None:
        import ray
        import torch

        torch.set_num_threads(threads)
        self.runner = Runner(task, model, dtype=dtype, batch_tokens=batch_tokens)
        self.text_column = text_column
        self.node = ray.get_runtime_context().get_node_id()
        self.pid = os.getpid()
        self.log: Path | None = None
        if log_dir is not None:
            self.log = Path(log_dir) / f"{self.node[:16]}-{self.pid}.jsonl"
            self.log.parent.mkdir(parents=True, exist_ok=True)
            self._write({"event": "start"})

    def _write(self, record: dict[str, Any]) -> None:
        if self.log is None:
            return
        record = {"node": self.node, "pid": self.pid, "time": time.time(), **record}
        with open(self.log, "a", encoding="utf-8") as f:  # a log, appended to: not a saved artefact
            f.write(json.dumps(record) + "\n")

    def __call__(self, batch: pa.Table) -> pa.Table:
        texts = batch.column(self.text_column).to_pylist()
        if any(t is None for t in texts):
            raise ValueError(f"a row has no {self.text_column!r} (null); every row needs a text")
        columns, tokens = self.runner(texts)
        for name, values in columns.items():
            batch = batch.append_column(name, values)
        self._write({"event": "batch", "rows": batch.num_rows, "tokens": tokens})
        return batch


def _read(ray: Any, item: Input) -> Any:
    path = str(item.path)
    if item.format == "parquet":
        return ray.data.read_parquet(path, file_extensions=None, num_cpus=_IO_CPUS)
    if item.format == "csv":
        return ray.data.read_csv(path, file_extensions=None, num_cpus=_IO_CPUS)
    return ray.data.read_json(path, lines=True, file_extensions=None, num_cpus=_IO_CPUS)


def connect(address: str | None) -> tuple[Any, bool]:
    """(ray, whether this call started it): joins `address`, the running session, or starts a local one."""
    ray = import_ray()
    if ray.is_initialized():
        return ray, False
    ray.init(address=address, include_dashboard=False, log_to_driver=True, configure_logging=False)
    return ray, True


def predict(ds: Any, *, task: str, model: str, text_column: str, dtype: str, batch_tokens: int | None, actors: int,
            threads_per_actor: int, batch_rows: int, log_dir: str | None) -> Any:
    """`ds` with the task's result columns appended: lazy, run by a pool of `actors` actors."""
    ray = import_ray()
    # blocks of about one batch each: a file read as one block would otherwise go to one actor whole
    ds = ds.repartition(target_num_rows_per_block=batch_rows)
    return ds.map_batches(
        Predictor,
        fn_constructor_kwargs={"task": task, "model": model, "text_column": text_column, "dtype": dtype,
                               "batch_tokens": batch_tokens, "threads": threads_per_actor, "log_dir": log_dir},
        compute=ray.data.ActorPoolStrategy(size=actors),
        batch_size=batch_rows,
        batch_format="pyarrow",
        num_cpus=threads_per_actor,
        scheduling_strategy="SPREAD",  # actors over every node of the cluster, not packed onto the first
        max_restarts=-1,  # an actor that dies (killed, out of memory) is restarted ...
        max_task_retries=-1,  # ... and its batch run again: no row lost, none written twice
    )


def run_ray(items: list[Input], output: Path, *, task: str, model: str, text_column: str, dtype: str,
            batch_tokens: int | None, actors: int, threads_per_actor: int, address: str | None,
            batch_rows: int = 256) -> dict[str, Any]:
    """Run every (pending) input as one Ray Data job, then move each input's parts into place and mark it done.

    The job writes into a staging directory (`output/_ray-<id>`), partitioned by input; an input is marked done
    only after the whole job has succeeded, so an interrupted job leaves nothing half-done (its staging
    directory is removed by the next run).
    """
    from ..hub import resolve_folder

    ray, started = connect(address)
    try:
        folder = str(resolve_folder(model))
        for stale in output.glob("_ray-*"):
            shutil.rmtree(stale, ignore_errors=True)
        staging = output / f"_ray-{uuid.uuid4().hex[:12]}"
        log_dir = output / LOGS
        shutil.rmtree(log_dir, ignore_errors=True)
        start = time.perf_counter()
        parts = []
        for item in items:
            ds = _read(ray, item)
            name = item.name
            parts.append(ds.add_column(_SOURCE, lambda t, name=name: pa.array([name] * t.num_rows),
                                       batch_format="pyarrow", num_cpus=_IO_CPUS))
        ds = parts[0].union(*parts[1:]) if len(parts) > 1 else parts[0]
        ds = predict(ds, task=task, model=folder, text_column=text_column, dtype=dtype, batch_tokens=batch_tokens,
                     actors=actors, threads_per_actor=threads_per_actor, batch_rows=batch_rows,
                     log_dir=str(log_dir))
        ds.write_parquet(str(staging), partition_cols=[_SOURCE], ray_remote_args={"num_cpus": _IO_CPUS})
        seconds = time.perf_counter() - start
        rows = 0
        for item in items:
            rows += _commit(staging / f"{_SOURCE}={item.name}", output / item.name, output, item)
        shutil.rmtree(staging, ignore_errors=True)
        nodes = node_log(log_dir)
        tokens = sum(n["tokens"] for n in nodes.values())
        return {"rows": rows, "tokens": tokens, "seconds": seconds, "nodes": nodes}
    finally:
        if started:
            ray.shutdown()


def _commit(source: Path, target: Path, output: Path, item: Input) -> int:
    import pyarrow.parquet as pq

    shutil.rmtree(target, ignore_errors=True)  # a partial output of an interrupted local run
    rows = 0
    if source.is_dir():
        source.rename(target)
        rows = sum(pq.ParquetFile(f).metadata.num_rows for f in target.glob("*.parquet"))
    mark_done(output, item, {"rows": rows, "engine": "ray"})
    return rows


def node_log(log_dir: Path) -> dict[str, dict[str, int]]:
    """Per node id: the batches, rows and tokens its actors ran (from the actors' logs)."""
    nodes: dict[str, dict[str, int]] = {}
    for f in sorted(log_dir.glob("*.jsonl")):
        for line in f.read_text(encoding="utf-8").splitlines():
            record = json.loads(line)
            n = nodes.setdefault(record["node"], {"actors": 0, "batches": 0, "rows": 0, "tokens": 0})
            if record["event"] == "start":
                n["actors"] += 1
            else:
                n["batches"] += 1
                n["rows"] += record["rows"]
                n["tokens"] += record["tokens"]
    return nodes
