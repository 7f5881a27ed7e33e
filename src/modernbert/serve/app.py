"""The FastAPI application: TEI's routes, OpenAI's /v1/embeddings, fill-mask, NER and QA, over the batcher.

Every route is a thin adapter: it reads and checks its fields, turns its inputs into one `Job` per input
(tokenized in a thread pool, off the event loop), waits for the worker's results and shapes them as TEI (or
OpenAI) does. `Endpoint` wraps each route with what they all share: the API key, the concurrency limit (429 at
once when full), the payload limit, watching for a client that hangs up, errors as JSON, timing headers,
metrics and the JSON log line.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import math
import sys
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from starlette.requests import ClientDisconnect

from .. import __version__
from ..pipelines.base import default_batch_tokens
from . import fields as f
from .batcher import Batcher, Job, RequestState, ShuttingDown
from .errors import ApiError, overloaded, payload_too_large
from .metrics import Metrics
from .served import Served

logger = logging.getLogger("modernbert.serve")
AGGREGATIONS = ("none", "simple", "first", "average", "max")
# what each task needs, for the 424 of a route the model cannot serve
NEEDS = {"embed": "an embedding model (a sentence-transformers folder, a bare encoder or an MLM)",
         "embed_all": "an embedding model (a sentence-transformers folder, a bare encoder or an MLM)",
         "classify": "a sequence classifier", "rerank": "a sequence classifier with one label (a reranker)",
         "fill": "a masked-LM model",
         "sparse": "a SPLADE model (a masked-LM model: sparse embeddings come from its vocabulary logits)",
         "ner": "a token classifier", "qa": "a question-answering model"}


@dataclass
class Settings:
    """The server's options (the `modernbert serve` flags)."""

    max_batch_tokens: int | None = None  # None: the device's default (pipelines.base.DEFAULT_BATCH_TOKENS)
    max_batch_requests: int | None = None
    max_concurrent_requests: int = 512
    max_client_batch_size: int = 32
    auto_truncate: bool = False
    payload_limit: int = 2_000_000
    api_key: str | None = None
    served_model_name: str | None = None
    json_logs: bool = False
    tokenization_workers: int = 2


class ClientGone(Exception):
    """The client hung up before its answer was ready."""


@dataclass
class Call:
    """One request being served: its state for the batcher and what its timing headers report."""

    request: Request
    state: RequestState = field(default_factory=RequestState)
    start: float = field(default_factory=time.perf_counter)
    chars: int = 0
    tokens: int = 0
    inputs: int = 0
    tokenization: float = 0.0
    queue: float = 0.0  # summed over inputs
    inference: float = 0.0  # summed over inputs

    def headers(self, device: str) -> dict[str, str]:
        total = int((time.perf_counter() - self.start) * 1000)
        n = max(self.inputs, 1)
        return {"x-compute-type": device, "x-compute-time": str(total), "x-total-time": str(total),
                "x-compute-characters": str(self.chars), "x-compute-tokens": str(self.tokens),
                "x-tokenization-time": str(int(self.tokenization * 1000)),
                "x-queue-time": str(int(self.queue / n * 1000)),
                "x-inference-time": str(int(self.inference / n * 1000))}


