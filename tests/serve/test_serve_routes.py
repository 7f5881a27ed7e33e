"""Every route's request and response format, checked against the pipelines' offline results on the same folder."""

from __future__ import annotations

import base64

import numpy as np
import pytest

from modernbert import SentenceEncoder, pipeline
from modernbert.model import ModernBertForMaskedLM
from modernbert.pipelines import FeatureExtractionPipeline, FillMaskPipeline, SentenceSimilarityPipeline

from .serve_helpers import PROMPTS, ST_MAX_SEQ_LENGTH, close, words

TEXTS = ["The capital of France is Paris.", "  Leading spaces are stripped.", "Hi", words(20, 1)]


@pytest.fixture(scope="module")
def encoder(folders) -> SentenceEncoder:
    return SentenceEncoder.from_pretrained(folders["embed"], device="cpu")


@pytest.fixture(scope="module")
def raw_encoder(folders) -> SentenceEncoder:
    return SentenceEncoder.from_pretrained(folders["embed"], device="cpu", normalize=False)


def test_embed(embed_server, encoder, raw_encoder):
    r = embed_server.post("/embed", {"inputs": TEXTS})
    assert r.status_code == 200, r.text
    close(r.json(), encoder.encode(TEXTS).tolist())
    tokens = sum(len(ids) for ids in encoder.tokenize(TEXTS))
    assert int(r.headers["x-compute-tokens"]) == tokens
    for header in ("x-compute-time", "x-tokenization-time", "x-queue-time", "x-inference-time", "x-total-time"):
        assert int(r.headers[header]) >= 0
    # a single string is a batch of one; normalize=false gives the raw pooled vector
    r = embed_server.post("/embed", {"inputs": TEXTS[0], "normalize": False})
    close(r.json(), raw_encoder.encode([TEXTS[0]]).tolist())
    # prompt_name prefixes the folder's prompt
    r = embed_server.post("/embed", {"inputs": TEXTS, "prompt_name": "query"})
    close(r.json(), encoder.encode(TEXTS, prompt_name="query").tolist())
    # dimensions keeps the first values, normalised after the cut
    raw = raw_encoder.encode(TEXTS)[:, :8]
    r = embed_server.post("/embed", {"inputs": TEXTS, "dimensions": 8})
    close(r.json(), (raw / np.linalg.norm(raw, axis=1, keepdims=True)).tolist())


def test_embed_truncate(embed_server, encoder):
    long = words(200, 3)
    assert len(encoder.tokenizer([long])["input_ids"][0]) > ST_MAX_SEQ_LENGTH
    r = embed_server.post("/embed", {"inputs": [long], "truncate": True})
    assert r.status_code == 200, r.text
    close(r.json(), encoder.encode([long]).tolist())  # the encoder cuts to max_seq_length, as the server does
    assert int(r.headers["x-compute-tokens"]) == ST_MAX_SEQ_LENGTH


def test_embed_token_ids(embed_server, encoder):
    ids = encoder.tokenize(TEXTS)  # special tokens included: token ids run as given
    expected = encoder.encode(TEXTS).tolist()
    r = embed_server.post("/embed", {"inputs": ids[0]})
    assert r.status_code == 200, r.text
    close(r.json(), expected[:1])
    r = embed_server.post("/embed", {"inputs": [TEXTS[0], ids[1], TEXTS[2], ids[3]]})  # texts and ids mixed
    close(r.json(), expected)
    assert int(r.headers["x-compute-tokens"]) == sum(map(len, ids))
    r = embed_server.post("/v1/embeddings", {"input": ids})
    assert r.status_code == 200, r.text
    close([d["embedding"] for d in r.json()["data"]], expected)
    r = embed_server.post("/v1/embeddings", {"input": ids[3]})
    close([d["embedding"] for d in r.json()["data"]], expected[3:])
    # with a prompt, the ids are read as a text (decoded), prefixed and tokenized again, as TEI does
    r = embed_server.post("/embed", {"inputs": [ids[0]], "prompt_name": "query"})
    close(r.json(), encoder.encode([TEXTS[0]], prompt_name="query").tolist())
    # over-long ids are refused, or cut when truncating
    long = encoder.tokenizer([words(200, 4)])["input_ids"][0]
    assert embed_server.post("/embed", {"inputs": [long]}).status_code == 422
    r = embed_server.post("/embed", {"inputs": [long], "truncate": True})
    close(r.json(), encoder.encode([long[:ST_MAX_SEQ_LENGTH]]).tolist())


