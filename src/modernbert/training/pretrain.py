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
* Checkpoints every ``save_every`` steps through ``Checkpointer`` (atomic, with a checksum): model,
  optimizer, scheduler, RNG states, data position, step, token count, time, the loss history and the
  inputs the run must keep. ``resume=True`` continues from the newest intact one (after checking those
  inputs); the masking of every step is seeded by ``(seed, step, rank)`` and the data order by
  ``(seed, epoch)``, so an interrupted and resumed run takes the same steps, with the same losses and
  weights, as an uninterrupted one. ``log.jsonl`` (``RunLog``) holds every step's records exactly once.
* ``torchrun --nproc_per_node N`` runs DistributedDataParallel (gloo on CPU, nccl on CUDA) without
  changes: every rank takes its own share of packed batches, rank 0 evaluates, logs and writes files.
* At the end, the model (``save_pretrained``) and the tokenizer files are exported to ``out_dir/final``.

A run is ``_Run``: built from the config, resumed (or started), stepped, checkpointed and finished.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
import torch.nn.functional as F

from .. import hub
from ..config import ModernBertConfig
from ..model import ModernBertForMaskedLM
from . import distributed
from .checkpointer import Checkpointer, restore_rng_state, rng_state
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
from .runinputs import check_resume_inputs, file_digest, folder_digest
from .runlog import RunLog
from .threads import choose_threads

CHECKPOINT_FORMAT = 2
# Options a resumed run must keep, besides the model config and the tokenizer and data files.
_RESUME_FIXED = ("seq_len", "batch_tokens", "seed", "mask_prob", "lr")


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
    num_threads: int | None = None  # torch threads per process; default: OMP_NUM_THREADS, else cores / local ranks
    resume: bool = False  # continue from the newest intact checkpoint in out_dir
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
        if not (Path(self.tokenizer) / hub.TOKENIZER_FILE).is_file():
            raise ValueError(f"tokenizer folder {self.tokenizer!r} has no {hub.TOKENIZER_FILE}")

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
    for name in hub.TOKENIZER_FILES:
        src = Path(tokenizer_dir) / name
        if not src.is_file():
            if name == hub.TOKENIZER_FILE:
                raise ValueError(f"tokenizer folder {tokenizer_dir} has no {hub.TOKENIZER_FILE}")
            continue
        if name == hub.TOKENIZER_CONFIG_FILE:
            tc = hub.read_json(src, "tokenizer config")
            tc["model_max_length"] = model.config.max_position_embeddings
            hub.write_json_atomic(folder / name, tc, sort_keys=False)
        else:
            hub.write_atomic(folder / name, src.read_bytes())
    return folder


# ----- the run -----


def list_checkpoints(out_dir: str | os.PathLike) -> list[Path]:
    """Checkpoints of a run, oldest first."""
    return Checkpointer(Path(out_dir) / "checkpoints").checkpoints()


def run_inputs(cfg: PretrainConfig, model_cfg: Any, world_size: int) -> dict[str, Any]:
    """What a resumed run must not change: tokenizer files, data files, model config, packing options."""
    return {
        "tokenizer": folder_digest(cfg.tokenizer, hub.TOKENIZER_FILES),
        "train_data": file_digest(cfg.train_data),
        "heldout_data": file_digest(cfg.heldout_data) if cfg.heldout_data is not None else None,
        "model_config": model_cfg.to_dict(),
        "options": {**{k: getattr(cfg, k) for k in _RESUME_FIXED}, "world_size": world_size},
    }


