"""Shared pieces of the benchmarks: the random base-sized checkpoint, workloads, FLOP counts, timing, memory.

Nothing here imports `modernbert` or `transformers` at module level, so a memory-measuring child process
pays only for the side it loads.
"""

from __future__ import annotations

import gc
import math
import os
import statistics
import sys
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
DEFAULT_CHECKPOINT = REPO / "build" / "bench-ckpt"

# ModernBERT's special ids (bos/cls, eos/sep, pad, mask) as published; the random checkpoint uses the same.
CLS_ID, SEP_ID, PAD_ID, MASK_ID = 50281, 50282, 50283, 50284
ORDINARY_IDS = 50280  # random "text" ids are drawn from [0, ORDINARY_IDS)

DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}


def log(*args: Any) -> None:
    """Progress messages go to stderr so stdout stays clean for --json."""
    print(*args, file=sys.stderr, flush=True)


def emit_report(report: dict, json_path: str | None, print_report: Callable[[dict, Any], None]) -> None:
    """The table on stdout (stderr when the JSON goes to stdout), and the JSON if --json was given."""
    import json
    from pathlib import Path

    to_stdout = json_path == "-"
    print_report(report, sys.stderr if to_stdout else sys.stdout)
    if json_path:
        text = json.dumps(report, indent=2)
        if to_stdout:
            print(text)
        else:
            Path(json_path).write_text(text + "\n")
            log(f"wrote {json_path}")


def quiet_transformers() -> None:
    """Silence transformers' load reports (unused MLM-head weights when loading the encoder, etc.)."""
    warnings.filterwarnings("ignore")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    try:
        import transformers

        transformers.logging.set_verbosity_error()
        try:
            transformers.utils.logging.disable_progress_bar()
        except AttributeError:
            pass
    except ImportError:
        pass


# ----- the checkpoint -----


def ensure_checkpoint(folder: str | os.PathLike | None = None, seed: int = 0) -> Path:
    """A random ModernBERT-base-shaped ModernBertForMaskedLM written by transformers.save_pretrained.

    Written once (fp32, transformers' own init, seed 0) and reused when config.json and model.safetensors are
    already there. Default: <repo>/build/bench-ckpt (git-ignored).
    """
    folder = Path(folder) if folder is not None else DEFAULT_CHECKPOINT
    if (folder / "config.json").is_file() and (folder / "model.safetensors").is_file():
        return folder
    quiet_transformers()
    import transformers

    log(f"writing the random base-sized checkpoint to {folder} (once) ...")
    torch.manual_seed(seed)
    config = transformers.ModernBertConfig()  # vocab 50368, hidden 768, 22 layers, 12 heads, window 128
    model = transformers.ModernBertForMaskedLM(config)
    tmp = folder.with_name(f"{folder.name}.tmp-{os.getpid()}")
    model.save_pretrained(tmp)
    try:
        os.replace(tmp, folder)
    except OSError:  # another process won the race; keep its folder
        import shutil

        shutil.rmtree(tmp, ignore_errors=True)
    del model
    gc.collect()
    return folder


# ----- inputs -----


def random_lengths(n: int, lo: int, hi: int, seed: int) -> list[int]:
    """n lengths uniform in [lo, hi] (inclusive), fixed by seed."""
    return np.random.default_rng(seed).integers(lo, hi + 1, size=n).tolist()


def random_texts(lengths: list[int], seed: int) -> list[torch.Tensor]:
    """One 1-D int64 tensor per length: [CLS] random ordinary ids [SEP]."""
    gen = torch.Generator().manual_seed(seed)
    out = []
    for n in lengths:
        ids = torch.randint(0, ORDINARY_IDS, (n,), generator=gen)
        ids[0] = CLS_ID
        if n > 1:
            ids[-1] = SEP_ID
        out.append(ids)
    return out