def test_truncation_direction(embed_server, encoder, folders):
    from modernbert.tokenizer import Tokenizer

    long = words(200, 3)
    right = embed_server.post("/embed", {"inputs": [long], "truncate": True, "truncation_direction": "Right"})
    left = embed_server.post("/embed", {"inputs": [long], "truncate": True, "truncation_direction": "Left"})
    assert right.status_code == left.status_code == 200, left.text
    close(right.json(), encoder.encode([long]).tolist())
    # the reference: the tokenizer's own left truncation ([CLS] and [SEP] kept, the end of the text kept)
    left_tok = Tokenizer.from_pretrained(folders["embed"], truncation_side="left")
    ids = left_tok([long], truncation=True, max_length=ST_MAX_SEQ_LENGTH)["input_ids"][0]
    full = encoder.tokenizer([long])["input_ids"][0]
    assert ids[0] == full[0] and ids[-1] == full[-1] and ids[1:-1] == full[-ST_MAX_SEQ_LENGTH + 1:-1]
    by_left = SentenceEncoder(encoder.model, left_tok, pooling="mean", normalize=True,
                              max_seq_length=ST_MAX_SEQ_LENGTH)
    close(left.json(), by_left.encode([long]).tolist())
    assert np.abs(np.array(left.json()) - np.array(right.json())).max() > 1e-3
    assert int(left.headers["x-compute-tokens"]) == ST_MAX_SEQ_LENGTH
    r = embed_server.post("/embed_all", {"inputs": [long], "truncate": True, "truncation_direction": "left"})
    assert r.status_code == 200, r.text
    assert len(r.json()[0]) == len(full)  # embed_all cuts at the model's own maximum, above this text's length


def test_embed_all(embed_server, folders):
    r = embed_server.post("/embed_all", {"inputs": TEXTS[:2]})
    assert r.status_code == 200, r.text
    encoder = SentenceEncoder.from_pretrained(folders["embed"], device="cpu")
    features = FeatureExtractionPipeline(encoder.model, encoder.tokenizer)
    close(r.json(), features.run(TEXTS[:2]))


def test_similarity(embed_server, folders):
    body = {"source_sentence": TEXTS[0], "sentences": TEXTS[1:]}
    r = embed_server.post("/similarity", {"inputs": body})
    assert r.status_code == 200, r.text
    offline = SentenceSimilarityPipeline(SentenceEncoder.from_pretrained(folders["embed"], device="cpu"))
    close(r.json(), offline.run([body])[0])
    r = embed_server.post("/similarity", {"inputs": body, "parameters": {"prompt_name": "document"}})
    close(r.json(), offline.run([body], prompt_name="document")[0])


def test_openai_embeddings(embed_server, encoder):
    r = embed_server.post("/v1/embeddings", {"input": TEXTS, "model": "anything"})
    assert r.status_code == 200, r.text
    out = r.json()
    assert out["object"] == "list" and out["model"] == str(embed_server.model)
    assert [d["index"] for d in out["data"]] == list(range(len(TEXTS)))
    assert {d["object"] for d in out["data"]} == {"embedding"}
    expected = encoder.encode(TEXTS)
    close([d["embedding"] for d in out["data"]], expected.tolist())
    tokens = sum(len(ids) for ids in encoder.tokenize(TEXTS))
    assert out["usage"] == {"prompt_tokens": tokens, "total_tokens": tokens}
    r = embed_server.post("/v1/embeddings", {"input": TEXTS[0], "encoding_format": "base64", "dimensions": 16})
    vector = np.frombuffer(base64.b64decode(r.json()["data"][0]["embedding"]), dtype="<f4")
    raw = SentenceEncoder.from_pretrained(embed_server.model, device="cpu", normalize=False).encode(TEXTS[0])[:16]
    close(vector.tolist(), (raw / np.linalg.norm(raw)).tolist())