class _Run:
    """One process of a pretraining run: built from the config, then resumed, stepped, checkpointed, finished.

    Rank 0 writes every file; the other ranks train their share of each batch.
    """

    def __init__(self, cfg: PretrainConfig, dist: distributed.Dist) -> None:
        self.cfg, self.dist = cfg, dist
        rank, world = dist.rank, dist.world_size
        if cfg.batch_tokens // world < cfg.seq_len:
            raise ValueError(
                f"batch_tokens={cfg.batch_tokens} over {world} ranks leaves {cfg.batch_tokens // world} per rank, "
                f"less than seq_len={cfg.seq_len}"
            )
        self.threads, self.threads_from = choose_threads(cfg.num_threads, distributed.local_processes(dist))
        torch.set_num_threads(self.threads)
        self.device = distributed.run_device(cfg.device, dist)
        self.out_dir = Path(cfg.out_dir)
        if rank == 0:
            self.out_dir.mkdir(parents=True, exist_ok=True)
        self.checkpointer = Checkpointer(self.out_dir / "checkpoints", keep=cfg.keep_checkpoints)
        self.log = RunLog(self.out_dir / "log.jsonl", echo=not cfg.quiet)
        self._build_data()
        torch.manual_seed(cfg.seed)
        self.model_cfg = model_config(cfg, self.special)
        self.model = ModernBertForMaskedLM(self.model_cfg).to(self.device)
        self.optimizer = torch.optim.AdamW(
            _param_groups(self.model, cfg.weight_decay), lr=cfg.lr, betas=(cfg.adam_beta1, cfg.adam_beta2),
            eps=cfg.adam_eps, fused=False, foreach=False,
        )
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer, lambda s: wsd_factor(s, cfg))
        self.inputs = run_inputs(cfg, self.model_cfg, world)
        self.num_params = sum(p.numel() for p in self.model.parameters())
        self.step, self.tokens_seen, self.elapsed = 0, 0, 0.0
        self.train_losses: list[float] = []
        self.evals: list[dict] = []

    def _build_data(self) -> None:
        cfg, rank, world = self.cfg, self.dist.rank, self.dist.world_size
        self.tokenizer = load_tokenizer(cfg.tokenizer)
        self.special = SpecialIds.from_tokenizer(self.tokenizer)
        cache = cfg.cache_dir or str(self.out_dir / "cache")
        # Rank 0 tokenises (and caches) first; the others then read the cache.
        if rank == 0:
            train = tokenize_corpus(cfg.train_data, cfg.tokenizer, cache)
        self.dist.barrier()
        if rank != 0:
            train = tokenize_corpus(cfg.train_data, cfg.tokenizer, cache)
        self.stream = PackedBatchStream(
            train, make_chunks(train, cfg.seq_len), self.special, cfg.batch_tokens // world, cfg.seed, rank, world
        )
        self.eval_batches: list[EvalBatch] = []
        self.unigram: dict | None = None
        if rank == 0 and cfg.heldout_data is not None:
            held = tokenize_corpus(cfg.heldout_data, cfg.tokenizer, cache)
            self.eval_batches = build_eval_batches(
                held, cfg.seq_len, cfg.batch_tokens, self.special, cfg.mask_prob, cfg.eval_seed, cfg.eval_max_tokens
            )
            self.unigram = unigram_accuracy(token_counts(train, self.special.vocab_size), self.eval_batches,
                                            self.special)
            self.unigram["token"] = self.tokenizer.id_to_token(self.unigram["token_id"])

    # ----- start or resume -----

    def resume(self) -> None:
        """Continue from the newest intact checkpoint (with `resume`), else start the run and its log."""
        cfg, rank = self.cfg, self.dist.rank
        restored = self.checkpointer.load_latest(set_aside=rank == 0) if cfg.resume else None
        if restored is None:
            if rank == 0:
                if cfg.resume and not cfg.quiet:
                    print(f"no checkpoint in {self.checkpointer.folder}; starting from scratch", flush=True)
                self.log.restart()
                self.log.append({
                    "step": 0, "event": "start", "num_parameters": self.num_params,
                    "world_size": self.dist.world_size, "threads": self.threads, "threads_from": self.threads_from,
                    "unigram": self.unigram, "config": dataclasses.asdict(cfg),
                })
            return
        state = restored.state
        if state.get("format") != CHECKPOINT_FORMAT:
            raise ValueError(
                f"{restored.path} is not a checkpoint of this pretraining code (format {state.get('format')!r}, "
                f"expected {CHECKPOINT_FORMAT}); start a new run in another --out-dir"
            )
        saved = {**state["inputs"], "options": dict(state["inputs"]["options"])}
        if "offset" in state["stream"]:  # the data position does not depend on the world size
            saved["options"]["world_size"] = self.dist.world_size
        check_resume_inputs(saved, self.inputs, restored.path)
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.stream.load_state_dict(state["stream"])
        restore_rng_state(state["rng"])
        self.step, self.tokens_seen, self.elapsed = state["step"], state["tokens_seen"], state["elapsed_s"]
        # The learning rate of the next step under *this* run's schedule: identical to the saved one when
        # the schedule options are unchanged; lets a run be extended or its decay started at a checkpoint.
        for group, base in zip(self.optimizer.param_groups, self.scheduler.base_lrs):
            group["lr"] = base * wsd_factor(self.step, cfg)
        self.train_losses, self.evals = list(state["train_losses"]), list(state["evals"])
        if rank == 0:
            self.log.cut_back(self.step)
            if not cfg.quiet:
                print(f"resuming from {restored.path} at step {self.step}; threads: {self.threads} "
                      f"({self.threads_from})", flush=True)

    # ----- steps -----

    def train(self) -> None:
        """Train up to `steps` (or `stop_after`), logging, evaluating and checkpointing on the way."""
        cfg = self.cfg
        stop = min(cfg.steps, cfg.stop_after) if cfg.stop_after is not None else cfg.steps
        self.ddp = self._wrap()  # after resume: DDP starts every rank from rank 0's (restored) weights
        self.ddp.train()
        self._t_last = time.perf_counter()
        while self.step < stop:
            self.train_step()
            if self.dist.rank == 0 and (self.step % cfg.log_every == 0 or self.step == stop):
                recent = self.train_losses[-cfg.log_every:]
                self.log.append({
                    "step": self.step, "event": "train", "loss": sum(recent) / len(recent),
                    "lr": self.optimizer.param_groups[0]["lr"], "tokens_seen": self.tokens_seen,
                    "elapsed_s": round(self.elapsed, 2), "epoch": self.stream.epoch,
                })
            if (cfg.eval_every and self.step % cfg.eval_every == 0) or self.step == cfg.steps:
                self.evaluate()
            if (cfg.save_every and self.step % cfg.save_every == 0) or self.step == stop:
                self.checkpoint()

    def _wrap(self) -> torch.nn.Module:
        if self.dist.world_size == 1:
            return self.model
        from torch.nn.parallel import DistributedDataParallel

        ids = [self.device.index] if self.device.type == "cuda" else None
        return DistributedDataParallel(self.model, device_ids=ids)

    def train_step(self) -> None:
        """One optimizer step on the next packed batch (every rank on its own share)."""
        cfg, world = self.cfg, self.dist.world_size
        batch = self.stream.next()
        ids, labels = mask_tokens(
            batch.input_ids, self.special, cfg.mask_prob, step_generator(cfg.seed, self.step, self.dist.rank)
        )
        with _autocast(cfg):
            out = self.ddp(
                input_ids=ids.to(self.device), cu_seqlens=batch.cu_seqlens.to(self.device),
                max_seqlen=batch.max_seqlen, labels=labels.to(self.device),
            )
        out.loss.backward()
        if cfg.grad_clip is not None:
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), cfg.grad_clip)
        self.optimizer.step()
        self.scheduler.step()
        self.optimizer.zero_grad(set_to_none=True)
        loss_sum, tokens = self.dist.all_reduce_sum([float(out.loss.detach()), float(batch.num_tokens)])
        self.step += 1
        step_loss = loss_sum / world
        if not math.isfinite(step_loss):
            raise FloatingPointError(f"training loss became {step_loss} at step {self.step}; lower lr or disable bf16")
        self.train_losses.append(step_loss)
        self.tokens_seen += int(tokens)
        now = time.perf_counter()
        self.elapsed += now - self._t_last
        self._t_last = now

    def evaluate(self) -> None:
        """Evaluate on the held-out set (rank 0) and log it; its time is not training time."""
        if self.dist.rank == 0 and self.eval_batches:
            result = evaluate(self.model, self.eval_batches, self.cfg.bf16, str(self.device))
            record = {"step": self.step, "event": "eval", **result}
            self.evals.append(record)
            self.log.append(record)
        self.dist.barrier()
        self._t_last = time.perf_counter()

    # ----- checkpoints -----

    def state_dict(self) -> dict[str, Any]:
        return {
            "format": CHECKPOINT_FORMAT,
            "step": self.step,
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "stream": self.stream.state_dict(),
            "rng": rng_state(),
            "tokens_seen": self.tokens_seen,
            "elapsed_s": self.elapsed,
            "train_losses": self.train_losses,
            "evals": self.evals,
            "config": dataclasses.asdict(self.cfg),
            "model_config": self.model_cfg.to_dict(),
            "inputs": self.inputs,
        }

    def checkpoint(self) -> None:
        """Save the checkpoint of this step (rank 0), after making its log records durable."""
        if self.dist.rank == 0:
            self.log.sync()
            self.checkpointer.save(self.step, self.state_dict())
        self.dist.barrier()
        self._t_last = time.perf_counter()

    # ----- the end -----

    def finish(self) -> dict:
        """Export the model when the run completed, write metrics.json (rank 0); returns the metrics."""
        cfg = self.cfg
        completed = self.step >= cfg.steps
        final_dir = None
        if completed and cfg.export:
            final_dir = str(self.out_dir / "final")
            if self.dist.rank == 0:
                export_pretrained(self.model, cfg.tokenizer, final_dir, cfg.export_dtype)
            self.dist.barrier()
        recent = self.train_losses[-cfg.log_every:]
        metrics = {
            "step": self.step,
            "steps": cfg.steps,
            "completed": completed,
            "tokens_seen": self.tokens_seen,
            "elapsed_s": self.elapsed,
            "tokens_per_s": self.tokens_seen / self.elapsed if self.elapsed > 0 else 0.0,
            "train_loss": sum(recent) / len(recent) if recent else None,
            "train_losses": self.train_losses,
            "eval": self.evals[-1] if self.evals else None,
            "evals": self.evals,
            "unigram": self.unigram,
            "num_parameters": self.num_params,
            "world_size": self.dist.world_size,
            "final_dir": final_dir,
        }
        if self.dist.rank == 0:
            hub.write_json_atomic(self.out_dir / "metrics.json", metrics, sort_keys=False)
        return metrics


