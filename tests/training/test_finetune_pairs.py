"""`modernbert finetune sentence-embedding` and `reranker`: the in-batch-negatives loss, retrieval metrics,
training, and exports that SentenceEncoder and transformers load."""

from __future__ import annotations

import json
import math
import random
import warnings
from pathlib import Path

import pytest
import torch

from modernbert.training.finetune import finetune
from modernbert.training.finetune_pairs import SCALE, SentenceEmbedding, retrieval_metrics

TOPICS = {"Paris": ["France", "capital", "Seine"], "dog": ["lazy", "brown", "park"],
          "coffee": ["tea", "morning", "cup"], "winter": ["snow", "birds", "cold"]}
FILLER = ["the", "quick", "fox", "and", "in", "of", "some"]


def _text(rng: random.Random, topic: str) -> str:
    words = [rng.choice(TOPICS[topic]) for _ in range(2)] + [rng.choice(FILLER) for _ in range(rng.randint(1, 5))]
    rng.shuffle(words)
    return " ".join(words)


@pytest.fixture(scope="module")
def base(tiny_checkpoint) -> Path:
    return tiny_checkpoint("ModernBertForMaskedLM", num_hidden_layers=2)


def test_retrieval_metrics_by_hand():
    m = retrieval_metrics([[1], [3], [12]])
    assert m["mrr@10"] == pytest.approx((1 + 1 / 3 + 0) / 3)
    assert m["recall@1"] == pytest.approx(1 / 3) and m["recall@10"] == pytest.approx(2 / 3)
    m = retrieval_metrics([[5, 2], []])  # a query without relevant candidates does not count
    assert m["mrr@10"] == 0.5 and m["recall@1"] == 0.0 and m["recall@10"] == 1.0


def test_in_batch_negatives_loss_by_hand():
    n = 4
    eye = torch.eye(2 * n)
    # Positive i: cosine 0.1 with anchor i, 0 with the others; scaled by 3 (the loss normalises).
    positives = 3 * (0.1 * eye[:n] + math.sqrt(0.99) * eye[n:])
    loss = SentenceEmbedding.loss_sum(None, torch.cat([eye[:n], positives]), torch.arange(n)) / n
    assert float(loss) == pytest.approx(math.log(math.exp(0.1 * SCALE) + n - 1) - 0.1 * SCALE, rel=1e-5)
    swapped = torch.cat([eye[:n], eye[:n][[1, 0, 2, 3]]])
    assert float(SentenceEmbedding.loss_sum(None, swapped, torch.arange(n)) / n) > 9.0


def test_sentence_embedding_trains_and_exports(base, tmp_path):
    rng = random.Random(0)
    pairs = [{"anchor": _text(rng, t), "positive": _text(rng, t)} for t in list(TOPICS) * 8]
    rng.shuffle(pairs)
    (tmp_path / "train.jsonl").write_text("".join(json.dumps(p) + "\n" for p in pairs))
    out = tmp_path / "emb"
    m = finetune(task="sentence-embedding", model=str(base), train=str(tmp_path / "train.jsonl"),
                 validation=str(tmp_path / "train.jsonl"), output=str(out), learning_rate=3e-3, batch_tokens=120,
                 epochs=3, num_threads=1, quiet=True)
    assert m["evals"][-1]["eval_loss"] < m["evals"][0]["eval_loss"]
    assert {"eval_mrr@10", "eval_recall@1", "eval_recall@10"} <= m.keys()
    modules = json.loads((out / "modules.json").read_text())
    assert [x["type"].rsplit(".", 1)[-1] for x in modules] == ["Transformer", "Pooling", "Normalize"]

    from modernbert import AutoTokenizer, ModernBertModel
    from modernbert.pipelines import SentenceEncoder

    texts = ["Paris capital the", "lazy dog in park"]
    got = torch.as_tensor(SentenceEncoder.from_pretrained(str(out), device="cpu").encode(texts))
    tok, model = AutoTokenizer.from_pretrained(str(out)), ModernBertModel.from_pretrained(str(out)).eval()
    for text, vec in zip(texts, got):
        ids = tok(text, return_tensors="pt")["input_ids"]
        with torch.no_grad():
            want = torch.nn.functional.normalize(model(input_ids=ids).last_hidden_state[0].mean(0), dim=0)
        torch.testing.assert_close(vec.float(), want, atol=1e-5, rtol=1e-5)


