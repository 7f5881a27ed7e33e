"""Fine-tuning and pretraining under torchrun: one node with 2 processes, 2 simulated nodes on localhost (c10d
rendezvous), resume on a different world size. The runs are compared with the same run on one process: the
ranks share each global batch and sum their gradients, so the loss curves agree up to float32 rounding."""

from __future__ import annotations

import json
import os
import random
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from test_finetune import rows, write_csv

from modernbert.training import distributed
from modernbert.training.finetune import finetune

REPO = Path(__file__).resolve().parents[2]
TIMEOUT = 240  # seconds for one torchrun launch
# Loss curves of the same run on 1 and on 2 processes: the gradients are sums of the same terms in another
# order, so the curves differ by float32 rounding only.
LOSS_TOL = 1e-4


def _env() -> dict[str, str]:
    return {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO / "src"), "GLOO_SOCKET_IFNAME": "lo",
            "MASTER_ADDR": "127.0.0.1"}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _launch(launchers: list[list[str]], module_args: list[str]) -> None:
    """Start one torchrun per entry of `launchers` (its own flags), wait for all; on a failure or a timeout kill
    the process groups started here and fail with their output."""
    procs = [subprocess.Popen([sys.executable, "-m", "torch.distributed.run", *flags, *module_args], env=_env(),
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
             for flags in launchers]
    outputs = []
    try:
        for p in procs:
            out, _ = p.communicate(timeout=TIMEOUT)
            outputs.append(out)
    except subprocess.TimeoutExpired:
        pass
    finally:
        for p in procs:
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGKILL)  # the launcher and its workers: a group started here
                p.wait()
    codes = [p.returncode for p in procs]
    assert codes == [0] * len(procs), f"exit codes {codes}\n" + "\n----\n".join(o[-3000:] for o in outputs)


def _flags(opts: dict) -> list[str]:
    args = []
    for k, v in opts.items():
        if k in ("task", "num_threads") or v is None or v is False:
            continue
        args += [f"--{k.replace('_', '-')}"] + ([] if v is True else [str(v)])
    return [opts["task"], *args]


def _logged_losses(out: Path) -> list[float]:
    return [r["loss"] for r in map(json.loads, (out / "trainer_log.jsonl").read_text().splitlines())
            if "loss" in r and "event" not in r]


def _max_diff(a: list[float], b: list[float]) -> float:
    assert len(a) == len(b)
    return max(abs(x - y) for x, y in zip(a, b))


@pytest.fixture(scope="module")
def base(tiny_checkpoint) -> Path:
    return tiny_checkpoint("ModernBertForMaskedLM", num_hidden_layers=2)


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("ddp-data")
    # 45 examples: batches are not a multiple of the ranks, and the last one of an epoch may hold one example
    return {"train": write_csv(root / "train.csv", rows(45)), "validation": write_csv(root / "dev.csv", rows(16, 1))}


def _options(base: Path, data: dict[str, Path], out: Path, **overrides) -> dict:
    opts = dict(task="text-classification", model=str(base), train=str(data["train"]),
                validation=str(data["validation"]), output=str(out), learning_rate=3e-3, warmup=0.1,
                batch_tokens=160, epochs=1, eval_every=4, log_every=1, num_threads=1, quiet=True)
    opts.update(overrides)
    return opts


@pytest.fixture(scope="module")
def reference(base, data, tmp_path_factory) -> dict:
    """The single-process run every distributed run is compared with."""
    out = tmp_path_factory.mktemp("ddp-ref") / "run"
    return {**finetune(**_options(base, data, out)), "folder": out}


def _check_same_run(metrics: dict, reference: dict, out: Path) -> float:
    assert metrics["step"] == reference["step"] and metrics["completed"]
    diff = _max_diff(metrics["train_losses"], reference["train_losses"])
    assert diff < LOSS_TOL, diff
    assert _max_diff(_logged_losses(out), reference["train_losses"]) < LOSS_TOL
    assert metrics["tokens_seen"] == reference["tokens_seen"]
    for a, b in zip(metrics["evals"], reference["evals"]):
        assert a["step"] == b["step"] and a["eval_accuracy"] == b["eval_accuracy"]
        assert abs(a["eval_loss"] - b["eval_loss"]) < LOSS_TOL
    return diff