def pretrain(cfg: PretrainConfig) -> dict:
    """Run (or resume) MLM pretraining as configured; returns the final metrics.

    The returned dict holds ``step``, ``steps``, ``completed``, ``tokens_seen``, ``elapsed_s``,
    ``tokens_per_s``, ``train_loss`` (mean of the last ``log_every`` steps), ``train_losses`` (every step),
    ``eval`` (last held-out evaluation, see ``evaluate``), ``unigram`` (baseline on the same positions),
    ``num_parameters`` and ``final_dir`` (the export, when the run completed). Under torchrun every rank
    returns it; only rank 0 writes files.

    Raises ``ValueError`` for bad options and inputs (including inputs that changed since the checkpoint a
    resume continues), and ``hub.DiskFullError`` when the disk fills up: the checkpoints and the log stay
    valid, and the run resumes (``resume=True``) once space is freed.
    """
    cfg.validate()
    if list_checkpoints(cfg.out_dir) and not cfg.resume:
        raise ValueError(f"{cfg.out_dir} already holds checkpoints; pass resume=True (--resume) or another out_dir")
    dist = distributed.setup(cfg.device)
    try:
        run = _Run(cfg, dist)
        run.resume()
        run.train()
        return run.finish()
    finally:
        distributed.teardown(dist)