def pad_batch(texts: list[torch.Tensor], pad_id: int = PAD_ID) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-padded (batch, max_len) input_ids and a 0/1 int64 attention_mask, as a tokenizer returns them."""
    length = max(len(t) for t in texts)
    ids = torch.full((len(texts), length), pad_id, dtype=torch.long)
    mask = torch.zeros((len(texts), length), dtype=torch.long)
    for i, t in enumerate(texts):
        ids[i, : len(t)] = t
        mask[i, : len(t)] = 1
    return ids, mask


def pack_batch(texts: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor, int]:
    """Packed (tokens,) input_ids, cu_seqlens (batch + 1,) int32 and max_seqlen."""
    lens = torch.tensor([len(t) for t in texts], dtype=torch.int32)
    cu = torch.nn.functional.pad(torch.cumsum(lens, 0, dtype=torch.int32), (1, 0))
    return torch.cat(texts), cu, int(lens.max())


# ----- workloads -----


@dataclass
class Workload:
    key: str  # a, b, c, d
    title: str  # one line for the table
    lengths: list[int]  # tokens of each text (including [CLS] and [SEP])
    batch_size: int  # texts per forward call, same on every side, in this order (no sorting)
    seed: int = 0
    texts: list[torch.Tensor] = field(default_factory=list, repr=False)

    def __post_init__(self) -> None:
        if not self.texts:
            self.texts = random_texts(self.lengths, self.seed)

    @property
    def real_tokens(self) -> int:
        return sum(self.lengths)

    def batches(self) -> list[list[torch.Tensor]]:
        return [self.texts[i : i + self.batch_size] for i in range(0, len(self.texts), self.batch_size)]

    @property
    def padded_tokens(self) -> int:
        return sum(len(b) * max(len(t) for t in b) for b in self.batches())

    @property
    def tokens_per_call(self) -> int:
        return round(self.real_tokens / len(self.batches()))


def build_workloads(keys: list[str], quick: bool, batch_a: int, batch_d: int) -> list[Workload]:
    """(a) variable-length texts, (b) full 512 batch, (c) one long text, (d) short queries.

    --quick shrinks every workload (still crossing the 128-token window) for smoke tests.
    """
    if quick:
        spec = {
            "a": ("8 texts, 32-256 tok", random_lengths(8, 32, 256, seed=1), min(batch_a, 4)),
            "b": ("2 x 256 tok", [256] * 2, 2),
            "c": ("1 x 1024 tok", [1024], 1),
            "d": ("32 queries, 8-32 tok", random_lengths(32, 8, 32, seed=4), min(batch_d, 16)),
        }
    else:
        spec = {
            "a": ("32 texts, 32-512 tok", random_lengths(32, 32, 512, seed=1), batch_a),
            "b": ("8 x 512 tok", [512] * 8, 8),
            "c": ("1 x 8192 tok", [8192], 1),
            "d": ("256 queries, 8-32 tok", random_lengths(256, 8, 32, seed=4), batch_d),
        }
    out = []
    for key in keys:
        if key not in spec:
            raise SystemExit(f"unknown workload {key!r}; choose from a, b, c, d")
        title, lengths, bs = spec[key]
        out.append(Workload(key=key, title=f"({key}) {title}, batch {bs}", lengths=lengths, batch_size=bs,
                            seed=100 + ord(key)))
    return out


# ----- FLOPs -----


def gemm_shapes(cfg: Any) -> list[tuple[str, int, int]]:
    """(name, in_features, out_features) of the four linear layers of one encoder layer."""
    h, i = cfg.hidden_size, cfg.intermediate_size
    return [("Wqkv", h, 3 * h), ("attn.Wo", h, h), ("mlp.Wi", h, 2 * i), ("mlp.Wo", i, h)]


def linear_flops_per_token(cfg: Any) -> int:
    """2 x (weights of every encoder linear layer): the multiply-adds one real token costs, MLM head excluded."""
    return 2 * cfg.num_hidden_layers * sum(a * b for _, a, b in gemm_shapes(cfg))


def head_flops_per_token(cfg: Any) -> int:
    """The MLM head (dense + tied decoder) per predicted token."""
    return 2 * (cfg.hidden_size * cfg.hidden_size + cfg.hidden_size * cfg.vocab_size)


def attention_flops(lengths: list[int], cfg: Any) -> int:
    """Ideal attention FLOPs (QK^T and PV, 4 x head_dim x heads per query-key pair) with exact masks:
    global layers see the whole sequence, local layers only |i - j| <= local_attention // 2."""
    w = cfg.local_attention // 2
    n_global = sum(1 for t in _layer_types(cfg) if t == "full_attention")
    n_local = cfg.num_hidden_layers - n_global
    pairs_global = sum(n * n for n in lengths)
    pairs_local = 0
    for n in set(lengths):
        i = np.arange(n)
        keys = np.minimum(i + w, n - 1) - np.maximum(i - w, 0) + 1
        pairs_local += int(keys.sum()) * lengths.count(n)
    return 4 * cfg.hidden_size * (n_global * pairs_global + n_local * pairs_local)


def _layer_types(cfg: Any) -> list[str]:
    types = getattr(cfg, "layer_types", None)
    if types:
        return list(types)
    n = cfg.global_attn_every_n_layers
    return ["full_attention" if i % n == 0 else "sliding_attention" for i in range(cfg.num_hidden_layers)]


