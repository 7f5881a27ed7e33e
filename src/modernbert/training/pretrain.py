"""Masked-language-model pretraining of ModernBERT on packed, unpadded sequences.

One entry point, ``pretrain(PretrainConfig(...)) -> dict``; ``main(argv)`` is the command line
(``python -m modernbert.training.pretrain --help``, or ``modernbert pretrain``).

* MLM with ``mask_prob`` (default 30%) of the ordinary tokens selected, 80/10/10 mask/random/keep, special
  tokens never selected, and ``sparse_prediction`` (logits only for selected tokens).
* Sequence packing: documents are cut into ``seq_len`` sequences and packed into batches of about
  ``batch_tokens`` tokens (over all ranks) with ``cu_seqlens``; no padding tokens.
* AdamW (no weight decay on norms, biases and embeddings), warmup-stable-decay learning rate, optional
  gradient clipping and bf16 autocast.
* Held-out evaluation every ``eval_every`` steps: MLM loss, accuracy on all selected tokens and on the
  tokens shown as ``[MASK]``, on a fixed held-out set masked once with ``eval_seed``; the unigram baseline
  (always predict the most frequent training token) on the same positions.
* Checkpoints every ``save_every`` steps, written atomically (temporary file, then rename): model,
  optimizer, scheduler, RNG states, data position, step, token count, time and the loss history.
  ``resume=True`` continues from the newest one; the masking of every step is seeded by
  ``(seed, step, rank)`` and the data order by ``(seed, epoch)``, so an interrupted and resumed run
  takes the same steps, with the same losses and weights, as an uninterrupted one.
* ``torchrun --nproc_per_node N`` runs DistributedDataParallel (gloo on CPU, nccl on CUDA) without
  changes: every rank takes its own share of packed batches, rank 0 evaluates, logs and writes files.
* At the end, the model (``save_pretrained``) and the tokenizer files are exported to ``out_dir/final``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import random
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
import torch.nn.functional as F

from .data import (
    IGNORE_INDEX,
    EvalBatch,
    PackedBatchStream,
    SpecialIds,
    build_eval_batches,
    load_tokenizer,
    make_chunks,
    mask_tokens,
    step_generator,
    token_counts,
    tokenize_corpus,
)

TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json")
CHECKPOINT_FORMAT = 1
# Options that must not change when a run is resumed.
_RESUME_FIXED = (
    "train_data", "hidden_size", "num_layers", "num_heads", "intermediate_size", "local_attention",
    "global_attn_every_n_layers", "global_rope_theta", "local_rope_theta", "max_position_embeddings",
    "seq_len", "batch_tokens", "seed", "mask_prob", "lr",
)


@dataclass
class PretrainConfig:
    """Options of an MLM pretraining run (every field is also a ``--kebab-case`` command-line flag)."""

    # data
    train_data: str = "data/corpus/train.jsonl"  # .jsonl ({"text": ...} per line) or text, one doc per line
    heldout_data: str | None = "data/corpus/heldout.jsonl"  # held-out documents; None: no evaluation
    tokenizer: str = "data/tokenizer"  # folder with tokenizer.json (scripts/train_tokenizer.py)
    out_dir: str = "runs/pretrain"  # checkpoints, log.jsonl, metrics.json and the final export
    cache_dir: str | None = None  # tokenised-corpus cache; default out_dir/cache
    # model (ModernBERT layout)
    hidden_size: int = 256
    num_layers: int = 6
    num_heads: int = 4
    intermediate_size: int = 384  # GeGLU width
    local_attention: int = 128  # sliding window of the local layers
    global_attn_every_n_layers: int = 3
    global_rope_theta: float = 160_000.0
    local_rope_theta: float = 10_000.0
    max_position_embeddings: int = 1024
    # batches
    seq_len: int = 512  # longest packed sequence, [CLS] and [SEP] included
    batch_tokens: int = 16384  # tokens per optimizer step, summed over ranks
    mask_prob: float = 0.3
    # optimisation
    lr: float = 2e-3
    weight_decay: float = 0.01
    adam_beta1: float = 0.9
    adam_beta2: float = 0.98
    adam_eps: float = 1e-6
    grad_clip: float | None = 1.0  # max gradient norm; None: no clipping
    warmup_frac: float = 0.05
    stable_frac: float | None = None  # None: 1 - warmup_frac - decay_frac
    decay_frac: float = 0.25
    decay_shape: Literal["linear", "1-sqrt"] = "1-sqrt"
    min_lr_ratio: float = 0.0  # lr at the end of the decay, as a fraction of lr
    steps: int = 1000
    # bookkeeping
    eval_every: int = 100  # 0: evaluate only at the end
    eval_max_tokens: int | None = None  # cap on held-out tokens (None: all)
    eval_seed: int = 1234  # masking seed of the held-out set
    save_every: int = 200  # 0: checkpoint only when stopping
    keep_checkpoints: int = 2
    log_every: int = 10
    seed: int = 0
    bf16: bool = False  # bf16 autocast (CPU or CUDA)
    device: str = "cpu"
    num_threads: int | None = None  # torch threads per process; default: cores / local ranks
    resume: bool = False  # continue from the newest checkpoint in out_dir
    stop_after: int | None = None  # stop (with a checkpoint) after this step, as if interrupted
    export: bool = True  # write out_dir/final when the run completes
    export_dtype: Literal["float32", "bfloat16", "float16"] = "float32"
    quiet: bool = False  # no progress lines on stdout

    def validate(self) -> None:
        """Raise ``ValueError`` with a clear message for any bad option."""
        for name in ("hidden_size", "num_layers", "num_heads", "intermediate_size", "local_attention",
                     "global_attn_every_n_layers", "max_position_embeddings", "seq_len", "batch_tokens",
                     "steps", "keep_checkpoints", "log_every"):
            v = getattr(self, name)
            if not isinstance(v, int) or isinstance(v, bool) or v <= 0:
                raise ValueError(f"{name}={v!r} must be a positive integer")
        for name in ("eval_every", "save_every"):
            v = getattr(self, name)
            if not isinstance(v, int) or isinstance(v, bool) or v < 0:
                raise ValueError(f"{name}={v!r} must be a non-negative integer (0 = only at the end)")
        if self.hidden_size % self.num_heads:
            raise ValueError(f"hidden_size={self.hidden_size} must be divisible by num_heads={self.num_heads}")
        if (self.hidden_size // self.num_heads) % 2:
            raise ValueError(f"head size hidden_size / num_heads = {self.hidden_size // self.num_heads} must be even")
        if self.local_attention % 2:
            raise ValueError(f"local_attention={self.local_attention} must be even")
        if self.seq_len < 3:
            raise ValueError(f"seq_len={self.seq_len} must be at least 3 ([CLS] token [SEP])")
        if self.seq_len > self.max_position_embeddings:
            raise ValueError(
                f"seq_len={self.seq_len} exceeds max_position_embeddings={self.max_position_embeddings}"
            )
        if self.batch_tokens < self.seq_len:
            raise ValueError(f"batch_tokens={self.batch_tokens} must be at least seq_len={self.seq_len}")
        if not 0.0 < self.mask_prob < 1.0:
            raise ValueError(f"mask_prob={self.mask_prob} must be in (0, 1)")
        if not (self.lr > 0 and math.isfinite(self.lr)):
            raise ValueError(f"lr={self.lr} must be a positive number")
        if self.weight_decay < 0:
            raise ValueError(f"weight_decay={self.weight_decay} must be >= 0")
        if not (0 <= self.adam_beta1 < 1 and 0 <= self.adam_beta2 < 1) or self.adam_eps <= 0:
            raise ValueError("adam betas must be in [0, 1) and adam_eps > 0")
        if self.grad_clip is not None and self.grad_clip <= 0:
            raise ValueError(f"grad_clip={self.grad_clip} must be positive (or None for no clipping)")
        fracs = {"warmup_frac": self.warmup_frac, "decay_frac": self.decay_frac}
        if self.stable_frac is not None:
            fracs["stable_frac"] = self.stable_frac
        for name, v in fracs.items():
            if not 0.0 <= v <= 1.0:
                raise ValueError(f"{name}={v} must be in [0, 1]")
        total = sum(fracs.values())
        if self.stable_frac is None and total > 1.0 + 1e-9:
            raise ValueError(f"warmup_frac + decay_frac = {total} must be at most 1")
        if self.stable_frac is not None and abs(total - 1.0) > 1e-6:
            raise ValueError(f"warmup_frac + stable_frac + decay_frac = {total} must equal 1")
        if self.decay_shape not in ("linear", "1-sqrt"):
            raise ValueError(f"decay_shape={self.decay_shape!r} must be 'linear' or '1-sqrt'")
        if not 0.0 <= self.min_lr_ratio <= 1.0:
            raise ValueError(f"min_lr_ratio={self.min_lr_ratio} must be in [0, 1]")
        if self.stop_after is not None and self.stop_after <= 0:
            raise ValueError(f"stop_after={self.stop_after} must be a positive step number")
        if self.eval_max_tokens is not None and self.eval_max_tokens <= 0:
            raise ValueError(f"eval_max_tokens={self.eval_max_tokens} must be positive")
        if self.num_threads is not None and self.num_threads <= 0:
            raise ValueError(f"num_threads={self.num_threads} must be positive")
        if self.export_dtype not in ("float32", "bfloat16", "float16"):
            raise ValueError(f"export_dtype={self.export_dtype!r} must be float32, bfloat16 or float16")
        if self.device not in ("cpu", "cuda") and not self.device.startswith("cuda:"):
            raise ValueError(f"device={self.device!r} must be 'cpu' or 'cuda'")
        if self.device != "cpu" and not torch.cuda.is_available():
            raise ValueError(f"device={self.device!r} but CUDA is not available")
        if not Path(self.train_data).is_file():
            raise ValueError(f"train_data {self.train_data!r} does not exist")
        if self.heldout_data is not None and not Path(self.heldout_data).is_file():
            raise ValueError(f"heldout_data {self.heldout_data!r} does not exist")
        if not (Path(self.tokenizer) / "tokenizer.json").is_file():
            raise ValueError(f"tokenizer folder {self.tokenizer!r} has no tokenizer.json")

    def stable_fraction(self) -> float:
        return 1.0 - self.warmup_frac - self.decay_frac if self.stable_frac is None else self.stable_frac


# ----- schedule -----


def wsd_factor(step: int, cfg: PretrainConfig) -> float:
    """Learning-rate multiplier of optimizer step ``step`` (0-based): linear warmup, constant, decay."""
    warmup = round(cfg.warmup_frac * cfg.steps)
    decay = round(cfg.decay_frac * cfg.steps)
    stable_end = max(warmup, cfg.steps - decay)
    if step < warmup:
        return (step + 1) / warmup
    if step < stable_end or decay == 0:
        return 1.0
    progress = min(1.0, (step - stable_end + 1) / decay)
    shape = progress if cfg.decay_shape == "linear" else math.sqrt(progress)
    return 1.0 - (1.0 - cfg.min_lr_ratio) * shape


# ----- distributed helpers -----


@dataclass
class _Dist:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    initialised_here: bool = False

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    def barrier(self) -> None:
        if self.enabled:
            torch.distributed.barrier()


def _setup_distributed(device: str) -> _Dist:
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return _Dist()
    import torch.distributed as dist

    rank, local_rank = int(os.environ.get("RANK", "0")), int(os.environ.get("LOCAL_RANK", "0"))
    here = False
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if device.startswith("cuda") else "gloo")
        here = True
    return _Dist(rank=rank, world_size=world, local_rank=local_rank, initialised_here=here)


# ----- checkpoints -----


def _atomic_torch_save(obj: Any, path: Path) -> None:
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    with tmp.open("wb") as f:
        torch.save(obj, f)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def _atomic_write_text(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def list_checkpoints(out_dir: str | os.PathLike) -> list[Path]:
    """Complete checkpoints of a run, oldest first."""
    folder = Path(out_dir) / "checkpoints"
    return sorted(folder.glob("step-*.pt")) if folder.is_dir() else []


def _rng_state() -> dict[str, Any]:
    np_state = np.random.get_state()
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "numpy": (np_state[0], np_state[1].tolist(), *np_state[2:]),
        "python": random.getstate(),
    }


def _set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    if state.get("cuda") and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
    name, keys, *rest = state["numpy"]
    np.random.set_state((name, np.asarray(keys, dtype=np.uint32), *rest))
    random.setstate(state["python"])


# ----- evaluation -----


def _autocast(cfg: PretrainConfig):
    device_type = "cuda" if cfg.device.startswith("cuda") else "cpu"
    return torch.autocast(device_type=device_type, dtype=torch.bfloat16, enabled=cfg.bf16)


@torch.no_grad()
def evaluate(model: torch.nn.Module, batches: list[EvalBatch], bf16: bool = False, device: str = "cpu") -> dict:
    """MLM loss and accuracy of ``model`` (a ``ModernBertForMaskedLM``) on fixed masked held-out batches.

    Returns ``loss`` (mean cross-entropy over the selected tokens), ``accuracy`` (top-1 over the selected
    tokens), ``mask_accuracy`` (top-1 over the selected tokens shown as ``[MASK]``) and the counts.
    """
    was_training = model.training
    model.eval()
    loss_sum, correct, n, mask_correct, n_mask = 0.0, 0, 0, 0, 0
    device_type = "cuda" if device.startswith("cuda") else "cpu"
    sparse = model.config.sparse_prediction
    for b in batches:
        with torch.autocast(device_type=device_type, dtype=torch.bfloat16, enabled=bf16):
            out = model(
                input_ids=b.input_ids.to(device), cu_seqlens=b.cu_seqlens.to(device), max_seqlen=b.max_seqlen,
                labels=b.labels.to(device),
            )
        keep = b.labels != IGNORE_INDEX
        logits = out.logits if sparse else out.logits[keep.to(device)]
        labels = b.labels[keep].to(device)
        loss_sum += float(F.cross_entropy(logits.float(), labels, reduction="sum"))
        hits = (logits.argmax(-1) == labels).cpu()
        correct += int(hits.sum())
        n += int(labels.numel())
        shown = b.mask_shown[keep]
        mask_correct += int(hits[shown].sum())
        n_mask += int(shown.sum())
    model.train(was_training)
    return {
        "loss": loss_sum / max(n, 1),
        "accuracy": correct / max(n, 1),
        "mask_accuracy": mask_correct / max(n_mask, 1),
        "predictions": n,
        "mask_predictions": n_mask,
    }


def unigram_accuracy(counts: np.ndarray, batches: list[EvalBatch], special: SpecialIds) -> dict:
    """Accuracy of always predicting the most frequent ordinary training token on the held-out positions."""
    best = int(np.argmax(counts[: special.num_regular]))
    correct = n = mask_correct = n_mask = 0
    for b in batches:
        keep = b.labels != IGNORE_INDEX
        hits = b.labels[keep] == best
        shown = b.mask_shown[keep]
        correct += int(hits.sum())
        n += int(keep.sum())
        mask_correct += int(hits[shown].sum())
        n_mask += int(shown.sum())
    return {"token_id": best, "accuracy": correct / max(n, 1), "mask_accuracy": mask_correct / max(n_mask, 1)}


def unigram_baseline(cfg: PretrainConfig) -> dict:
    """The unigram baseline of ``cfg``'s held-out set, masked exactly as ``pretrain`` masks it.

    Returns ``{"token_id", "token", "accuracy", "mask_accuracy"}``.
    """
    cfg.validate()
    if cfg.heldout_data is None:
        raise ValueError("unigram_baseline needs heldout_data")
    tokenizer = load_tokenizer(cfg.tokenizer)
    special = SpecialIds.from_tokenizer(tokenizer)
    cache = cfg.cache_dir or str(Path(cfg.out_dir) / "cache")
    train = tokenize_corpus(cfg.train_data, cfg.tokenizer, cache)
    held = tokenize_corpus(cfg.heldout_data, cfg.tokenizer, cache)
    batches = build_eval_batches(
        held, cfg.seq_len, cfg.batch_tokens, special, cfg.mask_prob, cfg.eval_seed, cfg.eval_max_tokens
    )
    result = unigram_accuracy(token_counts(train, special.vocab_size), batches, special)
    result["token"] = tokenizer.id_to_token(result["token_id"])
    return result


# ----- model -----


def model_config(cfg: PretrainConfig, special: SpecialIds):
    """The ``ModernBertConfig`` of a run: vocabulary padded to a multiple of 64, special ids from the tokenizer."""
    from ..config import ModernBertConfig

    return ModernBertConfig(
        vocab_size=-(-special.vocab_size // 64) * 64,
        hidden_size=cfg.hidden_size,
        intermediate_size=cfg.intermediate_size,
        num_hidden_layers=cfg.num_layers,
        num_attention_heads=cfg.num_heads,
        local_attention=cfg.local_attention,
        global_attn_every_n_layers=cfg.global_attn_every_n_layers,
        global_rope_theta=cfg.global_rope_theta,
        local_rope_theta=cfg.local_rope_theta,
        max_position_embeddings=cfg.max_position_embeddings,
        pad_token_id=special.pad,
        bos_token_id=special.cls,
        eos_token_id=special.sep,
        cls_token_id=special.cls,
        sep_token_id=special.sep,
        sparse_prediction=True,
    )


def _param_groups(model: torch.nn.Module, weight_decay: float) -> list[dict]:
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        if p.dim() >= 2 and "embeddings" not in name:
            decay.append(p)
        else:
            no_decay.append(p)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def export_pretrained(
    model: torch.nn.Module,
    tokenizer_dir: str | os.PathLike,
    folder: str | os.PathLike,
    dtype: str = "float32",
) -> Path:
    """Write ``model`` (``save_pretrained``: config.json, model.safetensors) and the tokenizer files.

    The exported config has ``sparse_prediction=False`` (full logits, for inference); ``dtype`` is the dtype
    of the stored weights. The tokenizer's ``model_max_length`` is set to ``max_position_embeddings``.
    """
    import copy

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    model = getattr(model, "module", model)
    out = copy.deepcopy(model).cpu()
    out.config = out.config.replace(sparse_prediction=False, architectures=[type(model).__name__])
    if dtype != "float32":
        out = out.to(getattr(torch, dtype))
    out.save_pretrained(str(folder))
    for name in TOKENIZER_FILES:
        src = Path(tokenizer_dir) / name
        if not src.is_file():
            if name == "tokenizer.json":
                raise ValueError(f"tokenizer folder {tokenizer_dir} has no tokenizer.json")
            continue
        if name == "tokenizer_config.json":
            tc = json.loads(src.read_text(encoding="utf-8"))
            tc["model_max_length"] = model.config.max_position_embeddings
            _atomic_write_text(folder / name, json.dumps(tc, indent=2) + "\n")
        else:
            shutil.copyfile(src, folder / name)
    return folder


# ----- the run -----


def _log(out_dir: Path, record: dict, quiet: bool) -> None:
    with (out_dir / "log.jsonl").open("a", encoding="utf-8") as f:
        f.write(json.dumps(record) + "\n")
    if not quiet:
        print(json.dumps(record), flush=True)


def _truncate_log(out_dir: Path, step: int) -> None:
    """Drop log records of steps after ``step`` (written after the checkpoint a run resumes from)."""
    path = out_dir / "log.jsonl"
    if not path.is_file():
        return
    keep = [line for line in path.read_text(encoding="utf-8").splitlines()
            if line.strip() and json.loads(line).get("step", 0) <= step]
    _atomic_write_text(path, "".join(line + "\n" for line in keep))


def pretrain(cfg: PretrainConfig) -> dict:
    """Run (or resume) MLM pretraining as configured; returns the final metrics.

    The returned dict holds ``step``, ``steps``, ``completed``, ``tokens_seen``, ``elapsed_s``,
    ``tokens_per_s``, ``train_loss`` (mean of the last ``log_every`` steps), ``train_losses`` (every step),
    ``eval`` (last held-out evaluation, see ``evaluate``), ``unigram`` (baseline on the same positions),
    ``num_parameters`` and ``final_dir`` (the export, when the run completed). Under torchrun every rank
    returns it; only rank 0 writes files.
    """
    from ..model import ModernBertForMaskedLM

    cfg.validate()
    out_dir = Path(cfg.out_dir)
    ckpt_dir = out_dir / "checkpoints"
    existing = list_checkpoints(out_dir)
    if existing and not cfg.resume:
        raise ValueError(f"{out_dir} already holds checkpoints; pass resume=True (--resume) or another out_dir")
    dist_info = _setup_distributed(cfg.device)
    rank, world = dist_info.rank, dist_info.world_size
    try:
        if cfg.batch_tokens // world < cfg.seq_len:
            raise ValueError(
                f"batch_tokens={cfg.batch_tokens} over {world} ranks leaves {cfg.batch_tokens // world} per rank, "
                f"less than seq_len={cfg.seq_len}"
            )
        threads = cfg.num_threads or max(
            1, (os.cpu_count() or 1) // int(os.environ.get("LOCAL_WORLD_SIZE", str(world)))
        )
        torch.set_num_threads(threads)
        device = torch.device(f"cuda:{dist_info.local_rank}" if cfg.device == "cuda" and world > 1 else cfg.device)
        if rank == 0:
            out_dir.mkdir(parents=True, exist_ok=True)
            ckpt_dir.mkdir(exist_ok=True)
        tokenizer = load_tokenizer(cfg.tokenizer)
        special = SpecialIds.from_tokenizer(tokenizer)
        cache = cfg.cache_dir or str(out_dir / "cache")
        # Rank 0 tokenises (and caches) first; the others then read the cache.
        if rank == 0:
            train = tokenize_corpus(cfg.train_data, cfg.tokenizer, cache)
        dist_info.barrier()
        if rank != 0:
            train = tokenize_corpus(cfg.train_data, cfg.tokenizer, cache)
        stream = PackedBatchStream(
            train, make_chunks(train, cfg.seq_len), special, cfg.batch_tokens // world, cfg.seed, rank, world
        )
        eval_batches: list[EvalBatch] = []
        unigram: dict | None = None
        if rank == 0 and cfg.heldout_data is not None:
            held = tokenize_corpus(cfg.heldout_data, cfg.tokenizer, cache)
            eval_batches = build_eval_batches(
                held, cfg.seq_len, cfg.batch_tokens, special, cfg.mask_prob, cfg.eval_seed, cfg.eval_max_tokens
            )
            unigram = unigram_accuracy(token_counts(train, special.vocab_size), eval_batches, special)
            unigram["token"] = tokenizer.id_to_token(unigram["token_id"])

        torch.manual_seed(cfg.seed)
        mcfg = model_config(cfg, special)
        model = ModernBertForMaskedLM(mcfg).to(device)
        optimizer = torch.optim.AdamW(
            _param_groups(model, cfg.weight_decay), lr=cfg.lr, betas=(cfg.adam_beta1, cfg.adam_beta2),
            eps=cfg.adam_eps, fused=False, foreach=False,
        )
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: wsd_factor(s, cfg))
        step, tokens_seen, elapsed = 0, 0, 0.0
        train_losses: list[float] = []
        evals: list[dict] = []
        if cfg.resume and existing:
            state = torch.load(existing[-1], map_location="cpu", weights_only=True)
            if state.get("format") != CHECKPOINT_FORMAT:
                raise ValueError(f"{existing[-1]} is not a checkpoint of this pretraining code")
            saved = state["config"]
            changed = [k for k in _RESUME_FIXED if saved.get(k) != getattr(cfg, k)]
            if changed:
                raise ValueError(
                    "cannot resume: options differ from the checkpoint's: "
                    + ", ".join(f"{k}={getattr(cfg, k)!r} (checkpoint {saved.get(k)!r})" for k in changed)
                )
            model.load_state_dict(state["model"])
            optimizer.load_state_dict(state["optimizer"])
            scheduler.load_state_dict(state["scheduler"])
            stream.load_state_dict(state["stream"])
            _set_rng_state(state["rng"])
            step, tokens_seen, elapsed = state["step"], state["tokens_seen"], state["elapsed_s"]
            # The learning rate of the next step under *this* run's schedule: identical to the saved one when
            # the schedule options are unchanged; lets a run be extended or its decay started at a checkpoint.
            for group, base in zip(optimizer.param_groups, scheduler.base_lrs):
                group["lr"] = base * wsd_factor(step, cfg)
            train_losses, evals = list(state["train_losses"]), list(state["evals"])
            if rank == 0:
                _truncate_log(out_dir, step)
        elif cfg.resume and rank == 0 and not cfg.quiet:
            print(f"no checkpoint in {ckpt_dir}; starting from scratch", flush=True)
        num_params = sum(p.numel() for p in model.parameters())
        if world > 1:
            from torch.nn.parallel import DistributedDataParallel

            ddp = DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)
        else:
            ddp = model
        raw = model

        def save_checkpoint() -> None:
            if rank != 0:
                return
            state = {
                "format": CHECKPOINT_FORMAT,
                "step": step,
                "model": raw.state_dict(),
                "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict(),
                "stream": stream.state_dict(),
                "rng": _rng_state(),
                "tokens_seen": tokens_seen,
                "elapsed_s": elapsed,
                "train_losses": train_losses,
                "evals": evals,
                "config": dataclasses.asdict(cfg),
                "model_config": mcfg.to_dict(),
            }
            _atomic_torch_save(state, ckpt_dir / f"step-{step:08d}.pt")
            for old in list_checkpoints(out_dir)[: -cfg.keep_checkpoints]:
                old.unlink(missing_ok=True)

        def run_eval() -> None:
            if rank == 0 and eval_batches:
                result = evaluate(raw, eval_batches, cfg.bf16, str(device))
                record = {"step": step, "event": "eval", **result}
                evals.append(record)
                _log(out_dir, record, cfg.quiet)
            dist_info.barrier()

        if rank == 0 and step == 0:
            _log(out_dir, {"step": 0, "event": "start", "num_parameters": num_params, "world_size": world,
                           "threads": threads, "unigram": unigram, "config": dataclasses.asdict(cfg)}, cfg.quiet)
        stop = min(cfg.steps, cfg.stop_after) if cfg.stop_after is not None else cfg.steps
        ddp.train()
        t_last = time.perf_counter()
        window_tokens = 0
        while step < stop:
            batch = stream.next()
            ids, labels = mask_tokens(batch.input_ids, special, cfg.mask_prob, step_generator(cfg.seed, step, rank))
            with _autocast(cfg):
                out = ddp(
                    input_ids=ids.to(device), cu_seqlens=batch.cu_seqlens.to(device), max_seqlen=batch.max_seqlen,
                    labels=labels.to(device),
                )
            loss = out.loss
            loss.backward()
            if cfg.grad_clip is not None:
                torch.nn.utils.clip_grad_norm_(raw.parameters(), cfg.grad_clip)
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
            stats = torch.tensor([float(loss.detach()), float(batch.num_tokens)], dtype=torch.float64)
            if world > 1:
                torch.distributed.all_reduce(stats)
            step += 1
            step_loss = float(stats[0]) / world
            if not math.isfinite(step_loss):
                raise FloatingPointError(f"training loss became {step_loss} at step {step}; lower lr or disable bf16")
            train_losses.append(step_loss)
            tokens_seen += int(stats[1])
            window_tokens += int(stats[1])
            now = time.perf_counter()
            elapsed += now - t_last
            t_last = now
            if rank == 0 and (step % cfg.log_every == 0 or step == stop):
                recent = train_losses[-cfg.log_every:]
                _log(out_dir, {
                    "step": step, "event": "train", "loss": sum(recent) / len(recent),
                    "lr": optimizer.param_groups[0]["lr"], "tokens_seen": tokens_seen,
                    "elapsed_s": round(elapsed, 2), "epoch": stream.epoch,
                }, cfg.quiet)
            if (cfg.eval_every and step % cfg.eval_every == 0) or step == cfg.steps:
                run_eval()
                t_last = time.perf_counter()  # evaluation time is not training time
            if (cfg.save_every and step % cfg.save_every == 0) or step == stop:
                save_checkpoint()
                dist_info.barrier()
                t_last = time.perf_counter()
        completed = step >= cfg.steps
        final_dir = None
        if completed and cfg.export:
            final_dir = str(out_dir / "final")
            if rank == 0:
                export_pretrained(raw, cfg.tokenizer, final_dir, cfg.export_dtype)
            dist_info.barrier()
        recent = train_losses[-cfg.log_every:]
        metrics = {
            "step": step,
            "steps": cfg.steps,
            "completed": completed,
            "tokens_seen": tokens_seen,
            "elapsed_s": elapsed,
            "tokens_per_s": tokens_seen / elapsed if elapsed > 0 else 0.0,
            "train_loss": sum(recent) / len(recent) if recent else None,
            "train_losses": train_losses,
            "eval": evals[-1] if evals else None,
            "evals": evals,
            "unigram": unigram,
            "num_parameters": num_params,
            "world_size": world,
            "final_dir": final_dir,
        }
        if rank == 0:
            _atomic_write_text(out_dir / "metrics.json", json.dumps(metrics, indent=2) + "\n")
        return metrics
    finally:
        if dist_info.initialised_here:
            torch.distributed.destroy_process_group()


# ----- command line -----

_HELP = {
    "train_data": "training documents: .jsonl with a 'text' field, or text with one document per line",
    "heldout_data": "held-out documents for evaluation ('none' to skip)",
    "tokenizer": "folder with tokenizer.json in ModernBERT's layout",
    "out_dir": "run folder: checkpoints/, log.jsonl, metrics.json, final/",
    "seq_len": "longest packed sequence in tokens, [CLS]/[SEP] included",
    "batch_tokens": "tokens per optimizer step, summed over all ranks",
    "stop_after": "stop with a checkpoint after this step (simulated interruption)",
    "resume": "continue from the newest checkpoint in out_dir",
    "bf16": "bf16 autocast",
}


def add_pretrain_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Add one ``--kebab-case`` flag per ``PretrainConfig`` field to ``parser`` (for a CLI subcommand)."""
    defaults = PretrainConfig()
    for f in dataclasses.fields(PretrainConfig):
        flag = "--" + f.name.replace("_", "-")
        default = getattr(defaults, f.name)
        help_text = _HELP.get(f.name, f.name.replace("_", " ")) + f" (default: {default})"
        if f.type in ("bool",):
            parser.add_argument(flag, action=argparse.BooleanOptionalAction, default=default, help=help_text)
            continue
        kind = str(f.type)
        if kind.startswith("Literal"):
            choices = [c.strip().strip("'\"") for c in kind[len("Literal["):-1].split(",")]
            parser.add_argument(flag, choices=choices, default=default, help=help_text)
            continue
        base = kind.split("|")[0].strip()
        conv = {"int": int, "float": float, "str": str}[base]
        if "None" in kind:
            def conv_opt(s: str, conv=conv):
                return None if s.lower() == "none" else conv(s)

            parser.add_argument(flag, type=conv_opt, default=default, metavar=base.upper(), help=help_text)
        else:
            parser.add_argument(flag, type=conv, default=default, metavar=base.upper(), help=help_text)
    return parser


def config_from_args(args: argparse.Namespace) -> PretrainConfig:
    """The ``PretrainConfig`` of parsed ``add_pretrain_arguments`` flags."""
    names = {f.name for f in dataclasses.fields(PretrainConfig)}
    return PretrainConfig(**{k: v for k, v in vars(args).items() if k in names})


def build_arg_parser(prog: str | None = None) -> argparse.ArgumentParser:
    """The argument parser of ``main`` (``modernbert pretrain``)."""
    parser = argparse.ArgumentParser(
        prog=prog, description="MLM pretraining of a ModernBERT model on packed sequences.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    return add_pretrain_arguments(parser)


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point: parse flags, run ``pretrain`` and print the final metrics (rank 0)."""
    args = build_arg_parser().parse_args(argv)
    try:
        metrics = pretrain(config_from_args(args))
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if int(os.environ.get("RANK", "0")) == 0:
        summary = {k: v for k, v in metrics.items() if k not in ("train_losses", "evals")}
        print(json.dumps(summary, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