# ----- command line -----

# One line of help per flag; "(default: ...)" is added from PretrainConfig unless the text says it already.
_HELP = {
    "train_data": "training documents: .jsonl with a 'text' field per line, or text with one document per line",
    "heldout_data": "held-out documents for evaluation, in the same formats ('none': no evaluation)",
    "tokenizer": "folder with tokenizer.json in ModernBERT's layout (scripts/train_tokenizer.py writes one)",
    "out_dir": "run folder: checkpoints/, log.jsonl, metrics.json and final/",
    "cache_dir": "folder for the tokenised corpus (default: OUT_DIR/cache)",
    "hidden_size": "width of the hidden states",
    "num_layers": "number of encoder layers",
    "num_heads": "attention heads per layer (the head size, hidden size / heads, must be even)",
    "intermediate_size": "width of the GeGLU feed-forward layer",
    "local_attention": "sliding window of the local-attention layers, in tokens (even)",
    "global_attn_every_n_layers": "every N-th layer attends globally, the others locally",
    "global_rope_theta": "RoPE base of the global-attention layers",
    "local_rope_theta": "RoPE base of the local-attention layers",
    "max_position_embeddings": "longest sequence the model takes, in tokens",
    "seq_len": "longest packed sequence in tokens, [CLS] and [SEP] included",
    "batch_tokens": "tokens per optimizer step, summed over all ranks",
    "mask_prob": "share of the ordinary tokens selected for MLM (80%% shown as [MASK], 10%% random, 10%% kept)",
    "lr": "peak learning rate of the warmup-stable-decay schedule",
    "weight_decay": "AdamW weight decay (never applied to norms, biases and embeddings)",
    "adam_beta1": "AdamW decay rate of the gradient average",
    "adam_beta2": "AdamW decay rate of the squared-gradient average",
    "adam_eps": "AdamW term added to the denominator",
    "grad_clip": "largest gradient norm; larger ones are scaled down ('none': no clipping)",
    "warmup_frac": "share of the steps that warm the learning rate up linearly",
    "stable_frac": "share of the steps at the peak learning rate (default: what warmup and decay leave)",
    "decay_frac": "share of the steps that decay the learning rate",
    "decay_shape": "shape of the decay",
    "min_lr_ratio": "learning rate at the end of the decay, as a fraction of --lr",
    "steps": "optimizer steps of the whole run",
    "eval_every": "evaluate on the held-out set every N steps (0: only at the end)",
    "eval_max_tokens": "evaluate on about this many held-out tokens (default: all of them)",
    "eval_seed": "seed of the held-out set's masking, fixed for the whole run",
    "save_every": "write a checkpoint every N steps (0: only when stopping)",
    "keep_checkpoints": "how many of the newest checkpoints are kept",
    "log_every": "write a training record to log.jsonl every N steps",
    "seed": "seed of the initial weights, the data order and the masking",
    "bf16": "bf16 autocast, on CPU or CUDA",
    "device": "cpu, cuda or cuda:N (under torchrun each rank takes its local GPU)",
    "num_threads": "torch threads per process (default: OMP_NUM_THREADS when set, else the cores divided by the "
                   "processes on this machine)",
    "resume": "continue from the newest intact checkpoint in --out-dir, or start the run when there is none",
    "stop_after": "stop with a checkpoint after this step, as if interrupted (default: run all --steps)",
    "export": "write OUT_DIR/final (model and tokenizer) when the run completes",
    "export_dtype": "dtype of the exported weights",
    "quiet": "print no progress records on stdout",
}
_METAVARS = {"train_data": "PATH", "heldout_data": "PATH", "tokenizer": "DIR", "out_dir": "DIR", "cache_dir": "DIR",
             "device": "DEVICE"}


