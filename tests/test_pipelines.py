"""Pipelines: same outputs as transformers' pipelines on the tiny checkpoints, batching, and clear input errors.

transformers 5 has no question-answering pipeline any more; its reference here is the transformers 4.57
QuestionAnsweringPipeline (fast-tokenizer path) transcribed in `reference_qa`, run on transformers' model and
tokenizer, with transformers' own `select_starts_ends` for the span search (tests/test_qa_457.py checks the
pipeline against 4.57 itself).
"""

from __future__ import annotations

import shutil
import sys
import warnings
from typing import Any

import numpy as np
import pytest
import torch
import transformers
from transformers.pipelines.document_question_answering import select_starts_ends as hf_select_starts_ends

import modernbert
from modernbert import pipeline
from modernbert.pipelines import MissingTokenizerError, run_batched

TOL = 1e-4
TOKEN_LABELS = {0: "O", 1: "B-PER", 2: "I-PER", 3: "B-LOC", 4: "I-LOC"}
TOKEN_OVERRIDES = dict(id2label=TOKEN_LABELS, label2id={v: k for k, v in TOKEN_LABELS.items()})
SEQ_OVERRIDES = dict(num_labels=3)

MIXED_TEXTS = [
    "Hello, world!",
    "The quick brown fox jumps over the lazy dog near the river bank in London.",
    "Paris.",
    "Machine learning models need data, compute, and patience; tokenizers need text.",
    "I can't believe it's already 2024; time flies!",
    "Good morning!",
    "ModernBERT is a modern bidirectional encoder with a long context window, trained on two trillion tokens.",
    "A naïve café owner served crème brûlée.",
    "Tokyo is the capital of Japan (日本).",
    "Why?",
]
QA_CONTEXT = (
    "The capital of France is Paris, a city on the Seine. Berlin, the largest German city, is the capital of "
    "Germany. Madrid sits in the middle of Spain and has been its capital since 1561. Lisbon, on the Atlantic "
    "coast, is older than Rome. Tokyo became the seat of the Japanese government in 1868."
)


def assert_close(ours: Any, ref: Any, atol: float = TOL, path: str = "output") -> None:
    """Same structure, types, keys (in order), strings and ints; floats within atol."""
    if isinstance(ref, dict):
        assert isinstance(ours, dict), f"{path}: {type(ours).__name__} instead of dict"
        assert list(ours) == list(ref), f"{path}: keys {list(ours)} != {list(ref)}"
        for key in ref:
            assert_close(ours[key], ref[key], atol, f"{path}[{key!r}]")
    elif isinstance(ref, (list, tuple)):
        assert type(ours) is type(ref), f"{path}: {type(ours).__name__} instead of {type(ref).__name__}"
        assert len(ours) == len(ref), f"{path}: {len(ours)} items instead of {len(ref)}"
        for i, (o, r) in enumerate(zip(ours, ref)):
            assert_close(o, r, atol, f"{path}[{i}]")
    elif isinstance(ref, torch.Tensor):
        assert isinstance(ours, torch.Tensor) and ours.shape == ref.shape, f"{path}: shape"
        assert (ours.float() - ref.float()).abs().max().item() <= atol, path
    elif isinstance(ref, (float, np.floating)):
        assert type(ours) is type(ref), f"{path}: {type(ours).__name__} instead of {type(ref).__name__}"
        assert abs(float(ours) - float(ref)) <= atol, f"{path}: {ours} vs {ref}"
    else:
        assert type(ours) is type(ref), f"{path}: {type(ours).__name__} instead of {type(ref).__name__}"
        assert ours == ref, f"{path}: {ours!r} != {ref!r}"


def hf_pipeline(task: str, folder, **kwargs):
    transformers.logging.set_verbosity_error()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return transformers.pipeline(task, model=str(folder), **kwargs)


