"""`modernbert finetune token-classification`: CoNLL and JSONL data, sub-token labels as run_ner.py sets them,
entity metrics against hand-checked cases, training, the export, and the one-line errors."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
import torch

from modernbert.cli import main
from modernbert.training import metrics as M
from modernbert.training.finetune import FinetuneConfig, finetune

PLACES, PEOPLE = ["Paris", "London", "Tokyo", "Berlin"], ["John", "Mary", "Planck"]
OTHER = ["the", "quick", "fox", "visited", "saw", "in", "winter", "and", "coffee", "park"]


def sentences(n: int, seed: int = 0) -> list[tuple[list[str], list[str]]]:
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        words, tags = [], []
        for _ in range(rng.randint(3, 9)):
            r = rng.random()
            if r < 0.2:
                words.append(rng.choice(PLACES))
                tags.append("B-LOC")
            elif r < 0.35:
                words += ["Max", rng.choice(PEOPLE)]
                tags += ["B-PER", "I-PER"]
            else:
                words.append(rng.choice(OTHER))
                tags.append("O")
        out.append((words, tags))
    return out


def write_conll(path: Path, data) -> Path:
    lines = ["-DOCSTART- -X- -X- O", ""]
    for words, tags in data:
        lines += [f"{w} NNP B-NP {t}" for w, t in zip(words, tags)] + [""]
    path.write_text("\n".join(lines))
    return path


@pytest.fixture(scope="module")
def base(tiny_checkpoint) -> Path:
    return tiny_checkpoint("ModernBertForMaskedLM", num_hidden_layers=2)


def test_entities_by_hand():
    assert M.entities(["B-PER", "I-PER", "O", "B-LOC"]) == [("PER", 0, 1), ("LOC", 3, 3)]
    assert M.entities(["I-PER", "I-PER", "B-PER", "I-LOC"]) == [("PER", 0, 1), ("PER", 2, 2), ("LOC", 3, 3)]
    assert M.entities(["S-LOC", "B-PER", "E-PER", "O"]) == [("LOC", 0, 0), ("PER", 1, 2)]
    m = M.entity_metrics([["B-PER", "I-PER", "O", "B-LOC"], ["B-ORG"]], [["B-PER", "I-PER", "O", "B-ORG"], ["O"]])
    # true: PER(0-1), LOC(3), ORG; predicted: PER(0-1), ORG(3): 1 right of 2 predicted and 3 true.
    assert m["precision"] == pytest.approx(1 / 2) and m["recall"] == pytest.approx(1 / 3)
    assert m["f1"] == pytest.approx(2 * (1 / 2) * (1 / 3) / (1 / 2 + 1 / 3))
    assert m["accuracy"] == pytest.approx(3 / 5)
    # A partly right span is wrong.
    assert M.entity_metrics([["B-PER", "I-PER"]], [["B-PER", "O"]])["f1"] == 0.0


def test_subtoken_labels_as_run_ner(base, tmp_path):
    from modernbert.tokenizer import Tokenizer
    from modernbert.training.finetune_ner import TokenClassification

    data = [(["Maximilian", "visited", "Tokyo"], ["B-PER", "O", "B-LOC"])]
    path = write_conll(tmp_path / "a.conll", data)
    tok = Tokenizer.from_pretrained(str(base))
    for all_tokens in (False, True):
        cfg = FinetuneConfig(task="token-classification", model=str(base), train=str(path), output="x",
                             label_all_tokens=all_tokens)
        task = TokenClassification(cfg, tok, 512)
        assert task.names == ["B-LOC", "B-PER", "O"]
        ids, labels = task.train.ids[0], task.train.labels[0].tolist()
        assert ids == tok("Maximilian visited Tokyo")["input_ids"]  # the words as running text
        pieces = [tok.decode([i]) for i in ids]
        assert labels[0] == labels[-1] == -100  # [CLS], [SEP]
        assert len(pieces) > 5  # "Maximilian" is several sub-tokens here
        word_starts = task.train.positions[0]
        assert [labels[p] for p in word_starts] == [1, 2, 0]
        inner = [i for i in range(1, len(ids) - 1) if i not in word_starts]
        assert inner, "some word has more than one sub-token"
        # No I-PER tag exists, so B-PER stays B-PER on the later sub-tokens (run_ner.py's b_to_i_label).
        assert all(labels[i] == (task.inside[labels[max(p for p in word_starts if p < i)]] if all_tokens else -100)
                   for i in inner)


def test_trains_and_exports(base, tmp_path):
    train = write_conll(tmp_path / "train.conll", sentences(40))
    dev = tmp_path / "dev.jsonl"
    dev.write_text("".join(json.dumps({"tokens": w, "ner_tags": t}) + "\n" for w, t in sentences(10, 1)))
    test = write_conll(tmp_path / "test.conll", sentences(3, 2))
    out = tmp_path / "out"
    m = finetune(task="token-classification", model=str(base), train=str(train), validation=str(dev),
                 test=str(test), output=str(out), learning_rate=5e-3, batch_tokens=200, epochs=4, eval_every=4,
                 metric_for_best="f1", num_threads=1, quiet=True)
    losses = m["train_losses"]
    assert sum(losses[-3:]) / 3 < 0.7 * sum(losses[:3]) / 3
    for key in ("eval_loss", "eval_precision", "eval_recall", "eval_f1", "eval_accuracy"):
        assert key in m
    assert m["eval_f1"] == max(e["eval_f1"] for e in m["evals"])
    config = json.loads((out / "config.json").read_text())
    assert config["id2label"] == {"0": "B-LOC", "1": "B-PER", "2": "I-PER", "3": "O"}
    assert config["architectures"] == ["ModernBertForTokenClassification"]
    preds = [json.loads(x) for x in (out / "test_predictions.jsonl").read_text().splitlines()]
    assert [len(p["prediction"]) for p in preds] == [len(w) for w, _ in sentences(3, 2)]

    import transformers

    from modernbert import AutoTokenizer, ModernBertForTokenClassification

    tok = AutoTokenizer.from_pretrained(str(out))
    enc = tok(["Max Planck visited Paris", "the fox"], padding=True, return_tensors="pt")
    ours = ModernBertForTokenClassification.from_pretrained(str(out)).eval()
    ref = transformers.AutoModelForTokenClassification.from_pretrained(str(out)).eval()
    with torch.no_grad():
        a = ours(**enc).logits
        b = ref(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"]).logits
    mask = enc["attention_mask"].bool()
    torch.testing.assert_close(a[mask], b[mask], atol=1e-4, rtol=1e-4)
    from modernbert import pipeline

    found = pipeline("token-classification", model=str(out), device="cpu")("Max Planck visited Paris")
    assert all(e["entity"] in config["id2label"].values() for e in found)


def test_bad_tagged_inputs_one_line_exit_2(base, tmp_path, capsys):
    def bad(train, *extra):
        capsys.readouterr()
        code = main(["finetune", "token-classification", "--model", str(base), "--train", str(train), "--output",
                     str(tmp_path / "out"), "--max-steps", "1", "--quiet", *extra])
        err = capsys.readouterr().err
        assert code == 2 and err.count("\n") == 1 and err.startswith("error: "), err
        return err

    jsonl = tmp_path / "a.jsonl"
    jsonl.write_text(json.dumps({"tokens": ["a", "b"], "ner_tags": ["O", "O"]}) + "\n"
                     + json.dumps({"tokens": ["a", "b", "c"], "ner_tags": ["O", "O"]}) + "\n")
    assert f"{jsonl}, line 2, column 'ner_tags': 2 tags for 3 words; expected one tag per word" in bad(jsonl)
    conll = tmp_path / "a.conll"
    conll.write_text("Paris B-LOC\nis\n")
    assert f"{conll}, line 2: 'is' has no tag" in bad(conll)
    (tmp_path / "e.conll").write_text("-DOCSTART- O\n\n")
    assert "holds no sentences" in bad(tmp_path / "e.conll")
    good = write_conll(tmp_path / "g.conll", [(["Paris"], ["B-LOC"])])
    dev = write_conll(tmp_path / "d.conll", [(["Paris", "John"], ["B-LOC", "B-PER"])])
    assert f"{dev}, line 4, column 'ner_tags': tag 'B-PER' of the validation data is not among the training " \
           "tags (B-LOC)" in bad(good, "--validation", str(dev))