def test_reranker_trains_and_transformers_agrees(base, tmp_path):
    rng = random.Random(1)
    rows = []
    for topic in list(TOPICS) * 6:
        other = rng.choice([t for t in TOPICS if t != topic])
        rows.append({"query": topic, "passage": _text(rng, topic), "label": 1})
        rows.append({"query": topic, "passage": _text(rng, other), "label": 0})
    (tmp_path / "train.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = tmp_path / "rr"
    m = finetune(task="reranker", model=str(base), train=str(tmp_path / "train.jsonl"),
                 validation=str(tmp_path / "train.jsonl"), output=str(out), learning_rate=3e-3, batch_tokens=160,
                 epochs=3, num_threads=1, quiet=True, metric_for_best="mrr@10")
    assert m["evals"][-1]["eval_loss"] < m["evals"][0]["eval_loss"]
    assert {"eval_accuracy", "eval_mrr@10", "eval_recall@1"} <= m.keys()
    assert json.loads((out / "config.json").read_text())["id2label"] == {"0": "LABEL_0"}

    import transformers

    from modernbert import AutoTokenizer, ModernBertForSequenceClassification

    tok = AutoTokenizer.from_pretrained(str(out))
    enc = tok(["Paris", "dog"], ["France capital", "tea cup morning"], padding=True, return_tensors="pt")
    ours = ModernBertForSequenceClassification.from_pretrained(str(out)).eval()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = transformers.AutoModelForSequenceClassification.from_pretrained(str(out)).eval()
    with torch.no_grad():
        a = ours(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"]).logits
        b = ref(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"]).logits
    assert a.shape == (2, 1)
    torch.testing.assert_close(a, b, atol=1e-4, rtol=1e-4)


def test_reranker_relevance_must_be_in_0_1(base, tmp_path, capsys):
    from modernbert.cli import main

    train = tmp_path / "train.jsonl"
    train.write_text(json.dumps({"query": "a", "passage": "b", "label": 1}) + "\n"
                     + json.dumps({"query": "a", "passage": "c", "label": 3}) + "\n")
    code = main(["finetune", "reranker", "--model", str(base), "--train", str(train), "--output",
                 str(tmp_path / "out"), "--quiet"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1
    assert f"{train}, line 2, column 'label': relevance 3.0; expected a relevance in [0, 1]" in err


def test_listwise_loss_by_hand():
    from types import SimpleNamespace

    from modernbert.training.finetune_pairs import Reranker

    task = SimpleNamespace(listwise=True)
    logits = torch.tensor([[2.0], [0.0], [1.0], [0.5], [-0.5]], requires_grad=True)  # a query of 3, one of 2
    labels = torch.tensor([[0.0, 1.0, 0.0], [1.0, 0.0, -1.0]])
    loss = Reranker.loss_sum(task, logits, labels)
    first, second = torch.log_softmax(torch.tensor([2.0, 0.0, 1.0]), 0), torch.log_softmax(torch.tensor([0.5, -0.5]), 0)
    want = -(first[1] + second[0])
    assert float(loss.detach()) == pytest.approx(float(want), rel=1e-6)
    loss.backward()
    assert torch.isfinite(logits.grad).all() and float(logits.grad.sum()) == pytest.approx(0.0, abs=1e-6)
    # graded relevances are normalised per query; a query without a relevant passage adds nothing
    soft = Reranker.loss_sum(task, logits.detach()[:3], torch.tensor([[0.5, 0.5, 0.0]]))
    assert float(soft) == pytest.approx(-0.5 * float(torch.log_softmax(torch.tensor([2.0, 0.0, 1.0]), 0)[:2].sum()))
    assert float(Reranker.loss_sum(task, logits.detach()[3:], torch.tensor([[0.0, 0.0]]))) == 0.0
    assert Reranker.count(task, torch.tensor([[0.0, 1.0], [0.0, 0.0], [1.0, -1.0]])) == 2


def test_listwise_reranker_trains_and_predicts_each_row(base, tmp_path):
    rng = random.Random(2)
    rows = []
    for i, topic in enumerate(list(TOPICS) * 4):
        others = [t for t in TOPICS if t != topic]
        query = f"{topic} {i}"
        rows += [{"query": query, "passage": _text(rng, topic), "label": 1}]
        rows += [{"query": query, "passage": _text(rng, t), "label": 0} for t in rng.sample(others, rng.randint(1, 3))]
    rng.shuffle(rows)  # a query's rows need not be next to each other
    (tmp_path / "train.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    test = [{"query": r["query"], "passage": r["passage"]} for r in rows[:12]]
    (tmp_path / "test.jsonl").write_text("".join(json.dumps(r) + "\n" for r in test))
    out = tmp_path / "rr"
    m = finetune(task="reranker", model=str(base), train=str(tmp_path / "train.jsonl"), reranker_loss="listwise",
                 validation=str(tmp_path / "train.jsonl"), test=str(tmp_path / "test.jsonl"), output=str(out),
                 learning_rate=3e-3, batch_tokens=160, epochs=3, num_threads=1, quiet=True,
                 metric_for_best="eval_loss")
    assert m["evals"][-1]["eval_loss"] < m["evals"][0]["eval_loss"]
    assert {"eval_mrr@10", "eval_recall@1"} <= m.keys() and "eval_accuracy" not in m
    start = json.loads((out / "trainer_log.jsonl").read_text().splitlines()[0])
    assert start["train_examples"] == 16  # one example per query

    from modernbert import AutoTokenizer, ModernBertForSequenceClassification

    got = [json.loads(line) for line in (out / "test_predictions.jsonl").read_text().splitlines()]
    assert [p["index"] for p in got] == list(range(len(test)))
    tok = AutoTokenizer.from_pretrained(str(out))
    model = ModernBertForSequenceClassification.from_pretrained(str(out)).eval()
    enc = tok([r["query"] for r in test], [r["passage"] for r in test], padding=True, return_tensors="pt")
    with torch.no_grad():
        want = torch.sigmoid(model(**enc).logits.squeeze(-1))
    torch.testing.assert_close(torch.tensor([p["score"] for p in got]), want, atol=1e-5, rtol=1e-5)


def test_reranker_loss_is_for_the_reranker(base, tmp_path, capsys):
    from modernbert.cli import main

    train = tmp_path / "train.jsonl"
    train.write_text(json.dumps({"text": "a b", "label": "x"}) + "\n")
    code = main(["finetune", "text-classification", "--model", str(base), "--train", str(train), "--output",
                 str(tmp_path / "out"), "--reranker-loss", "listwise", "--quiet"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1
    assert "reranker_loss='listwise' is for the reranker task, not 'text-classification'" in err


def test_reranker_loss_is_kept_on_resume(base, tmp_path):
    rows = [{"query": t, "passage": _text(random.Random(i), t), "label": int(i % 2 == 0)}
            for i, t in enumerate(list(TOPICS) * 4)]
    (tmp_path / "train.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    cfg = dict(task="reranker", model=str(base), train=str(tmp_path / "train.jsonl"), output=str(tmp_path / "rr"),
               batch_tokens=64, max_steps=4, num_threads=1, quiet=True)
    finetune(**cfg, reranker_loss="listwise", stop_after=2)
    with pytest.raises(ValueError, match=r"cannot resume .*options\.reranker_loss: 'listwise' → absent"):
        finetune(**cfg, resume=True)  # the default, bce, is left out of the inputs (older checkpoints lack it)
    assert finetune(**cfg, reranker_loss="listwise", resume=True)["step"] == 4