def quiet(fn, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fn(*args, **kwargs)


# ----- fixtures: one checkpoint and one pair of pipelines per task -----


@pytest.fixture(scope="module")
def seq_folder(tiny_checkpoint):
    return tiny_checkpoint("ModernBertForSequenceClassification", **SEQ_OVERRIDES)


@pytest.fixture(scope="module")
def tok_folder(tiny_checkpoint):
    return tiny_checkpoint("ModernBertForTokenClassification", **TOKEN_OVERRIDES)


@pytest.fixture(scope="module")
def fill_pair(mlm_folder):
    return hf_pipeline("fill-mask", mlm_folder), pipeline("fill-mask", model=mlm_folder)


@pytest.fixture(scope="module")
def cls_pair(seq_folder):
    return hf_pipeline("text-classification", seq_folder), pipeline("text-classification", model=seq_folder)


@pytest.fixture(scope="module")
def ner_pair(tok_folder):
    return hf_pipeline("ner", tok_folder), pipeline("ner", model=tok_folder)


@pytest.fixture(scope="module")
def qa_pair(qa_folder):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = transformers.AutoModelForQuestionAnswering.from_pretrained(qa_folder).eval()
    tokenizer = transformers.AutoTokenizer.from_pretrained(qa_folder)
    return (model, tokenizer), pipeline("question-answering", model=qa_folder)


# ----- fill-mask -----

FILL_CASES = [
    ("The capital of France is [MASK].", {}),
    ("The capital of France is [MASK].", {"top_k": 1}),
    ("The capital of France is [MASK].", {"top_k": 12}),
    ("[MASK] quick brown fox jumps over the lazy dog.", {}),
    ("The [MASK] of France is [MASK].", {}),
    ("The [MASK] of France is [MASK].", {"top_k": 3}),
    ("The capital of France is [MASK].", {"targets": ["Ġthe", "Ġcapital", "ĠParis"]}),
    ("The capital of France is [MASK].", {"targets": "Ġthe"}),
    ("The capital of France is [MASK].", {"targets": ["Paris", "the"], "top_k": 1}),  # not in vocab: first token
    (["The capital of France is [MASK].", "Hello [MASK]!"], {}),
    (["The capital of France is [MASK]."], {}),  # a list of one gives that text's result
    (["Hello [MASK]!", "The [MASK] of France is [MASK]."], {"top_k": 2}),
    ("The capital of France is [MASK].", {"tokenizer_kwargs": {"truncation": True}}),
]


@pytest.mark.parametrize("inputs,kwargs", FILL_CASES)
def test_fill_mask_matches_transformers(fill_pair, inputs, kwargs):
    ref, ours = fill_pair
    assert_close(ours(inputs, **kwargs), quiet(ref, inputs, **kwargs))


def test_fill_mask_options_at_construction(mlm_folder, fill_pair):
    ref, _ = fill_pair
    ours = pipeline("fill-mask", model=mlm_folder, top_k=2)
    assert_close(ours("Hello [MASK]!"), ref("Hello [MASK]!", top_k=2))
    assert len(ours("Hello [MASK]!", top_k=4)) == 4  # a call option overrides the constructor's


# ----- text-classification -----

CLS_CASES = [
    ("hello world", {}),
    (["hello", "world there", "a somewhat longer sentence about the weather in London"], {}),
    ("hello", {"top_k": None}),
    ("hello", {"top_k": 2}),
    ("hello", {"top_k": 1}),
    (["a", "b b"], {"top_k": 2}),
    (["a", "b b"], {"top_k": None}),
    ("hello", {"function_to_apply": "sigmoid"}),
    ("hello", {"function_to_apply": "none", "top_k": None}),
    ("hello", {"function_to_apply": "softmax"}),
    ({"text": "The capital of France", "text_pair": "is Paris."}, {}),
    ({"text": "The capital of France", "text_pair": "is Paris."}, {"top_k": None}),
    ([{"text": "a", "text_pair": "b"}, {"text": "c", "text_pair": "d e f"}], {}),
    ({"text": "only a text"}, {}),
    ("a " * 20, {"truncation": True, "max_length": 8}),
]


@pytest.mark.parametrize("inputs,kwargs", CLS_CASES)
def test_text_classification_matches_transformers(cls_pair, inputs, kwargs):
    ref, ours = cls_pair
    assert_close(ours(inputs, **kwargs), quiet(ref, inputs, **kwargs))


@pytest.mark.parametrize(
    "overrides",
    [dict(num_labels=1), dict(num_labels=3, problem_type="multi_label_classification"),
     dict(num_labels=2, problem_type="regression")],
    ids=["one-label-sigmoid", "multi-label-sigmoid", "regression-none"],
)
def test_text_classification_default_function(tiny_checkpoint, overrides):
    folder = tiny_checkpoint("ModernBertForSequenceClassification", **overrides)
    ref = hf_pipeline("text-classification", folder)
    ours = pipeline("sentiment-analysis", model=folder)
    for kwargs in ({}, {"top_k": None}):
        assert_close(ours(["good", "bad movie"], **kwargs), ref(["good", "bad movie"], **kwargs))


def test_text_classification_top_k_at_construction(seq_folder):
    # transformers' quirk, kept: top_k given to the constructor and a str input → a list holding the list.
    ref = hf_pipeline("text-classification", seq_folder, top_k=2)
    ours = pipeline("text-classification", model=seq_folder, top_k=2)
    assert_close(ours("hello"), ref("hello"))
    assert_close(ours(["hello", "you"]), ref(["hello", "you"]))


# ----- token-classification -----

NER_TEXT = "My name is Wolfgang and I live in Berlin. Sarah visited New York."
NER_CASES = [
    (NER_TEXT, {}),
    (NER_TEXT, {"aggregation_strategy": "none"}),
    (NER_TEXT, {"aggregation_strategy": "simple"}),
    (NER_TEXT, {"aggregation_strategy": "first"}),
    (NER_TEXT, {"aggregation_strategy": "average"}),
    (NER_TEXT, {"aggregation_strategy": "max"}),
    (NER_TEXT, {"ignore_labels": []}),
    (NER_TEXT, {"ignore_labels": [], "aggregation_strategy": "simple"}),
    (NER_TEXT, {"ignore_labels": ["O", "B-LOC", "I-LOC"], "aggregation_strategy": "first"}),
    ("A naïve café owner served crème brûlée in Zürich.", {"aggregation_strategy": "average"}),
    ([NER_TEXT, "Paris", "Hello, world! How are you doing today?"], {"aggregation_strategy": "simple"}),
    ([NER_TEXT, "Paris"], {}),
    (["My", "name", "is", "Wolfgang"], {"is_split_into_words": True}),
    (["My", "name", "is", "Wolfgang"], {"is_split_into_words": True, "aggregation_strategy": "first"}),
    ([["Sarah", "lives", "in", "Paris"], ["Hi", "there"]], {"is_split_into_words": True, "ignore_labels": []}),
    (["Sarah", "lives", "in", "Paris"], {"is_split_into_words": True, "delimiter": "_",
                                         "aggregation_strategy": "max"}),
]


@pytest.mark.parametrize("inputs,kwargs", NER_CASES)
def test_token_classification_matches_transformers(ner_pair, inputs, kwargs):
    ref, ours = ner_pair
    assert_close(ours(inputs, **kwargs), quiet(ref, inputs, **kwargs))


@pytest.mark.parametrize("strategy", ["simple", "first", "max", "average"])
def test_token_classification_stride_windows(tok_folder, strategy):
    """A text longer than model_max_length, split into overlapping windows, entities merged as transformers."""
    hf_tok = transformers.AutoTokenizer.from_pretrained(tok_folder, model_max_length=16)
    ref = hf_pipeline("ner", tok_folder, tokenizer=hf_tok)
    ours = pipeline("ner", model=tok_folder, tokenizer=modernbert.Tokenizer.from_pretrained(tok_folder,
                                                                                            model_max_length=16))
    kwargs = {"stride": 4, "aggregation_strategy": strategy, "ignore_labels": []}
    assert_close(ours(NER_TEXT, **kwargs), quiet(ref, NER_TEXT, **kwargs))


def test_token_classification_entity_fields(ner_pair):
    _, ours = ner_pair
    for entity in ours(NER_TEXT, ignore_labels=[]):
        assert set(entity) == {"entity", "score", "index", "word", "start", "end"}
        assert entity["entity"] in TOKEN_LABELS.values()
        assert isinstance(entity["score"], np.float32)
    for group in ours(NER_TEXT, aggregation_strategy="simple", ignore_labels=[]):
        assert 0 <= group["start"] < group["end"] <= len(NER_TEXT)  # offsets point into the text
        assert group["entity_group"] in {"O", "PER", "LOC"}


# ----- question-answering -----


def _char_span(enc, s, e, sequence_index, align_to_words):
    if align_to_words:
        try:
            start_word, end_word = enc.token_to_word(s), enc.token_to_word(e)
            return (enc.word_to_chars(start_word, sequence_index=sequence_index)[0],
                    enc.word_to_chars(end_word, sequence_index=sequence_index)[1])
        except Exception:
            pass
    return enc.offsets[s][0], enc.offsets[e][1]


def reference_qa(model, tok, question, context, top_k=1, doc_stride=None, max_answer_len=15, max_seq_len=None,
                 handle_impossible_answer=False, align_to_words=True):
    """transformers 4.57 QuestionAnsweringPipeline, fast-tokenizer path: preprocess, forward, postprocess, less the
    zero-probability spans 4.57 pads a long top_k list with (which ours never returns)."""
    if max_seq_len is None:
        max_seq_len = min(tok.model_max_length, 384)
    if doc_stride is None:
        doc_stride = min(max_seq_len // 2, 128)
    question_first = tok.padding_side == "right"
    enc = tok(text=question if question_first else context, text_pair=context if question_first else question,
              padding="do_not_pad", truncation="only_second" if question_first else "only_first",
              max_length=max_seq_len, stride=doc_stride, return_token_type_ids=True,
              return_overflowing_tokens=True, return_offsets_mapping=True, return_special_tokens_mask=True)
    spans = len(enc["input_ids"])
    p_mask = [[t != 1 if question_first else 0 for t in enc.sequence_ids(i)] for i in range(spans)]
    min_null_score, answers = 1000000, []
    pre_topk = top_k * 2 + 10 if align_to_words else top_k
    for i in range(spans):
        ids = enc["input_ids"][i]
        for j in np.nonzero(np.array(ids) == tok.cls_token_id)[0]:
            p_mask[i][j] = 0
        attention_mask = torch.tensor([enc["attention_mask"][i]])
        with torch.no_grad():
            out = model(input_ids=torch.tensor([ids]), attention_mask=attention_mask)
        starts, ends, scores, min_null_score = hf_select_starts_ends(
            out.start_logits.numpy(), out.end_logits.numpy(), np.array([p_mask[i]]), attention_mask.numpy(),
            min_null_score,
            pre_topk, handle_impossible_answer, max_answer_len)
        for s, e, score in zip(starts, ends, scores):
            if score == 0:
                continue
            a, b = _char_span(enc[i], s, e, 1 if question_first else 0, align_to_words)
            same = [x for x in answers if x["answer"].lower() == context[a:b].lower()]
            if same:
                same[0]["score"] += score.item()
            else:
                answers.append({"score": score.item(), "start": a, "end": b, "answer": context[a:b]})
    if handle_impossible_answer:
        answers.append({"score": min_null_score, "start": 0, "end": 0, "answer": ""})
    answers = sorted(answers, key=lambda x: x["score"], reverse=True)[:top_k]
    return answers[0] if len(answers) == 1 else answers


QA_QUESTION = "What is the capital of France?"
QA_CASES = [
    {},
    {"top_k": 3},
    {"max_seq_len": 32, "doc_stride": 8},
    {"max_seq_len": 32, "doc_stride": 8, "top_k": 4},
    {"max_seq_len": 40, "doc_stride": 4, "top_k": 2, "max_answer_len": 5},
    {"max_seq_len": 48},  # default doc_stride = max_seq_len // 2
    {"handle_impossible_answer": True},
    {"handle_impossible_answer": True, "top_k": 3, "max_seq_len": 32, "doc_stride": 8},
    {"align_to_words": False, "top_k": 3},
    {"max_answer_len": 2, "top_k": 2},
]


@pytest.mark.parametrize("kwargs", QA_CASES)
def test_question_answering_matches_transformers_4x(qa_pair, kwargs):
    (model, tok), ours = qa_pair
    ref = reference_qa(model, tok, QA_QUESTION, QA_CONTEXT, **kwargs)
    assert_close(ours(question=QA_QUESTION, context=QA_CONTEXT, **kwargs), ref)


def test_question_answering_input_forms(qa_pair):
    (model, tok), ours = qa_pair
    contexts = [QA_CONTEXT, "Berlin is the capital of Germany."]
    questions = [QA_QUESTION, "Which city is the capital of Germany?"]
    refs = [reference_qa(model, tok, q, c) for q, c in zip(questions, contexts)]
    assert_close(ours({"question": questions[0], "context": contexts[0]}), refs[0])
    assert_close(ours(questions[0], contexts[0]), refs[0])
    assert_close(ours([{"question": questions[0], "context": contexts[0]}]), refs[0])  # a list of one: one result
    assert_close(ours([{"question": q, "context": c} for q, c in zip(questions, contexts)]), refs)
    assert_close(ours(question=questions, context=contexts), refs)
    assert_close(ours(question=questions, context=QA_CONTEXT),
                 [reference_qa(model, tok, q, QA_CONTEXT) for q in questions])


def test_question_answering_answer_is_context_slice(qa_pair):
    _, ours = qa_pair
    for answer in ours(question=QA_QUESTION, context=QA_CONTEXT, top_k=5, max_seq_len=32, doc_stride=8):
        assert answer["answer"] == QA_CONTEXT[answer["start"] : answer["end"]]
        assert 0 <= answer["score"] <= 1


def test_question_answering_long_question(qa_pair):
    _, ours = qa_pair
    long_question = "What is the capital of France, the country in western Europe? " * 4
    with pytest.raises(ValueError, match="doc_stride"):  # transformers' tokenizer would panic here
        ours(question=long_question, context=QA_CONTEXT, max_seq_len=48, doc_stride=8, max_question_len=200)
    answer = ours(question=long_question, context=QA_CONTEXT, max_seq_len=48, doc_stride=8, max_question_len=16)
    assert answer["answer"] == QA_CONTEXT[answer["start"] : answer["end"]]


# ----- feature-extraction -----


@pytest.mark.parametrize("folder_arch", ["ModernBertModel", "ModernBertForMaskedLM"])
def test_feature_extraction_matches_transformers(tiny_checkpoint, folder_arch):
    folder = tiny_checkpoint(folder_arch)
    ref = hf_pipeline("feature-extraction", folder)
    ours = pipeline("feature-extraction", model=folder)
    for inputs in ("hello world", ["hello world", "The quick brown fox jumps over the lazy dog."]):
        r, o = ref(inputs), ours(inputs)
        assert type(o) is type(r) is list
        np.testing.assert_allclose(_flat(o), _flat(r), atol=TOL)
    r, o = ref("hello world", return_tensors=True), ours("hello world", return_tensors=True)
    assert isinstance(o, torch.Tensor) and o.shape == r.shape and o.device.type == "cpu"
    torch.testing.assert_close(o, r, atol=TOL, rtol=0)
    assert len(ours("a " * 50, truncation=True, tokenize_kwargs={"max_length": 10})[0]) == 10


def _flat(x) -> np.ndarray:
    """Every float of a nested list of (1, tokens, hidden) outputs, flattened."""
    if isinstance(x, list) and x and isinstance(x[0], list) and isinstance(x[0][0], list):
        return np.concatenate([_flat(v) for v in x])
    return np.array(x, dtype=np.float64).reshape(-1)


# ----- batching -----


def mixed_inputs(task: str) -> list:
    """MIXED_TEXTS as the task takes them: a mask in each for fill-mask, as contexts for QA."""
    if task == "fill-mask":
        return [t.replace(" ", " [MASK] ", 1) if " " in t else t + " [MASK]" for t in MIXED_TEXTS]
    if task == "question-answering":
        return [{"question": "Where?", "context": t} for t in MIXED_TEXTS]
    return MIXED_TEXTS


@pytest.mark.parametrize("task", ["fill-mask", "text-classification", "token-classification", "feature-extraction",
                                  "question-answering"])
def test_batch_size_does_not_change_outputs(task, mlm_folder, seq_folder, tok_folder, base_folder, qa_folder):
    folder = {"fill-mask": mlm_folder, "text-classification": seq_folder, "token-classification": tok_folder,
              "feature-extraction": base_folder, "question-answering": qa_folder}[task]
    pipe = pipeline(task, model=folder)
    inputs = mixed_inputs(task)
    one = pipe(inputs, batch_size=1)
    eight = pipe(inputs, batch_size=8)
    assert_close(eight, one, atol=1e-5)
    # Order kept: each result equals that input run alone.
    for i in (0, 3, 6, 9):
        alone = pipe(inputs[i])
        assert_close(eight[i], alone[0] if task == "text-classification" else alone, atol=1e-5)


def test_run_batched_sorts_by_length_and_keeps_order():
    seqs = [[1] * n for n in (3, 9, 1, 7, 7, 2)]
    seen: list[list[int]] = []

    def step(batch):
        seen.append(batch.lengths)
        assert batch.input_ids.shape == (sum(batch.lengths),)
        assert batch.cu_seqlens.tolist() == [0, *np.cumsum(batch.lengths).tolist()]
        return [f"len{n}" for n in batch.lengths]

    out = run_batched(seqs, step, batch_size=2)
    assert out == ["len3", "len9", "len1", "len7", "len7", "len2"]
    assert seen == [[9, 7], [7, 3], [2, 1]]  # longest first: compact batches


def test_progress_bar(fill_pair, capsys, monkeypatch):
    _, ours = fill_pair
    ours(["Hello [MASK]!"] * 3, progress=True)
    assert "3/3" in capsys.readouterr().err
    monkeypatch.setitem(sys.modules, "tqdm.auto", None)  # tqdm is optional: a plain counter then
    ours(["Hello [MASK]!"] * 3, progress=True)
    assert "fill-mask: 3/3" in capsys.readouterr().err


# ----- loading -----


def test_task_inferred_from_checkpoint(mlm_folder, seq_folder, qa_folder):
    assert isinstance(pipeline(model=mlm_folder), modernbert.FillMaskPipeline)
    assert isinstance(pipeline(model=seq_folder), modernbert.TextClassificationPipeline)
    assert isinstance(pipeline(model=qa_folder), modernbert.QuestionAnsweringPipeline)


def test_loaded_model_and_tokenizer(mlm_folder, fill_pair):
    ref, _ = fill_pair
    model = modernbert.AutoModelForMaskedLM.from_pretrained(mlm_folder)
    expected = ref("Hello [MASK]!")
    assert_close(pipeline("fill-mask", model=model)("Hello [MASK]!"), expected)  # tokenizer from name_or_path
    tokenizer = modernbert.AutoTokenizer.from_pretrained(mlm_folder)
    assert_close(pipeline("fill-mask", model=model, tokenizer=tokenizer)("Hello [MASK]!"), expected)
    assert_close(pipeline("fill-mask", model=str(mlm_folder), tokenizer=str(mlm_folder))("Hello [MASK]!"), expected)


def test_device_and_dtype(mlm_folder):
    pipe = pipeline("fill-mask", model=mlm_folder, device="cpu", dtype="bfloat16", batch_size=2)
    assert pipe.model.dtype == torch.bfloat16 and pipe.device.type == "cpu" and pipe.batch_size == 2
    out = pipe(["Hello [MASK]!", "The capital of France is [MASK]."])
    assert len(out) == 2 and len(out[0]) == 5
    pipe = pipeline("fill-mask", model=mlm_folder, device=-1, dtype=torch.float32)
    assert pipe.model.dtype == torch.float32


# ----- bad inputs: clear errors -----


def test_no_mask_token(fill_pair):
    _, ours = fill_pair
    with pytest.raises(ValueError, match=r"no mask token \[MASK\] found in the input"):
        ours("There is no mask here.")
    with pytest.raises(ValueError, match=r"inputs\[1\]"):
        ours(["A [MASK].", "No mask."])


def test_unknown_task_lists_valid_ones(mlm_folder):
    with pytest.raises(ValueError, match="unknown task 'fill_mask'.*fill-mask.*question-answering.*ner"):
        pipeline("fill_mask", model=mlm_folder)
    with pytest.raises(TypeError, match="task must be a str"):
        pipeline(3, model=mlm_folder)


@pytest.mark.parametrize("task", ["fill-mask", "text-classification", "ner", "feature-extraction"])
def test_empty_list(task, mlm_folder, seq_folder, tok_folder, base_folder):
    folder = {"fill-mask": mlm_folder, "text-classification": seq_folder, "ner": tok_folder,
              "feature-extraction": base_folder}[task]
    pipe = pipeline(task, model=folder)
    with pytest.raises(ValueError, match="empty list"):
        pipe([])


def test_empty_list_question_answering(qa_pair):
    _, ours = qa_pair
    with pytest.raises(ValueError, match="empty list"):
        ours([])


@pytest.mark.parametrize("task", ["fill-mask", "text-classification", "ner", "feature-extraction"])
def test_non_string(task, mlm_folder, seq_folder, tok_folder, base_folder):
    folder = {"fill-mask": mlm_folder, "text-classification": seq_folder, "ner": tok_folder,
              "feature-extraction": base_folder}[task]
    pipe = pipeline(task, model=folder)
    with pytest.raises(TypeError, match=r"inputs\[1\] is a int"):
        pipe(["a [MASK]", 42])
    with pytest.raises(TypeError):
        pipe(42)


def test_question_answering_bad_inputs(qa_pair):
    _, ours = qa_pair
    with pytest.raises(ValueError, match="context.*whitespace"):
        ours(question="Where?", context="   \n\t ")
    with pytest.raises(ValueError, match="`context` is empty"):
        ours({"question": "Where?", "context": ""})
    with pytest.raises(ValueError, match="has no 'context'"):
        ours({"question": "Where?"})
    with pytest.raises(TypeError, match="context a int"):
        ours(question="Where?", context=123)
    with pytest.raises(TypeError, match="`question` is a int"):
        ours({"question": 7, "context": "Here."})
    with pytest.raises(ValueError, match="2 questions but 1 contexts"):
        ours(question=["a?", "b?"], context=["c"])
    with pytest.raises(ValueError, match="top_k"):
        ours(question="Where?", context="Here.", top_k=0)


def test_text_classification_bad_inputs(cls_pair):
    _, ours = cls_pair
    with pytest.raises(ValueError, match="text_pair"):
        ours([["a", "b"]])
    with pytest.raises(ValueError, match="keys"):
        ours({"txt": "a"})
    with pytest.raises(ValueError, match="function_to_apply"):
        ours("a", function_to_apply="relu")


def test_unknown_option(ner_pair, tok_folder):
    _, ours = ner_pair
    with pytest.raises(TypeError, match=r"unknown option\(s\) \['aggregation'\].*aggregation_strategy"):
        ours("Hello", aggregation="simple")
    with pytest.raises(ValueError, match="aggregation_strategy='best'"):
        ours("Hello", aggregation_strategy="best")
    with pytest.raises(ValueError, match="stride"):
        ours("Hello", stride=2, aggregation_strategy="none")
    with pytest.raises(TypeError, match="unknown option"):
        pipeline("ner", model=tok_folder, topk=3)


def test_model_folder_without_tokenizer(mlm_folder, tmp_path):
    folder = tmp_path / "no-tokenizer"
    folder.mkdir()
    for name in ("config.json", "model.safetensors"):
        shutil.copy(mlm_folder / name, folder / name)
    with pytest.raises(MissingTokenizerError, match=r"no-tokenizer.*tokenizer\.json is missing") as info:
        pipeline("fill-mask", model=folder)
    assert isinstance(info.value, ValueError)
    pipe = pipeline("fill-mask", model=folder, tokenizer=mlm_folder)  # the way out
    assert len(pipe("Hello [MASK]!")) == 5


def test_wrong_model_for_task(mlm_folder):
    model = modernbert.AutoModelForMaskedLM.from_pretrained(mlm_folder)
    with pytest.raises(TypeError, match="needs a ModernBertForSequenceClassification"):
        pipeline("text-classification", model=model)
    model.name_or_path = ""
    with pytest.raises(ValueError, match="tokenizer="):
        pipeline("fill-mask", model=model)
    with pytest.raises(TypeError, match="model must be"):
        pipeline("fill-mask", model=3.5)
    with pytest.raises(ValueError, match="no default model"):
        pipeline("text-classification")


def test_default_and_hub_models_offline():
    """The suite runs with HF_HUB_OFFLINE=1: the default model (not cached) fails with a clear message."""
    with pytest.raises(FileNotFoundError, match="answerdotai/ModernBERT-base.*offline"):
        pipeline("fill-mask")
    with pytest.raises(FileNotFoundError, match="some-org/not-a-model"):
        pipeline("ner", model="some-org/not-a-model")


def test_batch_size_checked(mlm_folder):
    with pytest.raises(ValueError, match="batch_size"):
        pipeline("fill-mask", model=mlm_folder, batch_size=0)