def add_pretrain_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Add one ``--kebab-case`` flag per ``PretrainConfig`` field to ``parser`` (for a CLI subcommand)."""
    defaults = PretrainConfig()
    for f in dataclasses.fields(PretrainConfig):
        flag = "--" + f.name.replace("_", "-")
        default = getattr(defaults, f.name)
        help_text = _HELP[f.name]
        kind = str(f.type)
        if "default" not in help_text:
            shown = ("on" if default else "off") if kind == "bool" else default
            help_text += f" (default: {shown})"
        if kind == "bool":
            action = parser.add_argument(flag, action=argparse.BooleanOptionalAction, default=default)
            action.help = help_text  # set after: some Pythons append their own "(default: ...)" to a bool's help
            continue
        if kind.startswith("Literal"):
            choices = [c.strip().strip("'\"") for c in kind[len("Literal["):-1].split(",")]
            parser.add_argument(flag, choices=choices, default=default, help=help_text)
            continue
        base = kind.split("|")[0].strip()
        conv = {"int": int, "float": float, "str": str}[base]
        metavar = _METAVARS.get(f.name, {"int": "N", "float": "X", "str": "TEXT"}[base])
        if "None" in kind:
            def conv_opt(s: str, conv=conv):
                return None if s.lower() == "none" else conv(s)

            conv_opt.__name__ = conv.__name__  # argparse names the type in its "invalid ... value" error
            parser.add_argument(flag, type=conv_opt, default=default, metavar=metavar, help=help_text)
        else:
            parser.add_argument(flag, type=conv, default=default, metavar=metavar, help=help_text)
    return parser


def config_from_args(args: argparse.Namespace) -> PretrainConfig:
    """The ``PretrainConfig`` of parsed ``add_pretrain_arguments`` flags."""
    names = {f.name for f in dataclasses.fields(PretrainConfig)}
    return PretrainConfig(**{k: v for k, v in vars(args).items() if k in names})


def build_arg_parser(prog: str | None = None) -> argparse.ArgumentParser:
    """The argument parser of ``main`` (``modernbert pretrain``)."""
    parser = argparse.ArgumentParser(
        prog=prog, description="MLM pretraining of a ModernBERT model on packed sequences."
    )
    return add_pretrain_arguments(parser)


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point: parse flags, run ``pretrain`` and print the final metrics (rank 0)."""
    args = build_arg_parser().parse_args(argv)
    try:
        metrics = pretrain(config_from_args(args))
    except (ValueError, OSError) as e:  # bad options or inputs, a full disk: one line, exit code 2
        print(f"error: {' '.join(str(e).split())}", file=sys.stderr)
        return 2
    if int(os.environ.get("RANK", "0")) == 0:
        summary = {k: v for k, v in metrics.items() if k not in ("train_losses", "evals")}
        print(json.dumps(summary, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
