"""Inference throughput: this library vs transformers (and ONNX Runtime) on one random base-sized checkpoint.

Both sides load the same folder (a random ModernBertForMaskedLM written once by transformers) as the bare
encoder, ModernBertModel, without the MLM head, and return last_hidden_state. See benchmarks/README.md.

    python benchmarks/bench_inference.py                      # all four workloads, fp32 and bf16
    python benchmarks/bench_inference.py --quick              # small sizes, a smoke test
    python benchmarks/bench_inference.py --workloads a,c --dtypes bf16 --repeats 7 --json out.json
    python benchmarks/bench_inference.py --device cuda --workloads a,b,c --dtypes bf16
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import (  # noqa: E402
    DTYPES,
    PeakMemory,
    Workload,
    attention_flops,
    best_gemm,
    build_workloads,
    emit_report,
    ensure_checkpoint,
    environment,
    fmt_rate,
    gemm_calls,
    gemm_rate,
    interleaved,
    linear_flops_per_token,
    log,
    median,
    mib,
    pack_batch,
    pad_batch,
    print_table,
    quiet_transformers,
    rss_bytes,
    sync,
)

IN_PROCESS_SIDES = ("ours", "ours_packed", "hf")
# Engines that run in their own process (bench_engine.py: runtimes' thread pools fight when mixed with torch's):
# side name -> (bench_engine.py engine, which export it runs). "reference": transformers exported with torch.onnx;
# "ours": `modernbert export onnx` (banded local layers).
ENGINE_SIDES = {
    "ort": ("ort", "reference"),
    "ort_int8": ("ort-int8", "reference"),
    "openvino_fp32": ("openvino-fp32", "reference"),
    "openvino_bf16": ("openvino-bf16", "reference"),
    "ort_ours_export": ("ort", "ours"),
}
ALL_SIDES = (*IN_PROCESS_SIDES, *ENGINE_SIDES)
# An engine whose max abs diff vs transformers exceeds this is reported but not timed (int8 and bf16 round more).
ENGINE_PARITY_TOL = {"ort_int8": 1e-1, "openvino_bf16": 1e-1}
ORT_PARITY_TOL = 1e-3
GEMM_SIDE = "gemm"  # the interleaved GEMM probe's name among the timed callables (not a side of the report)
ORT_MAX_LENGTH = 2048  # longer texts skip the reference export: its full attention does not fit in 24 GB at 8192


# ----- the sides -----


class Side:
    """One implementation: loads the model, prepares a workload's batches, runs one forward call."""

    name = ""

    def prepare(self, wl: Workload) -> list[Any]:
        raise NotImplementedError

    def call(self, inputs: Any) -> Any:
        raise NotImplementedError

    def real_tokens(self, out: Any, inputs: Any) -> torch.Tensor:
        """(real tokens, hidden) fp32 on the CPU, sequences one after another, for parity checks."""
        raise NotImplementedError


class PaddedTorchSide(Side):
    """A torch ModernBertModel fed the padded batch and attention_mask, as a user calls it."""

    def __init__(self, name: str, model: torch.nn.Module, device: torch.device) -> None:
        self.name, self.model, self.device = name, model, device

    def prepare(self, wl: Workload) -> list[Any]:
        return [tuple(t.to(self.device) for t in pad_batch(b)) for b in wl.batches()]

    def call(self, inputs: Any) -> Any:
        ids, mask = inputs
        return self.model(input_ids=ids, attention_mask=mask).last_hidden_state

    def real_tokens(self, out: Any, inputs: Any) -> torch.Tensor:
        return out[inputs[1].bool()].float().cpu()


class PackedOursSide(Side):
    """This library fed packed tokens and cu_seqlens (no padding at all)."""

    def __init__(self, model: torch.nn.Module, device: torch.device) -> None:
        self.name, self.model, self.device = "ours_packed", model, device

    def prepare(self, wl: Workload) -> list[Any]:
        out = []
        for b in wl.batches():
            ids, cu, m = pack_batch(b)
            out.append((ids.to(self.device), cu.to(self.device), m))
        return out

    def call(self, inputs: Any) -> Any:
        ids, cu, m = inputs
        return self.model(input_ids=ids, cu_seqlens=cu, max_seqlen=m).last_hidden_state

    def real_tokens(self, out: Any, inputs: Any) -> torch.Tensor:
        return out.float().cpu()