def test_tokenize_and_decode(embed_server, encoder):
    tok = encoder.tokenizer
    r = embed_server.post("/tokenize", {"inputs": TEXTS[:2]})
    assert r.status_code == 200, r.text
    out = r.json()
    enc = tok(TEXTS[:2], return_offsets_mapping=True, return_attention_mask=False)
    for text, tokens, ids, offsets in zip(TEXTS, out, enc["input_ids"], enc["offset_mapping"]):
        assert [t["id"] for t in tokens] == ids
        assert tokens[0]["special"] and tokens[0]["start"] is None and tokens[0]["text"] == tok.cls_token
        for t, (s, e) in zip(tokens[1:-1], offsets[1:-1]):
            assert not t["special"] and (t["start"], t["stop"]) == (s, e) and t["text"] == text[s:e]
    r = embed_server.post("/tokenize", {"inputs": "Hi", "add_special_tokens": False, "prompt_name": "query"})
    assert [t["id"] for t in r.json()[0]] == tok(PROMPTS["query"] + "Hi", add_special_tokens=False)["input_ids"]
    ids = enc["input_ids"]
    r = embed_server.post("/decode", {"ids": ids})
    assert r.json() == [tok.decode(i, skip_special_tokens=True) for i in ids]
    r = embed_server.post("/decode", {"ids": ids[0], "skip_special_tokens": False})
    assert r.json() == [tok.decode(ids[0], skip_special_tokens=False)]


def test_info_health_docs(embed_server):
    info = embed_server.get("/info").json()
    assert info["model_type"] == {"embedding": {"pooling": "mean"}}
    assert info["max_input_length"] == ST_MAX_SEQ_LENGTH and info["max_batch_tokens"] == 200
    assert info["max_client_batch_size"] == 32 and info["auto_truncate"] is False
    assert info["model_dtype"] == "float32" and info["max_concurrent_requests"] == 512
    assert embed_server.get("/health").status_code == 200
    assert embed_server.get("/docs").status_code == 200
    paths = embed_server.get("/openapi.json").json()["paths"]
    assert {"/embed", "/rerank", "/v1/embeddings", "/fill-mask", "/info"} <= set(paths)


def test_predict_and_rerank(reranker_server, folders):
    auth = {"Authorization": "Bearer secret-test-key"}
    classify = pipeline("text-classification", model=str(folders["reranker"]), device="cpu")
    r = reranker_server.post("/predict", {"inputs": TEXTS[0]}, headers=auth)
    assert r.status_code == 200, r.text
    close(r.json(), classify.run([TEXTS[0]], top_k=None, function_to_apply="sigmoid")[0])
    r = reranker_server.post("/predict", {"inputs": [TEXTS[0], TEXTS[1]], "raw_scores": True}, headers=auth)
    pair = {"text": TEXTS[0], "text_pair": TEXTS[1]}
    close(r.json(), classify.run([pair], top_k=None, function_to_apply="none")[0])
    r = reranker_server.post("/predict", {"inputs": [[TEXTS[0]], [TEXTS[1], TEXTS[2]]]}, headers=auth)
    close(r.json(), classify.run([TEXTS[0], {"text": TEXTS[1], "text_pair": TEXTS[2]}], top_k=None,
                                 function_to_apply="sigmoid"))

    query = "What is the capital of France?"
    r = reranker_server.post("/rerank", {"query": query, "texts": TEXTS, "return_text": True}, headers=auth)
    assert r.status_code == 200, r.text
    scores = [x[0]["score"] for x in classify.run([{"text": query, "text_pair": t} for t in TEXTS])]
    order = sorted(range(len(TEXTS)), key=lambda i: -scores[i])
    close(r.json(), [{"index": i, "text": TEXTS[i], "score": scores[i]} for i in order])
    r = reranker_server.post("/rerank", {"query": query, "texts": TEXTS, "raw_scores": True}, headers=auth)
    raw = [x[0]["score"] for x in classify.run([{"text": query, "text_pair": t} for t in TEXTS],
                                              function_to_apply="none")]
    close(r.json(), [{"index": i, "score": raw[i]} for i in sorted(range(len(TEXTS)), key=lambda i: -raw[i])])
    info = reranker_server.get("/info", headers=auth).json()
    assert list(info["model_type"]) == ["reranker"]