# ----- timing -----


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def interleaved(
    fns: dict[str, Callable[[], Any] | list[Callable[[], Any]]],
    repeats: int,
    warmup: int,
    device: torch.device,
    label: str = "",
) -> dict[str, list[float]]:
    """Wall seconds of one pass of each side, `repeats` times, after `warmup` untimed passes of each.

    A side is one callable (a pass) or a list of them (the calls of a pass, one per batch). Sides are
    interleaved call by call, the order rotated at every call, so that the drift of a shared machine falls on
    every side alike; a pass's time is the sum of its calls' times.
    """
    names = list(fns)
    steps = {n: f if isinstance(f, list) else [f] for n, f in fns.items()}
    n_steps = len(next(iter(steps.values())))
    if any(len(s) != n_steps for s in steps.values()):
        raise ValueError("every side needs the same number of calls per pass")
    for w in range(warmup):
        for name in names:
            log(f"  {label} warmup {w + 1}/{warmup}: {name}")
            for step in steps[name]:
                step()
    sync(device)
    times: dict[str, list[float]] = {n: [] for n in names}
    for r in range(repeats):
        spent = dict.fromkeys(names, 0.0)
        for i in range(n_steps):
            k = (r + i) % len(names)
            for name in names[k:] + names[:k]:
                sync(device)
                t0 = time.perf_counter()
                steps[name][i]()
                sync(device)
                spent[name] += time.perf_counter() - t0
        for name in names:
            times[name].append(spent[name])
        log(f"  {label} repeat {r + 1}/{repeats}: " + ", ".join(f"{n} {times[n][-1]:.3f}s" for n in names))
    return times


def median(xs: list[float]) -> float:
    return statistics.median(xs) if xs else float("nan")


GEMM_LIBRARIES = ("mkl", "onednn")  # CPU: torch.matmul (MKL for fp32) and oneDNN with prepacked weights


def _gemm_fn(x: torch.Tensor, w: torch.Tensor, library: str) -> Callable[[], Any]:
    if library == "onednn":  # the weight reordered once into oneDNN's blocked layout, as inductor's freezing does
        packed = torch.ops.mkldnn._reorder_linear_weight(w, x.shape[0])
        return lambda: torch.ops.mkldnn._linear_pointwise(x, packed, None, "none", [], "")
    return lambda: torch.matmul(x, w.t())


def gemm_rate(tokens: int, cfg: Any, dtype: torch.dtype, device: torch.device, repeats: int = 5) -> dict[str, Any]:
    """Achieved FLOP/s of the model's four GEMM shapes with `tokens` rows, median of `repeats` after 2 warmups,
    through each GEMM library (`GEMM_LIBRARIES` on CPU: torch.matmul(x, W.t()), the nn.Linear layout, and
    oneDNN with prepacked weights; torch.matmul on CUDA), the libraries interleaved. `flops_per_s` is the faster
    library's one-layer mix (total FLOPs of the four GEMMs / total of their median times); `libraries` has
    each library's mix."""
    gen = torch.Generator(device="cpu").manual_seed(0)
    libraries = GEMM_LIBRARIES if device.type == "cpu" and torch.backends.mkldnn.is_available() else ("mkl",)
    per_shape: dict[str, dict[str, float]] = {lib: {} for lib in libraries}
    totals = {lib: [0.0, 0.0] for lib in libraries}
    with torch.inference_mode():
        for name, fan_in, fan_out in gemm_shapes(cfg):
            x = torch.randn(tokens, fan_in, generator=gen).to(device, dtype)
            w = torch.randn(fan_out, fan_in, generator=gen).to(device, dtype)
            fns = {lib: _gemm_fn(x, w, lib) for lib in libraries}
            ts: dict[str, list[float]] = {lib: [] for lib in libraries}
            for k in range(repeats + 2):
                for lib, fn in fns.items():
                    sync(device)
                    t0 = time.perf_counter()
                    fn()
                    sync(device)
                    if k >= 2:
                        ts[lib].append(time.perf_counter() - t0)
            flops = 2.0 * tokens * fan_in * fan_out
            for lib in libraries:
                t = median(ts[lib])
                per_shape[lib][f"{tokens}x{fan_in}@{fan_in}x{fan_out} ({name})"] = flops / t
                totals[lib][0] += flops
                totals[lib][1] += t
    rates = {lib: f / t for lib, (f, t) in totals.items()}
    best = max(rates, key=rates.get)
    return {"tokens": tokens, "flops_per_s": rates[best], "library": best, "libraries": rates,
            "per_shape_flops_per_s": per_shape[best]}


