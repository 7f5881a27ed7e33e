"""What the serve tests share: a `modernbert serve` subprocess on a free loopback port, folders, comparisons."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

import modernbert

SRC = Path(modernbert.__file__).resolve().parents[1]
TOL = 1e-5
API_KEY = "secret-test-key"
CHECKPOINT_FILES = ("config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json",
                    "special_tokens_map.json")
PROMPTS = {"query": "query: ", "document": "passage: "}
ST_MAX_SEQ_LENGTH = 64

WORDS = ("the capital of france is paris and tokyo is the capital of japan machine learning models need data "
         "compute patience tokenizers text a lot of it hello world").split()


def words(n: int, seed: int) -> str:
    """A text of `n` words, different for each seed."""
    return " ".join(WORDS[(seed * 7 + i * 3) % len(WORDS)] for i in range(n))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def close(a: Any, b: Any, tol: float = TOL, path: str = "") -> None:
    """Assert two JSON values are equal, floats to `tol`."""
    if isinstance(a, float) or isinstance(b, float):
        assert isinstance(a, (int, float)) and isinstance(b, (int, float)), f"{path}: {a!r} vs {b!r}"
        assert abs(a - b) <= tol, f"{path}: {a} vs {b}"
    elif isinstance(a, dict):
        assert isinstance(b, dict) and set(a) == set(b), f"{path}: keys {sorted(a)} vs {sorted(b)}"
        for k in a:
            close(a[k], b[k], tol, f"{path}.{k}")
    elif isinstance(a, (list, tuple)):
        assert isinstance(b, (list, tuple)) and len(a) == len(b), f"{path}: lengths {len(a)} vs {len(b)}"
        for i, (x, y) in enumerate(zip(a, b)):
            close(x, y, tol, f"{path}[{i}]")
    else:
        assert a == b, f"{path}: {a!r} vs {b!r}"


class Server:
    """One `modernbert serve` process on 127.0.0.1."""

    def __init__(self, model: Path | str, *args: str, log: Path) -> None:
        self.model = str(model)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = log
        env = {**os.environ, "PYTHONPATH": str(SRC), "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1",
               "TOKENIZERS_PARALLELISM": "false"}
        env.pop("MODERNBERT_API_KEY", None)
        self._log_file = open(log, "wb")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "modernbert.cli", "serve", "--model", self.model, "--host", "127.0.0.1",
             "--port", str(self.port), "--device", "cpu", *args],
            stdout=self._log_file, stderr=subprocess.STDOUT, env=env,
        )
        self._ready = False

    def ready(self, timeout: float = 120) -> Server:
        deadline = time.monotonic() + timeout
        while not self._ready:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited with {self.proc.returncode}: {self.log.read_text()[-3000:]}")
            try:
                self._ready = httpx.get(self.url + "/health", timeout=2).status_code == 200
            except httpx.TransportError:
                pass
            if not self._ready:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"server not ready after {timeout}s: {self.log.read_text()[-3000:]}")
                time.sleep(0.1)
        return self

    def post(self, route: str, body: Any, **kwargs: Any) -> httpx.Response:
        return httpx.post(self.url + route, json=body, timeout=60, **kwargs)

    def get(self, route: str, **kwargs: Any) -> httpx.Response:
        return httpx.get(self.url + route, timeout=60, **kwargs)

    def metric(self, name: str, **labels: str) -> float:
        """The value of one sample of /metrics (0 when it has not been recorded yet)."""
        want = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
        for line in self.get("/metrics").text.splitlines():
            if line.startswith("#"):
                continue
            key, _, value = line.rpartition(" ")
            metric, _, rest = key.partition("{")
            got = ",".join(sorted(rest.rstrip("}").split(","))) if rest else ""
            if metric == name and got == want:
                return float(value)
        return 0.0

    def terminate(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log_file.close()


def write_st_folder(checkpoint: Path, folder: Path) -> Path:
    """A sentence-transformers folder (Transformer → mean Pooling → Normalize, two prompts) of `checkpoint`."""
    folder.mkdir(parents=True, exist_ok=True)
    for name in CHECKPOINT_FILES:
        shutil.copy(checkpoint / name, folder / name)
    modules = [{"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
               {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
               {"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"}]
    (folder / "modules.json").write_text(json.dumps(modules))
    (folder / "1_Pooling").mkdir(exist_ok=True)
    (folder / "2_Normalize").mkdir(exist_ok=True)
    (folder / "1_Pooling" / "config.json").write_text(json.dumps(
        {"word_embedding_dimension": 32, "pooling_mode_cls_token": False, "pooling_mode_mean_tokens": True,
         "include_prompt": True}))
    (folder / "sentence_bert_config.json").write_text(
        json.dumps({"max_seq_length": ST_MAX_SEQ_LENGTH, "do_lower_case": False}))
    (folder / "config_sentence_transformers.json").write_text(json.dumps(
        {"prompts": PROMPTS, "default_prompt_name": None, "similarity_fn_name": "cosine"}))
    return folder


