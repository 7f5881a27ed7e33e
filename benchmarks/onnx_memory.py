"""Our ONNX export in ONNX Runtime: peak RSS for one long text, parity, and throughput against our PyTorch path.

    python benchmarks/onnx_memory.py [--checkpoint DIR] [--length 8192] [--threads 2] [--short 4x128]

Exports the random ModernBERT-base-shaped checkpoint (benchmarks/common.py) with `modernbert export onnx`
(ModernBertModel: last_hidden_state) once, into build/bench-onnx/, then runs ONNX Runtime in its own process
(bench_engine.py) on one `--length`-token text, printing its peak RSS and its max abs diff against our PyTorch
model, and on `--short` (count x length texts), printing tokens/s of both.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import REPO, ensure_checkpoint, log, pad_batch, random_lengths, random_texts  # noqa: E402

HERE = Path(__file__).resolve().parent


def engine(name: str, onnx: Path, data: Path, threads: int, repeats: int, warmup: int) -> dict:
    cmd = [sys.executable, str(HERE / "bench_engine.py"), "--engine", name, "--onnx", str(onnx), "--data", str(data),
           "--threads", str(threads), "--repeats", str(repeats), "--warmup", str(warmup)]
    return json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout.strip().splitlines()[-1])


def case(model: torch.nn.Module, batches: list[tuple[torch.Tensor, torch.Tensor]], path: Path) -> float:
    """Write the inputs and our PyTorch outputs for bench_engine.py; returns our seconds per pass."""
    arrays = {}
    start = time.perf_counter()
    with torch.no_grad():
        for i, (ids, mask) in enumerate(batches):
            arrays[f"expected_{i}"] = model(input_ids=ids, attention_mask=mask).last_hidden_state.float().numpy()
            arrays[f"input_ids_{i}"], arrays[f"attention_mask_{i}"] = ids.numpy(), mask.numpy()
    seconds = time.perf_counter() - start
    np.savez(path, **arrays)
    return seconds


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--checkpoint", default=None, help="the base-shaped checkpoint (default: build/bench-ckpt)")
    p.add_argument("--output", default=None, help="where the export goes (default: build/bench-onnx)")
    p.add_argument("--length", type=int, default=8192)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--short", default="4x128", help="COUNTxLENGTH texts for the throughput smoke (default 4x128)")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    ckpt = ensure_checkpoint(args.checkpoint)
    out = Path(args.output) if args.output else REPO / "build" / "bench-onnx"
    onnx = out / "onnx" / "model.onnx"
    if not onnx.is_file():
        from modernbert.onnx_export import export_folder

        log(f"exporting {ckpt} to {out} ...")
        start = time.perf_counter()
        export_folder(ckpt, out, architecture="ModernBertModel")
        log(f"exported in {time.perf_counter() - start:.0f} s")
    from modernbert.model import ModernBertModel

    model = ModernBertModel.from_pretrained(str(ckpt)).eval()
    with tempfile.TemporaryDirectory() as tmp:
        long_case = Path(tmp) / "long.npz"
        ours_long = case(model, [pad_batch(random_texts([args.length], seed=0))], long_case)
        long = engine("ort", onnx, long_case, args.threads, repeats=1, warmup=0)
        count, length = (int(x) for x in args.short.split("x"))
        short_case = Path(tmp) / "short.npz"
        batches = [pad_batch(random_texts(random_lengths(count, length // 2, length, seed=1), seed=1))]
        case(model, batches, short_case)  # warm-up of ours
        ours_short = min(case(model, batches, short_case) for _ in range(3))
        short = engine("ort", onnx, short_case, args.threads, repeats=3, warmup=1)
    tokens = int(batches[0][1].sum())
    print(f"one {args.length}-token text, ONNX Runtime on our export: peak RSS "
          f"{long['peak_rss_bytes'] / 2**30:.2f} GiB, max abs diff vs ours {long['max_abs_diff']:.2e}, "
          f"{long['seconds']:.1f} s (ours {ours_long:.1f} s)")
    print(f"{args.short} texts ({tokens} real tokens): ORT on our export {short['tokens_per_s']:.0f} tokens/s, "
          f"ours (PyTorch) {tokens / ours_short:.0f} tokens/s, max abs diff {short['max_abs_diff']:.2e}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