def gemm_calls(
    batches: list[list[torch.Tensor]], cfg: Any, dtype: torch.dtype, device: torch.device, library: str = "mkl"
) -> list[Callable[[], Any]]:
    """One call per batch of a workload: one layer's four linear GEMMs (through `library`, as in `gemm_rate`) on
    that batch's real tokens. Timed interleaved with the sides, their pass time x layers is what the model's
    linear layers alone cost under the same drift of the machine."""
    gen = torch.Generator(device="cpu").manual_seed(0)
    weights = [torch.randn(out, fan_in, generator=gen).to(device, dtype) for _, fan_in, out in gemm_shapes(cfg)]
    calls = []
    for texts in batches:
        tokens = sum(len(t) for t in texts)
        fns = [_gemm_fn(torch.randn(tokens, w.shape[1], generator=gen).to(device, dtype), w, library)
               for w in weights]
        calls.append(lambda fns=fns: [f() for f in fns])
    return calls


def best_gemm(*probes: dict[str, Any]) -> dict[str, Any]:
    """The faster of several gemm_rate probes (taken before and after the timed runs), with all rates kept."""
    best = dict(max(probes, key=lambda g: g["flops_per_s"]))
    best["probes_flops_per_s"] = [g["flops_per_s"] for g in probes]
    return best


# ----- memory -----


def _status_kib(field_name: str) -> int | None:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field_name + ":"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def rss_bytes() -> int | None:
    kib = _status_kib("VmRSS")
    return None if kib is None else kib * 1024


def peak_rss_bytes() -> int | None:
    kib = _status_kib("VmHWM")
    return None if kib is None else kib * 1024


def reset_peak_rss() -> bool:
    """Reset the kernel's peak-RSS mark (VmHWM) to the current RSS (Linux >= 4.0). False if unsupported."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


class PeakMemory:
    """Peak memory above the level at entry: VmHWM - VmRSS on CPU (needs a fresh process to be meaningful,
    since freed memory the allocator keeps is not counted again), max_memory_allocated on CUDA."""

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.delta: int | None = None

    def __enter__(self) -> PeakMemory:
        gc.collect()
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            torch.cuda.reset_peak_memory_stats(self.device)
            self.base = torch.cuda.memory_allocated(self.device)
        else:
            self.ok = reset_peak_rss()
            self.base = rss_bytes()
        return self

    def __exit__(self, *exc: Any) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            self.delta = torch.cuda.max_memory_allocated(self.device) - self.base
        elif self.ok and self.base is not None:
            peak = peak_rss_bytes()
            self.delta = None if peak is None else peak - self.base


def mib(x: int | float | None) -> str:
    return "-" if x is None else f"{x / 2**20:.0f}"


def fmt_rate(x: float | None) -> str:
    if x is None or not math.isfinite(x):
        return "-"
    return f"{x:,.0f}"


def environment(device: torch.device) -> dict[str, Any]:
    import platform

    env: dict[str, Any] = {
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
        "machine": platform.machine(),
        "device": str(device),
    }
    try:
        import transformers

        env["transformers"] = transformers.__version__
    except ImportError:
        pass
    try:
        import onnxruntime

        env["onnxruntime"] = onnxruntime.__version__
    except ImportError:
        pass
    env["git"] = _git_revision()
    if device.type == "cuda":
        env["gpu"] = torch.cuda.get_device_name(device)
    else:
        try:
            with open("/proc/cpuinfo") as f:
                env["cpu"] = next((ln.split(":", 1)[1].strip() for ln in f if ln.startswith("model name")), None)
        except OSError:
            pass
    return env


def _git_revision() -> str | None:
    """The repository's commit, with "+dirty" when src/ has uncommitted changes (None outside git)."""
    import subprocess

    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True,
                              timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "src"], cwd=REPO, capture_output=True,
                               text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return (head + ("+dirty" if dirty else "")) or None


def print_table(rows: list[list[str]], header: list[str], left: int = 1, file: Any = None) -> None:
    """A plain text table; the first `left` columns are left-aligned, the rest right-aligned."""
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    out = file or sys.stdout

    def line(r: list[str]) -> str:
        cells = (str(c).ljust(w) if i < left else str(c).rjust(w) for i, (c, w) in enumerate(zip(r, widths)))
        return "  ".join(cells).rstrip()

    print(line(header), file=out)
    print("  ".join("-" * w for w in widths), file=out)
    for r in rows:
        print(line(r), file=out)
