"""One non-torch engine on one ONNX file, in its own process: parity against saved outputs, then throughput.

    python benchmarks/bench_engine.py --engine ort --onnx M.onnx --data case.npz --threads 2 [--repeats 3]

The parent (bench_inference.py, onnx_memory.py) writes case.npz: `input_ids_<i>`, `attention_mask_<i>` (int64
(batch, length)) and `expected_<i>` (last_hidden_state of the PyTorch side, fp32) for each batch i. This
process imports no torch, so the engine's thread pool has the CPU alone. It prints one JSON line: engine,
max_abs_diff over real tokens, seconds per pass over all batches (median of --repeats), real tokens, tokens/s,
and its peak RSS.

Engines: "ort" (ONNX Runtime fp32), "ort-int8" (ONNX Runtime on onnxruntime.quantization.quantize_dynamic's
int8 weights, written next to the input once), "openvino-fp32" and "openvino-bf16" (OpenVINO CPU with the
f32 / bf16 inference precision hint).
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

ENGINES = ("ort", "ort-int8", "openvino-fp32", "openvino-bf16")
PRECISION: dict[str, str] = {}  # what the engine says it computes in, when it says


def _ort(path: Path, threads: int) -> Any:
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    return lambda ids, mask: session.run(None, {"input_ids": ids, "attention_mask": mask})[0]


def _int8(path: Path) -> Path:
    out = path.with_name(path.stem + ".int8.onnx")
    if not out.is_file():
        from onnxruntime.quantization import QuantType, quantize_dynamic

        tmp = out.with_name(out.name + ".tmp")
        quantize_dynamic(str(path), str(tmp), weight_type=QuantType.QInt8)
        tmp.replace(out)
    return out


def _openvino(path: Path, threads: int, precision: str) -> Any:
    try:
        import openvino as ov
    except ImportError:
        sys.exit("the openvino engines need openvino: pip install 'modernbert[bench]'")
    core = ov.Core()
    config = {"INFERENCE_NUM_THREADS": threads, "INFERENCE_PRECISION_HINT": precision,
              "PERFORMANCE_HINT": "LATENCY"}
    compiled = core.compile_model(core.read_model(str(path)), "CPU", config)
    request = compiled.create_infer_request()
    output = compiled.outputs[0]
    # OpenVINO takes the hint only where the CPU has bf16 instructions; say what it runs.
    PRECISION["inference_precision"] = str(compiled.get_property("INFERENCE_PRECISION_HINT"))

    def call(ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
        request.infer({"input_ids": ids, "attention_mask": mask})
        return request.get_tensor(output).data.copy()

    return call


def _peak_rss() -> int:
    """This process's peak RSS in bytes: VmHWM (getrusage's ru_maxrss would include the parent's, from fork)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def load(engine: str, path: Path, threads: int) -> Any:
    if engine == "ort":
        return _ort(path, threads)
    if engine == "ort-int8":
        return _ort(_int8(path), threads)
    if engine in ("openvino-fp32", "openvino-bf16"):
        return _openvino(path, threads, "f32" if engine.endswith("fp32") else "bf16")
    raise SystemExit(f"unknown engine {engine!r}; choose one of {', '.join(ENGINES)}")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--engine", required=True, choices=ENGINES)
    p.add_argument("--onnx", required=True, type=Path)
    p.add_argument("--data", required=True, type=Path)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--warmup", type=int, default=1)
    args = p.parse_args(argv)
    data = np.load(args.data)
    batches = [(data[f"input_ids_{i}"], data[f"attention_mask_{i}"], data[f"expected_{i}"])
               for i in range(sum(k.startswith("input_ids_") for k in data.files))]
    call = load(args.engine, args.onnx, args.threads)
    diff = 0.0
    for ids, mask, expected in batches:  # parity first
        got = np.asarray(call(ids, mask), dtype=np.float32)
        real = mask.astype(bool)
        diff = max(diff, float(np.abs(got[real] - expected[real]).max()))
    for _ in range(args.warmup):
        for ids, mask, _ in batches:
            call(ids, mask)
    times = []
    for _ in range(args.repeats):
        start = time.perf_counter()
        for ids, mask, _ in batches:
            call(ids, mask)
        times.append(time.perf_counter() - start)
    tokens = int(sum(m.sum() for _, m, _ in batches))
    seconds = statistics.median(times)
    peak = _peak_rss()
    print(json.dumps({"engine": args.engine, "max_abs_diff": diff, "seconds": seconds, "tokens": tokens,
                      "tokens_per_s": tokens / seconds, "peak_rss_bytes": peak, **PRECISION}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
