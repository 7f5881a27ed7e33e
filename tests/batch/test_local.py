"""`modernbert batch` with the local engine: results equal the offline pipeline's, rows and ids kept across
files and formats, resume after an interruption, bad inputs as one-line errors (exit code 2)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.dataset as pads
import pyarrow.parquet as pq
import pytest

from modernbert import batch
from modernbert.batch import local
from modernbert.cli import main
from modernbert.pipelines import pipeline

WORDS = "the cat sat on a mat while dogs ran far away under bright blue skies".split()


def rows(n: int, start: int = 0) -> list[dict]:
    rng = np.random.default_rng(start)
    return [{"id": start + i, "text": " ".join(rng.choice(WORDS, size=int(rng.integers(1, 40)))), "extra": i % 3}
            for i in range(n)]


def write_inputs(folder: Path, n: int = 30) -> list[dict]:
    """Three files, one of each format (`n` rows, ids 0..n-1; 12, 12 and 6 of the default 30)."""
    folder.mkdir(parents=True, exist_ok=True)
    data = rows(n)
    first, second = n * 2 // 5, n * 4 // 5
    (folder / "a.jsonl").write_text("".join(json.dumps(r) + "\n" for r in data[:first]))
    pq.write_table(pa.Table.from_pylist(data[first:second]), folder / "b.parquet", row_group_size=5)
    with open(folder / "c.csv", "w", newline="") as f:
        w = csv.DictWriter(f, ["id", "text", "extra"])
        w.writeheader()
        w.writerows(data[second:])
    return data


def read_output(out: Path) -> pa.Table:
    return pads.dataset(out).to_table()


@pytest.fixture(scope="module")
def classifier(tiny_checkpoint):
    return tiny_checkpoint("ModernBertForSequenceClassification", num_labels=3)


def test_embed_equals_pipeline_across_files(tmp_path, base_folder):
    data = write_inputs(tmp_path / "in")
    summary = batch.run([tmp_path / "in"], "embed", base_folder, output=tmp_path / "out", batch_tokens=64)
    table = read_output(tmp_path / "out")
    assert summary["rows"] == 30 and summary["inputs"] == 3 and summary["tokens"] > 30
    assert sorted(table["id"].to_pylist()) == list(range(30))  # every row once
    assert pa.types.is_fixed_size_list(table.schema.field("embedding").type)
    assert table.schema.field("embedding").type.value_type == pa.float32()
    expected = pipeline("sentence-embeddings", model=str(base_folder)).run([r["text"] for r in data])
    by_id = dict(zip(table["id"].to_pylist(), table["embedding"].to_pylist()))
    for r, e in zip(data, expected):
        np.testing.assert_allclose(by_id[r["id"]], e, atol=1e-5)
    got = {i: (t, x) for i, t, x in zip(*(table[c].to_pylist() for c in ("id", "text", "extra")))}
    assert all(got[r["id"]] == (r["text"], r["extra"]) for r in data)  # input columns kept


def test_classify_equals_pipeline(tmp_path, classifier):
    data = write_inputs(tmp_path / "in")
    files = [tmp_path / "in" / n for n in ("a.jsonl", "b.parquet", "c.csv")]
    batch.run(files, "classify", classifier, output=tmp_path / "out", id_column="id")
    table = read_output(tmp_path / "out")
    expected = pipeline("text-classification", model=str(classifier)).run([r["text"] for r in data])
    got = {i: (lab, s) for i, lab, s in zip(*(table[c].to_pylist() for c in ("id", "label", "score")))}
    assert len(got) == 30 and table.num_rows == 30
    for r, e in zip(data, expected):
        assert got[r["id"]][0] == e[0]["label"]
        assert got[r["id"]][1] == pytest.approx(e[0]["score"], abs=1e-5)


def test_resume_runs_the_remaining_rows_only(tmp_path, base_folder, monkeypatch):
    """A job killed after some parts (mid-file) and some inputs re-runs only what is left: no duplicate, no loss."""
    data = rows(40)
    folder = tmp_path / "in"
    folder.mkdir()
    pq.write_table(pa.Table.from_pylist(data[:25]), folder / "a.parquet", row_group_size=5)
    pq.write_table(pa.Table.from_pylist(data[25:]), folder / "b.parquet", row_group_size=5)
    out = tmp_path / "out"
    real = local.write_part
    written: list[int] = []

    def dying(path, table):
        if len(written) == 2:
            raise KeyboardInterrupt  # killed while writing the third part
        written.append(table.num_rows)
        real(path, table)

    monkeypatch.setattr(local, "write_part", dying)
    monkeypatch.setattr(local, "run_input", _with_small_parts(local.run_input))
    with pytest.raises(KeyboardInterrupt):
        batch.run([folder], "embed", base_folder, output=out)
    assert read_output(out).num_rows == 10  # two parts of 5 rows, nothing of the third
    monkeypatch.setattr(local, "write_part", real)
    summary = batch.run([folder], "embed", base_folder, output=out)
    assert summary["rows"] == 30 and summary["skipped"] == 0  # the 15 rows left of a, then all of b
    table = read_output(out)
    assert sorted(table["id"].to_pylist()) == list(range(40))
    again = batch.run([folder], "embed", base_folder, output=out)
    assert again["rows"] == 0 and again["skipped"] == 2
    assert read_output(out).num_rows == 40


def _with_small_parts(fn):
    def run_input(*args, **kwargs):
        return fn(*args, **{**kwargs, "read_rows": 5, "part_rows": 5})
    return run_input


def test_another_job_into_the_same_output_is_refused(tmp_path, base_folder, classifier):
    write_inputs(tmp_path / "in")
    batch.run([tmp_path / "in" / "a.jsonl"], "embed", base_folder, output=tmp_path / "out")
    with pytest.raises(ValueError, match="another job"):
        batch.run([tmp_path / "in" / "a.jsonl"], "classify", classifier, output=tmp_path / "out")


def _cli(capsys, *argv) -> tuple[int, str]:
    code = main(["batch", *map(str, argv)])
    return code, capsys.readouterr().err


@pytest.mark.parametrize("case", ["missing column", "unreadable", "empty file", "empty directory", "null text"])
def test_bad_input_is_one_line_naming_the_file(tmp_path, capsys, case):
    bad = tmp_path / "in"
    bad.mkdir()
    if case == "missing column":
        path = bad / "x.jsonl"
        path.write_text('{"body": "no text column"}\n')
        want = "no column 'text'"
    elif case == "unreadable":
        path = bad / "x.parquet"
        path.write_bytes(b"this is not parquet")
        want = "unreadable parquet file"
    elif case == "empty file":
        path = bad / "x.csv"
        path.write_text("")
        want = "empty input"
    elif case == "empty directory":
        path = bad
        want = "empty input"
    else:
        path = bad / "x.jsonl"
        path.write_text('{"text": "fine"}\n{"text": null}\n')
        want = "row 1 has no 'text'"
    code, err = _cli(capsys, "embed", "--model", "modernbert-tiny", "--input", path, "--output", tmp_path / "out")
    assert code == 2
    assert err.count("\n") == 1 and err.startswith("error: ") and str(path) in err and want in err, err


def test_ray_engine_without_ray_says_how_to_install(tmp_path, capsys, monkeypatch):
    import sys

    write_inputs(tmp_path / "in")
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` raises ImportError
    code, err = _cli(capsys, "embed", "--model", "modernbert-tiny", "--input", tmp_path / "in", "--output",
                     tmp_path / "out", "--engine", "ray")
    assert code == 2 and "pip install 'modernbert[ray]'" in err and err.count("\n") == 1, err


def test_runner_chunks_rows_of_similar_length_and_keeps_their_order(base_folder):
    """Rows run sorted by length in chunks within the token budget (attention pads a chunk to its longest);
    the results come back in the rows' order."""
    from modernbert.batch.tasks import Runner, _batch_rows

    runner = Runner("embed", str(base_folder), batch_tokens=60)
    texts = [r["text"] for r in rows(25, start=7)]
    counts = runner.count(texts)
    chunks, run = [], runner.pipe.run

    def spy(items, **kwargs):
        chunks.append([runner.count([t])[0] for t in items])
        return run(items, **kwargs)

    runner.pipe.run = spy
    columns, tokens = runner(texts)
    assert tokens == sum(counts) and sum(len(c) for c in chunks) == len(texts) and len(chunks) > 3
    flat = [n for c in chunks for n in c]
    assert flat == sorted(counts)
    assert all(sum(c) <= 60 or len(c) == 1 for c in chunks)
    expected = run(texts)
    np.testing.assert_allclose(np.asarray(columns["embedding"].to_pylist()), np.asarray(expected), atol=1e-5)
    assert _batch_rows("inputs[1] is empty", [4, 9, 2]) == "row 9 of the batch is empty"


def test_batch_tokens_default_is_the_devices(base_folder, tmp_path):
    """No batch_tokens: the device's default (4096 on a CPU, the measured best there); a given one is kept;
    a bad one is refused before any model is loaded."""
    from modernbert.batch.tasks import Runner
    from modernbert.pipelines.base import DEFAULT_BATCH_TOKENS

    assert Runner("embed", str(base_folder)).batch_tokens == DEFAULT_BATCH_TOKENS["cpu"] == 4096
    assert Runner("embed", str(base_folder), batch_tokens=60).batch_tokens == 60
    with pytest.raises(ValueError, match=r"batch_tokens=0 must be a positive integer"):
        batch.run([tmp_path], "embed", base_folder, output=tmp_path / "out", batch_tokens=0)
