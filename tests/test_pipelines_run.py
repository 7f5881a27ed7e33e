"""`Pipeline.run`: one JSON-safe result per input, in input order, with one shape per task; plus the pipeline-level
defects of issue 12 (empty texts, long texts in token-classification, over-length advice) and the shared `Progress`.

Values are checked against transformers' pipelines (or the 4.x question-answering reference of test_pipelines),
reshaped to the shape `run` documents.
"""

from __future__ import annotations

import io
import json
import logging
import sys

import numpy as np
import pytest
import transformers
from test_embeddings import write_st_folder
from test_pipelines import (
    MIXED_TEXTS,
    NER_TEXT,
    QA_CONTEXT,
    QA_QUESTION,
    TOKEN_OVERRIDES,
    assert_close,
    hf_pipeline,
    mixed_inputs,
    quiet,
    reference_qa,
)

import modernbert
from modernbert import SentenceEncoder, pipeline
from modernbert.pipelines import Progress

# ~40,000 characters (about 23,000 tokens of the tiny tokenizer): far past one window.
LONG_TEXT = " ".join(f"{NER_TEXT} Sentence {i} of a long document." for i in range(400))
PLAIN = (list, dict, str, int, float, bool, type(None))


def assert_plain(obj, path="result"):
    """Only plain Python values (no numpy scalars, arrays or tensors), and json.dumps takes it."""
    assert type(obj) in PLAIN, f"{path}: {type(obj).__name__}"
    if isinstance(obj, dict):
        for k, v in obj.items():
            assert isinstance(k, str), f"{path}: key {k!r}"
            assert_plain(v, f"{path}[{k!r}]")
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            assert_plain(v, f"{path}[{i}]")