class _HFWrapper(torch.nn.Module):
    def __init__(self, model: torch.nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        return self.model(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state


def load_ours(ckpt: Path, dtype: torch.dtype, device: torch.device, attn: str) -> torch.nn.Module:
    from modernbert.model import ModernBertModel

    return ModernBertModel.from_pretrained(str(ckpt), dtype=dtype, device=device, attn_implementation=attn).eval()


def load_hf(ckpt: Path, dtype: torch.dtype, device: torch.device, attn: str) -> torch.nn.Module:
    quiet_transformers()
    import transformers

    model = transformers.ModernBertModel.from_pretrained(str(ckpt), attn_implementation=attn, dtype=dtype)
    return model.to(device).eval()


def onnx_available() -> bool:
    try:
        import onnx  # noqa: F401
        import onnxruntime  # noqa: F401
    except ImportError:
        return False
    return True


def export_onnx(ckpt: Path, hf_fp32: torch.nn.Module | None = None) -> Path:
    """The reference (transformers, sdpa, fp32) exported once with the TorchScript exporter, batch and
    sequence axes dynamic; cached at <checkpoint>/onnx/model.onnx."""
    path = ckpt / "onnx" / "model.onnx"
    if path.is_file():
        return path
    log(f"exporting the reference to {path} (once) ...")
    model = hf_fp32 if hf_fp32 is not None else load_hf(ckpt, torch.float32, torch.device("cpu"), "sdpa")
    texts = [torch.randint(0, 50280, (n,)) for n in (300, 200)]  # padded, and longer than the 128 window
    ids, mask = pad_batch(texts)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"model.{os.getpid()}.tmp.onnx")
    axes = {0: "batch", 1: "sequence"}
    with torch.no_grad():
        torch.onnx.export(
            _HFWrapper(model).eval(), (ids, mask), str(tmp), dynamo=False, opset_version=17,
            input_names=["input_ids", "attention_mask"], output_names=["last_hidden_state"],
            dynamic_axes={"input_ids": axes, "attention_mask": axes, "last_hidden_state": axes},
        )
    os.replace(tmp, path)
    return path


def make_side(name: str, args: argparse.Namespace, ckpt: Path, dtype: torch.dtype, device: torch.device,
              cache: dict[str, Any]) -> Side:
    """Build one side; `cache` shares loaded models between sides of one dtype."""
    if name in ("ours", "ours_packed"):
        if "ours" not in cache:
            cache["ours"] = load_ours(ckpt, dtype, device, args.attn)
        model = cache["ours"]
        return PaddedTorchSide("ours", model, device) if name == "ours" else PackedOursSide(model, device)
    if name == "hf":
        if "hf" not in cache:
            cache["hf"] = load_hf(ckpt, dtype, device, args.hf_attn)
        return PaddedTorchSide("hf", cache["hf"], device)
    raise SystemExit(f"unknown side {name!r}; choose from {ALL_SIDES}")


def sides_for(args: argparse.Namespace, dtype_name: str, device: torch.device) -> list[str]:
    """The in-process sides of this run."""
    return [s for s in args.sides if s in IN_PROCESS_SIDES]


def engines_for(args: argparse.Namespace, dtype_name: str, device: torch.device) -> list[str]:
    """The engine sides of this run: CPU, in the fp32 pass (they all run the fp32 export; openvino_bf16 is its
    bf16 precision hint), when onnxruntime (and for OpenVINO, openvino) is installed."""
    if dtype_name != "fp32" or device.type != "cpu" or not onnx_available():
        return []
    engines = [s for s in args.sides if s in ENGINE_SIDES]
    try:
        import openvino  # noqa: F401
    except ImportError:
        engines = [s for s in engines if not s.startswith("openvino")]
    return engines


def export_ours(ckpt: Path) -> Path:
    """Our export (`modernbert export onnx`, ModernBertModel) of the checkpoint, cached beside it."""
    out = ckpt.with_name(ckpt.name + "-banded")
    path = out / "onnx" / "model.onnx"
    if not path.is_file():
        from modernbert.onnx_export import export_folder

        log(f"exporting ours to {path} (once) ...")
        export_folder(ckpt, out, architecture="ModernBertModel")
    return path


def run_engines(engines: list[str], ckpt: Path, hf: Side, inputs: list[Any], wl: Workload, report: dict,
                threads: int) -> list[dict[str, Any]]:
    """Each engine in its own process on the workload's padded batches: parity against transformers' outputs
    first (printed), then the timed passes. Returns one result per engine."""
    import tempfile

    results = []
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "case.npz"
        arrays = {}
        with torch.inference_mode():
            for i, (ids, mask) in enumerate(inputs):
                arrays[f"expected_{i}"] = hf.call((ids, mask)).float().cpu().numpy()
                arrays[f"input_ids_{i}"], arrays[f"attention_mask_{i}"] = ids.cpu().numpy(), mask.cpu().numpy()
        np.savez(data, **arrays)
        for side in engines:
            engine, which = ENGINE_SIDES[side]
            if which == "reference" and max(wl.lengths) > ORT_MAX_LENGTH:
                note = (f"({wl.key}) {side} skipped: texts longer than {ORT_MAX_LENGTH} tokens (the exported reference "
                        "computes every local layer as full attention; ~17 GB for one 8192-token text)")
                log("  " + note)
                report["notes"].append(note)
                continue
            onnx = export_onnx(ckpt) if which == "reference" else export_ours(ckpt)
            cmd = [sys.executable, str(Path(__file__).with_name("bench_engine.py")), "--engine", engine, "--onnx",
                   str(onnx), "--data", str(data), "--threads", str(threads), "--repeats", str(report["repeats"]),
                   "--warmup", str(report["warmup"])]
            log(f"  {side}: own process ...")
            done = subprocess.run(cmd, capture_output=True, text=True)
            if done.returncode:
                note = f"({wl.key}) {side} failed: {done.stderr.strip().splitlines()[-1:]}"
                log("  " + note)
                report["notes"].append(note)
                continue
            result = json.loads(done.stdout.strip().splitlines()[-1])
            log(f"  {side}: max abs diff vs transformers {result['max_abs_diff']:.2e}")
            if side == "openvino_bf16" and "bf" not in result.get("inference_precision", "bf16"):
                note = (f"({wl.key}) openvino_bf16 ran in {result['inference_precision']}: this CPU has no bf16 "
                        "instructions OpenVINO uses, so it ignored the hint")
                log("  " + note)
                report["notes"].append(note)
            if result["max_abs_diff"] >= ENGINE_PARITY_TOL.get(side, ORT_PARITY_TOL):
                note = f"({wl.key}) {side} dropped: max abs diff vs transformers {result['max_abs_diff']:.2e}"
                log("  " + note)
                report["notes"].append(note)
                continue
            results.append({"side": side, **result})
    return results


# ----- measuring -----


def run_workload(side: Side, inputs: list[Any], keep: bool = False) -> list[Any] | None:
    outs = []
    for x in inputs:
        out = side.call(x)
        if keep:
            outs.append(side.real_tokens(out, x))
    return outs if keep else None


def memory_child(args: argparse.Namespace) -> None:
    """In a fresh process: load one side, then the peak RSS of one pass over the workload above the RSS
    after loading. Prints one JSON line."""
    side_name, wl_key, dtype_name = args.child.split(":")
    device = torch.device(args.device)
    ckpt = Path(args.checkpoint)
    (wl,) = build_workloads([wl_key], args.quick, args.batch_a, args.batch_d)
    before = rss_bytes()
    cache: dict[str, Any] = {}
    side = make_side(side_name, args, ckpt, DTYPES[dtype_name], device, cache)
    inputs = side.prepare(wl)
    with torch.inference_mode():
        for model in cache.values():  # page in lazily mapped weights, so they do not count as activations
            for t in model.state_dict().values():
                t.sum()
    loaded = rss_bytes()
    with torch.inference_mode(), PeakMemory(device) as mem:
        run_workload(side, inputs)
    print("CHILD " + json.dumps({"peak_delta": mem.delta, "weights": None if before is None else loaded - before}))


def measure_memory(args: argparse.Namespace, side: str, wl: Workload, dtype_name: str) -> dict[str, Any]:
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child", f"{side}:{wl.key}:{dtype_name}",
           "--checkpoint", str(args.checkpoint), "--batch-a", str(args.batch_a), "--batch-d", str(args.batch_d),
           "--attn", args.attn, "--hf-attn", args.hf_attn, "--device", args.device,
           "--threads", str(torch.get_num_threads())]
    if args.quick:
        cmd.append("--quick")
    log(f"  memory: {side} in a fresh process ...")
    proc = subprocess.run(cmd, capture_output=True, text=True)
    for line in proc.stdout.splitlines():
        if line.startswith("CHILD "):
            return json.loads(line[len("CHILD "):])
    log(f"  memory child for {side} failed (rc {proc.returncode}): {proc.stderr.strip()[-2000:]}")
    return {"peak_delta": None, "weights": None}


