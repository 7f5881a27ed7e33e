"""Bad requests: each answered with TEI's (or, on /v1, OpenAI's) error JSON, the right status, and the field."""

from __future__ import annotations

import socket
import subprocess
import sys

import httpx
import pytest

from .serve_helpers import API_KEY, SRC, words


def _error(r: httpx.Response, status: int, error_type: str, *needles: str) -> None:
    assert r.status_code == status, r.text
    body = r.json()
    assert set(body) == {"error", "error_type"} and body["error_type"] == error_type, body
    for needle in needles:
        assert needle in body["error"], (needle, body["error"])


def test_malformed_json(embed_server):
    r = httpx.post(embed_server.url + "/embed", content=b'{"inputs": ["a",', timeout=30,
                   headers={"Content-Type": "application/json"})
    _error(r, 422, "Validation", "not valid JSON")
    _error(embed_server.post("/embed", ["a"]), 422, "Validation", "JSON object")


@pytest.mark.parametrize(("body", "status", "error_type", "field"), [
    ({}, 422, "Validation", "`inputs`"),
    ({"inputs": 5}, 422, "Validation", "`inputs`"),
    ({"inputs": ["a", 5]}, 422, "Validation", "`inputs[1]`"),
    ({"inputs": "a", "normalize": "yes"}, 422, "Validation", "`normalize`"),
    ({"inputs": "a", "dimensions": 0}, 422, "Validation", "`dimensions`"),
    ({"inputs": "a", "dimensions": 33}, 422, "Validation", "`dimensions`"),
    ({"inputs": "a", "prompt_name": "nope"}, 422, "Validation", "`prompt_name`"),
    ({"inputs": "a", "truncation_direction": "middle"}, 422, "Validation", "`truncation_direction`"),
    ({"inputs": [5, -1]}, 422, "Validation", "no token id"),
    ({"inputs": ["a", [5, 10**9]]}, 422, "Validation", "`inputs[1]`"),
    ({"inputs": ["a", []]}, 400, "Empty", "`inputs[1]`"),
    ({"inputs": []}, 400, "Empty", "`inputs`"),
    ({"inputs": ""}, 400, "Empty", "`inputs`"),
    ({"inputs": ["fine", "  "]}, 400, "Empty", "`inputs[1]`"),
    ({"inputs": ["a"] * 33}, 413, "Validation", "`inputs`"),
    ({"inputs": ["short", words(200, 1)]}, 422, "Validation", "`inputs[1]`"),
])
def test_bad_embed_fields(embed_server, body, status, error_type, field):
    _error(embed_server.post("/embed", body), status, error_type, field)


def test_too_long_names_the_way_out(embed_server):
    r = embed_server.post("/embed", {"inputs": [words(200, 1)]})
    _error(r, 422, "Validation", "tokens", "maximum of 64", "truncate")


def test_payload_limit(embed_server):
    r = embed_server.post("/embed", {"inputs": ["x" * 150_000]})
    _error(r, 413, "Validation", "payload limit", "100000")


def test_unsupported_routes(embed_server, reranker_server, qa_server):
    _error(embed_server.post("/predict", {"inputs": "a"}), 424, "Backend", "/predict", "embedding",
           "ModernBertModel")
    _error(embed_server.post("/fill-mask", {"inputs": "a [MASK]"}), 424, "Backend", "masked-LM")
    _error(embed_server.post("/embed_sparse", {"inputs": "a"}), 424, "Backend", "/embed_sparse", "SPLADE",
           "embedding model (ModernBertModel)")
    _error(qa_server.post("/embed", {"inputs": "a"}), 424, "Backend", "question-answering")
    auth = {"Authorization": f"Bearer {API_KEY}"}
    _error(reranker_server.post("/token-classification", {"inputs": "a"}, headers=auth), 424, "Backend",
           "classifier")


