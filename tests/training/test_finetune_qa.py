"""`modernbert finetune question-answering`: SQuAD scores by hand, windows over long contexts, training, the
export (transformers agrees), and the one-line error of an answer that is not in its context."""

from __future__ import annotations

import json
import random
import warnings
from pathlib import Path

import pytest
import torch

from modernbert.training.finetune import FinetuneConfig, finetune
from modernbert.training.finetune_qa import QuestionAnswering, squad_scores

FILLER = ["the", "quick", "fox", "and", "in", "of", "some", "lazy", "dog", "park", "coffee", "tea"]
CITIES = ["Paris", "London", "Tokyo", "Berlin"]


def qa_rows(n: int, seed: int = 0, words: tuple[int, int] = (4, 12)) -> list[dict]:
    rng = random.Random(seed)
    out = []
    for i in range(n):
        before = " ".join(rng.choice(FILLER) for _ in range(rng.randint(*words)))
        after = " ".join(rng.choice(FILLER) for _ in range(rng.randint(*words)))
        city = rng.choice(CITIES)
        context = f"{before} {city} {after}"
        out.append({"id": f"q{i}", "question": "Which city?", "context": context,
                    "answers": {"text": [city], "answer_start": [len(before) + 1]}})
    return out


@pytest.fixture(scope="module")
def base(tiny_checkpoint) -> Path:
    return tiny_checkpoint("ModernBertForMaskedLM", num_hidden_layers=2)


def test_squad_scores_by_hand():
    assert squad_scores("the Eiffel Tower!", ["Eiffel tower"]) == (1.0, 1.0)
    exact, f1 = squad_scores("Paris France", ["Paris"])
    assert exact == 0.0 and f1 == pytest.approx(2 * 0.5 * 1 / 1.5)
    assert squad_scores("", []) == (1.0, 1.0) and squad_scores("Paris", []) == (0.0, 0.0)
    assert squad_scores("Paris", ["London", "paris"]) == (1.0, 1.0)


def test_windows_and_answer_labels(base, tmp_path):
    from modernbert.tokenizer import Tokenizer

    rows = qa_rows(3, words=(30, 40))
    rows.append({"id": "none", "question": "Which city?", "context": "no city here at all",
                 "answers": {"text": [], "answer_start": []}})
    (tmp_path / "t.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    tok = Tokenizer.from_pretrained(str(base))
    task = QuestionAnswering(FinetuneConfig(task="question-answering", model=str(base),
                                            train=str(tmp_path / "t.jsonl"), output="x"), tok, 32)
    split = task.train
    assert task.with_negative and len(split.ids) > len(rows)  # long contexts make several windows
    assert max(split.lengths) <= 32
    for w, (s, e) in enumerate(split.labels.tolist()):
        n = split.example[w]
        if s == 0:
            assert e == 0
            continue
        span = split.contexts[n][split.offsets[w][s][0] : split.offsets[w][e][1]]
        assert span.strip() == split.answers[n][0]
    for n in range(3):  # every answer lies in at least one window
        assert any(split.example[w] == n and split.labels[w, 0] > 0 for w in range(len(split.ids)))
    assert all(split.labels[w].tolist() == [0, 0] for w in range(len(split.ids)) if split.example[w] == 3)


def test_trains_exports_and_transformers_agrees(base, tmp_path):
    train, dev = tmp_path / "train.jsonl", tmp_path / "dev.json"
    train.write_text("".join(json.dumps(r) + "\n" for r in qa_rows(40)))
    squad = {"data": [{"paragraphs": [{"context": r["context"], "qas": [
        {"id": r["id"], "question": r["question"],
         "answers": [{"text": r["answers"]["text"][0], "answer_start": r["answers"]["answer_start"][0]}]}]}
        for r in qa_rows(8, 1)]}]}
    dev.write_text(json.dumps(squad))
    out = tmp_path / "qa"
    m = finetune(task="question-answering", model=str(base), train=str(train), validation=str(dev), test=str(dev),
                 output=str(out), learning_rate=3e-3, batch_tokens=300, epochs=6, eval_every=10, num_threads=1,
                 quiet=True)
    losses = m["train_losses"]
    assert sum(losses[-4:]) / 4 < 0.8 * sum(losses[:4]) / 4
    assert {"eval_loss", "eval_exact_match", "eval_f1", "test_exact_match"} <= m.keys()
    preds = [json.loads(x) for x in (out / "test_predictions.jsonl").read_text().splitlines()]
    assert [p["id"] for p in preds] == [f"q{i}" for i in range(8)]

    import transformers

    from modernbert import AutoTokenizer, ModernBertForQuestionAnswering

    tok = AutoTokenizer.from_pretrained(str(out))
    enc = tok(["Which city?", "Which city?"], ["the fox in Paris", "tea and coffee in London park"], padding=True,
              return_tensors="pt")
    ours = ModernBertForQuestionAnswering.from_pretrained(str(out)).eval()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = transformers.AutoModelForQuestionAnswering.from_pretrained(str(out)).eval()
    mask = enc["attention_mask"].bool()
    with torch.no_grad():
        a = ours(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"])
        b = ref(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"])
    torch.testing.assert_close(a.start_logits[mask], b.start_logits[mask], atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(a.end_logits[mask], b.end_logits[mask], atol=1e-4, rtol=1e-4)
    from modernbert import pipeline

    found = pipeline("question-answering", model=str(out), device="cpu")(question="Which city?",
                                                                         context="the fox in Paris")
    assert found["answer"] in "the fox in Paris"


def test_answer_not_in_context_one_line_exit_2(base, tmp_path, capsys):
    from modernbert.cli import main

    rows = qa_rows(2)
    rows[1]["answers"]["answer_start"] = [0]
    train = tmp_path / "t.jsonl"
    train.write_text("".join(json.dumps(r) + "\n" for r in rows))
    code = main(["finetune", "question-answering", "--model", str(base), "--train", str(train), "--output",
                 str(tmp_path / "out"), "--quiet"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1, err
    assert f"{train}, line 2, column 'answers': answer '{rows[1]['answers']['text'][0]}' is not in the context " \
           "at character 0" in err