# Functions and methods labelled in --profile output, where they exist (missing names are skipped, so the
# list survives refactors). Each label covers the time inside that call, children included.
PROFILE_TARGETS = {
    "modernbert.model": ["apply_rotary_", "ModernBertEmbeddings.forward", "ModernBertAttention.forward",
                         "ModernBertMLP.forward", "ModernBertModel.encode"],
    "modernbert.rotary": ["Rotary.cos_sin"],
    "modernbert.attention": ["SdpaKernel.__call__", "EagerKernel.__call__", "AttnBatch.from_attention_mask",
                             "AttnBatch.pack", "AttnBatch.unpack", "_sdpa_global", "_length_groups", "_sdpa_banded",
                             "_band_mask", "_sdpa_padded", "_eager", "FlashVarlenKernel.__call__"],
    "transformers.models.modernbert.modeling_modernbert": [
        "ModernBertEmbeddings.forward", "ModernBertAttention.forward", "ModernBertMLP.forward",
        "ModernBertRotaryEmbedding.forward", "apply_rotary_pos_emb", "create_bidirectional_mask",
        "create_bidirectional_sliding_window_mask"],
    "torch.nn.modules.normalization": ["LayerNorm.forward"],
}


@contextlib.contextmanager
def profile_labels():
    """Wrap PROFILE_TARGETS in torch.profiler.record_function for the duration of the block."""
    import functools
    import importlib

    from torch.profiler import record_function

    undo = []
    for mod_name, names in PROFILE_TARGETS.items():
        try:
            mod = importlib.import_module(mod_name)
        except ImportError:
            continue
        short = "hf." if mod_name.startswith("transformers") else ""
        for name in names:
            owner_name, _, attr = name.rpartition(".")
            owner = getattr(mod, owner_name, None) if owner_name else mod
            fn = getattr(owner, attr, None) if owner is not None else None
            if fn is None or not callable(fn):
                continue
            label = f"## {short}{name}"

            def wrapped(*a: Any, __fn: Any = fn, __label: str = label, **k: Any) -> Any:
                with record_function(__label):
                    return __fn(*a, **k)

            setattr(owner, attr, functools.wraps(fn)(wrapped))
            undo.append((owner, attr, fn))
    try:
        yield
    finally:
        for owner, attr, fn in reversed(undo):
            setattr(owner, attr, fn)


