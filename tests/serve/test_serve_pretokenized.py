"""The pre-tokenized entry point the server uses (token ids into `Pipeline.run`) and its cut in either direction."""

from __future__ import annotations

import pytest

from modernbert import SentenceEncoder
from modernbert.pipelines import FeatureExtractionPipeline
from modernbert.serve.served import Tokens, special_ends
from modernbert.tokenizer import Tokenizer

from .serve_helpers import close, words

TEXTS = ["The capital of France is Paris.", "Hi", words(30, 2)]


@pytest.fixture(scope="module")
def encoder(tiny_checkpoint) -> SentenceEncoder:
    return SentenceEncoder.from_pretrained(tiny_checkpoint("ModernBertModel"), device="cpu", normalize=True)


def test_token_ids_run_as_given(encoder):
    ids = encoder.tokenize(TEXTS)
    close(encoder.encode(ids).tolist(), encoder.encode(TEXTS).tolist())
    features = FeatureExtractionPipeline(encoder.model, encoder.tokenizer)
    close(features.run(ids), features.run(TEXTS))
    with pytest.raises(TypeError, match=r"inputs\[1\]"):
        features.run([ids[0], "a text"])
    with pytest.raises(TypeError, match=r"inputs\[0\]"):
        encoder.encode([[1, -2]])


@pytest.mark.parametrize("side", ["right", "left"])
def test_cut_keeps_special_tokens_as_the_tokenizer_does(tiny_checkpoint, side):
    folder = tiny_checkpoint("ModernBertModel")
    tok = Tokenizer.from_pretrained(folder, truncation_side=side)
    text = words(80, 5)
    full = tok([text])["input_ids"][0]
    head, tail = special_ends(tok)
    assert (head, tail) == (1, 1)
    for limit in (5, 17, len(full) - 1, len(full), len(full) + 3):
        expected = tok([text], truncation=True, max_length=limit)["input_ids"][0]
        assert Tokens(full, head, tail).cut(limit, side) == expected, limit
    assert Tokens(list(range(10))).cut(4, side) == ([0, 1, 2, 3] if side == "right" else [6, 7, 8, 9])


def test_classifier_is_tokenized_once_and_cut_as_the_tokenizer_cuts(tiny_checkpoint):
    """/predict and /rerank hand the classifier the ids they counted; a pair too long is cut longest-first."""
    from modernbert.model import ModernBertForSequenceClassification
    from modernbert.pipelines import TextClassificationPipeline
    from modernbert.serve import served

    folder = tiny_checkpoint("ModernBertForSequenceClassification", num_labels=3)
    model = served.load(str(folder), device="cpu")
    task, tok = model.tasks["classify"], model.tokenizer
    limit = task.max_length
    long = words(limit + 40, 7)
    items = [TEXTS[0], {"text": "Hi", "text_pair": TEXTS[0]}, {"text": long, "text_pair": TEXTS[2]}, long]
    as_tokenizer = [TEXTS[0], ("Hi", TEXTS[0]), (long, TEXTS[2]), long]
    options = {"raw_scores": False, "truncate": True}
    encoded = task.tokenize(items, options)
    assert [e.ids for e in encoded] == tok(as_tokenizer, truncation=True, max_length=limit)["input_ids"]
    assert len(encoded[2].ids) == len(encoded[3].ids) == limit
    untruncated = task.tokenize(items, {**options, "truncate": False})
    assert [len(e.ids) for e in untruncated] == task.count(items, options)
    assert len(untruncated[3].ids) > limit

    fresh = TextClassificationPipeline(ModernBertForSequenceClassification.from_pretrained(folder), tok)
    expected = fresh.run(items, top_k=None, truncation=True, max_length=limit)
    got = task.run([e.ids for e in encoded], options)
    for g, e in zip(got, expected):
        close([p["score"] for p in g], [p["score"] for p in e])
        assert [p["label"] for p in g] == [p["label"] for p in e]
    # the pipeline's own pre-tokenized entry point: ids run as given, lists of words are still refused
    close([r[0]["score"] for r in fresh.run([e.ids for e in encoded[:2]])],
          [r[0]["score"] for r in fresh.run(items[:2])])
    with pytest.raises(ValueError, match="text pair"):
        fresh.run([["a", "b"]])


def test_fill_mask_is_tokenized_once_and_a_cut_that_loses_every_mask_is_refused(tiny_checkpoint):
    """/fill-mask hands the pipeline the ids it counted, cut as the tokenizer's truncation cuts them; the
    pipeline's own pre-tokenized entry point gives the text path's answers."""
    from modernbert.model import ModernBertForMaskedLM
    from modernbert.pipelines import FillMaskPipeline
    from modernbert.serve import served

    folder = tiny_checkpoint("ModernBertForMaskedLM")
    model = served.load(str(folder), device="cpu")
    task, tok = model.tasks["fill"], model.tokenizer
    limit, mask = task.max_length, tok.mask_token
    long = f"The {mask} of " + words(limit + 40, 3)
    items = ["The capital of France is [MASK].".replace("[MASK]", mask), long, f"{mask} and {mask} too"]
    options = {"top_k": 3, "truncate": True}
    encoded = task.tokenize(items, options)
    assert [e.cut(limit) for e in encoded] == tok(items, truncation=True, max_length=limit)["input_ids"]
    assert [len(e.ids) for e in encoded] == task.count(items, options)

    fresh = FillMaskPipeline(ModernBertForMaskedLM.from_pretrained(folder), tok)
    expected = fresh.run(items, top_k=3, tokenizer_kwargs={"truncation": True, "max_length": limit})
    got = task.run([e.cut(limit) for e in encoded], options)
    assert [[[c["token"] for c in m] for m in r] for r in got] == [[[c["token"] for c in m] for m in r]
                                                                    for r in expected]
    assert [[[c["sequence"] for c in m] for m in r] for r in got] == [[[c["sequence"] for c in m] for m in r]
                                                                       for r in expected]
    close([[[c["score"] for c in m] for m in r] for r in got], [[[c["score"] for c in m] for m in r]
                                                                 for r in expected])
    with pytest.raises(ValueError, match=r"no mask token .* found in inputs\[0\]"):
        fresh.run([tok(["no mask here"])["input_ids"][0]])
    late = words(limit + 40, 4) + f" {mask}."
    with pytest.raises(ValueError, match=rf"input 1 has no .* in its first {limit} tokens"):
        task.tokenize([items[0], late], options)
    assert len(task.tokenize([late], {**options, "truncate": False})[0].ids) > limit  # uncut: refused by count
