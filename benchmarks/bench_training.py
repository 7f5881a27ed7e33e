"""MLM training throughput: this library vs transformers on one random base-sized checkpoint.

One training step = forward (MLM head, sparse prediction: logits only at the ~30 % masked positions) +
backward + AdamW step (fused by default, --optimizer) + zero_grad(set_to_none=True); --optimizer none drops
the AdamW step. Batches are
variable-length texts, like inference workload (a). Sides:

    ours_padded   modernbert.ModernBertForMaskedLM fed the padded batch, attention_mask and padded labels
    ours_packed   the same model fed packed tokens: input_ids (tokens,), cu_seqlens, max_seqlen, labels (tokens,)
    hf            transformers.ModernBertForMaskedLM (attn_implementation="sdpa"), padded batch

Precisions: fp32 (fp32 weights and math) and bf16 (fp32 weights, torch.autocast(dtype=torch.bfloat16)).

    python benchmarks/bench_training.py --quick
    python benchmarks/bench_training.py --dtypes bf16 --repeats 5 --optimizer none --json train.json
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import sys
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import (  # noqa: E402
    MASK_ID,
    PeakMemory,
    Workload,
    best_gemm,
    emit_report,
    ensure_checkpoint,
    environment,
    fmt_rate,
    gemm_rate,
    head_flops_per_token,
    interleaved,
    linear_flops_per_token,
    log,
    median,
    mib,
    pack_batch,
    pad_batch,
    print_table,
    quiet_transformers,
    random_lengths,
)

ALL_SIDES = ("ours_padded", "ours_packed", "hf")
MASK_RATE = 0.3


def build_workload(args: argparse.Namespace) -> Workload:
    if args.quick:
        n, lo, hi, bs = 8, 32, 256, min(args.batch_size, 4)
    else:
        n, lo, hi, bs = args.texts, 32, 512, args.batch_size
    lengths = random_lengths(n, lo, hi, seed=1)
    return Workload(key="train", title=f"{n} texts, {lo}-{hi} tok, batch {bs}", lengths=lengths, batch_size=bs,
                    seed=100 + ord("a"))


def mask_batch(texts: list[torch.Tensor], seed: int) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """~30 % of the real tokens (not [CLS]/[SEP]) become [MASK] and get a label; every other label is -100."""
    gen = torch.Generator().manual_seed(seed)
    inputs, labels = [], []
    for t in texts:
        chosen = torch.rand(len(t), generator=gen) < MASK_RATE
        chosen[0] = False
        chosen[-1] = False
        if not chosen.any():
            chosen[len(t) // 2] = True
        labels.append(torch.where(chosen, t, torch.full_like(t, -100)))
        inputs.append(torch.where(chosen, torch.full_like(t, MASK_ID), t))
    return inputs, labels


def prepare(wl: Workload, packed: bool, device: torch.device) -> list[dict[str, Any]]:
    out = []
    for i, texts in enumerate(wl.batches()):
        inputs, labels = mask_batch(texts, seed=1000 + i)
        if packed:
            ids, cu, m = pack_batch(inputs)
            out.append({"input_ids": ids.to(device), "cu_seqlens": cu.to(device), "max_seqlen": m,
                        "labels": torch.cat(labels).to(device)})
        else:
            ids, mask = pad_batch(inputs)
            lab, _ = pad_batch(labels, pad_id=-100)
            out.append({"input_ids": ids.to(device), "attention_mask": mask.to(device), "labels": lab.to(device)})
    return out


def load(side: str, ckpt: Path, device: torch.device, attn: str) -> torch.nn.Module:
    if side == "hf":
        quiet_transformers()
        import transformers

        model = transformers.ModernBertForMaskedLM.from_pretrained(
            str(ckpt), attn_implementation=attn, dtype=torch.float32, sparse_prediction=True
        )
        return model.to(device).train()
    from modernbert.model import ModernBertForMaskedLM

    model = ModernBertForMaskedLM.from_pretrained(
        str(ckpt), dtype=torch.float32, device=device, attn_implementation=attn, sparse_prediction=True
    )
    return model.train()


def autocast(device: torch.device, dtype_name: str) -> contextlib.AbstractContextManager:
    if dtype_name == "fp32":
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype={"bf16": torch.bfloat16, "fp16": torch.float16}[dtype_name])


def make_optimizer(model: torch.nn.Module, kind: str) -> torch.optim.Optimizer | None:
    """AdamW (lr 1e-5), the same on every side: fused (one kernel per step), foreach, or torch's default."""
    if kind == "none":
        return None
    kwargs = {"fused": {"fused": True}, "foreach": {"foreach": True}, "default": {}}[kind]
    return torch.optim.AdamW(model.parameters(), lr=1e-5, **kwargs)