class Server:
    """The model, the batcher, the tokenization pool and the metrics of one app."""

    def __init__(self, served: Served, settings: Settings) -> None:
        self.served, self.settings = served, settings
        self.metrics = Metrics(lambda: self.batcher.queue_size())
        self.max_batch_tokens = (default_batch_tokens(served.device) if settings.max_batch_tokens is None
                                 else settings.max_batch_tokens)
        self.batcher = Batcher(served.run, max_batch_tokens=self.max_batch_tokens,
                               max_batch_requests=settings.max_batch_requests, on_batch=self.metrics.on_batch)
        self.pool = ThreadPoolExecutor(settings.tokenization_workers, thread_name_prefix="modernbert-tokenize")
        self.in_flight = 0
        self.device = served.device

    @property
    def name(self) -> str:
        return self.settings.served_model_name or self.served.model_id

    def task(self, name: str, route: str) -> Any:
        """The Task `name`, or the 424 of a route this model cannot serve."""
        if name not in self.served.tasks:
            routes = ", ".join(r for t in self.served.tasks for r in TASK_ROUTES.get(t, ()))
            raise ApiError("Backend", f"{route} needs {NEEDS[name]}, but the model {self.served.model_id!r} is a "
                                      f"{self.served.kind} model ({self.served.architecture}); it serves {routes}")
        return self.served.tasks[name]

    async def run(self, call: Call, task_name: str, route: str, items: list[Any], options: dict[str, Any],
                  truncate: bool, name: str = "inputs",
                  direction: str = "right") -> list[Any]:
        """Tokenize (or count), check, cut and queue `items` for `task_name`, and wait for their results (in order).

        A task with a `tokenize` is tokenized here, once, in the tokenization pool: its jobs carry the token ids,
        cut to the task's maximum from `direction`. Other tasks are only counted here (right truncation).
        """
        task = self.task(task_name, route)
        loop = asyncio.get_running_loop()
        t0 = time.perf_counter()
        try:
            if task.tokenize is not None:
                encoded = await loop.run_in_executor(self.pool, task.tokenize, items, options)
                counts = [len(e.ids) for e in encoded]
            else:
                counts = await loop.run_in_executor(self.pool, task.count, items, options)
        except (ValueError, TypeError) as e:
            raise ApiError("Tokenizer", f"`{name}`: {e}") from None
        call.tokenization += time.perf_counter() - t0
        for i, n in enumerate(counts):
            if n > task.max_length and not truncate:
                raise ApiError("Validation", f"`{name}[{i}]` has {n} tokens, more than the model's maximum of "
                                             f"{task.max_length}; send \"truncate\": true to cut it (or start the "
                                             "server with --auto-truncate)")
        chars = sum(_chars(i) for i in items)
        if task.tokenize is not None:
            items = [e.cut(task.max_length, direction) for e in encoded]
        tokens = [min(n, task.max_length) for n in counts]
        frozen = tuple(sorted(options.items()))
        jobs = [Job(task_name, item, frozen, n, loop.create_future(), loop, call.state)
                for item, n in zip(items, tokens)]
        call.tokens += sum(tokens)
        call.inputs += len(items)
        call.chars += chars
        try:
            self.batcher.submit(jobs)
        except ShuttingDown as e:
            raise ApiError("Unhealthy", str(e)) from None
        await self._wait(call, [j.future for j in jobs])
        results = []
        for i, job in enumerate(jobs):
            call.queue += job.queue_time
            call.inference += job.inference_time
            e = job.future.exception()
            if e is not None:
                if isinstance(e, (ValueError, TypeError)):
                    raise ApiError("Validation", f"`{name}[{i}]`: {e}")
                if isinstance(e, ShuttingDown):
                    raise ApiError("Unhealthy", str(e))
                raise ApiError("Backend", f"inference failed: {type(e).__name__}: {e}")
            results.append(job.future.result())
        return results

    async def _wait(self, call: Call, futures: list[asyncio.Future]) -> None:
        """Wait for every future; a client that hangs up meanwhile cancels its queued work (`ClientGone`)."""
        everything = asyncio.gather(*futures, return_exceptions=True)
        gone = asyncio.ensure_future(_disconnected(call.request))
        try:
            done, _ = await asyncio.wait({everything, gone}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            if not gone.done():
                gone.cancel()
        if everything not in done:
            call.state.cancelled = True  # the worker drops its jobs still queued
            everything.cancel()
            everything.add_done_callback(_retrieve)  # no "exception was never retrieved" in the log
            raise ClientGone()


def _chars(item: Any) -> int:
    """An input's size for the `x-compute-characters` count: a text's characters (a pair's or a question's texts
    together), or a token-id list's length."""
    if isinstance(item, dict):
        return sum(len(v) for v in item.values() if isinstance(v, str))
    return len(item) if isinstance(item, (str, list)) else len(str(item))


def _retrieve(future: asyncio.Future) -> None:
    try:
        future.exception()
    except asyncio.CancelledError:
        pass


async def _disconnected(request: Request) -> None:
    """Return when the client disconnects (the body has been read, so the next message is the disconnect)."""
    while True:
        message = await request.receive()
        if message["type"] == "http.disconnect":
            return


TASK_ROUTES: dict[str, tuple[str, ...]] = {
    "embed": ("/embed", "/similarity", "/v1/embeddings"), "embed_all": ("/embed_all",), "sparse": ("/embed_sparse",),
    "classify": ("/predict", "/rerank"), "fill": ("/fill-mask",), "ner": ("/token-classification",),
    "qa": ("/question-answering",),
}
PUBLIC = ("/health", "/metrics", "/docs", "/openapi.json", "/docs/oauth2-redirect")

Handler = Callable[[Server, Call, dict[str, Any]], Awaitable[Any]]


def create_app(served: Served, settings: Settings | None = None) -> FastAPI:
    """The FastAPI app serving `served` (the worker starts and stops with the app's lifespan)."""
    settings = settings or Settings()
    server = Server(served, settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI):  # type: ignore[no-untyped-def]
        server.batcher.start()
        yield
        # uvicorn calls this after the in-flight requests are answered: finish the queue, then stop
        await asyncio.get_running_loop().run_in_executor(None, server.batcher.stop)
        server.pool.shutdown(wait=True)

    app = FastAPI(title="modernbert serve", version=__version__, lifespan=lifespan,
                  description="ModernBERT behind text-embeddings-inference's routes and OpenAI's /v1/embeddings, "
                              "batched by real tokens.")
    app.state.server = server

    def route(path: str, handler: Handler, *, openai: bool = False, method: str = "POST", body: bool = True,
              summary: str = "") -> None:
        async def endpoint(request: Request) -> Response:
            return await _serve(server, request, path, handler, openai, body)

        endpoint.__doc__ = summary or handler.__doc__
        app.add_api_route(path, endpoint, methods=[method], summary=summary or None, name=path.strip("/") or "root")

    route("/embed", embed, summary="Sentence embeddings (TEI)")
    route("/embed_all", embed_all, summary="Every token's hidden state (TEI)")
    route("/embed_sparse", embed_sparse, summary="Sparse (SPLADE) embeddings of a masked-LM model (TEI)")
    route("/predict", predict, summary="Classify texts or text pairs (TEI)")
    route("/rerank", rerank, summary="Rank texts against a query with a one-label classifier (TEI)")
    route("/similarity", similarity, summary="Cosine similarity of a sentence with others (TEI)")
    route("/tokenize", tokenize, summary="Tokens of texts (TEI)")
    route("/decode", decode, summary="Texts of token ids (TEI)")
    route("/v1/embeddings", openai_embeddings, openai=True, summary="OpenAI-compatible embeddings")
    route("/fill-mask", fill_mask, summary="Fill the masks of texts")
    route("/token-classification", token_classification, summary="Label the tokens of texts (NER)")
    route("/question-answering", question_answering, summary="Answer questions from contexts")
    route("/info", info, method="GET", body=False, summary="The model and the server's settings (TEI)")

    @app.get("/health", summary="200 while the inference worker runs, else 503 (TEI)")
    async def health() -> Response:
        if server.batcher.alive():
            return Response(status_code=200)
        return JSONResponse(ApiError("Unhealthy", "unhealthy").tei(), status_code=503)

    @app.get("/metrics", summary="Prometheus metrics")
    async def metrics() -> Response:
        return Response(server.metrics.text(), media_type="text/plain; version=0.0.4; charset=utf-8")

    return app


async def _serve(server: Server, request: Request, path: str, handler: Handler, openai: bool,
                 has_body: bool) -> Response:
    settings = server.settings
    call = Call(request)
    status, error_type, response = 200, None, None
    slot = False
    try:
        if settings.api_key is not None and request.headers.get("authorization") != f"Bearer {settings.api_key}":
            raise ApiError("Unauthorized", "missing or wrong API key: send the header 'Authorization: Bearer <key>'",
                           status=401)
        if server.in_flight >= settings.max_concurrent_requests:
            raise overloaded()
        server.in_flight += 1
        slot = True
        body = f.parse_body(await _read_body(request, settings.payload_limit)) if has_body else {}
        result = await handler(server, call, body)
        response = JSONResponse(result, headers=call.headers(server.device))
    except ApiError as e:
        status, error_type = e.status, e.error_type
        response = JSONResponse(e.openai() if openai else e.tei(), status_code=e.status)
    except (ClientGone, ClientDisconnect):
        status, error_type = 499, "ClientClosedRequest"  # nginx's code: nobody reads this response
        response = Response(status_code=499)
    except Exception as e:  # a bug: answer it as JSON, and keep the traceback in the server's log
        logger.exception("%s failed", path)
        error = ApiError("Backend", f"internal error: {type(e).__name__}: {e}", status=500)
        status, error_type = 500, error.error_type
        response = JSONResponse(error.openai() if openai else error.tei(), status_code=500)
    finally:
        if slot:
            server.in_flight -= 1
    server.metrics.count(path, status, error_type)
    elapsed = time.perf_counter() - call.start
    server.metrics.duration.observe(elapsed)
    if status == 200:
        server.metrics.tokenization.observe(call.tokenization)
        if call.inputs:
            server.metrics.queue.observe(call.queue / call.inputs)
            server.metrics.inference.observe(call.inference / call.inputs)
    if settings.json_logs:
        record = {"timestamp": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "level": "INFO" if status == 200
                  else "WARN", "method": request.method, "path": path, "status": status,
                  "duration_ms": round(elapsed * 1000, 3), "inputs": call.inputs, "tokens": call.tokens,
                  "tokenization_ms": round(call.tokenization * 1000, 3),
                  "queue_ms": round(call.queue / max(call.inputs, 1) * 1000, 3),
                  "inference_ms": round(call.inference / max(call.inputs, 1) * 1000, 3)}
        if error_type is not None:
            record["error_type"] = error_type
        sys.stderr.write(json.dumps(record) + "\n")
        sys.stderr.flush()
    return response


async def _read_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise payload_too_large(int(declared), limit)
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise payload_too_large(None, limit)
        chunks.append(chunk)
    return b"".join(chunks)


# ----- the routes -----


def _normalize(vectors: list[list[float]], dimensions: int | None, normalize: bool) -> list[list[float]]:
    """Keep the first `dimensions` values (Matryoshka), normalising after the cut when asked."""
    if dimensions is None:
        return vectors
    out = []
    for v in vectors:
        v = v[:dimensions]
        if normalize:
            norm = math.sqrt(sum(x * x for x in v)) or 1.0
            v = [x / norm for x in v]
        out.append(v)
    return out


def _prompt_name(server: Server, body: dict[str, Any], where: str = "prompt_name") -> str | None:
    name = body.get("prompt_name")
    if name is None:
        return None
    if not isinstance(name, str):
        raise ApiError("Validation", f"`{where}` must be a string")
    prompts = server.served.prompts
    if name not in prompts:
        raise ApiError("Validation", f"`{where}`={name!r} is not one of the model's prompts "
                                     f"{sorted(prompts) or '(it has none)'}")
    return name


async def _embed(server: Server, call: Call, route: str, texts: list[Any], body: dict[str, Any], normalize: bool,
                 dimensions: int | None) -> list[list[float]]:
    truncate = f.truncation(body, server.settings.auto_truncate, directions=f.DIRECTIONS)
    options = {"normalize": normalize and dimensions is None, "prompt_name": _prompt_name(server, body)}
    vectors = await server.run(call, "embed", route, texts, options, truncate, direction=f.direction(body))
    return _normalize(vectors, dimensions, normalize)


def _inputs(server: Server, body: dict[str, Any], name: str = "inputs") -> list[str | list[int]]:
    return f.inputs(body, name, server.settings.max_client_batch_size, len(server.served.tokenizer))


def _dimensions(server: Server, body: dict[str, Any]) -> int | None:
    dim = server.served.config.hidden_size
    return f.integer(body, "dimensions", None, 1, dim)


async def embed(server: Server, call: Call, body: dict[str, Any]) -> Any:
    """Body: `inputs` (a string, an array of token ids, or an array of both), `normalize` (true), `truncate`,
    `truncation_direction` (Right: keep the start; Left: keep the end), `prompt_name`, `dimensions`. Returns one
    vector per input. Token ids run as given (special tokens are not added)."""
    server.task("embed", "/embed")
    texts = _inputs(server, body)
    return await _embed(server, call, "/embed", texts, body, f.flag(body, "normalize", True),
                        _dimensions(server, body))


async def embed_all(server: Server, call: Call, body: dict[str, Any]) -> Any:
    """Body: `inputs` (as /embed's), `truncate`, `truncation_direction`. Returns, per input, the hidden state of
    every token."""
    server.task("embed_all", "/embed_all")
    texts = _inputs(server, body)
    truncate = f.truncation(body, server.settings.auto_truncate, directions=f.DIRECTIONS)
    return await server.run(call, "embed_all", "/embed_all", texts, {}, truncate, direction=f.direction(body))


async def embed_sparse(server: Server, call: Call, body: dict[str, Any]) -> Any:
    """Body: `inputs` (as /embed's), `truncate`, `truncation_direction`. Returns, per input, its SPLADE weights
    over the vocabulary, [{index, value}] where above zero (a masked-LM model only)."""
    server.task("sparse", "/embed_sparse")
    texts = _inputs(server, body)
    truncate = f.truncation(body, server.settings.auto_truncate, directions=f.DIRECTIONS)
    return await server.run(call, "sparse", "/embed_sparse", texts, {}, truncate, direction=f.direction(body))


def _predict_inputs(value: Any, max_size: int) -> tuple[list[Any], bool]:
    """TEI's predict inputs: a string, a pair [a, b], or a batch [[a], [a, b], ...]."""
    def sequence(v: Any, name: str) -> Any:
        if isinstance(v, str):
            return f.text(v, name)
        if not isinstance(v, list) or not 1 <= len(v) <= 2 or not all(isinstance(x, str) for x in v):
            raise ApiError("Validation", f"`{name}` must be a string, [text] or a pair [text, text_pair]")
        if len(v) == 1:
            return f.text(v[0], f"{name}[0]")
        return {"text": f.text(v[0], f"{name}[0]"), "text_pair": f.text(v[1], f"{name}[1]")}

    if isinstance(value, str):
        return [sequence(value, "inputs")], True
    if not isinstance(value, list):
        raise ApiError("Validation", f"`inputs` must be a string, a pair [text, text_pair] or a batch of them, got "
                                     f"{f._kind(value)}")
    if value and all(isinstance(v, str) for v in value) and len(value) <= 2:
        return [sequence(value, "inputs")], True
    f.batch(value, "inputs", max_size)
    return [sequence(v, f"inputs[{i}]") for i, v in enumerate(value)], False


async def predict(server: Server, call: Call, body: dict[str, Any]) -> Any:
    """Body: `inputs` (a text, a pair [text, text_pair], or a batch of them), `raw_scores`, `truncate`.
    Returns every label with its score, best first (a list per input for a batch)."""
    server.task("classify", "/predict")
    items, single = _predict_inputs(f.required(body, "inputs"), server.settings.max_client_batch_size)
    truncate = f.truncation(body, server.settings.auto_truncate)
    options = {"raw_scores": f.flag(body, "raw_scores", False), "truncate": truncate}
    results = await server.run(call, "classify", "/predict", items, options, truncate)
    results = [[{"score": p["score"], "label": p["label"]} for p in r] for r in results]
    return results[0] if single else results


async def rerank(server: Server, call: Call, body: dict[str, Any]) -> Any:
    """Body: `query`, `texts`, `raw_scores`, `return_text`, `truncate`. Returns [{index, score, text?}], best
    first."""
    server.task("classify", "/rerank")
    if server.served.config.num_labels != 1:
        raise ApiError("Backend", f"/rerank needs {NEEDS['rerank']}, but the model {server.served.model_id!r} is a "
                                  f"classifier with {server.served.config.num_labels} labels; use /predict")
    query = f.text(f.required(body, "query"), "query")
    texts = f.text_list(f.required(body, "texts"), "texts", server.settings.max_client_batch_size)
    truncate = f.truncation(body, server.settings.auto_truncate)
    options = {"raw_scores": f.flag(body, "raw_scores", False), "truncate": truncate}
    return_text = f.flag(body, "return_text", False)
    items = [{"text": query, "text_pair": t} for t in texts]
    results = await server.run(call, "classify", "/rerank", items, options, truncate, name="texts")
    ranks = [{"index": i, **({"text": t} if return_text else {}), "score": r[0]["score"]}
             for i, (t, r) in enumerate(zip(texts, results))]
    return sorted(ranks, key=lambda x: -x["score"])


async def similarity(server: Server, call: Call, body: dict[str, Any]) -> Any:
    """Body: `inputs` {`source_sentence`, `sentences`}, `parameters` {`truncate`, `truncation_direction`,
    `prompt_name`}. Returns the cosine similarity of the source with each sentence."""
    server.task("embed", "/similarity")
    inputs = f.required(body, "inputs")
    if not isinstance(inputs, dict):
        raise ApiError("Validation", "`inputs` must be an object {\"source_sentence\": ..., \"sentences\": [...]}")
    source = f.text(f.required(inputs, "source_sentence"), "inputs.source_sentence")
    sentences = f.text_list(f.required(inputs, "sentences"), "inputs.sentences",
                            server.settings.max_client_batch_size)
    parameters = body.get("parameters") or {}
    if not isinstance(parameters, dict):
        raise ApiError("Validation", "`parameters` must be an object")
    vectors = await _embed(server, call, "/similarity", [source, *sentences], parameters, True, None)
    a = np.asarray(vectors, dtype=np.float64)
    return [float(x) for x in a[1:] @ a[0]]


async def tokenize(server: Server, call: Call, body: dict[str, Any]) -> Any:
    """Body: `inputs`, `add_special_tokens` (true), `prompt_name`. Returns, per input, its tokens
    [{id, text, special, start, stop}] (start and stop are character offsets; null for special tokens)."""
    texts, _ = f.texts(body, "inputs", server.settings.max_client_batch_size)
    special = f.flag(body, "add_special_tokens", True)
    name = _prompt_name(server, body) if body.get("prompt_name") is not None else None
    prompt = server.served.prompts.get(name, "") if name else ""
    tok = server.served.tokenizer

    def run() -> list[Any]:
        full = [prompt + t for t in texts]
        enc = tok(full, add_special_tokens=special, truncation=False, max_length=1 << 30, return_attention_mask=False,
                  return_offsets_mapping=True, return_special_tokens_mask=True)
        out = []
        for text, ids, offsets, mask in zip(full, enc["input_ids"], enc["offset_mapping"], enc["special_tokens_mask"]):
            tokens = tok.convert_ids_to_tokens(ids)
            out.append([{"id": i, "text": token if m else text[s:e], "special": bool(m),
                         "start": None if m else s, "stop": None if m else e}
                        for i, token, (s, e), m in zip(ids, tokens, offsets, mask)])
        return out

    return await asyncio.get_running_loop().run_in_executor(server.pool, run)


async def decode(server: Server, call: Call, body: dict[str, Any]) -> Any:
    """Body: `ids` (a list of token ids, or a list of such lists), `skip_special_tokens` (true). Returns one
    text per list of ids."""
    ids = f.required(body, "ids")
    if not isinstance(ids, list) or not ids:
        raise ApiError("Validation" if not isinstance(ids, list) else "Empty",
                       "`ids` must be a non-empty array of token ids, or an array of such arrays")
    batch = ids if isinstance(ids[0], list) else [ids]
    f.batch(batch, "ids", server.settings.max_client_batch_size)
    vocab = len(server.served.tokenizer)  # added tokens included
    for i, row in enumerate(batch):
        if not isinstance(row, list) or not all(isinstance(x, int) and not isinstance(x, bool) for x in row):
            raise ApiError("Validation", f"`ids[{i}]` must be an array of integers")
        bad = [x for x in row if not 0 <= x < vocab]
        if bad:
            raise ApiError("Validation", f"`ids[{i}]` holds {bad[0]}, which is no token id (0 to {vocab - 1})")
    skip = f.flag(body, "skip_special_tokens", True)
    tok = server.served.tokenizer
    return await asyncio.get_running_loop().run_in_executor(
        server.pool, lambda: [tok.decode(row, skip_special_tokens=skip) for row in batch])


async def openai_embeddings(server: Server, call: Call, body: dict[str, Any]) -> Any:
    """OpenAI's embeddings: `input` (a string, an array of strings, an array of token ids or an array of such
    arrays), `model`, `encoding_format` (float or base64), `dimensions`, `user`. Embeddings are unit length."""
    server.task("embed", "/v1/embeddings")
    texts = _inputs(server, body, "input")
    encoding = f.choice(body, "encoding_format", ("float", "base64"), "float")
    model = body.get("model")
    if model is not None and not isinstance(model, str):
        raise ApiError("Validation", "`model` must be a string")
    vectors = await _embed(server, call, "/v1/embeddings", texts, body, True, _dimensions(server, body))
    data = []
    for i, v in enumerate(vectors):
        emb: Any = v if encoding == "float" else base64.b64encode(np.asarray(v, dtype="<f4").tobytes()).decode()
        data.append({"object": "embedding", "embedding": emb, "index": i})
    return {"object": "list", "data": data, "model": server.name,
            "usage": {"prompt_tokens": call.tokens, "total_tokens": call.tokens}}


async def fill_mask(server: Server, call: Call, body: dict[str, Any]) -> Any:
    """Body: `inputs`, `top_k` (5), `truncate`. Returns, per input, one list of candidates per mask
    [{score, token, token_str, sequence}], best first."""
    server.task("fill", "/fill-mask")
    texts, _ = f.texts(body, "inputs", server.settings.max_client_batch_size)
    truncate = f.truncation(body, server.settings.auto_truncate)
    options = {"top_k": f.integer(body, "top_k", 5), "truncate": truncate}
    mask = server.served.tokenizer.mask_token
    for i, t in enumerate(texts):
        if mask not in t:
            raise ApiError("Validation", f"`inputs[{i}]` has no {mask} token: put one where a word should be filled")
    return await server.run(call, "fill", "/fill-mask", texts, options, truncate)


async def token_classification(server: Server, call: Call, body: dict[str, Any]) -> Any:
    """Body: `inputs`, `aggregation_strategy` (none, simple, first, average, max), `truncate`. Returns, per
    input, its entities."""
    server.task("ner", "/token-classification")
    texts, _ = f.texts(body, "inputs", server.settings.max_client_batch_size)
    truncate = f.truncation(body, server.settings.auto_truncate)
    options = {"aggregation_strategy": f.choice(body, "aggregation_strategy", AGGREGATIONS, "none")}
    return await server.run(call, "ner", "/token-classification", texts, options, truncate)


async def question_answering(server: Server, call: Call, body: dict[str, Any]) -> Any:
    """Body: `inputs` ({question, context} or a list of them), `top_k` (1). Returns, per input, its answers
    [{score, start, end, answer}], best first."""
    server.task("qa", "/question-answering")
    value = f.required(body, "inputs")
    items = [value] if isinstance(value, dict) else value
    if not isinstance(items, list):
        raise ApiError("Validation", "`inputs` must be {\"question\": ..., \"context\": ...} or an array of them")
    f.batch(items, "inputs", server.settings.max_client_batch_size)
    checked = []
    for i, item in enumerate(items):
        if not isinstance(item, dict):
            raise ApiError("Validation", f"`inputs[{i}]` must be an object {{\"question\": ..., \"context\": ...}}")
        checked.append({"question": f.text(f.required(item, "question"), f"inputs[{i}].question"),
                        "context": f.text(f.required(item, "context"), f"inputs[{i}].context")})
    options = {"top_k": f.integer(body, "top_k", 1)}
    return await server.run(call, "qa", "/question-answering", checked, options, True)


async def info(server: Server, call: Call, body: dict[str, Any]) -> Any:
    """TEI's /info: the model, its type and the router's settings."""
    served, settings = server.served, server.settings
    config = served.config
    labels = {"id2label": {str(k): v for k, v in config.id2label.items()},
              "label2id": {k: int(v) for k, v in config.label2id.items()}}
    if served.kind == "classifier":
        model_type: dict[str, Any] = {"reranker" if config.num_labels == 1 else "classifier": labels}
    elif served.kind in ("embedding", "masked-lm"):
        model_type = {served.kind.replace("-", "_"): {"pooling": served.pooling}}
    else:
        model_type = {served.kind.replace("-", "_"): labels}
    return {"model_id": served.model_id, "model_sha": None, "model_dtype": served.dtype,
            "served_model_name": server.name, "model_type": model_type,
            "max_concurrent_requests": settings.max_concurrent_requests,
            "max_input_length": served.max_input_length, "max_batch_tokens": server.max_batch_tokens,
            "max_batch_requests": settings.max_batch_requests,
            "max_client_batch_size": settings.max_client_batch_size, "auto_truncate": settings.auto_truncate,
            "tokenization_workers": settings.tokenization_workers, "version": __version__, "sha": None,
            "docker_label": None,
            "routes": sorted({r for t in served.tasks for r in TASK_ROUTES.get(t, ())}
                             | {"/tokenize", "/decode", "/info", "/health", "/metrics"})}
