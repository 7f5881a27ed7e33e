"""`modernbert serve` under closed-loop load: throughput and latency, against our offline pipeline (the ceiling)
and, when its URL is given, infinity-emb serving the same folder.

Each of C clients sends a request, waits for its answer, and sends the next one, until the run has sent
`--requests` requests or lasted `--seconds`. Requests hold 1 to 16 texts of 5 to 300 words, drawn once from a
fixed seed, so every side and every concurrency embeds the same inputs. The client is raw asyncio HTTP/1.1 with
keep-alive (one connection per client), so that it is not the bottleneck: `--echo` measures it alone, against
a no-model server in this process.

    python benchmarks/bench_server.py --echo                     # the client alone: check it is not the bottleneck
    python benchmarks/bench_server.py --quick --dtypes float32   # smoke test
    python benchmarks/bench_server.py                            # base-shaped model, 1,8,32,128, fp32 then bf16
    python benchmarks/bench_server.py --model FOLDER --infinity-url float32=http://127.0.0.1:7997 --json out.json

Loopback only: every URL must be on 127.0.0.1 / localhost. See benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parents[1]
BASE_FOLDER = ROOT / "build" / "bench-serve-base"
WORDS = ("the of and to in is was for on that with as by at from his her an were are which this be or has "
         "had not first one their its new after who they have two been but all other time more may when "
         "city river music school world state people year during would between three film team").split()


def log(*args: Any) -> None:
    print(*args, file=sys.stderr, flush=True)


def make_requests(n: int, seed: int, max_words: int, max_inputs: int) -> list[list[str]]:
    rng = random.Random(seed)
    return [[" ".join(rng.choice(WORDS) for _ in range(rng.randint(5, max_words)))
             for _ in range(rng.randint(1, max_inputs))] for _ in range(n)]


def percentile(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(q / 100 * len(xs)))] if xs else float("nan")


def check_loopback(url: str) -> tuple[str, int, str]:
    parts = urlsplit(url)
    if parts.hostname not in ("127.0.0.1", "localhost", "::1"):
        raise SystemExit(f"error: {url} is not a loopback URL; this benchmark only talks to this machine")
    return parts.hostname, parts.port or 80, parts.path.rstrip("/")


def ensure_base_folder(folder: Path = BASE_FOLDER) -> Path:
    """A random ModernBERT-base-shaped sentence-transformers folder (mean pooling, normalised), written once.

    The base preset (hidden 768, 22 layers, 12 heads, GeGLU 1152) with the bundled tokenizer (and its vocabulary):
    what the server's throughput depends on is the encoder's shape, not its weights.
    """
    if (folder / "model.safetensors").is_file() and (folder / "modules.json").is_file():
        return folder
    import torch

    from modernbert import AutoTokenizer, ModernBertConfig
    from modernbert.hub import write_json_atomic
    from modernbert.model import ModernBertModel

    log(f"writing a random base-shaped model to {folder} ...")
    torch.manual_seed(0)
    tok = AutoTokenizer.from_pretrained("modernbert-tiny")
    config = ModernBertConfig.from_preset("base", vocab_size=len(tok), pad_token_id=tok.pad_token_id,
                                          bos_token_id=tok.cls_token_id, eos_token_id=tok.sep_token_id,
                                          cls_token_id=tok.cls_token_id, sep_token_id=tok.sep_token_id)
    ModernBertModel(config).save_pretrained(folder)
    tok.save_pretrained(folder)
    write_json_atomic(folder / "modules.json", [
        {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
        {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
        {"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"}])
    write_json_atomic(folder / "1_Pooling" / "config.json", {
        "word_embedding_dimension": config.hidden_size, "pooling_mode_cls_token": False,
        "pooling_mode_mean_tokens": True, "include_prompt": True})
    (folder / "2_Normalize").mkdir(exist_ok=True)
    write_json_atomic(folder / "sentence_bert_config.json", {"max_seq_length": 512, "do_lower_case": False})
    return folder


# ----- the client -----


class Connection:
    """One keep-alive HTTP/1.1 connection: POST a JSON body, read the status and the body."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def post(self, path: str, body: bytes) -> tuple[int, bytes]:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        assert self.reader is not None
        self.writer.write(f"POST {path} HTTP/1.1\r\nHost: {self.host}\r\nContent-Type: application/json\r\n"
                          f"Content-Length: {len(body)}\r\n\r\n".encode() + body)
        head = await self.reader.readuntil(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split()[1])
        headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:] if line)}
        if "content-length" in headers:
            data = await self.reader.readexactly(int(headers["content-length"]))
        else:  # chunked
            data = b""
            while True:
                size = int((await self.reader.readuntil(b"\r\n")).strip(), 16)
                data += await self.reader.readexactly(size + 2)
                if size == 0:
                    break
        if headers.get("connection", "").lower() == "close":
            self.writer.close()
            self.writer = None
        return status, data

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