def train_step(model: torch.nn.Module, opt: torch.optim.Optimizer | None, inputs: dict[str, Any],
               device: torch.device, dtype_name: str) -> None:
    with autocast(device, dtype_name):
        loss = model(**inputs).loss
    loss.backward()
    if opt is not None:
        opt.step()
    model.zero_grad(set_to_none=True)


def bench(args: argparse.Namespace) -> dict[str, Any]:
    device = torch.device(args.device)
    ckpt = ensure_checkpoint(args.checkpoint)
    from modernbert.config import ModernBertConfig

    cfg = ModernBertConfig.from_pretrained(str(ckpt))
    wl = build_workload(args)
    batches = {"ours_padded": prepare(wl, False, device), "ours_packed": prepare(wl, True, device),
               "hf": prepare(wl, False, device)}
    masked = int(sum((b["labels"] != -100).sum() for b in batches["ours_packed"]))
    # Training FLOPs: forward + backward ~ 3 x forward, for the encoder on every real token and for the MLM
    # head (dense + tied decoder) on the masked tokens only.
    step_flops = 3 * (linear_flops_per_token(cfg) * wl.real_tokens + head_flops_per_token(cfg) * masked)
    report: dict[str, Any] = {
        "environment": environment(device),
        "checkpoint": str(ckpt),
        "step": "forward + backward" + ("" if args.optimizer == "none" else f" + AdamW step ({args.optimizer})")
        + " + zero_grad(set_to_none=True), per batch",
        "attn": args.attn,
        "workload": {"title": wl.title, "texts": len(wl.lengths), "batch_size": wl.batch_size,
                     "real_tokens": wl.real_tokens, "padded_tokens": wl.padded_tokens, "masked_tokens": masked},
        "train_flops_per_pass": step_flops,
        "repeats": args.repeats,
        "warmup": args.warmup,
        "results": [],
        "gemm": [],
    }
    for dtype_name in args.dtypes:
        gemm_dtype = torch.float32 if dtype_name == "fp32" else torch.bfloat16
        gemm_before = gemm_rate(wl.tokens_per_call, cfg, gemm_dtype, device, repeats=args.gemm_repeats)
        models: dict[str, torch.nn.Module] = {}
        opts: dict[str, torch.optim.Optimizer | None] = {}
        for side in args.sides:
            key = "ours" if side.startswith("ours") else "hf"
            if key not in models:
                log(f"[{dtype_name}] loading {key} ...")
                models[key] = load(key, ckpt, device, args.attn)
                opts[key] = make_optimizer(models[key], args.optimizer)
        # Parity: the loss of the first batch, before any step (same weights on both sides).
        losses: dict[str, float] = {}
        with torch.no_grad():
            for side in args.sides:
                model = models["ours" if side.startswith("ours") else "hf"]
                with autocast(device, dtype_name):
                    losses[side] = float(model(**batches[side][0]).loss)
        log(f"[{dtype_name}] first-batch loss: " + ", ".join(f"{s} {v:.5f}" for s, v in losses.items()))
        fns = {}
        for side in args.sides:
            key = "ours" if side.startswith("ours") else "hf"
            fns[side] = [(lambda m=models[key], o=opts[key], x=x, dt=dtype_name: train_step(m, o, x, device, dt))
                         for x in batches[side]]
        times = interleaved(fns, args.repeats, args.warmup, device, f"[{dtype_name}] train")
        gemm = best_gemm(gemm_before, gemm_rate(wl.tokens_per_call, cfg, gemm_dtype, device, repeats=args.gemm_repeats))
        report["gemm"].append({"dtype": dtype_name, **gemm})
        mem: dict[str, int | None] = {}
        for side in args.sides:
            if device.type == "cuda":
                with PeakMemory(device) as pm:
                    for step in fns[side]:
                        step()
                mem[side] = pm.delta
            else:
                mem[side] = None
        hf_rate = wl.real_tokens / median(times["hf"]) if "hf" in times else None
        for side in args.sides:
            t = median(times[side])
            rate = wl.real_tokens / t
            report["results"].append({
                "dtype": dtype_name, "side": side, "seconds_median": t, "seconds": times[side],
                "tokens_per_s": rate, "ratio_vs_hf": rate / hf_rate if hf_rate else None,
                "gemm_roofline_fraction": step_flops / t / gemm["flops_per_s"],
                "first_loss": losses[side],
                "loss_diff_vs_hf": abs(losses[side] - losses["hf"]) if "hf" in losses else None,
                "peak_mem_delta_bytes": mem[side],
            })
        del models, opts, fns
        gc.collect()
    return report