def test_other_routes_fields(embed_server, reranker_server, mlm_server, qa_server):
    _error(mlm_server.post("/fill-mask", {"inputs": "no mask here"}), 422, "Validation", "`inputs[0]`", "[MASK]")
    _error(mlm_server.post("/fill-mask", {"inputs": "a [MASK]", "top_k": "3"}), 422, "Validation", "`top_k`")
    late = {"inputs": ["a [MASK]", words(1100, 1) + " [MASK]."], "truncate": True}  # the cut would lose the mask
    _error(mlm_server.post("/fill-mask", late), 422, "Tokenizer", "input 1 has no [MASK] in its first 1024 tokens")
    _error(qa_server.post("/question-answering", {"inputs": {"question": "q"}}), 422, "Validation", "`context`")
    _error(qa_server.post("/question-answering", {"inputs": [{"question": "", "context": "c"}]}), 400, "Empty",
           "`inputs[0].question`")
    _error(embed_server.post("/similarity", {"inputs": {"source_sentence": "a", "sentences": []}}), 400, "Empty",
           "`inputs.sentences`")
    _error(embed_server.post("/decode", {"ids": [1, "x"]}), 422, "Validation", "`ids[0]`")
    _error(embed_server.post("/decode", {"ids": [10**9]}), 422, "Validation", "no token id")
    auth = {"Authorization": f"Bearer {API_KEY}"}
    _error(reranker_server.post("/rerank", {"query": "q", "texts": "not a list"}, headers=auth), 422,
           "Validation", "`texts`")
    _error(reranker_server.post("/predict", {"inputs": [["a", "b", "c"]]}, headers=auth), 422, "Validation",
           "`inputs[0]`")
    # left truncation is honoured on the embedding routes only
    _error(reranker_server.post("/predict", {"inputs": "a", "truncation_direction": "Left"}, headers=auth), 422,
           "Validation", "`truncation_direction`")


def test_openai_errors(embed_server):
    for body, status, field in [({"input": []}, 400, "`input`"), ({"input": 3}, 422, "`input`"),
                                ({"input": [1, 2, -3]}, 422, "token id"),
                                ({"input": [[1, 2], [True]]}, 422, "`input[1]`"),
                                ({"input": "a", "encoding_format": "int8"}, 422, "`encoding_format`")]:
        r = embed_server.post("/v1/embeddings", body)
        assert r.status_code == status, r.text
        error = r.json()["error"]
        assert set(error) == {"message", "type", "code"} and error["code"] == status
        assert error["type"] == "invalid_request_error" and field in error["message"]


def test_api_key(reranker_server):
    body = {"inputs": "a"}
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": API_KEY}):
        _error(reranker_server.post("/predict", body, headers=headers), 401, "Unauthorized", "API key")
    assert reranker_server.get("/info").status_code == 401
    assert reranker_server.post("/predict", body, headers={"Authorization": f"Bearer {API_KEY}"}).status_code == 200
    assert reranker_server.get("/health").status_code == 200  # health and metrics stay public, as in TEI
    assert reranker_server.get("/metrics").status_code == 200


def test_help_imports_neither_torch_nor_fastapi():
    code = ("import sys, contextlib, io\nfrom modernbert.cli import main\n"
            "with contextlib.redirect_stdout(io.StringIO()) as out:\n"
            "    assert main(['--help']) == 0 and main(['serve', '--help']) == 0\n"
            "assert '--max-batch-tokens' in out.getvalue()\n"
            "print(sorted(m for m in ('torch', 'fastapi', 'uvicorn', 'prometheus_client') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                         env={"PYTHONPATH": str(SRC), "PATH": ""})
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_missing_extra_gives_the_install_hint(monkeypatch, capsys):
    import modernbert.serve
    from modernbert.cli import main

    monkeypatch.setattr(modernbert.serve, "missing_dependencies", lambda: ["fastapi", "uvicorn"])
    assert main(["serve", "--model", "modernbert-tiny"]) == 2
    err = capsys.readouterr().err
    assert 'pip install "modernbert[serve]"' in err and "fastapi" in err


def test_port_in_use_is_a_one_line_error(capsys):
    from modernbert.cli import main

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        assert main(["serve", "--model", "modernbert-tiny", "--port", str(port)]) == 2
    err = capsys.readouterr().err
    assert f"cannot listen on 127.0.0.1:{port}" in err and "--port" in err