def profile_pass(side: Side, inputs: list[Any], device: torch.device, top: int) -> dict[str, Any]:
    """One pass under torch.profiler: the labelled functions and the top aten ops by self time."""
    from torch.profiler import ProfilerActivity, profile

    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == "cuda" else [])
    with profile_labels(), torch.inference_mode(), profile(activities=activities) as prof:
        run_workload(side, inputs)
        sync(device)
    events = prof.key_averages()
    attr = "self_device_time_total" if device.type == "cuda" else "self_cpu_time_total"
    total = sum(getattr(e, attr) for e in events) or 1.0
    cpu_total = sum(e.self_cpu_time_total for e in events) or 1.0
    labels = sorted((e for e in events if e.key.startswith("## ")), key=lambda e: -e.cpu_time_total)
    ops = sorted((e for e in events if not e.key.startswith("## ")), key=lambda e: -getattr(e, attr))[:top]
    return {
        "functions": [{"name": e.key[3:], "calls": e.count, "ms": e.cpu_time_total / 1e3,
                       "percent": 100 * e.cpu_time_total / cpu_total} for e in labels],
        "ops": [{"name": e.key, "calls": e.count, "ms": getattr(e, attr) / 1e3,
                 "percent": 100 * getattr(e, attr) / total} for e in ops],
        "time": "device (CUDA) self time" if device.type == "cuda" else "CPU self time",
    }


