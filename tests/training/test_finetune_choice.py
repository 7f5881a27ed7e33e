"""`modernbert finetune multiple-choice`: SWAG-style rows, the packed forward against the model's own padded one,
training, the export (transformers agrees), and the one-line errors."""

from __future__ import annotations

import csv
import json
import random
import warnings
from pathlib import Path

import pytest
import torch

from modernbert.training.finetune import FinetuneConfig, finetune

TOPICS = ["Paris", "dog", "coffee", "winter"]
WORDS = {"Paris": "France capital", "dog": "lazy brown park", "coffee": "tea cup morning", "winter": "snow cold"}


def swag_rows(n: int, seed: int = 0) -> list[dict]:
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        topic = rng.choice(TOPICS)
        others = [t for t in TOPICS if t != topic]
        rng.shuffle(others)
        label = rng.randrange(3)
        endings = others[:2]
        endings.insert(label, topic)
        out.append({"sent1": WORDS[topic], "sent2": "it is", **{f"ending{i}": e for i, e in enumerate(endings)},
                    "label": str(label)})
    return out


def write_csv(path: Path, rows: list[dict]) -> Path:
    with path.open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    return path


@pytest.fixture(scope="module")
def base(tiny_checkpoint) -> Path:
    return tiny_checkpoint("ModernBertForMaskedLM", num_hidden_layers=2)


def test_packed_forward_equals_the_models_padded_forward(base, tmp_path):
    from modernbert.tokenizer import Tokenizer
    from modernbert.training.finetune_choice import MultipleChoice

    train = write_csv(tmp_path / "t.csv", swag_rows(4))
    tok = Tokenizer.from_pretrained(str(base))
    task = MultipleChoice(FinetuneConfig(task="multiple-choice", model=str(base), train=str(train), output="x"),
                          tok, 512)
    assert task.num_choices == 3 and task.train.labels.tolist() == [int(r["label"]) for r in swag_rows(4)]
    first = swag_rows(4)[0]
    assert task.train.ids[0][1] == tok(first["sent1"], f"it is {first['ending1']}")["input_ids"]
    torch.manual_seed(0)
    model = task.load_model(base).eval()
    batch = task.pack(task.train, [0, 1, 2, 3])
    with torch.no_grad():
        packed = task.forward(model, batch, torch.device("cpu"))
        enc = tok([s for i in range(4) for s in [swag_rows(4)[i]["sent1"]] * 3],
                  [f"it is {r[f'ending{j}']}" for r in swag_rows(4) for j in range(3)], padding=True,
                  return_tensors="pt")
        padded = model(input_ids=enc["input_ids"].view(4, 3, -1), attention_mask=enc["attention_mask"].view(4, 3, -1))
    torch.testing.assert_close(packed, padded.logits, atol=1e-5, rtol=1e-5)


def test_trains_exports_and_transformers_agrees(base, tmp_path):
    train = write_csv(tmp_path / "train.csv", swag_rows(40))
    dev = write_csv(tmp_path / "dev.csv", swag_rows(12, 1))
    out = tmp_path / "mc"
    m = finetune(task="multiple-choice", model=str(base), train=str(train), validation=str(dev), output=str(out),
                 learning_rate=3e-3, batch_tokens=300, epochs=6, eval_every=5, num_threads=1, quiet=True)
    losses = m["train_losses"]
    assert sum(losses[-4:]) / 4 < 0.8 * sum(losses[:4]) / 4
    assert {"eval_loss", "eval_accuracy"} <= m.keys()
    assert json.loads((out / "config.json").read_text())["architectures"] == ["ModernBertForMultipleChoice"]

    import transformers

    from modernbert import AutoTokenizer, ModernBertForMultipleChoice

    tok = AutoTokenizer.from_pretrained(str(out))
    enc = tok(["France capital"] * 3, ["it is Paris", "it is dog", "it is snow"], padding=True, return_tensors="pt")
    ids, mask = enc["input_ids"].unsqueeze(0), enc["attention_mask"].unsqueeze(0)
    ours = ModernBertForMultipleChoice.from_pretrained(str(out)).eval()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = transformers.AutoModelForMultipleChoice.from_pretrained(str(out)).eval()
    with torch.no_grad():
        torch.testing.assert_close(ours(input_ids=ids, attention_mask=mask).logits,
                                   ref(input_ids=ids, attention_mask=mask).logits, atol=1e-4, rtol=1e-4)


def test_bad_choices_one_line_exit_2(base, tmp_path, capsys):
    from modernbert.cli import main

    def bad(train):
        capsys.readouterr()
        code = main(["finetune", "multiple-choice", "--model", str(base), "--train", str(train), "--output",
                     str(tmp_path / "out"), "--quiet"])
        err = capsys.readouterr().err
        assert code == 2 and err.count("\n") == 1, err
        return err

    rows = swag_rows(3)
    rows[2]["label"] = "5"
    train = write_csv(tmp_path / "a.csv", rows)
    assert f"{train}, line 4, column 'label': '5'; expected the index of the right choice, 0 to 2" in bad(train)
    jsonl = tmp_path / "b.jsonl"
    jsonl.write_text(json.dumps({"question": "q", "choices": ["a", "b"], "label": 0}) + "\n"
                     + json.dumps({"question": "q", "choices": ["a", "b", "c"], "label": 0}) + "\n")
    assert f"{jsonl}, line 2: 3 choices; expected 2" in bad(jsonl)
    (tmp_path / "c.jsonl").write_text(json.dumps({"question": "q", "answer": "a", "label": 0}) + "\n")
    assert "no column 'choices'" in bad(tmp_path / "c.jsonl")