def print_report(report: dict[str, Any], file: Any) -> None:
    env = report["environment"]
    w = report["workload"]
    print("ModernBERT MLM training benchmark (sparse prediction)", file=file)
    print("  " + ", ".join(f"{k} {v}" for k, v in env.items()), file=file)
    print(f"  step: {report['step']}; attention {report['attn']}; median of {report['repeats']} interleaved "
          f"passes after {report['warmup']} warmup", file=file)
    print(f"  {w['title']}: {w['real_tokens']} real tokens ({w['padded_tokens']} after padding), "
          f"{w['masked_tokens']} masked (labelled)", file=file)
    gemm = {g["dtype"]: g for g in report["gemm"]}
    rows = []
    for r in report["results"]:
        rows.append([
            r["dtype"], r["side"], fmt_rate(r["tokens_per_s"]),
            "-" if r["ratio_vs_hf"] is None else f"{r['ratio_vs_hf']:.2f}",
            f"{r['seconds_median']:.2f}", f"{100 * r['gemm_roofline_fraction']:.1f}",
            f"{gemm[r['dtype']]['flops_per_s'] / 1e9:.0f}", mib(r["peak_mem_delta_bytes"]),
            f"{r['first_loss']:.4f}",
            "-" if r["loss_diff_vs_hf"] is None else f"{r['loss_diff_vs_hf']:.1e}",
        ])
    print(file=file)
    print_table(rows, ["dtype", "side", "tok/s", "x hf", "s/pass", "%roof", "GEMM GF/s", "peak MiB", "loss",
                       "|dloss|"], left=2, file=file)
    print(file=file)
    print("tok/s: real tokens trained per second; x hf: / transformers' tok/s; s/pass: median seconds of one "
          "pass (all batches, one optimizer step each); %roof: 3 x (encoder linear FLOPs on real tokens + MLM "
          "head FLOPs on masked tokens) / s/pass / GEMM GF/s (torch.matmul on the model's linear shapes, forward "
          "layout, fp32 or bf16); peak MiB: CUDA only (max_memory_allocated over one pass); loss, |dloss|: "
          "first-batch loss before any step and its difference from transformers'.", file=file)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dtypes", default="fp32,bf16", help="fp32 and/or bf16 (autocast), comma list")
    p.add_argument("--sides", default=",".join(ALL_SIDES), help="comma list of ours_padded,ours_packed,hf")
    p.add_argument("--texts", type=int, default=32, help="texts per pass, lengths 32-512 (default 32)")
    p.add_argument("--batch-size", type=int, default=8, help="texts per optimizer step (default 8)")
    p.add_argument("--repeats", type=int, default=None, help="timed passes per side (default 3, --quick 2)")
    p.add_argument("--warmup", type=int, default=1, help="untimed passes per side (default 1)")
    p.add_argument("--gemm-repeats", type=int, default=5)
    p.add_argument("--optimizer", choices=("fused", "foreach", "default", "none"), default="fused",
                   help="AdamW implementation stepped after every batch (default fused); none: forward + backward "
                        "only")
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--quick", action="store_true", help="8 texts of 32-256 tokens, batch 4: a smoke test")
    p.add_argument("--device", default="cpu")
    p.add_argument("--attn", default="sdpa", help="attn_implementation on both sides (default sdpa)")
    p.add_argument("--checkpoint", default=None, help="checkpoint folder (default <repo>/build/bench-ckpt)")
    p.add_argument("--json", nargs="?", const="-", default=None, metavar="PATH",
                   help="write the results as JSON to PATH, or to stdout (the table then goes to stderr)")
    args = p.parse_args(argv)
    args.dtypes = [d for d in args.dtypes.split(",") if d]
    args.sides = [s for s in args.sides.split(",") if s]
    for d in args.dtypes:
        if d not in ("fp32", "bf16", "fp16"):
            p.error(f"unknown dtype {d!r}")
    for s in args.sides:
        if s not in ALL_SIDES:
            p.error(f"unknown side {s!r}; choose from {', '.join(ALL_SIDES)}")
    if args.repeats is None:
        args.repeats = 2 if args.quick else 3
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    quiet_transformers()
    torch.manual_seed(0)
    emit_report(bench(args), args.json, print_report)


if __name__ == "__main__":
    main()