def print_profile(wl_key: str, dtype_name: str, side: str, prof: dict[str, Any], file: Any) -> None:
    print(f"profile ({wl_key}) {dtype_name} {side}: functions (CPU time incl. children, % of the pass)", file=file)
    for f in prof["functions"]:
        print(f"    {f['name']:<52} {f['calls']:6d} calls {f['ms']:10.1f} ms {f['percent']:5.1f}%", file=file)
    print(f"  top ops ({prof['time']}):", file=file)
    for o in prof["ops"]:
        print(f"    {o['name']:<52} {o['calls']:6d} calls {o['ms']:10.1f} ms {o['percent']:5.1f}%", file=file)


def max_abs_diff(a: list[torch.Tensor], b: list[torch.Tensor]) -> float:
    return max(float((x - y).abs().max()) for x, y in zip(a, b))


def bench(args: argparse.Namespace) -> dict[str, Any]:
    device = torch.device(args.device)
    ckpt = ensure_checkpoint(args.checkpoint)
    args.checkpoint = ckpt
    from modernbert.config import ModernBertConfig

    cfg = ModernBertConfig.from_pretrained(str(ckpt))
    workloads = build_workloads(args.workloads, args.quick, args.batch_a, args.batch_d)
    lin = linear_flops_per_token(cfg)
    report: dict[str, Any] = {
        "environment": environment(device),
        "checkpoint": str(ckpt),
        "model": "ModernBertModel (encoder + final norm, no MLM head), returns last_hidden_state",
        "attn": {"ours": args.attn, "hf": args.hf_attn},
        "linear_flops_per_token": lin,
        "repeats": args.repeats,
        "warmup": args.warmup,
        "workloads": [
            {"key": wl.key, "title": wl.title, "texts": len(wl.lengths), "batch_size": wl.batch_size,
             "real_tokens": wl.real_tokens, "padded_tokens": wl.padded_tokens,
             "attention_flops_per_token": attention_flops(wl.lengths, cfg) / wl.real_tokens}
            for wl in workloads
        ],
        "gemm": [],
        "results": [],
        "notes": [],
        "profiles": [],
    }
    for dtype_name in args.dtypes:
        dtype = DTYPES[dtype_name]
        names = sides_for(args, dtype_name, device)
        log(f"[{dtype_name}] loading {', '.join(names)} ...")
        cache: dict[str, Any] = {}
        sides = {n: make_side(n, args, ckpt, dtype, device, cache) for n in names}
        for wl in workloads:
            log(f"[{dtype_name}] {wl.title}: {wl.real_tokens} real tokens, {wl.padded_tokens} padded")
            gemm_before = gemm_rate(wl.tokens_per_call, cfg, dtype, device, repeats=args.gemm_repeats)
            wl_sides = dict(sides)
            inputs = {n: s.prepare(wl) for n, s in wl_sides.items()}
            with torch.inference_mode():
                # One pass per side, outputs kept: the parity check (and the first warmup).
                real = {n: run_workload(s, inputs[n], keep=True) for n, s in wl_sides.items()}
                diffs = {n: max_abs_diff(real[n], real["hf"]) if "hf" in real else None for n in wl_sides}
                del real
                active = dict(wl_sides)
                fns = {n: [(lambda s=s, x=x: s.call(x)) for x in inputs[n]] for n, s in active.items()}
                fns[GEMM_SIDE] = gemm_calls(wl.batches(), cfg, dtype, device, gemm_before["library"])
                times = interleaved(fns, args.repeats, max(args.warmup - 1, 0), device, f"[{dtype_name}] ({wl.key})")
            gemm = best_gemm(gemm_before, gemm_rate(wl.tokens_per_call, cfg, dtype, device, repeats=args.gemm_repeats))
            # The interleaved probe: one layer's GEMMs per call, run beside the sides; x layers = a pass's GEMMs.
            gemm_pass = [t * cfg.num_hidden_layers for t in times.pop(GEMM_SIDE)]
            gemm["interleaved_flops_per_s"] = wl.real_tokens * lin / median(gemm_pass)
            gemm["interleaved_pass_seconds"] = gemm_pass
            report["gemm"].append({"workload": wl.key, "dtype": dtype_name, **gemm})
            if args.profile:
                for n, s in active.items():
                    log(f"  profiling {n} ...")
                    prof = profile_pass(s, inputs[n], device, args.profile)
                    report["profiles"].append({"workload": wl.key, "dtype": dtype_name, "side": n, **prof})
                    print_profile(wl.key, dtype_name, n, prof, sys.stderr)
            mem: dict[str, dict[str, Any]] = {}
            for n, s in active.items():
                if args.memory == "off":
                    mem[n] = {"peak_delta": None, "weights": None}
                elif device.type == "cuda":
                    with torch.inference_mode(), PeakMemory(device) as pm:
                        run_workload(s, inputs[n])
                    mem[n] = {"peak_delta": pm.delta, "weights": None}
                else:
                    mem[n] = measure_memory(args, n, wl, dtype_name)
            hf_rate = wl.real_tokens / median(times["hf"]) if "hf" in times else None
            for n in active:
                t = median(times[n])
                rate = wl.real_tokens / t
                # Repeat i of every side ran interleaved, call by call: its ratio pairs passes run side by side.
                paired = [h / x for h, x in zip(times["hf"], times[n])] if hf_rate else None
                report["results"].append({
                    "workload": wl.key, "dtype": dtype_name, "side": n,
                    "seconds_median": t, "seconds": times[n],
                    "tokens_per_s": rate,
                    "ratio_vs_hf": rate / hf_rate if hf_rate else None,
                    "ratio_vs_hf_per_repeat": paired,
                    "ratio_vs_hf_best": min(times["hf"]) / min(times[n]) if hf_rate else None,
                    "peak_mem_delta_bytes": mem[n]["peak_delta"],
                    "weights_rss_bytes": mem[n]["weights"],
                    "gemm_roofline_fraction": rate * lin / gemm["flops_per_s"],
                    "gemm_roofline_fraction_interleaved": median(gemm_pass) / t,
                    "max_abs_diff_vs_hf": diffs[n],
                })
            engines = engines_for(args, dtype_name, device)
            if engines and "hf" in wl_sides:
                for r in run_engines(engines, ckpt, wl_sides["hf"], inputs["hf"], wl, report, torch.get_num_threads()):
                    report["results"].append({
                        "workload": wl.key, "dtype": dtype_name, "side": r["side"],
                        "seconds_median": r["seconds"], "seconds": [r["seconds"]],
                        "tokens_per_s": r["tokens_per_s"],
                        "ratio_vs_hf": r["tokens_per_s"] / hf_rate if hf_rate else None,
                        "ratio_vs_hf_per_repeat": None, "ratio_vs_hf_best": None,
                        "peak_mem_delta_bytes": None, "weights_rss_bytes": None,
                        "engine_peak_rss_bytes": r["peak_rss_bytes"],
                        "gemm_roofline_fraction": r["tokens_per_s"] * lin / gemm["flops_per_s"],
                        "gemm_roofline_fraction_interleaved": None,
                        "max_abs_diff_vs_hf": r["max_abs_diff"],
                    })
            del inputs, fns
            gc.collect()
        del sides, cache
        gc.collect()
    return report


