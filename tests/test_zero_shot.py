"""zero-shot-classification: the same labels and scores as transformers' ZeroShotClassificationPipeline on tiny NLI
classifiers (three labels in either order, and a two-label one), single- and multi-label, plus the clear errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import transformers
from test_pipelines import MIXED_TEXTS, assert_close, hf_pipeline, quiet

import modernbert
from modernbert import pipeline

ATOL = 1e-5
NLI = {0: "entailment", 1: "neutral", 2: "contradiction"}
MNLI = {0: "CONTRADICTION", 1: "NEUTRAL", 2: "ENTAILMENT"}  # the usual MNLI order, upper case
TWO = {0: "entailment", 1: "not_entailment"}
TEXT = "The quick brown fox jumps over the lazy dog near the river bank in London."
CANDIDATES = [
    ["animals", "politics", "sports"],
    ["urgent", "not urgent", "phone", "tablet", "computer"],
    "travel, cooking ,  dancing",
    ["weather"],  # a single label: entailment against contradiction, as multi_label
    "science",
]


def labels(id2label: dict[int, str]) -> dict:
    """Checkpoint overrides for an NLI classifier with these labels. A wide init, so that the tiny random model's
    scores differ by far more than the tolerance (with the default 0.02 they all lie within 1e-4 of each other)."""
    return dict(num_labels=len(id2label), id2label=id2label, label2id={v: k for k, v in id2label.items()},
                initializer_range=0.5)


@pytest.fixture(scope="module", params=[NLI, MNLI, TWO], ids=["nli", "mnli", "two"])
def nli_folder(request, tiny_checkpoint):
    return tiny_checkpoint("ModernBertForSequenceClassification", **labels(request.param))


@pytest.fixture(scope="module")
def pair(nli_folder):
    return hf_pipeline("zero-shot-classification", nli_folder), pipeline("zero-shot-classification", model=nli_folder)


@pytest.mark.parametrize("candidates", CANDIDATES, ids=lambda c: str(c)[:20])
@pytest.mark.parametrize("multi_label", [False, True])
def test_matches_transformers(pair, candidates, multi_label):
    ref, ours = pair
    for texts in (TEXT, MIXED_TEXTS[:5]):
        expected = quiet(ref, texts, candidate_labels=candidates, multi_label=multi_label)
        got = ours(texts, candidate_labels=candidates, multi_label=multi_label)
        assert_close(got, expected, atol=ATOL)
    scores = got[0]["scores"]
    assert len(scores) == 1 or scores[0] - scores[-1] > 0.01  # a spread the comparison can see
    if multi_label:  # independent labels: each score is its own probability
        assert not np.isclose(sum(got[0]["scores"]), 1.0) or len(got[0]["scores"]) == 1
    elif not isinstance(candidates, str) and len(candidates) > 1:
        assert sum(got[0]["scores"]) == pytest.approx(1.0, abs=1e-6)


def test_options_forms_and_run(pair):
    ref, ours = pair
    template = "The topic of this text is {}."
    kwargs = dict(candidate_labels=["animals", "politics", "sports"], hypothesis_template=template)
    expected = quiet(ref, MIXED_TEXTS, **kwargs)
    assert_close(ours(MIXED_TEXTS, **kwargs, batch_size=3), expected, atol=ATOL)
    assert_close(ours(MIXED_TEXTS[0], ["animals", "politics", "sports"], hypothesis_template=template),
                 expected[0], atol=ATOL)  # the labels as the second positional argument
    assert_close(ours([MIXED_TEXTS[0]], **kwargs), [expected[0]], atol=ATOL)  # a list of one: a list
    run = ours.run(MIXED_TEXTS, **kwargs)
    assert_close(run, expected, atol=ATOL)
    assert all(type(r["scores"][0]) is float for r in run)
    assert ours.run([]) == []
    # constructor options are defaults; call options override them
    preset = pipeline("zero-shot-classification", model=ours.model.name_or_path, **kwargs)
    assert_close(preset(MIXED_TEXTS[1]), expected[1], atol=ATOL)
    assert_close(preset(MIXED_TEXTS[1], candidate_labels="cooking, travel"),
                 quiet(ref, MIXED_TEXTS[1], candidate_labels="cooking, travel", hypothesis_template=template),
                 atol=ATOL)


def test_batch_size_does_not_change_scores(pair):
    _, ours = pair
    kwargs = dict(candidate_labels=["a", "b", "c", "d"], multi_label=True)
    one = ours(MIXED_TEXTS, batch_size=1, **kwargs)
    assert_close(ours(MIXED_TEXTS, batch_size=16, **kwargs), one, atol=1e-5)


def test_registered_in_the_task_table():
    assert modernbert.pipelines.SUPPORTED_TASKS["zero-shot-classification"] is \
        modernbert.pipelines.ZeroShotClassificationPipeline
    with pytest.raises(ValueError, match="zero-shot-classification"):
        pipeline("zero_shot")  # the valid tasks are listed


def test_contradiction_found_by_name(tiny_checkpoint):
    """Labels neutral / entailment / contradiction (in that order): multi_label sets entailment against the label
    named contradiction. (transformers takes class 0 there, neutral.)"""
    order = {0: "neutral", 1: "entailment", 2: "contradiction"}
    folder = tiny_checkpoint("ModernBertForSequenceClassification", **labels(order))
    ours = pipeline("zero-shot-classification", model=folder)
    assert (ours.entailment_id, ours.contradiction_id) == (1, 2)
    model = quiet(transformers.AutoModelForSequenceClassification.from_pretrained, folder).eval()
    tok = transformers.AutoTokenizer.from_pretrained(folder)
    candidates = ["animals", "politics"]
    enc = tok([TEXT] * 2, [f"This example is {c}." for c in candidates], return_tensors="pt", padding=True)
    with torch.no_grad():
        logits = model(**enc).logits.numpy()
    expected = np.exp(logits[:, 1]) / (np.exp(logits[:, 1]) + np.exp(logits[:, 2]))
    against_neutral = np.exp(logits[:, 1]) / (np.exp(logits[:, 1]) + np.exp(logits[:, 0]))
    got = ours(TEXT, candidate_labels=candidates, multi_label=True)
    scores = dict(zip(got["labels"], got["scores"]))
    np.testing.assert_allclose([scores[c] for c in candidates], expected, atol=ATOL)
    assert np.abs(expected - against_neutral).max() > 100 * ATOL  # the choice of class matters here


def test_errors(tiny_checkpoint, pair):
    _, ours = pair
    unnamed = tiny_checkpoint("ModernBertForSequenceClassification", num_labels=3)
    with pytest.raises(ValueError, match=r"no entailment label \(labels: 'LABEL_0', 'LABEL_1', 'LABEL_2'\).*"
                                         r"'entail'.*'entailment': 0, 'neutral': 1, 'contradiction': 2"):
        pipeline("zero-shot-classification", model=unnamed)
    with pytest.raises(ValueError, match="no candidate_labels: pass candidate_labels="):
        ours(TEXT)
    for empty in ([], "", " , ,", ()):
        with pytest.raises(ValueError, match="holds no label; pass at least one"):
            ours(TEXT, candidate_labels=empty)
    with pytest.raises(ValueError, match=r"candidate_labels\[1\] is an empty label"):
        ours(TEXT, candidate_labels=["a", " "])
    with pytest.raises(TypeError, match=r"candidate_labels\[0\] is a int"):
        ours(TEXT, candidate_labels=[3])
    with pytest.raises(ValueError, match=r"has no \{\} where the label goes"):
        ours(TEXT, candidate_labels=["a"], hypothesis_template="This example is about it.")
    with pytest.raises(ValueError, match=r"has no \{\} where the label goes"):
        ours(TEXT, candidate_labels=["a"], hypothesis_template="Literal {{}} braces.")
    with pytest.raises(ValueError, match="placeholder other than"):
        ours(TEXT, candidate_labels=["a"], hypothesis_template="About {topic}.")
    with pytest.raises(ValueError, match="not a valid format string"):
        ours(TEXT, candidate_labels=["a"], hypothesis_template="About {.")
    with pytest.raises(ValueError, match="no candidate_labels"):  # in the constructor too
        pipeline("zero-shot-classification", model=ours.model.name_or_path, hypothesis_template="x {}").run([TEXT])
    with pytest.raises(ValueError, match=r"inputs\[1\] is an empty text"):
        ours.run([TEXT, "  "], candidate_labels="a, b")
    with pytest.raises(TypeError, match="multi_label"):
        ours(TEXT, candidate_labels="a, b", multi_label="yes")
    with pytest.raises(TypeError, match="extra argument"):
        ours(TEXT, ["a"], candidate_labels=["b"])
    with pytest.raises(TypeError, match="unknown option"):
        ours(TEXT, candidate_labels=["a"], top_k=2)
    long_label = "word " * 5000
    with pytest.raises(ValueError, match=r"the input with candidate label 'word word.*shorten the candidate label"):
        ours(TEXT, candidate_labels=[long_label])


def test_long_text_is_cut_to_fit(nli_folder):
    """The text is cut (never the hypothesis) so that each pair fits the model, as transformers cuts it to the
    tokenizer's model_max_length (here 8192, over the tiny model's 4096 positions: transformers' tokenizer is given
    4096, the length ours cuts to)."""
    ours = pipeline("zero-shot-classification", model=nli_folder)
    tok = transformers.AutoTokenizer.from_pretrained(nli_folder, model_max_length=4096)
    ref = hf_pipeline("zero-shot-classification", nli_folder, tokenizer=tok)
    long_text = "The quick brown fox jumps over the lazy dog. " * 500  # 5000 tokens
    candidates = ["animals", "politics"]
    assert len(ours.tokenizer(long_text)["input_ids"]) > 4096
    out = ours(long_text, candidate_labels=candidates)
    assert out["sequence"] == long_text
    assert_close(out, quiet(ref, long_text, candidate_labels=candidates), atol=ATOL)
