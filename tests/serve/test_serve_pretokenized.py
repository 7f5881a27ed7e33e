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