def floats(obj):
    """numpy float32 (transformers' token-classification scores) → float, as run returns them."""
    if isinstance(obj, dict):
        return {k: floats(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [floats(v) for v in obj]
    return float(obj) if isinstance(obj, np.floating) else obj


@pytest.fixture(scope="module")
def seq_folder(tiny_checkpoint):
    return tiny_checkpoint("ModernBertForSequenceClassification", num_labels=3)


@pytest.fixture(scope="module")
def tok_folder(tiny_checkpoint):
    return tiny_checkpoint("ModernBertForTokenClassification", **TOKEN_OVERRIDES)


@pytest.fixture(scope="module")
def st_folder(base_folder, tmp_path_factory):
    return write_st_folder(base_folder, tmp_path_factory.mktemp("st"), pooling="mean", normalize=True)


# ----- per-task shapes, against the reference -----


def test_fill_mask_run_is_a_list_per_mask(mlm_folder):
    ref = hf_pipeline("fill-mask", mlm_folder)
    pipe = pipeline("fill-mask", model=mlm_folder)
    texts = ["The capital of France is [MASK].", "The [MASK] of France is [MASK].", "Hello [MASK]!"]
    out = pipe.run(texts, top_k=3)
    assert_plain(out)
    # transformers unwraps a text with one mask; run keeps one list per mask for every text.
    expected = [[ref(texts[0], top_k=3)], ref(texts[1], top_k=3), [ref(texts[2], top_k=3)]]
    assert_close(out, expected)
    assert_close(pipe.run(texts[:1], top_k=3), expected[:1])  # a list of one: still a list of one result


def test_text_classification_run_is_always_a_list(seq_folder):
    ref = hf_pipeline("text-classification", seq_folder)
    pipe = pipeline("text-classification", model=seq_folder)
    texts = ["hello world", "a somewhat longer sentence about the weather", "why?"]
    pair = {"text": "The capital of France", "text_pair": "is Paris."}
    out = pipe.run([*texts, pair])
    assert_plain(out)
    assert_close(out, [[r] for r in ref(texts)] + [[ref(pair)]])  # no top_k: the best label, in a list of one
    for top_k in (None, 2, 1):
        assert_close(pipe.run(texts, top_k=top_k), ref(texts, top_k=top_k))
    assert_close(pipe.run(["hello"], top_k=None), [ref("hello", top_k=None)])


@pytest.mark.parametrize("kwargs", [{}, {"aggregation_strategy": "simple", "ignore_labels": []},
                                    {"aggregation_strategy": "first"}])
def test_token_classification_run(tok_folder, kwargs):
    ref = hf_pipeline("ner", tok_folder)
    pipe = pipeline("ner", model=tok_folder)
    texts = [NER_TEXT, "Paris", "Hello, world! How are you doing today?"]
    out = pipe.run(texts, **kwargs)
    assert_plain(out)
    assert_close(out, floats(quiet(ref, texts, **kwargs)))
    assert_close(pipe.run([NER_TEXT], **kwargs), [floats(quiet(ref, NER_TEXT, **kwargs))])
    words = [["Sarah", "lives", "in", "Paris"]]
    assert_close(pipe.run(words, is_split_into_words=True, **kwargs),
                 floats(quiet(ref, words[0], is_split_into_words=True, **kwargs)))


def test_question_answering_run_is_a_list_of_answers(qa_folder):
    model = transformers.AutoModelForQuestionAnswering.from_pretrained(qa_folder).eval()
    tok = transformers.AutoTokenizer.from_pretrained(qa_folder)
    pipe = pipeline("question-answering", model=qa_folder)
    items = [{"question": QA_QUESTION, "context": QA_CONTEXT},
             {"question": "Which city is the capital of Germany?", "context": "Berlin is the capital of Germany."}]

    def as_list(answer):
        return answer if isinstance(answer, list) else [answer]

    for kwargs in ({}, {"top_k": 3}, {"top_k": 2, "max_seq_len": 32, "doc_stride": 8}):
        out = pipe.run(items, **kwargs)
        assert_plain(out)
        assert_close(out, [as_list(reference_qa(model, tok, x["question"], x["context"], **kwargs)) for x in items])


def test_feature_extraction_run_is_tokens_by_hidden(base_folder):
    ref = hf_pipeline("feature-extraction", base_folder)
    pipe = pipeline("feature-extraction", model=base_folder)
    texts = ["hello world", "The quick brown fox jumps over the lazy dog."]
    out = pipe.run(texts)
    assert_plain(out)
    for o, r in zip(out, ref(texts)):
        assert len(o) == len(r[0]) and len(o[0]) == 32  # (tokens, hidden): transformers' leading 1 dropped
        np.testing.assert_allclose(np.array(o), np.array(r[0]), atol=1e-4)
    with pytest.raises(ValueError, match="return_tensors=True"):
        pipe.run(texts, return_tensors=True)


def test_sentence_pipelines_run(st_folder):
    encoder = SentenceEncoder.from_pretrained(st_folder)
    embed = pipeline("sentence-embeddings", model=encoder)
    out = embed.run(MIXED_TEXTS[:4])
    assert_plain(out)
    np.testing.assert_allclose(np.array(out), encoder.encode(MIXED_TEXTS[:4]), atol=1e-6)
    assert len(embed.run(["Paris"])) == 1 and len(embed.run(["Paris"])[0]) == 32
    with pytest.raises(ValueError, match="return_tensors=True"):
        embed.run(["Paris"], return_tensors=True)
    similar = pipeline("sentence-similarity", model=encoder)
    items = [{"source_sentence": MIXED_TEXTS[0], "sentences": MIXED_TEXTS[1:4]},
             {"source_sentence": "Paris.", "sentences": ["Tokyo.", "Paris.", "Why?"]}]
    out = similar.run(items)
    assert_plain(out)
    assert out == [similar(item) for item in items]
    assert len(out[1]) == 3 and abs(out[1][1] - 1.0) < 1e-5  # a sentence is most similar to itself
    with pytest.raises(ValueError, match=r"inputs\[1\]: sentence-similarity takes"):
        similar.run([items[0], MIXED_TEXTS])


# ----- what every run shares -----


@pytest.mark.parametrize("task", ["fill-mask", "text-classification", "ner", "question-answering",
                                  "feature-extraction"])
def test_run_contract(task, mlm_folder, seq_folder, tok_folder, qa_folder, base_folder):
    folder = {"fill-mask": mlm_folder, "text-classification": seq_folder, "ner": tok_folder,
              "question-answering": qa_folder, "feature-extraction": base_folder}[task]
    pipe = pipeline(task, model=folder)
    inputs = mixed_inputs(task)
    one, eight = pipe.run(inputs, batch_size=1), pipe.run(inputs, batch_size=8)
    assert len(one) == len(inputs)
    assert_close(eight, one, atol=1e-5)
    for i in (0, 5, 9):  # order kept, and an input alone has the same shape as in a batch
        assert_close(pipe.run([inputs[i]])[0], eight[i], atol=1e-5)
    assert pipe.run([]) == []
    with pytest.raises(TypeError, match=r"run takes a list of inputs, got (str|dict).*pipe\.run\(\[x\]\)"):
        pipe.run(inputs[0])
    with pytest.raises(TypeError, match="got tuple"):
        pipe.run(tuple(inputs))
    with pytest.raises(TypeError, match=r"option\(s\) \['bogus'\]"):
        pipe.run(inputs, bogus=1)
    with pytest.raises(ValueError, match="batch_size"):
        pipe.run(inputs, batch_size=0)


def test_run_names_the_bad_input(mlm_folder, seq_folder, tok_folder, qa_folder):
    with pytest.raises(TypeError, match=r"inputs\[0\] is a int"):
        pipeline("fill-mask", model=mlm_folder).run([3])
    with pytest.raises(ValueError, match=r"no mask token \[MASK\] found in inputs\[0\]"):
        pipeline("fill-mask", model=mlm_folder).run(["No mask."])
    with pytest.raises(TypeError, match=r"inputs\[1\] is a int"):
        pipeline("text-classification", model=seq_folder).run(["a", 2])
    with pytest.raises(TypeError, match=r"inputs\[0\] must be a non-empty list of str"):
        pipeline("ner", model=tok_folder).run(["Sarah", "Paris"], is_split_into_words=True)
    with pytest.raises(ValueError, match=r"inputs\[0\] has no 'context'"):
        pipeline("question-answering", model=qa_folder).run([{"question": "Where?"}])


# ----- empty texts: a clear error naming the input -----


def test_empty_text_text_classification(seq_folder):
    pipe = pipeline("text-classification", model=seq_folder)
    with pytest.raises(ValueError, match=r"^inputs\[1\] is an empty text; .*leave it out"):
        pipe(["good", ""])
    with pytest.raises(ValueError, match=r"^the input is an empty text \(only whitespace\)"):
        pipe("  \n ")
    with pytest.raises(ValueError, match=r"^inputs\[2\] is an empty text"):
        pipe.run(["a", "b", ""])
    with pytest.raises(ValueError, match=r"^inputs\[0\]\['text'\] is an empty text"):
        pipe.run([{"text": "", "text_pair": "is Paris."}])
    with pytest.raises(ValueError, match=r"^the input\['text_pair'\] is an empty text.*leave text_pair out"):
        pipe({"text": "The capital", "text_pair": " "})
    with pytest.raises(TypeError, match=r"\['text'\] is a NoneType"):
        pipe({"text": None})


def test_empty_text_token_classification(tok_folder):
    pipe = pipeline("ner", model=tok_folder)
    with pytest.raises(ValueError, match=r"^inputs\[1\] is an empty text; .*leave it out"):
        pipe([NER_TEXT, ""])
    with pytest.raises(ValueError, match=r"^the input is an empty text \(only whitespace\)"):
        pipe("\t")
    with pytest.raises(ValueError, match=r"^inputs\[0\] is an empty text"):
        pipe.run([""], aggregation_strategy="simple")
    with pytest.raises(ValueError, match=r"^inputs\[0\] \(its words joined\) is an empty text"):
        pipe.run([[""]], is_split_into_words=True)


def test_empty_text_embeddings(st_folder):
    encoder = SentenceEncoder.from_pretrained(st_folder)
    with pytest.raises(ValueError, match=r"^inputs\[2\] is an empty text \(only whitespace\)"):
        encoder.encode(["a", "b", "   "])
    with pytest.raises(ValueError, match=r"^the input is an empty text"):
        encoder.encode("")
    embed = pipeline("sentence-embeddings", model=encoder)
    with pytest.raises(ValueError, match=r"^inputs\[1\] is an empty text"):
        embed(["Paris", ""])
    with pytest.raises(ValueError, match=r"^inputs\[0\] is an empty text"):
        embed.run([""])


# ----- long texts in token-classification -----


def _ner_pair(folder, model_max_length):
    hf_tok = transformers.AutoTokenizer.from_pretrained(folder, model_max_length=model_max_length)
    ours_tok = modernbert.Tokenizer.from_pretrained(folder, model_max_length=model_max_length)
    return hf_pipeline("ner", folder, tokenizer=hf_tok), pipeline("ner", model=folder, tokenizer=ours_tok)


def test_token_classification_stride_covers_a_long_text(tok_folder):
    ref, ours = _ner_pair(tok_folder, 512)
    kwargs = {"stride": 64, "aggregation_strategy": "simple", "ignore_labels": []}
    expected = quiet(ref, LONG_TEXT, **kwargs)
    assert_close(ours(LONG_TEXT, **kwargs), expected)
    out = ours.run([NER_TEXT, LONG_TEXT], **kwargs)
    assert_close(out[1], floats(expected))
    assert out[1][-1]["end"] >= len(LONG_TEXT) - 2  # labelled up to the end (the last token is the final ".")
    starts = [e["start"] for e in out[1]]
    assert starts == sorted(starts) and len(out[1]) > 1000
    # Only "O" left out: entities are found in the last window too, not just the first.
    entities = ours.run([LONG_TEXT], stride=64, aggregation_strategy="first")[0]
    assert entities and entities[-1]["start"] > len(LONG_TEXT) - 1000


def test_token_classification_window_is_capped_at_the_model_length(tok_folder):
    """The tokenizer says 8192 tokens, the model takes 4096: windows of 4096, and stride still covers the text."""
    pipe = pipeline("ner", model=tok_folder)
    assert pipe.tokenizer.model_max_length == 8192 and pipe.model.config.max_position_embeddings == 4096
    out = pipe.run([LONG_TEXT], stride=128, aggregation_strategy="simple", ignore_labels=[])[0]
    assert out[-1]["end"] >= len(LONG_TEXT) - 2
    with pytest.raises(ValueError, match=r"stride=4094 must be less than 4094.*window of 4096 tokens"):
        pipe("hi", stride=4094, aggregation_strategy="simple")


def test_token_classification_without_stride_warns(tok_folder, caplog):
    ref, ours = _ner_pair(tok_folder, 512)
    with caplog.at_level(logging.WARNING, logger="modernbert"):
        out = ours([NER_TEXT, LONG_TEXT], aggregation_strategy="simple", ignore_labels=[])
    assert_close(out, quiet(ref, [NER_TEXT, LONG_TEXT], aggregation_strategy="simple", ignore_labels=[]))  # cut
    assert out[1][-1]["end"] < 3000  # as transformers: the first window only
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert f"inputs[1] is longer than one window of 512 tokens: only its first {out[1][-1]['end']} of " \
           f"{len(LONG_TEXT)} characters are labelled" in warnings[0]
    assert "stride=" in warnings[0] and "aggregation_strategy='simple'" in warnings[0]
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="modernbert"):
        ours([NER_TEXT, "Paris"])
        ours(LONG_TEXT, stride=64, aggregation_strategy="max")
    assert not caplog.records  # texts that fit, or windows asked for: nothing to say


# ----- over-length inputs: the advice names the pipeline option -----


def test_over_length_advice_names_the_option(mlm_folder, seq_folder, base_folder, qa_folder, st_folder):
    cls = pipeline("text-classification", model=seq_folder)
    with pytest.raises(ValueError, match=r"^inputs\[1\] has \d+ tokens, more than the model takes "
                                         r"\(max_position_embeddings=4096\); pass truncation=True, max_length=4096"):
        cls.run(["short", LONG_TEXT])
    assert len(cls.run([LONG_TEXT], truncation=True, max_length=4096)) == 1  # the way out works
    fill = pipeline("fill-mask", model=mlm_folder)
    with pytest.raises(ValueError, match=r"the input has .*pass tokenizer_kwargs=\{'truncation': True, "
                                         r"'max_length': 4096\}"):
        fill("[MASK] " + LONG_TEXT)
    assert len(fill.run(["[MASK] " + LONG_TEXT], tokenizer_kwargs={"truncation": True, "max_length": 4096})) == 1
    features = pipeline("feature-extraction", model=base_folder)
    with pytest.raises(ValueError, match=r"pass truncation=True, tokenize_kwargs=\{'max_length': 4096\}"):
        features.run([LONG_TEXT])
    qa = pipeline("question-answering", model=qa_folder)
    with pytest.raises(ValueError, match=r"a window of inputs\[0\] has \d+ tokens.*pass max_seq_len=4096 or less"):
        qa.run([{"question": "Where?", "context": LONG_TEXT}], max_seq_len=5000)
    encoder = SentenceEncoder.from_pretrained(st_folder, max_seq_length=5000)
    with pytest.raises(ValueError, match=r"inputs\[0\] has \d+ tokens.*pass max_seq_length=4096 or less"):
        encoder.encode([LONG_TEXT])


# ----- the shared progress bar -----


def test_progress_on_a_stream(monkeypatch):
    monkeypatch.setitem(sys.modules, "tqdm.auto", None)  # the plain counter
    stream = io.StringIO()
    with Progress(3, "embed", stream=stream, unit="texts") as bar:
        bar.update(2)
        bar.update()
    text = stream.getvalue()
    assert "\rembed: 2/3 texts" in text and "embed: 3/3 texts" in text and text.endswith("\n")
    bar.close()  # closing twice is harmless
    assert stream.getvalue() == text
    quiet_stream = io.StringIO()
    for bar in (Progress(3, "x", enabled=False, stream=quiet_stream), Progress(0, "x", stream=quiet_stream)):
        bar.update(3)
        bar.close()
    assert quiet_stream.getvalue() == ""


def test_progress_with_tqdm_on_a_stream():
    stream = io.StringIO()
    bar = Progress(4, "classify", stream=stream)
    bar.update(4)
    bar.close()
    assert "classify" in stream.getvalue() and "4/4" in stream.getvalue()


def test_results_are_json(tok_folder):
    out = pipeline("ner", model=tok_folder).run([NER_TEXT], aggregation_strategy="average")
    assert json.loads(json.dumps(out)) == out


def test_token_classification_without_stride_warns_pre_split(tok_folder, caplog):
    _, ours = _ner_pair(tok_folder, 32)
    words = LONG_TEXT.split()[:200]
    with caplog.at_level(logging.WARNING, logger="modernbert"):
        out = ours.run([words], is_split_into_words=True, aggregation_strategy="simple", ignore_labels=[])
    (message,) = [r.getMessage() for r in caplog.records]
    text = " ".join(words)
    assert f"only its first {out[0][-1]['end']} of {len(text)} characters" in message
    assert text[: out[0][-1]["end"]].endswith(out[0][-1]["word"].strip()[-1])  # offsets are in the joined text
