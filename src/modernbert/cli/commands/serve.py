"""``modernbert serve``: the model behind an HTTP server (TEI's routes, OpenAI's embeddings)."""

from __future__ import annotations

import argparse
import os
import signal
import socket

from ..errors import CLIError
from ..models import BUNDLED_MODEL, DTYPES, _dtype, check_device, positive_int, resolve_model, resolve_tokenizer

HELP = "serve the model over HTTP (text-embeddings-inference's routes, OpenAI /v1/embeddings)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("-m", "--model", required=True,
                   help=f"checkpoint folder, sentence-transformers folder, bundled model ({BUNDLED_MODEL}) or hub id")
    p.add_argument("--tokenizer", default=None, metavar="FOLDER",
                   help="the tokenizer's folder, for a model folder without one (default: the model's own)")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1, this machine "
                                                       "only; 0.0.0.0 for every interface)")
    p.add_argument("--port", type=positive_int, default=8080, help="port (default: 8080)")
    p.add_argument("--device", default=None, help="torch device: cpu, cuda, cuda:1 (default: cuda when available)")
    p.add_argument("--dtype", default="auto", choices=DTYPES, metavar="DTYPE",
                   help="weights dtype: auto (the checkpoint's), float32, bfloat16 or float16 (default: auto)")
    p.add_argument("--pooling", default=None, choices=("mean", "cls"),
                   help="pooling of the embeddings of a bare encoder or an MLM (default: the folder's, else mean)")
    p.add_argument("--max-batch-tokens", type=positive_int, default=None, metavar="N",
                   help="most real tokens in one forward pass, over the inputs of every request (default: 4096 on "
                        "a CPU, 16384 on CUDA)")
    p.add_argument("--max-batch-requests", type=positive_int, default=None, metavar="N",
                   help="most inputs in one forward pass (default: no limit beyond --max-batch-tokens)")
    p.add_argument("--max-concurrent-requests", type=positive_int, default=512, metavar="N",
                   help="requests in flight before new ones get 429 Overloaded (default: 512)")
    p.add_argument("--max-client-batch-size", type=positive_int, default=32, metavar="N",
                   help="most inputs in one request (default: 32)")
    p.add_argument("--auto-truncate", action="store_true",
                   help="cut inputs longer than the model's maximum when a request does not say (default: refuse "
                        "them with 422)")
    p.add_argument("--payload-limit", type=positive_int, default=2_000_000, metavar="BYTES",
                   help="largest request body (default: 2000000)")
    p.add_argument("--api-key", default=os.environ.get("MODERNBERT_API_KEY"),
                   help="require 'Authorization: Bearer KEY' on every route but /health and /metrics (default: "
                        "$MODERNBERT_API_KEY; none)")
    p.add_argument("--served-model-name", default=None, metavar="NAME",
                   help="the model name /info and /v1/embeddings report (default: --model)")
    p.add_argument("--tokenization-workers", type=positive_int, default=2, metavar="N",
                   help="threads that tokenize requests off the event loop (default: 2)")
    p.add_argument("--json-logs", action="store_true", help="one JSON line per request on stderr")


def check_address(host: str, port: int) -> None:
    """A CLIError for an address this process cannot listen on (a port in use, a host that is not here),
    before the model is loaded."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as e:
        raise CLIError(f"--host {host!r} is not an address of this machine ({e.strerror})") from None
    family, kind, proto, _, address = infos[0]
    with socket.socket(family, kind, proto) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(address)
        except OSError as e:
            raise CLIError(f"cannot listen on {host}:{port} ({e.strerror}); pick another --port, or stop what "
                           "uses it") from None


def run(args: argparse.Namespace) -> int:
    """Serve a model over HTTP with text-embeddings-inference's routes and OpenAI's /v1/embeddings.

    What is served follows the model: embeddings (/embed, /embed_all, /similarity, /v1/embeddings) for a
    sentence-transformers folder, a bare encoder or an MLM; /fill-mask for an MLM; /predict (and /rerank with one
    label) for a sequence classifier; /token-classification for a token classifier; /question-answering for a QA
    model. /tokenize, /decode, /info, /health and /metrics always; the OpenAPI page is at /docs. Other routes
    answer 424. Inputs of all requests are batched together by real tokens (--max-batch-tokens), without
    padding. SIGTERM stops accepting, answers what is in flight, and exits 0.
    """
    from ...serve import INSTALL_HINT, missing_dependencies

    missing = missing_dependencies()
    if missing:
        raise CLIError(f"modernbert serve needs {', '.join(missing)}, which are not installed: {INSTALL_HINT}")
    folder = resolve_model(args.model)
    tokenizer = resolve_tokenizer(args.tokenizer)
    check_device(args.device)
    check_address(args.host, args.port)
    import uvicorn

    from ...runtime import configure_cpu
    from ...serve.app import Settings, create_app
    from ...serve.served import load

    configure_cpu()
    served = load(str(folder), device=args.device, dtype=_dtype(args.dtype), pooling=args.pooling,
                  tokenizer=tokenizer)
    served.model_id = args.model
    settings = Settings(
        max_batch_tokens=args.max_batch_tokens, max_batch_requests=args.max_batch_requests,
        max_concurrent_requests=args.max_concurrent_requests, max_client_batch_size=args.max_client_batch_size,
        auto_truncate=args.auto_truncate, payload_limit=args.payload_limit, api_key=args.api_key,
        served_model_name=args.served_model_name, json_logs=args.json_logs,
        tokenization_workers=args.tokenization_workers,
    )
    app = create_app(served, settings)
    config = uvicorn.Config(app, host=args.host, port=args.port, log_level="warning", access_log=False,
                            timeout_graceful_shutdown=None, lifespan="on")
    server = uvicorn.Server(config)
    def on_sigterm(signum: int, frame: object) -> None:
        # uvicorn answers SIGTERM by draining, then raises the signal again once it is done: by then every
        # request in flight has its answer, so that second one ends the process normally (exit 0).
        if not server.started:
            raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, on_sigterm)
    server.run()
    return 0 if server.started else 1