async def closed_loop(url: str, route: str, payload: Any, requests: list[list[str]], concurrency: int,
                      max_seconds: float, tokens: list[int] | None = None) -> dict[str, Any]:
    """C clients, each sending its next request when the last is answered; latencies and counts.

    tokens: the real tokens of each request (for tokens/s), counted once by the caller.
    """
    host, port, prefix = check_loopback(url)
    queue = list(range(len(requests)))
    latencies: list[float] = []
    errors: dict[int, int] = {}
    inputs = done_tokens = 0
    start = time.perf_counter()

    async def client() -> None:
        nonlocal inputs, done_tokens
        conn = Connection(host, port)
        try:
            while queue and time.perf_counter() - start < max_seconds:
                index = queue.pop()
                texts = requests[index]
                body = json.dumps(payload(texts)).encode()
                t0 = time.perf_counter()
                status, _ = await conn.post(prefix + route, body)
                latencies.append(time.perf_counter() - t0)
                if status == 200:
                    inputs += len(texts)
                    done_tokens += tokens[index] if tokens else 0
                else:
                    errors[status] = errors.get(status, 0) + 1
        finally:
            conn.close()

    await asyncio.gather(*(client() for _ in range(concurrency)))
    elapsed = time.perf_counter() - start
    return {"concurrency": concurrency, "requests": len(latencies), "inputs": inputs, "seconds": elapsed,
            "inputs_per_s": inputs / elapsed, "tokens_per_s": done_tokens / elapsed,
            "requests_per_s": len(latencies) / elapsed,
            "p50_ms": percentile(latencies, 50) * 1000, "p90_ms": percentile(latencies, 90) * 1000,
            "p99_ms": percentile(latencies, 99) * 1000, "errors": errors}


# ----- the sides -----


def start_server(args: argparse.Namespace, port: int, dtype: str) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    cmd = [sys.executable, "-m", "modernbert.cli", "serve", "--model", args.model, "--host", "127.0.0.1",
           "--port", str(port), "--dtype", dtype, "--max-batch-tokens", str(args.max_batch_tokens),
           "--max-client-batch-size", "64", "--auto-truncate"]
    if args.device:
        cmd += ["--device", args.device]
    proc = subprocess.Popen(cmd, env=env)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"error: the server exited with {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return proc
        except OSError:
            time.sleep(0.2)
    proc.kill()
    raise SystemExit("error: the server did not start in 300 s")


def offline(args: argparse.Namespace, requests: list[list[str]], dtype: str) -> dict[str, Any]:
    """Our pipeline on the same inputs in batches of 64 texts (no HTTP), for ``--seconds`` at most: the ceiling."""
    from modernbert import SentenceEncoder
    from modernbert.runtime import configure_cpu

    configure_cpu()
    encoder = SentenceEncoder.from_pretrained(args.model, dtype=dtype, device=args.device)
    texts = [t for r in requests for t in r]
    encoder.encode(texts[:64], batch_size=64)  # warm-up
    done = 0
    t0 = time.perf_counter()
    while done < len(texts) and time.perf_counter() - t0 < args.seconds:
        encoder.encode(texts[done:done + 64], batch_size=64)
        done = min(done + 64, len(texts))
    elapsed = time.perf_counter() - t0
    texts = texts[:done]
    tokens = sum(len(ids) for ids in encoder.tokenize(texts))
    return {"inputs": len(texts), "seconds": elapsed, "inputs_per_s": len(texts) / elapsed,
            "tokens_per_s": tokens / elapsed, "tokens": tokens}


def echo_server(port: int) -> asyncio.AbstractServer:
    """A no-model HTTP server answering every request with `[]`: the client's own ceiling."""
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = next(int(line.split(b":")[1]) for line in head.split(b"\r\n")
                              if line.lower().startswith(b"content-length"))
                await reader.readexactly(length)
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Type: application/json\r\n\r\n[]")
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()

    return asyncio.start_server(handle, "127.0.0.1", port)  # type: ignore[return-value]


