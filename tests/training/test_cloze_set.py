"""The cloze set of tests/data (written for evaluation only) and the checks of scripts/eval_mlm.py."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import load_script

import modernbert

CLOZE = Path(__file__).parent.parent / "data" / "cloze.jsonl"
TINY = Path(modernbert.__file__).parent / "bundled" / "modernbert-tiny"


def test_cloze_set_shape():
    ev = load_script("eval_mlm")
    rows = ev.read_cloze(CLOZE)
    assert len(rows) >= 30
    assert len({r["text"] for r in rows}) == len(rows)
    for r in rows:
        assert r["text"].count("[MASK]") == 1 and r["answers"], r
        assert all(a == a.lower() for a in r["answers"]), r


def test_cloze_answers_are_single_tokens():
    """A masked LM fills one token: every accepted answer is one token of modernbert-tiny's vocabulary."""
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(TINY / "tokenizer.json"))
    for r in load_script("eval_mlm").read_cloze(CLOZE):
        for a in r["answers"]:
            forms = [len(tok.encode(" " + f, add_special_tokens=False).ids) for f in (a, a.capitalize())]
            assert 1 in forms, (r["text"], a)


def test_overlap_check_finds_windows(tmp_path):
    ev = load_script("eval_mlm")
    rows = [{"text": "The dog [MASK] all night.", "answers": ["barked"]},
            {"text": "On a quiet evening the old [MASK] walked slowly down to the river.", "answers": ["man", "dog"]}]
    corpus = tmp_path / "c.jsonl"
    corpus.write_text(json.dumps({"text": "Once, the dog BARKED all night!"}) + "\n"
                      + json.dumps({"text": "They said: the old dog walked slowly down to the river, alone."}) + "\n")
    found = ev.cloze_overlaps(rows, [corpus])
    assert ("The dog [MASK] all night.", "the dog barked all night") in found
    assert any(w == "old dog walked slowly down to the river" for _, w in found)
    assert not any(w.startswith("old man") for _, w in found)
    corpus.write_text(json.dumps({"text": "A cat slept all day."}) + "\n")
    assert ev.cloze_overlaps(rows, [corpus]) == []


def test_cloze_scores():
    ev = load_script("eval_mlm")
    rows = [{"text": "a [MASK]", "answers": ["x"]}, {"text": "b [MASK]", "answers": ["y", "z"]}]
    preds = [[("X", 0.5), ("q", 0.1)], [("q", 0.5), ("z", 0.2)]]
    assert ev.cloze_scores(rows, preds) == {"top1": 0.5, "top5": 1.0, "n": 2}


def test_read_cloze_rejects_bad_rows(tmp_path):
    ev = load_script("eval_mlm")
    path = tmp_path / "bad.jsonl"
    path.write_text(json.dumps({"text": "no mask here", "answers": ["x"]}) + "\n")
    with pytest.raises(ValueError, match="exactly one"):
        ev.read_cloze(path)


def test_chunks_cut_at_lines_and_spaces():
    ev = load_script("eval_mlm")
    text = "one two\nthree four five\n" + "x " * 30
    out = ev.chunks(text, 20)
    assert all(len(c) <= 20 for c in out)
    assert " ".join(" ".join(out).split()) == " ".join(text.split())
    assert out[0] == "one two"


def test_masked_words_are_single_tokens_and_seeded():
    from tokenizers import Tokenizer

    ev = load_script("eval_mlm")
    tok = Tokenizer.from_file(str(TINY / "tokenizer.json"))
    texts = ["The dog barked all night and the cat slept on the warm mat by the door.",
             "Water boils at a high temperature; ice melts when the sun comes out."]
    sets = ev.masked_word_sets(texts, [tok], frac=0.3, seed=1, max_chars=1000)
    assert sets == ev.masked_word_sets(texts, [tok], frac=0.3, seed=1, max_chars=1000)
    assert sets != ev.masked_word_sets(texts, [tok], frac=0.3, seed=2, max_chars=1000)
    for (masked, words), original in zip(sets, texts):
        assert masked.count("[MASK]") == len(words) >= 1
        refilled = masked
        for w in words:
            assert len(tok.encode(" " + w, add_special_tokens=False).ids) == 1
            refilled = refilled.replace("[MASK]", w, 1)
        assert refilled == original
        ids = tok.encode(masked).ids
        assert ids.count(tok.token_to_id("[MASK]")) == len(words)


def test_word_accuracy_counts_exact_words():
    """An oracle that always predicts the original token scores 1; one that predicts 'the' scores its share."""
    import torch
    from tokenizers import Tokenizer

    from modernbert.training.data import SpecialIds

    ev = load_script("eval_mlm")
    tok = Tokenizer.from_file(str(TINY / "tokenizer.json"))
    special = SpecialIds.from_tokenizer(tok)
    original = "The dog barked all night and the cat slept on the mat."
    sets = ev.masked_word_sets([original], [tok], frac=0.5, seed=3, max_chars=1000)
    truth = tok.encode(original).ids

    class Oracle:
        def __init__(self, fixed=None):
            self.fixed = fixed

        def __call__(self, input_ids):
            ids = truth if self.fixed is None else [self.fixed] * input_ids.shape[1]
            return type("Out", (), {"logits": torch.nn.functional.one_hot(
                torch.tensor([ids]), special.vocab_size).float()})()

    assert ev.word_accuracy(Oracle(), tok, special, sets, 512) == {"accuracy": 1.0, "words": len(sets[0][1])}
    the = tok.encode(" the", add_special_tokens=False).ids[0]
    got = ev.word_accuracy(Oracle(the), tok, special, sets, 512)
    assert got["accuracy"] == sets[0][1].count("the") / len(sets[0][1])