def test_fill_mask_and_embeddings_of_mlm(mlm_server):
    texts = ["The capital of France is [MASK].", "[MASK] is a [MASK] city."]
    fill = pipeline("fill-mask", model="modernbert-tiny", device="cpu")
    r = mlm_server.post("/fill-mask", {"inputs": texts, "top_k": 3})
    assert r.status_code == 200, r.text
    close(r.json(), fill.run(texts, top_k=3))
    assert isinstance(fill, FillMaskPipeline)
    mlm = ModernBertForMaskedLM.from_pretrained("modernbert-tiny", device="cpu")
    encoder = SentenceEncoder(mlm.model, fill.tokenizer, pooling="mean", normalize=True)
    r = mlm_server.post("/embed", {"inputs": TEXTS})
    close(r.json(), encoder.encode(TEXTS).tolist())
    info = mlm_server.get("/info").json()
    # started without --max-batch-tokens, on a CPU: the CPU's default budget (the embed server's 200 was given)
    assert list(info["model_type"]) == ["masked_lm"] and info["max_batch_tokens"] == 4096


def test_embed_sparse_of_mlm(mlm_server):
    import torch
    import transformers

    from modernbert.hub import resolve_folder

    folder = resolve_folder("modernbert-tiny")
    reference = transformers.AutoModelForMaskedLM.from_pretrained(folder).eval()
    tok = transformers.AutoTokenizer.from_pretrained(folder)
    r = mlm_server.post("/embed_sparse", {"inputs": TEXTS[:2]})
    assert r.status_code == 200, r.text
    for text, sparse in zip(TEXTS[:2], r.json()):
        with torch.no_grad():
            logits = reference(**tok(text, return_tensors="pt")).logits[0]  # (tokens, vocab)
        pooled = torch.log1p(torch.relu(logits)).max(0).values  # SPLADE, as TEI's --pooling splade
        index = torch.nonzero(pooled > 0).flatten()
        assert [x["index"] for x in sparse] == index.tolist()
        close([x["value"] for x in sparse], pooled[index].tolist(), tol=1e-4)
    assert "/embed_sparse" in mlm_server.get("/info").json()["routes"]


def test_token_classification(ner_server, folders):
    ner = pipeline("token-classification", model=str(folders["ner"]), device="cpu")
    for strategy in ("none", "simple"):
        r = ner_server.post("/token-classification", {"inputs": TEXTS, "aggregation_strategy": strategy})
        assert r.status_code == 200, r.text
        close(r.json(), ner.run(TEXTS, aggregation_strategy=strategy))


def test_question_answering(qa_server, folders):
    qa = pipeline("question-answering", model=str(folders["qa"]), device="cpu")
    items = [{"question": "Where is Paris?", "context": TEXTS[0]},
             {"question": "What is stripped?", "context": words(300, 2)}]  # a long context runs in windows
    r = qa_server.post("/question-answering", {"inputs": items, "top_k": 2})
    assert r.status_code == 200, r.text
    close(r.json(), qa.run(items, top_k=2))
    r = qa_server.post("/question-answering", {"inputs": items[0]})
    close(r.json(), qa.run(items[:1]))
