"""The ray engine on a real local Ray cluster: results equal the offline pipeline's by id, rows and ids kept
across files, a Dataset in gives a Dataset out, and an actor killed mid-job (by its pid) is restarted with the
output still complete and without duplicates."""

from __future__ import annotations

import json
import os
import signal
import threading
import time

import numpy as np
import pyarrow.dataset as pads
import pytest

ray = pytest.importorskip("ray")

from modernbert import batch  # noqa: E402
from modernbert.batch.io import find_inputs  # noqa: E402
from modernbert.batch.ray_engine import LOGS, run_ray  # noqa: E402
from modernbert.pipelines import pipeline  # noqa: E402

from .test_local import rows, write_inputs  # noqa: E402


@pytest.fixture(scope="module")
def cluster():
    # 3 logical CPUs on 2 cores: two 1-CPU actors, and room for the reading and writing tasks
    ray.init(num_cpus=3, include_dashboard=False, configure_logging=False, log_to_driver=False)
    yield
    ray.shutdown()


def test_ray_embed_equals_pipeline(cluster, tmp_path, base_folder):
    data = write_inputs(tmp_path / "in")
    summary = batch.run([tmp_path / "in"], "embed", base_folder, output=tmp_path / "out", engine="ray")
    table = pads.dataset(tmp_path / "out").to_table()
    assert summary["rows"] == 30 and table.num_rows == 30
    assert sorted(table["id"].to_pylist()) == list(range(30))
    assert set(table.schema.names) == {"id", "text", "extra", "embedding"}
    expected = pipeline("sentence-embeddings", model=str(base_folder)).run([r["text"] for r in data])
    by_id = dict(zip(table["id"].to_pylist(), table["embedding"].to_pylist()))
    for r, e in zip(data, expected):
        np.testing.assert_allclose(by_id[r["id"]], e, atol=1e-5)
    assert sum(n["rows"] for n in summary["nodes"].values()) == 30  # each batch logged with its node
    again = batch.run([tmp_path / "in"], "embed", base_folder, output=tmp_path / "out", engine="ray")
    assert again["skipped"] == 3 and again["rows"] == 0


def test_dataset_in_dataset_out(cluster, base_folder):
    data = rows(10)
    ds = batch.run(ray.data.from_items(data), "embed", base_folder)
    assert isinstance(ds, ray.data.Dataset)
    got = {r["id"]: r["embedding"] for r in ds.take_all()}
    expected = pipeline("sentence-embeddings", model=str(base_folder)).run([r["text"] for r in data])
    for r, e in zip(data, expected):
        np.testing.assert_allclose(got[r["id"]], e, atol=1e-5)


def test_killed_actor_is_restarted_output_complete(cluster, tmp_path, tiny_checkpoint):
    classifier = tiny_checkpoint("ModernBertForSequenceClassification", num_labels=3)
    # enough batches that the surviving actor cannot finish them all before Ray has restarted the killed one
    data = write_inputs(tmp_path / "in", n=300)
    out = tmp_path / "out"
    out.mkdir()
    killed: list[int] = []

    def kill_first_busy_actor() -> None:
        deadline = time.time() + 300
        while time.time() < deadline and not killed:
            for f in (out / LOGS).glob("*.jsonl") if (out / LOGS).is_dir() else []:
                events = [json.loads(line) for line in f.read_text().splitlines() if line.strip()]
                if any(e["event"] == "batch" for e in events):
                    os.kill(events[0]["pid"], signal.SIGKILL)
                    killed.append(events[0]["pid"])
                    return
            time.sleep(0.05)

    watcher = threading.Thread(target=kill_first_busy_actor, daemon=True)
    watcher.start()
    summary = run_ray(find_inputs([tmp_path / "in"]), out, task="classify", model=str(classifier),
                      text_column="text", dtype="auto", batch_tokens=4096, actors=2, threads_per_actor=1,
                      address=None, batch_rows=2)
    watcher.join()
    assert killed, "no actor ran a batch to be killed"
    table = pads.dataset(out).to_table()
    assert summary["rows"] == 300 and sorted(table["id"].to_pylist()) == list(range(300))  # complete, no duplicate
    starts = sum(n["actors"] for n in summary["nodes"].values())
    assert starts >= 3  # two actors, and the one killed started again
    expected = pipeline("text-classification", model=str(classifier)).run([r["text"] for r in data])
    got = dict(zip(table["id"].to_pylist(), table["label"].to_pylist()))
    assert all(got[r["id"]] == e[0]["label"] for r, e in zip(data, expected))