# ----- the pieces -----


def test_shard_takes_every_world_th_example():
    d = distributed.Dist(rank=1, world_size=3)
    assert d.shard(list(range(8))) == [1, 4, 7]
    assert distributed.Dist().shard([5, 6]) == [5, 6]  # one process: everything


# ----- one node, two processes -----


def test_two_processes_match_one(base, data, reference, tmp_path):
    out = tmp_path / "ddp"
    _launch([["--standalone", "--nproc-per-node", "2"]],
            ["-m", "modernbert.cli", "finetune", *_flags(_options(base, data, out))])
    metrics = json.loads((out / "metrics.json").read_text())
    diff = _check_same_run(metrics, reference, out)
    print(f"1 vs 2 processes: largest loss difference {diff:.2e}")
    assert (out / "model.safetensors").is_file() and (out / "README.md").is_file()
    last = reference["step"]
    assert sorted(p.name for p in (out / "checkpoints").glob("step-*.pt")) == [f"step-{last - last % 4:08d}.pt",
                                                                               f"step-{last:08d}.pt"]


def test_two_processes_in_batch_negatives_match_one(base, tmp_path):
    """sentence-embedding: every anchor against every positive of the global batch, across the ranks."""
    rng = random.Random(0)
    words = ["Paris France capital", "dog park lazy", "coffee tea cup", "winter snow cold"]
    pairs = [{"anchor": f"{t} {rng.choice(['the', 'a', 'some'])}", "positive": " ".join(rng.sample(t.split(), 3))}
             for t in words * 5]
    (tmp_path / "pairs.jsonl").write_text("".join(json.dumps(p) + "\n" for p in pairs))
    opts = dict(task="sentence-embedding", model=str(base), train=str(tmp_path / "pairs.jsonl"),
                learning_rate=3e-3, batch_tokens=120, epochs=1, log_every=1, num_threads=1, quiet=True)
    one = finetune(**opts, output=str(tmp_path / "one"))
    _launch([["--standalone", "--nproc-per-node", "2"]],
            ["-m", "modernbert.cli", "finetune", *_flags({**opts, "output": str(tmp_path / "two")})])
    two = json.loads((tmp_path / "two" / "metrics.json").read_text())
    diff = _max_diff(two["train_losses"], one["train_losses"])
    print(f"sentence-embedding, 1 vs 2 processes: largest loss difference {diff:.2e}")
    assert diff < LOSS_TOL and len(one["train_losses"]) >= 4


# ----- two nodes on localhost, then resume on one process -----


def test_two_nodes_then_resume_on_one_process(base, data, reference, tmp_path):
    out = tmp_path / "nodes"
    port = _free_port()
    common = ["--nnodes", "2", "--nproc-per-node", "1", "--rdzv-backend", "c10d", "--rdzv-id", f"ft{port}",
              "--rdzv-endpoint", f"127.0.0.1:{port}", "--local-addr", "127.0.0.1"]
    args = ["-m", "modernbert.cli", "finetune", *_flags(_options(base, data, out, stop_after=6))]
    _launch([[*common, "--node-rank", "0"], [*common, "--node-rank", "1"]], args)
    first = _logged_losses(out)
    diff = _max_diff(first, reference["train_losses"][:6])
    print(f"1 process vs 2 nodes: largest loss difference {diff:.2e}")
    assert diff < LOSS_TOL
    assert sorted(p.name for p in (out / "checkpoints").glob("step-*.pt")) == ["step-00000004.pt",
                                                                               "step-00000006.pt"]
    assert not (out / "model.safetensors").exists()  # stopped as if interrupted
    metrics = finetune(**_options(base, data, out, resume=True))  # world size 1 now
    _check_same_run(metrics, reference, out)
    name = f"step-{reference['step']:08d}.pt"
    ref_model = torch.load(reference["folder"] / "checkpoints" / name, weights_only=True)
    got = torch.load(out / "checkpoints" / name, weights_only=True)
    for name, w in ref_model["model"].items():
        torch.testing.assert_close(got["model"][name], w, atol=1e-4, rtol=1e-4)

