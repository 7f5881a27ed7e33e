"""The seed's two snippets, pasted unchanged except for the import and a local checkpoint folder.

Each runs once with `modernbert` and once with `transformers` (same code, only the import differs) on the same
tiny masked-LM folder, and both must give the same results.
"""

from __future__ import annotations

import warnings

import pytest
import torch
import transformers

TOL = 1e-4


@pytest.fixture(scope="module")
def model_id(tiny_checkpoint) -> str:
    """The local folder that stands in for "answerdotai/ModernBERT-base"."""
    return str(tiny_checkpoint("ModernBertForMaskedLM"))


def run_pipeline_snippet(model_id: str):
    from modernbert import pipeline

    pipeline = pipeline(task="fill-mask", model=model_id, dtype="auto")
    return pipeline("The capital of France is [MASK].")


def run_pipeline_snippet_transformers(model_id: str):
    from transformers import pipeline

    pipeline = pipeline(task="fill-mask", model=model_id, dtype="auto")
    return pipeline("The capital of France is [MASK].")


def run_auto_snippet(model_id: str):
    from modernbert import AutoModelForMaskedLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_id)
    model = AutoModelForMaskedLM.from_pretrained(model_id)
    text = "The capital of France is [MASK]."
    inputs = tokenizer(text, return_tensors="pt")
    outputs = model(**inputs)
    masked_index = inputs["input_ids"][0].tolist().index(tokenizer.mask_token_id)
    predicted_token_id = outputs.logits[0, masked_index].argmax(axis=-1)
    predicted_token = tokenizer.decode(predicted_token_id)
    print("Predicted token:", predicted_token)
    return inputs, outputs, predicted_token


def run_auto_snippet_transformers(model_id: str):
    from transformers import AutoModelForMaskedLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_id)
    model = AutoModelForMaskedLM.from_pretrained(model_id)
    text = "The capital of France is [MASK]."
    inputs = tokenizer(text, return_tensors="pt")
    outputs = model(**inputs)
    masked_index = inputs["input_ids"][0].tolist().index(tokenizer.mask_token_id)
    predicted_token_id = outputs.logits[0, masked_index].argmax(axis=-1)
    predicted_token = tokenizer.decode(predicted_token_id)
    print("Predicted token:", predicted_token)
    return inputs, outputs, predicted_token


def test_pipeline_snippet(model_id):
    ours = run_pipeline_snippet(model_id)
    transformers.logging.set_verbosity_error()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = run_pipeline_snippet_transformers(model_id)
    assert len(ours) == len(ref) == 5
    for o, r in zip(ours, ref):
        assert list(o) == list(r) == ["score", "token", "token_str", "sequence"]
        assert (o["token"], o["token_str"], o["sequence"]) == (r["token"], r["token_str"], r["sequence"])
        assert type(o["score"]) is float and abs(o["score"] - r["score"]) <= TOL


def test_auto_snippet(model_id, capsys):
    inputs, outputs, predicted = run_auto_snippet(model_id)
    printed = capsys.readouterr().out
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref_inputs, ref_outputs, ref_predicted = run_auto_snippet_transformers(model_id)
    ref_printed = capsys.readouterr().out
    assert printed == ref_printed and printed.startswith("Predicted token:")
    assert predicted == ref_predicted
    assert set(inputs) == set(ref_inputs)
    for key in ref_inputs:
        assert torch.equal(inputs[key], ref_inputs[key]), key
    torch.testing.assert_close(outputs.logits, ref_outputs.logits.detach(), atol=TOL, rtol=0)