# ----- output -----


def print_report(report: dict[str, Any], file: Any) -> None:
    env = report["environment"]
    print(f"ModernBERT inference benchmark: {report['model']}", file=file)
    print("  " + ", ".join(f"{k} {v}" for k, v in env.items()), file=file)
    print(f"  attention: ours={report['attn']['ours']}, transformers={report['attn']['hf']}; "
          f"median of {report['repeats']} interleaved repeats after {report['warmup']} warmup; "
          f"checkpoint {report['checkpoint']}", file=file)
    print(f"  linear FLOPs per real token: {report['linear_flops_per_token'] / 1e6:.1f} M "
          "(2 x encoder linear weights; attention reported separately, not in the roofline)", file=file)
    for w in report["workloads"]:
        print(f"  {w['title']}: {w['real_tokens']} real tokens, {w['padded_tokens']} after padding; "
              f"ideal attention {w['attention_flops_per_token'] / 1e6:.1f} MFLOP/token", file=file)
    gemm = {(g["workload"], g["dtype"]): g for g in report["gemm"]}
    rows = []
    for r in report["results"]:
        g = gemm[(r["workload"], r["dtype"])]
        rows.append([
            r["workload"], r["dtype"], r["side"],
            fmt_rate(r["tokens_per_s"]),
            "-" if r["ratio_vs_hf"] is None else f"{r['ratio_vs_hf']:.2f}",
            "-" if not r["ratio_vs_hf_per_repeat"] else
            f"{min(r['ratio_vs_hf_per_repeat']):.2f}-{max(r['ratio_vs_hf_per_repeat']):.2f}",
            "-" if r["ratio_vs_hf_best"] is None else f"{r['ratio_vs_hf_best']:.2f}",
            f"{r['seconds_median'] * 1e3:.1f}",
            mib(r["peak_mem_delta_bytes"]) if "engine_peak_rss_bytes" not in r else
            f"{mib(r['engine_peak_rss_bytes'])} rss",
            f"{100 * r['gemm_roofline_fraction']:.1f}",
            "-" if r["gemm_roofline_fraction_interleaved"] is None else
            f"{100 * r['gemm_roofline_fraction_interleaved']:.1f}",
            f"{g['flops_per_s'] / 1e9:.0f}",
            f"{g['interleaved_flops_per_s'] / 1e9:.0f}",
            "-" if r["max_abs_diff_vs_hf"] is None else f"{r['max_abs_diff_vs_hf']:.1e}",
        ])
    print(file=file)
    print_table(rows, ["wl", "dtype", "side", "tok/s", "x hf", "paired", "best", "ms/pass", "peak MiB", "%roof",
                       "%roof il", "GEMM GF/s", "il GF/s", "maxdiff"], left=3, file=file)
    print(file=file)
    print("tok/s: real (non-padding) tokens per second over the whole workload; x hf: tok/s / transformers' "
          "tok/s (medians); paired: lowest-highest ratio of one repeat's passes, run interleaved; best: ratio of the "
          "fastest passes; ms/pass: median wall time of one pass over the workload; peak MiB: peak memory above the "
          "level after loading (CPU: VmHWM - VmRSS in a fresh process per side; CUDA: max_memory_allocated); "
          "%roof: tok/s x linear FLOPs/token / GEMM GF/s; GEMM GF/s: torch.matmul on the model's four linear "
          "shapes at the workload's mean real tokens per call, the faster of a probe before and after the timed "
          "passes; il GF/s and %roof il: the same GEMMs, one layer's per call, timed interleaved with the sides "
          "(x layers: a pass's GEMM time under the same drift), as a fraction of the median pass; maxdiff: max "
          "|last_hidden_state - transformers'| over real tokens. Engines (ort*, openvino*): own process, not "
          "interleaved; peak MiB is that process's whole peak RSS.", file=file)
    for note in report["notes"]:
        print("note: " + note, file=file)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--workloads", default="a,b,c,d", help="comma list of a,b,c,d (default all)")
    p.add_argument("--dtypes", default="fp32,bf16", help="comma list of fp32,bf16,fp16 (default fp32,bf16)")
    p.add_argument("--sides", default=",".join(ALL_SIDES),
                   help="comma list of ours,ours_packed,hf and the engines ort,ort_int8,openvino_fp32,openvino_bf16"
                        " (the reference exported with torch.onnx) and ort_ours_export (our export); engines run in "
                        "their own process, in the fp32 pass on CPU, when onnxruntime / openvino are installed")
    p.add_argument("--repeats", type=int, default=None, help="timed repetitions per side (default 5, --quick 3)")
    p.add_argument("--warmup", type=int, default=1, help="untimed passes per side, >= 1 (the first checks parity)")
    p.add_argument("--gemm-repeats", type=int, default=5, help="repetitions of each GEMM in the roofline probe")
    p.add_argument("--threads", type=int, default=None, help="torch and ONNX Runtime intra-op threads")
    p.add_argument("--no-tune", action="store_true",
                   help="skip modernbert.runtime.configure_cpu() (keeps freed activations in the heap; all sides)")
    p.add_argument("--quick", action="store_true", help="small sizes, for smoke tests")
    p.add_argument("--batch-a", type=int, default=32,
                   help="texts per call in workload (a) (default 32: the whole workload in one padded call)")
    p.add_argument("--batch-d", type=int, default=256,
                   help="queries per call in workload (d) (default 256: the whole workload in one padded call)")
    p.add_argument("--device", default="cpu", help="cpu or cuda (default cpu)")
    p.add_argument("--attn", default="sdpa", help="our attn_implementation: sdpa, eager, flash_attention_2")
    p.add_argument("--hf-attn", default="sdpa", help="transformers' attn_implementation (default sdpa)")
    p.add_argument("--memory", choices=("subprocess", "off"), default="subprocess",
                   help="peak memory per side in a fresh process (CPU; default) or not at all")
    p.add_argument("--profile", type=int, nargs="?", const=15, default=0, metavar="N",
                   help="after timing, profile one pass per torch side: labelled functions and the top N ops "
                        "(default 15), printed to stderr and kept in --json")
    p.add_argument("--checkpoint", default=None, help="checkpoint folder (default <repo>/build/bench-ckpt)")
    p.add_argument("--json", nargs="?", const="-", default=None, metavar="PATH",
                   help="write the results as JSON to PATH, or to stdout (the table then goes to stderr)")
    p.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    args.workloads = [w for w in args.workloads.split(",") if w]
    args.dtypes = [d for d in args.dtypes.split(",") if d]
    args.sides = [s for s in args.sides.split(",") if s]
    for d in args.dtypes:
        if d not in DTYPES:
            p.error(f"unknown dtype {d!r}; choose from {', '.join(DTYPES)}")
    for s in args.sides:
        if s not in ALL_SIDES:
            p.error(f"unknown side {s!r}; choose from {', '.join(ALL_SIDES)}")
    if any(s in ENGINE_SIDES for s in args.sides) and "hf" not in args.sides:
        p.error("the engines are checked against transformers before they are timed: add hf to --sides")
    if args.repeats is None:
        args.repeats = 3 if args.quick else 5
    if args.repeats < 1 or args.warmup < 1:
        p.error("--repeats and --warmup must be >= 1")
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    if not args.no_tune:
        # Process-wide, so it applies to every side alike (ours, transformers, the GEMM probe).
        from modernbert.runtime import configure_cpu

        configure_cpu()
    quiet_transformers()
    torch.manual_seed(0)
    np.random.seed(0)
    if args.child:
        memory_child(args)
        return
    emit_report(bench(args), args.json, print_report)


if __name__ == "__main__":
    main()
