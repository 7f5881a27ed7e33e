"""`finetune` with the optional pieces: TensorBoard logging, and `datasets.Dataset` splits."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
from test_finetune import rows

from modernbert.cli import main
from modernbert.training.finetune import TENSORBOARD_DIR, finetune


@pytest.fixture(scope="module")
def base(tiny_checkpoint) -> Path:
    return tiny_checkpoint("ModernBertForMaskedLM", num_hidden_layers=2)


def _opts(base: Path, out: Path, **overrides) -> dict:
    return dict(model=str(base), train=rows(24), validation=rows(8, 1), output=str(out), learning_rate=3e-3,
                batch_tokens=160, max_steps=4, eval_every=2, log_every=1, num_threads=1, quiet=True, **overrides)


def test_datasets_dataset_splits_train_like_lists(base, tmp_path):
    datasets = pytest.importorskip("datasets")
    listed = finetune(**_opts(base, tmp_path / "list"))
    opts = _opts(base, tmp_path / "ds")
    opts["train"], opts["validation"] = datasets.Dataset.from_list(opts["train"]), datasets.Dataset.from_list(
        opts["validation"])
    got = finetune(**opts)
    assert got["train_losses"] == listed["train_losses"]
    assert got["eval_loss"] == listed["eval_loss"] and got["step"] == 4


def test_tensorboard_logs_train_and_eval_scalars(base, tmp_path):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    m = finetune(**_opts(base, tmp_path / "tb", tensorboard=True))
    events = EventAccumulator(str(tmp_path / "tb" / TENSORBOARD_DIR))
    events.Reload()
    tags = events.Tags()["scalars"]
    assert {"train/loss", "train/learning_rate", "eval/loss", "eval/accuracy"} <= set(tags)
    losses = [e.value for e in events.Scalars("train/loss")]
    assert losses == pytest.approx(m["train_losses"], rel=1e-6)
    assert [e.step for e in events.Scalars("eval/loss")] == [2, 4]


def test_tensorboard_missing_is_a_one_line_error(base, tmp_path, monkeypatch, capsys):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "tensorboard" else real(name, *a))
    train = tmp_path / "train.csv"
    train.write_text("text,label\na b,yes\nc d,no\n")
    code = main(["finetune", "text-classification", "--model", str(base), "--train", str(train), "--output",
                 str(tmp_path / "out"), "--tensorboard"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1
    assert "pip install" in err and "tensorboard" in err
