"""The server under load: cross-talk between concurrent clients, overload, a client hanging up, metrics, SIGTERM."""

from __future__ import annotations

import asyncio
import json
import signal
import socket
import time

import httpx
import pytest

from modernbert import SentenceEncoder

from .serve_helpers import API_KEY, Server, close, words


@pytest.fixture(scope="module")
def encoder(folders) -> SentenceEncoder:
    return SentenceEncoder.from_pretrained(folders["embed"], device="cpu")


def _requests(n: int, seed: int = 0) -> list[list[str]]:
    """n requests of 1 to 8 texts each, of 1 to 70 words (some over the 64-token limit, so truncated)."""
    return [[words(1 + (i * 17 + j * 29 + seed) % 70, i * 10 + j) for j in range(1 + (i * 5 + seed) % 8)]
            for i in range(n)]


async def _post_all(url: str, bodies: list[dict], headers: dict | None = None) -> list[httpx.Response]:
    limits = httpx.Limits(max_connections=len(bodies))
    async with httpx.AsyncClient(timeout=60, limits=limits, headers=headers) as client:
        return await asyncio.gather(*(client.post(url, json=b) for b in bodies))


def test_cross_talk(embed_server, encoder):
    """64 concurrent clients, mixed lengths, batches of 200 tokens: each gets the offline result of its inputs."""
    requests = _requests(64)
    bodies = [{"inputs": texts, "truncate": True} for texts in requests]
    responses = asyncio.run(_post_all(embed_server.url + "/embed", bodies))
    assert [r.status_code for r in responses] == [200] * 64
    everything = [t for texts in requests for t in texts]
    offline = encoder.encode(everything).tolist()
    start = 0
    for texts, response in zip(requests, responses):
        close(response.json(), offline[start : start + len(texts)])
        start += len(texts)


def test_overload(reranker_server):
    """--max-concurrent-requests 4: a burst gets 429 Overloaded (and nothing else but 200), then service is normal."""
    auth = {"Authorization": f"Bearer {API_KEY}"}
    body = {"query": words(30, 1), "texts": [words(60, i) for i in range(32)]}
    statuses: list[int] = []
    for _ in range(5):  # a burst of 48 at once exceeds 4 in flight; try again in the unlikely case it did not
        responses = asyncio.run(_post_all(reranker_server.url + "/rerank", [body] * 48, auth))
        statuses += [r.status_code for r in responses]
        for r in responses:
            if r.status_code == 429:
                assert r.json()["error_type"] == "Overloaded" and "max-concurrent-requests" in r.json()["error"]
        if 429 in statuses:
            break
    assert 429 in statuses and set(statuses) <= {200, 429}
    assert reranker_server.post("/rerank", body, headers=auth).status_code == 200


def test_client_hangs_up(embed_server, encoder):
    """A client that disconnects mid-request: its work is dropped (499 in the metrics), the worker goes on."""
    before = embed_server.metric("te_request_count_total", route="/embed", status="499")
    payload = json.dumps({"inputs": [words(60, i) for i in range(32)], "truncate": True}).encode()
    for _ in range(3):
        with socket.create_connection(("127.0.0.1", embed_server.port)) as s:
            s.sendall(b"POST /embed HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                      + f"Content-Length: {len(payload)}\r\n\r\n".encode() + payload)
    deadline = time.monotonic() + 10
    while embed_server.metric("te_request_count_total", route="/embed", status="499") < before + 3:
        assert time.monotonic() < deadline, "the server never saw the clients hang up"
        time.sleep(0.05)
    r = embed_server.post("/embed", {"inputs": ["after the hang-up"]})
    assert r.status_code == 200
    close(r.json(), encoder.encode(["after the hang-up"]).tolist())
    assert embed_server.get("/health").status_code == 200


def test_metrics_count_requests(ner_server):
    route = "/token-classification"
    ok = ner_server.metric("te_request_count_total", route=route, status="200")
    bad = ner_server.metric("te_request_count_total", route=route, status="400")
    success = ner_server.metric("te_request_success_total", route=route)
    for i in range(5):
        assert ner_server.post(route, {"inputs": [words(5 + i, i)]}).status_code == 200
    for _ in range(2):
        assert ner_server.post(route, {"inputs": []}).status_code == 400
    assert ner_server.metric("te_request_count_total", route=route, status="200") == ok + 5
    assert ner_server.metric("te_request_count_total", route=route, status="400") == bad + 2
    assert ner_server.metric("te_request_success_total", route=route) == success + 5
    assert ner_server.metric("te_request_failure_total", route=route, err="Empty") >= 2
    text = ner_server.get("/metrics").text
    for name in ("te_request_tokenization_duration_bucket", "te_request_queue_duration_count",
                 "te_request_inference_duration_sum", "te_batch_next_size_count", "te_batch_next_tokens_sum",
                 "te_queue_size"):
        assert name in text, name


def test_json_logs(mlm_server):
    assert mlm_server.post("/fill-mask", {"inputs": "Paris is the [MASK] of France."}).status_code == 200
    assert mlm_server.post("/fill-mask", {"inputs": 3}).status_code == 422
    deadline = time.monotonic() + 5
    while True:
        records = [json.loads(line) for line in mlm_server.log.read_text().splitlines() if line.startswith("{")]
        mine = [r for r in records if r["path"] == "/fill-mask"]
        if len(mine) >= 2 or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert {r["status"] for r in mine} >= {200, 422}
    assert all({"timestamp", "method", "status", "duration_ms", "tokens"} <= set(r) for r in mine)


def test_sigterm_drains(folders, tmp_path, encoder):
    """SIGTERM under load: every request already accepted is answered in full, then the process exits 0."""
    server = Server(folders["embed"], "--max-batch-tokens", "64", log=tmp_path / "sigterm.log").ready()
    try:
        requests = [[words(60 + (i + j) % 10, i * 32 + j) for j in range(24)] for i in range(12)]
        signalled: list[float] = []

        async def one(texts: list[str]) -> tuple[int, object, float]:
            async with httpx.AsyncClient(timeout=60) as client:
                r = await client.post(server.url + "/embed", json={"inputs": texts, "truncate": True})
                return r.status_code, r.json(), time.monotonic()

        async def load() -> list[tuple[int, object, float]]:
            tasks = [asyncio.ensure_future(one(texts)) for texts in requests]
            total = sum(map(len, requests))

            def all_queued() -> bool:  # every input is either waiting in the batcher or already run
                return server.metric("te_queue_size") + server.metric("te_batch_next_size_sum") >= total

            deadline = time.monotonic() + 60
            while not await asyncio.to_thread(all_queued):  # no fixed sleep: a busy machine accepts slowly
                assert time.monotonic() < deadline, "the requests were not all queued in 60 s"
                await asyncio.sleep(0.05)
            signalled.append(time.monotonic())
            server.proc.send_signal(signal.SIGTERM)
            return await asyncio.gather(*tasks)

        results = asyncio.run(load())
        assert [status for status, _, _ in results] == [200] * len(requests)
        assert any(done > signalled[0] for _, _, done in results), "all answered before SIGTERM: no drain tested"
        for texts, (_, body, _) in zip(requests, results):
            close(body, encoder.encode(texts).tolist())
        assert server.proc.wait(30) == 0
    finally:
        server.stop()