def infinity_urls(value: str | None, dtypes: list[str]) -> dict[str, str]:
    """--infinity-url as {dtype: URL}: one URL for every dtype, or DTYPE=URL pairs."""
    if not value:
        return {}
    if "=" not in value:
        return {d: value for d in dtypes}
    pairs = dict(item.split("=", 1) for item in value.split(","))
    unknown = set(pairs) - set(dtypes)
    if unknown:
        raise SystemExit(f"error: --infinity-url names {sorted(unknown)}, not among --dtypes {dtypes}")
    return pairs


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default="base", help="folder, bundled model or hub id to serve (default: base, a "
                   f"random ModernBERT-base-shaped sentence-transformers folder written once to {BASE_FOLDER})")
    p.add_argument("--url", default=None, help="an already running modernbert server (default: start one)")
    p.add_argument("--infinity-url", default=None, metavar="URL",
                   help="an infinity-emb server on the same folder (optional): one URL for every dtype, or "
                        "float32=URL,bfloat16=URL (infinity serves one dtype per process)")
    p.add_argument("--dtypes", default="float32,bfloat16",
                   help="each side runs in each, in this order, the server restarted per dtype (default: "
                        "float32,bfloat16)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--concurrency", default="1,8,32,128")
    p.add_argument("--requests", type=int, default=400, help="requests per run at most (default: 400)")
    p.add_argument("--seconds", type=float, default=60, help="seconds per run at most (default: 60)")
    p.add_argument("--max-batch-tokens", type=int, default=16384)
    p.add_argument("--quick", action="store_true", help="40 requests of 5-60 words: a smoke test")
    p.add_argument("--echo", action="store_true", help="measure the client alone against a no-model server")
    p.add_argument("--json", default=None, metavar="PATH", help="also write the results as JSON")
    args = p.parse_args()
    if args.quick:
        args.requests = min(args.requests, 40)
    if args.model == "base" and not args.echo:
        args.model = str(ensure_base_folder())
    requests = make_requests(args.requests, 0, 60 if args.quick else 300, 16)
    levels = [int(c) for c in args.concurrency.split(",")]
    dtypes = [d for d in args.dtypes.split(",") if d]
    report: dict[str, Any] = {"model": args.model, "dtypes": dtypes, "requests": args.requests, "runs": {}}

    if args.echo:
        async def run_echo() -> list[dict[str, Any]]:
            port = free_port()
            server = await echo_server(port)
            try:
                return [await closed_loop(f"http://127.0.0.1:{port}", "/embed", lambda t: {"inputs": t},
                                          requests * 20, c, args.seconds) for c in levels]
            finally:
                server.close()

        report["runs"]["echo"] = asyncio.run(run_echo())
    else:
        from modernbert import AutoTokenizer

        tok = AutoTokenizer.from_pretrained(args.model)
        tokens = [sum(len(ids) for ids in tok([t.strip() for t in r], return_attention_mask=False)["input_ids"])
                  for r in requests]
        infinity = infinity_urls(args.infinity_url, dtypes)
        for dtype in dtypes:
            proc = None
            url = args.url
            if url is None:
                port = free_port()
                proc = start_server(args, port, dtype)
                url = f"http://127.0.0.1:{port}"
            try:
                sides = {"modernbert": (url, "/embed", lambda t: {"inputs": t, "truncate": True})}
                if dtype in infinity:
                    sides["infinity"] = (infinity[dtype], "/embeddings", lambda t: {"input": t, "model": args.model})
                for name, (side_url, route, payload) in sides.items():
                    runs = []
                    for c in levels:
                        log(f"{name} {dtype}: concurrency {c} ...")
                        runs.append(asyncio.run(closed_loop(side_url, route, payload, requests, c, args.seconds,
                                                            tokens)))
                    report["runs"][f"{name} {dtype}"] = runs
            finally:
                if proc is not None:
                    proc.send_signal(signal.SIGTERM)
                    proc.wait(60)
            log(f"offline pipeline {dtype} ...")
            report["runs"][f"offline {dtype}"] = [offline(args, requests, dtype)]

    header = (f"{'side':<22}{'conc':>6}{'req':>6}{'inputs/s':>10}{'tokens/s':>10}{'p50 ms':>9}{'p90 ms':>9}"
              f"{'p99 ms':>9}  errors")
    print(header)
    for name, runs in report["runs"].items():
        for r in runs:
            if name.startswith("offline"):
                print(f"{name:<22}{'':>6}{'':>6}{r['inputs_per_s']:>10.1f}{r['tokens_per_s']:>10.0f}")
                continue
            print(f"{name:<22}{r['concurrency']:>6}{r['requests']:>6}{r['inputs_per_s']:>10.1f}"
                  f"{r['tokens_per_s']:>10.0f}{r['p50_ms']:>9.1f}{r['p90_ms']:>9.1f}{r['p99_ms']:>9.1f}  "
                  f"{r['errors'] or '-'}")
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
