"""Fine-tuning ModernBERT from data files, on unpadded packed batches: ``finetune(FinetuneConfig(...))``.

    from modernbert.training import FinetuneConfig, finetune
    metrics = finetune(FinetuneConfig(task="text-classification", model="modernbert-tiny",
                                      train="train.csv", validation="dev.csv", output="runs/sst"))

``modernbert finetune TASK`` is the command line. Tasks live in `TASKS`:

* ``text-classification``: single texts or text pairs; single-label, multi-label or regression, inferred from
  the labels as transformers' run_glue.py does (see `finetune_data.LabelSpace`), or forced by ``problem_type``;
* ``token-classification``: word-level tags from CoNLL or JSONL, as run_ner.py (see `finetune_ner`);
* ``sentence-embedding``: (anchor, positive[, negative]) texts, in-batch negatives with scale 20, exported as a
  sentence-transformers folder; ``reranker``: a cross-encoder on (query, passage, relevance) rows, binary
  cross-entropy, or with ``reranker_loss="listwise"`` a softmax over each query's passages (see `finetune_pairs`);
* ``question-answering``: SQuAD JSON or rows, long contexts in overlapping windows, unanswerable questions as
  SQuAD v2, as run_qa.py (see `finetune_qa`);
* ``multiple-choice``: SWAG-style rows or a list of choices per row, as run_swag.py (see `finetune_choice`).

A run:

* reads and tokenises the data (`finetune_data`), loads the model with a freshly initialised head (seeded by
  ``seed``) and trains it on packed batches of at most ``batch_tokens`` tokens, grouped by length, with no
  padding (the model takes ``input_ids`` (tokens,) with ``cu_seqlens``);
* AdamW (fused where torch has it) with betas 0.9/0.98 and eps 1e-6, no weight decay on norms, biases and
  embeddings; linear, cosine, constant or warmup-stable-decay learning rate after a warmup; gradient clipping,
  optional bf16 autocast and gradient checkpointing;
* evaluates every ``eval_every`` steps (0: after every epoch) and at the end: ``eval_loss``, ``eval_accuracy``,
  ``eval_f1`` (macro), ``eval_matthews_correlation``; ``eval_pearson``, ``eval_spearmanr``, ``eval_mse`` for a
  regression; ``eval_precision``, ``eval_recall``, ``eval_f1`` (entities) and ``eval_accuracy`` for tags;
  keeps the best model by ``metric_for_best`` and stops after ``early_stopping_patience`` evaluations without
  improvement;
* checkpoints through `Checkpointer` at every evaluation (and every ``save_every`` steps): model, optimizer,
  scheduler, RNG states, data position, losses, evaluations, the best so far and the inputs the run must keep.
  ``resume=True`` continues from the newest intact checkpoint; the batches of every epoch are fixed by
  ``(seed, epoch)``, so a killed and resumed run takes the same steps as an uninterrupted one.
  ``trainer_log.jsonl`` (`RunLog`) holds every logged step and evaluation once;
* writes ``output``: the model (``save_pretrained``, with id2label / label2id / problem_type), the tokenizer
  files, ``metrics.json``, ``trainer_log.jsonl``, a model card ``README.md`` and, with ``test``,
  ``test_predictions.jsonl``. Checkpoints stay in ``output/checkpoints``. transformers' Auto classes load it.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import importlib.util
import json
import math
import os
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import torch
import torch.nn.functional as F

from .. import hub
from .. import model as models
from . import distributed
from . import finetune_data as fd
from . import metrics as M
from .checkpointer import Checkpointer, restore_rng_state, rng_state
from .runinputs import check_resume_inputs, file_digest, folder_digest
from .runlog import RunLog
from .threads import choose_threads

CHECKPOINT_FORMAT = 1
SCHEDULERS = ("linear", "cosine", "constant", "wsd")
RERANKER_LOSSES = ("bce", "listwise")
PREDICTIONS_FILE = "test_predictions.jsonl"
LOG_FILE = "trainer_log.jsonl"
TENSORBOARD_DIR = "tensorboard"


@dataclass
class FinetuneConfig:
    """Options of a fine-tuning run; the command line has one ``--kebab-case`` flag for each.

    Defaults follow the ModernBERT authors' GLUE recipe: AdamW with betas 0.9/0.98 and eps 1e-6, a linear
    decay after a 6% warmup, a small weight decay, lr 8e-5.
    """

    task: str = "text-classification"
    model: str = ""  # hub id, folder or bundled name
    train: Any = None  # a data file, a list of dicts or a datasets.Dataset
    validation: Any = None
    test: Any = None
    output: str = ""
    # columns (run_glue.py's defaults when None)
    text_column: str | None = None
    text_pair_column: str | None = None
    negative_column: str | None = None  # sentence-embedding: hard negatives (default: negative, else a third column)
    label_column: str | None = None  # default: "label" (text-classification), run_ner.py's rule (tokens)
    problem_type: str | None = None  # single_label_classification | multi_label_classification | regression
    max_length: int = 512  # longer inputs are truncated (at most the model's max_position_embeddings)
    # optimisation
    epochs: int = 3
    max_steps: int | None = None  # overrides epochs
    learning_rate: float = 8e-5
    weight_decay: float = 0.01
    warmup: float = 0.06  # < 1: a fraction of the steps; >= 1: a number of steps
    scheduler: str = "linear"
    decay: float = 0.1  # wsd: the fraction of the steps that decays
    adam_beta1: float = 0.9
    adam_beta2: float = 0.98
    adam_eps: float = 1e-6
    max_grad_norm: float | None = 1.0
    # batches
    batch_tokens: int = 8192
    batch_size: int | None = None  # most sequences of a batch
    gradient_accumulation: int = 1
    # precision and memory
    bf16: bool = False
    gradient_checkpointing: bool = False
    seed: int = 42
    # evaluation and checkpoints
    eval_every: int = 0  # 0: after every epoch
    save_every: int = 0  # 0: at every evaluation
    save_total_limit: int = 2
    early_stopping_patience: int | None = None
    metric_for_best: str = "eval_loss"
    log_every: int = 10
    resume: bool = False
    stop_after: int | None = None  # stop with a checkpoint after this step, as if interrupted
    device: str = "cpu"
    num_threads: int | None = None
    ignore_mismatched_sizes: bool = False
    label_all_tokens: bool = False  # token-classification: every sub-token of a word carries its tag
    reranker_loss: Literal["bce", "listwise"] = "bce"  # reranker: per pair, or over each query's passages
    tensorboard: bool = False  # also log to output/tensorboard (needs the tensorboard package)
    quiet: bool = False

    def validate(self) -> None:
        """Raise ``ValueError`` naming any bad option."""
        if self.task not in TASKS:
            raise ValueError(f"unknown task {self.task!r}; expected one of {', '.join(TASKS)}")
        if not self.model:
            raise ValueError("no model: pass --model (a hub id, a folder or a bundled name such as modernbert-tiny)")
        if self.train is None:
            raise ValueError("no training data: pass --train FILE")
        if not self.output:
            raise ValueError("no output folder: pass --output DIR")
        for name in ("max_length", "epochs", "batch_tokens", "gradient_accumulation", "save_total_limit",
                     "log_every"):
            v = getattr(self, name)
            if not isinstance(v, int) or isinstance(v, bool) or v <= 0:
                raise ValueError(f"{name}={v!r} must be a positive integer")
        for name in ("max_steps", "batch_size", "early_stopping_patience", "stop_after", "num_threads"):
            v = getattr(self, name)
            if v is not None and (not isinstance(v, int) or isinstance(v, bool) or v <= 0):
                raise ValueError(f"{name}={v!r} must be a positive integer (or None)")
        for name in ("eval_every", "save_every"):
            v = getattr(self, name)
            if not isinstance(v, int) or isinstance(v, bool) or v < 0:
                raise ValueError(f"{name}={v!r} must be a non-negative integer (0 = at every epoch / evaluation)")
        if not (self.learning_rate > 0 and math.isfinite(self.learning_rate)):
            raise ValueError(f"learning_rate={self.learning_rate} must be a positive number")
        if self.weight_decay < 0:
            raise ValueError(f"weight_decay={self.weight_decay} must be >= 0")
        if self.warmup < 0 or (self.warmup >= 1 and self.warmup != int(self.warmup)):
            raise ValueError(f"warmup={self.warmup} must be a fraction in [0, 1) or a whole number of steps")
        if self.scheduler not in SCHEDULERS:
            raise ValueError(f"scheduler={self.scheduler!r} must be one of {', '.join(SCHEDULERS)}")
        if not 0 <= self.decay <= 1:
            raise ValueError(f"decay={self.decay} must be in [0, 1]")
        if not (0 <= self.adam_beta1 < 1 and 0 <= self.adam_beta2 < 1) or self.adam_eps <= 0:
            raise ValueError("adam betas must be in [0, 1) and adam_eps > 0")
        if self.max_grad_norm is not None and self.max_grad_norm <= 0:
            raise ValueError(f"max_grad_norm={self.max_grad_norm} must be positive (or None: no clipping)")
        if self.problem_type is not None and self.problem_type not in fd.PROBLEM_TYPES:
            raise ValueError(f"problem_type={self.problem_type!r} must be one of {', '.join(fd.PROBLEM_TYPES)}")
        if self.reranker_loss not in RERANKER_LOSSES:
            raise ValueError(f"reranker_loss={self.reranker_loss!r} must be one of {', '.join(RERANKER_LOSSES)}")
        if self.reranker_loss != "bce" and self.task != "reranker":
            raise ValueError(f"reranker_loss={self.reranker_loss!r} is for the reranker task, not {self.task!r}; "
                             "leave --reranker-loss out")
        if self.device not in ("cpu", "cuda") and not self.device.startswith("cuda:"):
            raise ValueError(f"device={self.device!r} must be 'cpu', 'cuda' or 'cuda:N'")
        if self.device != "cpu" and not torch.cuda.is_available():
            raise ValueError(f"device={self.device!r} but CUDA is not available")
        if self.tensorboard and importlib.util.find_spec("tensorboard") is None:
            raise ValueError("--tensorboard needs the tensorboard package: pip install 'modernbert[tensorboard]'")

    def warmup_steps(self, total: int) -> int:
        return int(self.warmup) if self.warmup >= 1 else round(self.warmup * total)


# ----- schedule and optimizer -----


def lr_factor(step: int, total: int, warmup: int, kind: str, decay: float = 0.1) -> float:
    """Learning-rate multiplier of optimizer step `step` (0-based) of `total`: a linear warmup over `warmup`
    steps, then `kind`: linear or cosine decay to 0, constant, or wsd (constant, then a linear decay to 0 over
    the last `decay` fraction of the steps)."""
    if step < warmup:
        return (step + 1) / warmup
    if kind == "constant":
        return 1.0
    if kind == "wsd":
        decay_steps = round(decay * total)
        start = max(warmup, total - decay_steps)
        return 1.0 if step < start or decay_steps == 0 else max(0.0, (total - step) / (total - start))
    progress = (step - warmup) / max(1, total - warmup)
    if kind == "cosine":
        return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))
    return max(0.0, 1.0 - progress)


def param_groups(model: torch.nn.Module, weight_decay: float) -> list[dict]:
    """AdamW groups: weight decay on the weight matrices, none on norms, biases and embeddings."""
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        (no_decay if p.dim() < 2 or "embeddings" in name or "norm" in name else decay).append(p)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def _adamw(groups: list[dict], cfg: FinetuneConfig) -> torch.optim.AdamW:
    return torch.optim.AdamW(groups, lr=cfg.learning_rate, betas=(cfg.adam_beta1, cfg.adam_beta2), eps=cfg.adam_eps,
                             fused=True)


# ----- tasks -----


@dataclass
class Split:
    """A tokenised split: token ids per example, labels (None when the split has none) and where it came from."""

    rows: fd.Rows
    ids: list[list[int]]
    labels: Any  # the task's: a tensor with a row per example, or a tensor per example; None when unlabelled

    @property
    def lengths(self) -> list[int]:
        return [len(x) for x in self.ids]


class Task:
    """What the tasks share: packing examples, the forward pass, the export."""

    architecture: str  # the model class, by its name in modernbert.model
    # True when an example's loss depends on the other examples of its batch (in-batch negatives): under
    # torchrun the ranks then gather the batch's outputs (`Dist.gather_rows`) before the loss.
    couples_examples = False

    @classmethod
    def model_class(cls) -> type:
        return getattr(models, cls.architecture)

    def pack(self, split: Split, index: list[int]) -> fd.Packed:
        """The examples `index` of `split` as one packed batch (one sequence each)."""
        return fd.pack(split.ids, index)

    def forward(self, model: torch.nn.Module, batch: fd.Packed, device: torch.device) -> torch.Tensor:
        return model(input_ids=batch.input_ids.to(device), cu_seqlens=batch.cu_seqlens.to(device),
                     max_seqlen=batch.max_seqlen).logits

    def batch_labels(self, split: Any, index: torch.Tensor) -> torch.Tensor:
        """The labels of the examples `index`: one per sequence, unless a task says otherwise."""
        return split.labels[index]

    def count(self, labels: torch.Tensor) -> int:
        """What the loss is averaged over: the sequences, unless a task says otherwise."""
        return int(labels.shape[0])

    def outputs(self, logits: torch.Tensor, batch: fd.Packed) -> list[torch.Tensor]:
        """The logits of each example of a batch: one row each, unless a task says otherwise."""
        return list(logits.float().cpu())

    @staticmethod
    def token_outputs(logits: torch.Tensor, batch: fd.Packed) -> list[torch.Tensor]:
        """Per-token logits cut per packed sequence: (its tokens, ...) each."""
        return list(logits.float().cpu().split((batch.cu_seqlens[1:] - batch.cu_seqlens[:-1]).tolist()))

    def batch_loss(self, logits: torch.Tensor, labels: torch.Tensor, batch: fd.Packed) -> torch.Tensor:
        """The summed loss of a packed batch (`loss_sum`, which most tasks compute without the batch)."""
        return self.loss_sum(logits, labels)

    def export(self, model: torch.nn.Module, out: Path, model_dir: Path) -> None:
        """`save_pretrained` into `out`, and the tokenizer files of the base model."""
        model.config = model.config.replace(architectures=[self.architecture])
        model.save_pretrained(str(out))
        copy_tokenizer(model_dir, out)


def copy_tokenizer(src: Path, out: Path) -> None:
    for name in hub.TOKENIZER_FILES:
        if (src / name).is_file():
            hub.write_atomic(out / name, (src / name).read_bytes())


class TextClassification(Task):
    """Sequence classification of texts or text pairs (`ModernBertForSequenceClassification`).

    A task gives the run its tokenised splits and: `load_model`, `batch_labels` (the labels of a packed batch),
    `loss_sum` and `count` (the summed loss of a batch and what it is averaged over), `outputs` (the model's
    logits of a batch cut per example), `evaluate`, `predictions`, `metric_names` and `describe`.
    """

    name = "text-classification"
    architecture = "ModernBertForSequenceClassification"
    auto_class = "AutoModelForSequenceClassification"
    pipeline_tag = "text-classification"

    def __init__(self, cfg: FinetuneConfig, tokenizer: Any, max_length: int) -> None:
        self.cfg, self.tokenizer, self.max_length = cfg, tokenizer, max_length
        self.label_column = cfg.label_column or "label"
        train = fd.read_rows(cfg.train, "train data")
        self.text_column, self.pair_column = fd.text_columns(train, self.label_column, cfg.text_column,
                                                             cfg.text_pair_column)
        if self.label_column not in train.columns:
            raise fd.missing_column(train, self.label_column, "--label-column")
        self.labels = fd.LabelSpace.infer(train, self.label_column, cfg.problem_type)
        self.train = self._split(train, "training", need_labels=True)
        self.validation = self._load(cfg.validation, "validation", need_labels=True)
        self.test = self._load(cfg.test, "test", need_labels=False)

    def _load(self, data: Any, split: str, need_labels: bool) -> Split | None:
        if data is None:
            return None
        return self._split(fd.read_rows(data, f"{split} data"), split, need_labels)

    def _split(self, rows: fd.Rows, split: str, need_labels: bool) -> Split:
        first = fd.texts(rows, self.text_column, "--text-column")
        second = fd.texts(rows, self.pair_column, "--text-pair-column") if self.pair_column else None
        enc = self.tokenizer(first, second, truncation=True, max_length=self.max_length)
        has_labels = need_labels or all(self.label_column in r for r in rows.rows)
        if need_labels and self.label_column not in rows.columns:
            raise fd.missing_column(rows, self.label_column, "--label-column")
        labels = self.labels.encode(rows, self.label_column, split) if has_labels else None
        return Split(rows, [list(x) for x in enc["input_ids"]], labels)

    def model_options(self) -> dict[str, Any]:
        ls = self.labels
        return {"num_labels": ls.num_labels, "id2label": ls.id2label, "label2id": ls.label2id,
                "problem_type": ls.problem_type}

    def load_model(self, folder: Path) -> torch.nn.Module:
        return self.model_class().from_pretrained(
            str(folder), dtype=torch.float32, ignore_mismatched_sizes=self.cfg.ignore_mismatched_sizes,
            **self.model_options(),
        )

    def loss_sum(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """The summed per-sequence loss (the model's mean loss times the sequences)."""
        logits = logits.float()
        kind = self.labels.problem_type
        if kind == "regression":
            return F.mse_loss(logits.squeeze(-1), labels, reduction="sum")
        if kind == "multi_label_classification":
            return F.binary_cross_entropy_with_logits(logits, labels, reduction="sum") / logits.shape[-1]
        return F.cross_entropy(logits, labels, reduction="sum")

    def metric_names(self) -> list[str]:
        kind = self.labels.problem_type
        names = {"regression": ["pearson", "spearmanr", "mse"],
                 "multi_label_classification": ["accuracy", "f1", "f1_micro"]}.get(
                     kind, ["accuracy", "f1", "matthews_correlation"])
        return ["eval_loss"] + [f"eval_{n}" for n in names]

    def evaluate(self, outputs: list[torch.Tensor], split: Split) -> dict[str, float]:
        """`loss` and the metrics of the per-example logits of a labelled split."""
        logits, labels = torch.stack(outputs), split.labels
        loss = float(self.loss_sum(logits, labels)) / self.count(labels)
        return {"loss": loss, **self._metrics(logits, labels)}

    def _metrics(self, logits: torch.Tensor, labels: torch.Tensor) -> dict[str, float]:
        kind = self.labels.problem_type
        if kind == "regression":
            return M.regression_metrics(labels.numpy(), logits.squeeze(-1).numpy())
        if kind == "multi_label_classification":
            return M.multilabel_metrics(labels.numpy(), (logits > 0).numpy())
        return M.classification_metrics(labels.numpy(), logits.argmax(-1).numpy(), self.labels.num_labels)

    def predictions(self, outputs: list[torch.Tensor], split: Split) -> list[dict[str, Any]]:
        logits = torch.stack(outputs)
        kind, names = self.labels.problem_type, self.labels.names
        if kind == "regression":
            return [{"index": i, "prediction": float(v)} for i, v in enumerate(logits.squeeze(-1).tolist())]
        if kind == "multi_label_classification":
            probs = torch.sigmoid(logits)
            return [{"index": i, "prediction": [names[j] for j in range(len(names)) if p[j] > 0.5],
                     "scores": {names[j]: float(p[j]) for j in range(len(names))}} for i, p in enumerate(probs)]
        probs = torch.softmax(logits, -1)
        return [{"index": i, "prediction": names[int(p.argmax())], "score": float(p.max())}
                for i, p in enumerate(probs)]

    def describe(self) -> dict[str, Any]:
        return {"columns": {"text": self.text_column, "text pair": self.pair_column, "label": self.label_column},
                "problem_type": self.labels.problem_type, "labels": self.labels.names}


def _token_classification() -> type:
    from .finetune_ner import TokenClassification

    return TokenClassification


def _sentence_embedding() -> type:
    from .finetune_pairs import SentenceEmbedding

    return SentenceEmbedding


def _reranker() -> type:
    from .finetune_pairs import Reranker

    return Reranker


def _question_answering() -> type:
    from .finetune_qa import QuestionAnswering

    return QuestionAnswering


def _multiple_choice() -> type:
    from .finetune_choice import MultipleChoice

    return MultipleChoice


# Task name -> a function returning its class (imported when the task runs).
TASKS: dict[str, Any] = {"text-classification": lambda: TextClassification,
                         "token-classification": _token_classification,
                         "sentence-embedding": _sentence_embedding,
                         "reranker": _reranker,
                         "question-answering": _question_answering,
                         "multiple-choice": _multiple_choice}


# ----- the run -----


def _digest(data: Any) -> Any:
    """What identifies a data input: the file's content, or a hash of the rows given in Python."""
    if data is None:
        return None
    if isinstance(data, (str, os.PathLike)):
        return file_digest(data)
    rows = fd.read_rows(data).rows
    return {"rows": len(rows), "sha256": hashlib.sha256(json.dumps(rows, sort_keys=True, default=str).encode())
            .hexdigest()}


def _describe_data(data: Any) -> str | None:
    if data is None or isinstance(data, (str, os.PathLike)):
        return None if data is None else os.fspath(data)
    return f"<{type(data).__name__} of {len(fd.read_rows(data).rows)} rows>"


# Options a resumed run must keep: every one that changes the steps it takes.
_RESUME_FIXED = ("task", "text_column", "text_pair_column", "label_column", "problem_type", "max_length", "epochs",
                 "max_steps", "learning_rate", "weight_decay", "warmup", "scheduler", "decay", "adam_beta1",
                 "adam_beta2", "adam_eps", "max_grad_norm", "batch_tokens", "batch_size", "gradient_accumulation",
                 "bf16", "seed", "label_all_tokens", "negative_column", "reranker_loss")
# Options added after checkpoints were first written, with their defaults: recorded only when set otherwise,
# so a run checkpointed before they existed still resumes.
_RESUME_ADDED = {"reranker_loss": "bce"}


class _Run:
    """One fine-tuning run: built from the config, then resumed (or started), trained and exported."""

    def __init__(self, cfg: FinetuneConfig, dist: distributed.Dist | None = None) -> None:
        from ..tokenizer import Tokenizer

        self.cfg, self.dist = cfg, dist or distributed.Dist()
        self.threads, self.threads_from = choose_threads(cfg.num_threads, distributed.local_processes(self.dist))
        torch.set_num_threads(self.threads)
        self.device = distributed.run_device(cfg.device, self.dist)
        self.out = Path(cfg.output)
        self.model_dir = hub.resolve_folder(cfg.model)
        tokenizer = Tokenizer.from_pretrained(str(self.model_dir))
        model_cfg = hub.read_json(self.model_dir / hub.CONFIG_NAME, "model config")
        max_length = min(cfg.max_length, int(model_cfg.get("max_position_embeddings", cfg.max_length)))
        self.task = TASKS[cfg.task]()(cfg, tokenizer, max_length)
        self.metric = cfg.metric_for_best if cfg.metric_for_best.startswith("eval_") else f"eval_{cfg.metric_for_best}"
        if self.metric not in self.task.metric_names():
            raise ValueError(f"metric_for_best={cfg.metric_for_best!r} is not a metric of this task; expected one "
                             f"of {', '.join(self.task.metric_names())}")
        self.greater_is_better = not (self.metric.endswith("loss") or self.metric.endswith("mse"))
        torch.manual_seed(cfg.seed)  # the new head's initialisation
        self.model = self.task.load_model(self.model_dir).to(self.device)
        if cfg.gradient_checkpointing:
            self.model.gradient_checkpointing_enable()
        self.plan = fd.PackPlan(self.task.train.lengths, cfg.batch_tokens, cfg.batch_size, cfg.seed)
        self.total_steps = self._total_steps()
        self.optimizer = _adamw(param_groups(self.model, cfg.weight_decay), cfg)
        warmup = cfg.warmup_steps(self.total_steps)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer, lambda s: lr_factor(s, self.total_steps, warmup, cfg.scheduler, cfg.decay))
        self.checkpointer = Checkpointer(self.out / "checkpoints", keep=cfg.save_total_limit)
        self.best_dir = self.out / "checkpoints" / "best"
        self.inputs = {
            "model": folder_digest(self.model_dir, (hub.CONFIG_NAME, hub.SAFETENSORS_NAME)),
            "train": _digest(cfg.train), "validation": _digest(cfg.validation),
            "options": {k: getattr(cfg, k) for k in _RESUME_FIXED
                        if k not in _RESUME_ADDED or getattr(cfg, k) != _RESUME_ADDED[k]},
        }
        # The position and history of the run (what a checkpoint holds besides the tensors).
        self.step, self.epoch, self.batch_pos = 0, 0, 0
        self.tokens_seen, self.elapsed = 0, 0.0
        self.train_losses: list[float] = []
        self.evals: list[dict[str, Any]] = []
        self.best: dict[str, Any] | None = None  # {"step", "value", "metrics"}
        self.bad_evals = 0
        self.stopped_early = False

    def _total_steps(self) -> int:
        if self.cfg.max_steps is not None:
            return self.cfg.max_steps
        return sum(self.plan.steps_in_epoch(e, self.cfg.gradient_accumulation) for e in range(self.cfg.epochs))

    # ----- start or resume -----

    def start(self) -> None:
        cfg, main = self.cfg, self.dist.is_main
        if main:
            self.out.mkdir(parents=True, exist_ok=True)
        self.dist.barrier()
        self.log = RunLog(self.out / LOG_FILE)
        self.board = None
        if cfg.tensorboard and main:
            from torch.utils.tensorboard import SummaryWriter

            self.board = SummaryWriter(str(self.out / TENSORBOARD_DIR))
        restored = self.checkpointer.load_latest(set_aside=main) if cfg.resume else None
        if restored is None:
            if self.checkpointer.checkpoints():
                raise ValueError(f"{self.out} already holds the checkpoints of a run; pass --resume to continue it "
                                 "or choose another --output")
            if main:
                self.log.restart()
                self.log.append({"step": 0, "event": "start", "total_steps": self.total_steps,
                                 "train_examples": len(self.task.train.ids), "world_size": self.dist.world_size,
                                 "threads": self.threads, "threads_from": self.threads_from,
                                 "task": self.task.describe(), "config": self._config()})
            return
        state = restored.state
        if state.get("format") != CHECKPOINT_FORMAT:
            raise ValueError(f"{restored.path} is not a checkpoint of this fine-tuning code (format "
                             f"{state.get('format')!r}, expected {CHECKPOINT_FORMAT}); choose another --output")
        check_resume_inputs(state["inputs"], self.inputs, restored.path)
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        restore_rng_state(state["rng"])
        for key in ("step", "epoch", "batch_pos", "tokens_seen", "elapsed", "train_losses", "evals", "best",
                    "bad_evals", "stopped_early"):
            setattr(self, key, state[key])
        if main:
            self.log.cut_back(self.step)
        self._say(f"resuming from {restored.path} at step {self.step}")

    def _config(self) -> dict[str, Any]:
        out = dataclasses.asdict(self.cfg)
        for split in ("train", "validation", "test"):
            out[split] = _describe_data(getattr(self.cfg, split))
        return out

    def _say(self, text: str) -> None:
        if not self.cfg.quiet and self.dist.is_main:
            print(text, file=sys.stderr, flush=True)

    # ----- training -----

    def _autocast(self):
        return torch.autocast(device_type=self.device.type, dtype=torch.bfloat16, enabled=self.cfg.bf16)

    def train(self) -> None:
        """Train to the last step (or `stop_after`, or an early stop), evaluating and checkpointing on the way."""
        cfg = self.cfg
        stop = self.total_steps if cfg.stop_after is None else min(self.total_steps, cfg.stop_after)
        self.model.train()
        while self.step < stop and not self.stopped_early:
            batches = self.plan.epoch(self.epoch)
            if self.batch_pos >= len(batches):
                self.epoch, self.batch_pos = self.epoch + 1, 0
                continue
            micro = batches[self.batch_pos : self.batch_pos + cfg.gradient_accumulation]
            self._step(micro)
            self.batch_pos += len(micro)
            end_of_epoch = self.batch_pos >= len(batches)
            if self.step % cfg.log_every == 0 or self.step == stop:
                self._log_train()
            evaluate = (cfg.eval_every and self.step % cfg.eval_every == 0) or (
                not cfg.eval_every and end_of_epoch) or self.step == self.total_steps
            if evaluate and self.task.validation is not None:
                self._evaluate()
            saved = evaluate or (cfg.save_every and self.step % cfg.save_every == 0)
            if saved or self.step == stop or self.stopped_early:
                self._checkpoint()

    def _step(self, micro: list[list[int]]) -> None:
        """One optimizer step on the global batches `micro`; under torchrun each rank runs its `shard` of each.

        Every rank's loss is its summed loss over the count of the whole step (all ranks, all batches), and
        the gradients are summed over the ranks: the same loss, and gradient, as on one process.
        """
        t0 = time.perf_counter()
        split, task, dist = self.task.train, self.task, self.dist
        # the step's loss is the mean over all of them
        total = max(1, sum(task.count(task.batch_labels(split, torch.tensor(index))) for index in micro))
        loss_value, tokens = 0.0, 0
        for index in micro:
            counted = True
            if task.couples_examples and dist.enabled:
                loss, n = self._coupled_loss(index)
                counted = dist.is_main  # every rank holds the loss of the whole batch
            elif local := dist.shard(index):
                batch = task.pack(split, local)
                with self._autocast():
                    logits = task.forward(self.model, batch, self.device)
                loss, n = task.batch_loss(logits, task.batch_labels(split, batch.index).to(self.device), batch), \
                    batch.num_tokens
            else:  # fewer examples than ranks: nothing to do here
                continue
            loss = loss / total
            if loss.requires_grad:
                loss.backward()
            loss_value += float(loss.detach()) if counted else 0.0
            tokens += n
        if dist.enabled:
            dist.all_reduce_grads(list(self.model.parameters()))
            loss_value, tokens = dist.all_reduce_sum([loss_value, tokens])
            tokens = int(tokens)
        if not math.isfinite(loss_value):
            raise FloatingPointError(f"the training loss became {loss_value} at step {self.step + 1}; lower the "
                                     "learning rate, or train without --bf16")
        if self.cfg.max_grad_norm is not None:
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.cfg.max_grad_norm)
        self.optimizer.step()
        self.scheduler.step()
        self.optimizer.zero_grad(set_to_none=True)
        self.step += 1
        self.train_losses.append(loss_value)
        self.tokens_seen += tokens
        self.elapsed += time.perf_counter() - t0

    def _coupled_loss(self, index: list[int]) -> tuple[torch.Tensor, int]:
        """The summed loss of a global batch whose examples' losses depend on each other (under torchrun), and
        this rank's tokens: each rank encodes its shard, the rows are gathered into the global batch, and every
        rank computes the loss of the whole batch, whose gradient reaches its own rows only."""
        split, task, dist = self.task.train, self.task, self.dist
        per_example = len(task.columns)  # the sequences of an example: (per_example * examples, hidden) rows
        local = dist.shard(index)
        if local:
            batch = task.pack(split, local)
            with self._autocast():
                rows = task.forward(self.model, batch, self.device).float()
            tokens = batch.num_tokens
        else:
            rows, tokens = torch.zeros(0, self.model.config.hidden_size, device=self.device), 0
        rows = dist.gather_rows(rows.reshape(per_example, len(local), rows.shape[-1]))
        labels = task.batch_labels(split, torch.tensor(index)).to(self.device)
        return task.loss_sum(rows.reshape(-1, rows.shape[-1]), labels), tokens

    def _epoch_progress(self) -> float:
        return round(self.epoch + self.batch_pos / max(1, len(self.plan.epoch(self.epoch))), 4)

    def _log_train(self) -> None:
        if not self.dist.is_main:
            return
        recent = self.train_losses[-self.cfg.log_every:]
        record = {"step": self.step, "epoch": self._epoch_progress(), "loss": sum(recent) / len(recent),
                  "learning_rate": self.optimizer.param_groups[0]["lr"], "tokens_seen": self.tokens_seen,
                  "tokens_per_s": round(self.tokens_seen / self.elapsed, 1) if self.elapsed > 0 else 0.0}
        self.log.append(record)
        self._board("train", record)
        self._say(f"step {self.step}/{self.total_steps}  loss {record['loss']:.4f}  "
                  f"lr {record['learning_rate']:.2e}  {record['tokens_per_s']:.0f} tokens/s")

    def _board(self, prefix: str, record: dict[str, Any]) -> None:
        """The numbers of a record as TensorBoard scalars `prefix/name` at this step (with `tensorboard`)."""
        if self.board is None:
            return
        for k, v in record.items():
            if k not in ("step", "epoch") and isinstance(v, (int, float)) and not isinstance(v, bool):
                self.board.add_scalar(f"{prefix}/{k.removeprefix('eval_')}", v, self.step)
        self.board.flush()

    @torch.no_grad()
    def predict(self, split: Split) -> list[torch.Tensor]:
        """The logits of every example of a split, in its order, in float32 (their shape is the task's)."""
        was_training = self.model.training
        self.model.eval()
        out = [None] * len(split.ids)
        for index in fd.eval_batches(split.lengths, self.cfg.batch_tokens, self.cfg.batch_size):
            batch = self.task.pack(split, index)
            with self._autocast():
                logits = self.task.forward(self.model, batch, self.device)
            for i, row in zip(index, self.task.outputs(logits, batch)):
                out[i] = row
        self.model.train(was_training)
        return out

    def evaluate(self, split: Split, prefix: str = "eval") -> dict[str, float]:
        """The loss and metrics of a labelled split, named `{prefix}_loss`, `{prefix}_accuracy`, ..."""
        found = self.task.evaluate(self.predict(split), split)
        return {f"{prefix}_{k}": v for k, v in found.items()}

    def _evaluate(self) -> None:
        """Evaluate on the validation set (rank 0, on the whole set: the metrics of one process), keep the best
        model, and give every rank the outcome (so all of them stop early together)."""
        if self.dist.is_main:
            self._evaluate_main()
        self.evals, self.best, self.bad_evals, self.stopped_early = self.dist.broadcast(
            (self.evals, self.best, self.bad_evals, self.stopped_early))

    def _evaluate_main(self) -> None:
        t0 = time.perf_counter()
        result = self.evaluate(self.task.validation)
        record = {"step": self.step, "epoch": self._epoch_progress(), **result,
                  "eval_runtime": round(time.perf_counter() - t0, 3)}
        self.evals.append(record)
        self.log.append(record)
        self._board("eval", result)
        self._say("eval " + "  ".join(f"{k} {v:.4f}" for k, v in result.items()))
        value = result[self.metric]
        better = self.best is None or (math.isfinite(value) and (
            value > self.best["value"] if self.greater_is_better else value < self.best["value"]))
        if better and math.isfinite(value):
            self.best, self.bad_evals = {"step": self.step, "value": value, "metrics": result}, 0
            self.model.save_pretrained(str(self.best_dir))
        else:
            self.bad_evals += 1
            patience = self.cfg.early_stopping_patience
            if patience is not None and self.bad_evals >= patience:
                self.stopped_early = True
                best_step = self.best["step"] if self.best else None
                self.log.append({"step": self.step, "event": "early_stop", "best_step": best_step})
                self._say(f"early stop at step {self.step}: no better {self.metric} in {patience} evaluations")

    def _state(self) -> dict[str, Any]:
        return {
            "format": CHECKPOINT_FORMAT, "model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(), "rng": rng_state(), "inputs": self.inputs,
            **{k: getattr(self, k) for k in ("step", "epoch", "batch_pos", "tokens_seen", "elapsed", "train_losses",
                                             "evals", "best", "bad_evals", "stopped_early")},
        }

    def _checkpoint(self) -> None:
        if self.dist.is_main:
            self.log.sync()
            self.checkpointer.save(self.step, self._state())
        self.dist.barrier()

    # ----- the end -----

    def finish(self) -> dict[str, Any]:
        """Export the model (the best one when there was a validation set) and write the output files."""
        if self.board is not None:
            self.board.close()
        completed = self.step >= self.total_steps or self.stopped_early
        metrics: dict[str, Any] = {
            "step": self.step, "total_steps": self.total_steps, "completed": completed,
            "stopped_early": self.stopped_early, "train_loss": sum(self.train_losses) / max(1, len(self.train_losses)),
            "train_losses": self.train_losses, "tokens_seen": self.tokens_seen, "train_runtime": round(self.elapsed, 3),
            "train_tokens_per_second": self.tokens_seen / self.elapsed if self.elapsed > 0 else 0.0,
            "epoch": self._epoch_progress(), "evals": self.evals, "best_step": None,
        }
        if not completed:
            return metrics
        if self.dist.is_main:
            self._write_output(metrics)
        return self.dist.broadcast(metrics)

    def _write_output(self, metrics: dict[str, Any]) -> None:
        """Load the best model, predict the test set, export, and write metrics.json and the model card."""
        if self.best is not None:
            best = self.task.model_class().from_pretrained(str(self.best_dir), dtype=torch.float32)
            self.model.load_state_dict(best.state_dict())
            metrics["best_step"] = self.best["step"]
            metrics.update(self.best["metrics"])
        if self.task.test is not None:
            outputs = self.predict(self.task.test)
            lines = [json.dumps(p) + "\n" for p in self.task.predictions(outputs, self.task.test)]
            hub.write_atomic(self.out / PREDICTIONS_FILE, "".join(lines).encode())
            if self.task.test.labels is not None:
                metrics.update(self.evaluate(self.task.test, "test"))
        self._export()
        hub.write_json_atomic(self.out / "metrics.json", metrics, sort_keys=False)
        hub.write_atomic(self.out / "README.md", model_card(self, metrics).encode())
        self._say(f"wrote {self.out}")

    def _export(self) -> None:
        self.task.export(self.model, self.out, self.model_dir)


def model_card(run: _Run, metrics: dict[str, Any]) -> str:
    """The README of the output folder: the data, the labels, the hyperparameters and the metrics."""
    cfg, task = run.cfg, run.task
    desc = task.describe()
    library = "sentence-transformers" if task.auto_class == "SentenceEncoder" else "transformers"
    lines = ["---", f"library_name: {library}", f"pipeline_tag: {task.pipeline_tag}", f"base_model: {cfg.model}",
             "---", "",
             f"# {Path(cfg.output).name}", "",
             f"`{cfg.model}` fine-tuned for {task.name} ({desc['problem_type']}) with `modernbert finetune`.", "",
             "## Data", "", "| split | source | examples |", "|---|---|---|"]
    for name, split in (("train", task.train), ("validation", task.validation), ("test", task.test)):
        if split is not None:
            lines.append(f"| {name} | `{_describe_data(getattr(cfg, name))}` | {len(split.ids)} |")
    columns = ", ".join(f"{role} `{name}`" for role, name in desc["columns"].items() if name is not None)
    lines += ["", f"Columns: {columns}.", "",
              ("Labels: " + ", ".join(f"`{n}`" for n in desc["labels"]) + "\n") if desc["labels"] else "",
              "## Hyperparameters", "",
              "| option | value |", "|---|---|"]
    for key in ("learning_rate", "weight_decay", "scheduler", "warmup", "epochs", "max_steps", "batch_tokens",
                "batch_size", "gradient_accumulation", "max_grad_norm", "adam_beta1", "adam_beta2", "adam_eps",
                "max_length", "bf16", "seed", "metric_for_best"):
        lines.append(f"| {key} | {getattr(cfg, key)} |")
    lines += ["", f"Trained {metrics['step']} steps on {metrics['tokens_seen']} tokens.", "", "## Metrics", ""]
    shown = {k: v for k, v in metrics.items() if k.startswith(("eval_", "test_")) and isinstance(v, float)}
    if shown:
        best = f" (the best model, step {metrics['best_step']})" if metrics.get("best_step") else ""
        lines += [f"On the validation set{best}:" if any(k.startswith("eval_") for k in shown) else "", "",
                  "| metric | value |", "|---|---|", *(f"| {k} | {v:.4f} |" for k, v in shown.items())]
    else:
        lines.append("No labelled validation or test data was given.")
    if task.auto_class == "SentenceEncoder":
        use = ["from modernbert.pipelines import SentenceEncoder",
               f'encoder = SentenceEncoder.from_pretrained("{cfg.output}")',
               'embeddings = encoder.encode(["a sentence", "another one"])']
    else:
        use = [f"from modernbert import {task.auto_class}, AutoTokenizer",
               f'model = {task.auto_class}.from_pretrained("{cfg.output}")',
               f'tokenizer = AutoTokenizer.from_pretrained("{cfg.output}")']
    lines += ["", "## Use", "", "```python", *use, "```", ""]
    return "\n".join(lines)


def finetune(cfg: FinetuneConfig | None = None, /, **options: Any) -> dict[str, Any]:
    """Fine-tune a model as `cfg` (or the keyword options, `FinetuneConfig`'s fields) says; returns the metrics.

    The returned dict holds `step`, `total_steps`, `completed`, `train_loss`, `train_losses` (every step),
    `tokens_seen`, `train_runtime`, `train_tokens_per_second`, `evals` (every evaluation), `best_step` and
    the metrics of the exported model (`eval_*`, `test_*` with a labelled test set).

    Under torchrun (`WORLD_SIZE` > 1) the processes train data-parallel: each takes its share of every batch
    of the one global order (`distributed.Dist.shard`), the gradients are summed, so the losses and weights are
    those of one process up to rounding; rank 0 evaluates and writes every file, every rank returns the metrics.
    `batch_tokens` is the budget of a whole step over all ranks. A checkpoint resumes on any number of processes.

    Raises `ValueError` for bad options and bad data (a `finetune_data.DataError` naming the file, line and
    column), and for inputs that changed since the checkpoint a resume continues.
    """
    if cfg is None:
        cfg = FinetuneConfig(**options)
    elif options:
        cfg = dataclasses.replace(cfg, **options)
    cfg.validate()
    dist = distributed.setup(cfg.device)
    try:
        run = _Run(cfg, dist)
        run.start()
        run.train()
        return run.finish()
    finally:
        distributed.teardown(dist)


# ----- command line -----


def _optional(conv):
    def parse(s: str):
        return None if s.lower() == "none" else conv(s)

    parse.__name__ = conv.__name__
    return parse


def build_arg_parser(prog: str | None = None, parser_class: type = argparse.ArgumentParser) -> argparse.ArgumentParser:
    """The flags of `modernbert finetune TASK` (defaults from `FinetuneConfig`)."""
    d = FinetuneConfig()
    p = parser_class(
        prog=prog, description="Fine-tune a ModernBERT model on a data file, on unpadded packed batches. Defaults "
        "follow the ModernBERT authors' GLUE recipe: AdamW with betas 0.9/0.98 and eps 1e-6, a linear decay after "
        "a 6% warmup, lr 8e-5, small weight decay (none on norms, biases and embeddings).")
    p.add_argument("task", metavar="TASK", choices=list(TASKS), help=f"the task: {', '.join(TASKS)}")
    g = p.add_argument_group("data")
    g.add_argument("--model", required=True, help="hub id, folder or bundled name (modernbert-tiny)")
    g.add_argument("--train", required=True, metavar="FILE", help="training data: .csv, .tsv, .json, .jsonl or "
                   ".parquet (Parquet needs pyarrow: pip install 'modernbert[finetune]')")
    g.add_argument("--validation", metavar="FILE", help="validation data, evaluated and used for the best model")
    g.add_argument("--test", metavar="FILE", help="test data: predictions go to OUTPUT/test_predictions.jsonl")
    g.add_argument("--output", required=True, metavar="DIR", help="the fine-tuned model and the run's files")
    g.add_argument("--text-column", help="text-classification: sentence1 when there are sentence1 and sentence2 "
                   "columns, else the first column that is not the label column (run_glue.py's rule); the other "
                   "tasks: tokens, anchor, query, context (or question), else the first column")
    g.add_argument("--text-pair-column", help="second text of a pair (default: sentence2, else the second column "
                   "that is not the label column, if any)")
    g.add_argument("--negative-column", help="sentence-embedding: the hard negatives (default: negative, else the "
                   "third column, if any)")
    g.add_argument("--label-column", help="default: label for text-classification; for token-classification "
                   "ner_tags, else the second column (run_ner.py's rule)")
    g.add_argument("--problem-type", choices=fd.PROBLEM_TYPES, help="default: inferred from the training labels "
                   "(floats: regression; lists: multi-label; otherwise single-label)")
    g.add_argument("--max-length", type=int, default=d.max_length, metavar="N",
                   help="longest input in tokens; longer ones are truncated (default: %(default)s)")
    g = p.add_argument_group("optimisation")
    g.add_argument("--epochs", type=int, default=d.epochs, metavar="N", help="default: %(default)s")
    g.add_argument("--max-steps", type=_optional(int), metavar="N", help="optimizer steps, instead of --epochs")
    g.add_argument("--learning-rate", type=float, default=d.learning_rate, metavar="X", help="peak learning rate "
                   "(default: %(default)s)")
    g.add_argument("--weight-decay", type=float, default=d.weight_decay, metavar="X", help="AdamW weight decay "
                   "(default: %(default)s)")
    g.add_argument("--warmup", type=float, default=d.warmup, metavar="X", help="below 1: a fraction of the steps; "
                   "else a number of steps (default: %(default)s)")
    g.add_argument("--scheduler", choices=SCHEDULERS, default=d.scheduler, help="after the warmup: linear or "
                   "cosine decay to 0, constant, or wsd (constant, then a linear decay over --decay) (default: "
                   "%(default)s)")
    g.add_argument("--decay", type=float, default=d.decay, metavar="X", help="wsd: the fraction of the steps that "
                   "decays (default: %(default)s)")
    g.add_argument("--adam-beta1", type=float, default=d.adam_beta1, metavar="X", help="default: %(default)s")
    g.add_argument("--adam-beta2", type=float, default=d.adam_beta2, metavar="X", help="default: %(default)s")
    g.add_argument("--adam-eps", type=float, default=d.adam_eps, metavar="X", help="default: %(default)s")
    g.add_argument("--max-grad-norm", type=_optional(float), default=d.max_grad_norm, metavar="X",
                   help="gradient clipping ('none': off) (default: %(default)s)")
    g = p.add_argument_group("batches")
    g.add_argument("--batch-tokens", type=int, default=d.batch_tokens, metavar="N", help="most tokens of a packed "
                   "batch, over all ranks under torchrun (default: %(default)s)")
    g.add_argument("--batch-size", type=_optional(int), metavar="N", help="most sequences of a batch (default: no "
                   "limit)")
    g.add_argument("--gradient-accumulation", type=int, default=d.gradient_accumulation, metavar="N",
                   help="batches per optimizer step (default: %(default)s)")
    g = p.add_argument_group("run")
    g.add_argument("--bf16", action="store_true", help="bf16 autocast")
    g.add_argument("--gradient-checkpointing", action="store_true", help="recompute activations in the backward")
    g.add_argument("--seed", type=int, default=d.seed, help="the head's initialisation and the data order "
                   "(default: %(default)s)")
    g.add_argument("--eval-every", type=int, default=d.eval_every, metavar="N", help="evaluate every N steps "
                   "(0: after every epoch) (default: %(default)s)")
    g.add_argument("--save-every", type=int, default=d.save_every, metavar="N", help="checkpoint every N steps "
                   "(0: at every evaluation) (default: %(default)s)")
    g.add_argument("--save-total-limit", type=int, default=d.save_total_limit, metavar="N",
                   help="checkpoints kept (default: %(default)s)")
    g.add_argument("--early-stopping-patience", type=_optional(int), metavar="N", help="stop after N evaluations "
                   "without a better --metric-for-best")
    g.add_argument("--metric-for-best", default=d.metric_for_best, metavar="NAME", help="the metric choosing the "
                   "exported model: eval_loss, eval_accuracy, eval_f1, eval_matthews_correlation, eval_pearson, "
                   "eval_spearmanr, ... (lower is better for losses and mse) (default: %(default)s)")
    g.add_argument("--log-every", type=int, default=d.log_every, metavar="N", help="default: %(default)s")
    g.add_argument("--resume", action="store_true", help="continue from the newest intact checkpoint in --output")
    g.add_argument("--stop-after", type=_optional(int), metavar="N", help="stop with a checkpoint after step N, as "
                   "if interrupted (a later --resume continues the run)")
    g.add_argument("--device", default=d.device, help="cpu, cuda or cuda:N (default: %(default)s)")
    g.add_argument("--num-threads", type=_optional(int), metavar="N", help="torch threads (default: "
                   "OMP_NUM_THREADS, else the cores)")
    g.add_argument("--ignore-mismatched-sizes", action="store_true", help="re-initialise a classifier whose number "
                   "of labels differs from the checkpoint's")
    g.add_argument("--label-all-tokens", action="store_true", help="token-classification: every sub-token of a "
                   "word learns its tag (B-X becomes I-X after the first), not only the first")
    g.add_argument("--reranker-loss", choices=RERANKER_LOSSES, default=d.reranker_loss,
                   help="reranker: bce, binary cross-entropy on each (query, passage) pair; or listwise, the "
                   "cross-entropy of the softmax over all the passages of a query against its relevances "
                   "(the rows of one query text form one example; default: %(default)s)")
    g.add_argument("--tensorboard", action="store_true", help="also log the training and evaluation records to "
                   "OUTPUT/tensorboard (needs tensorboard: pip install 'modernbert[tensorboard]')")
    g.add_argument("--quiet", action="store_true", help="no progress lines on stderr")
    return p


def config_from_args(args: argparse.Namespace) -> FinetuneConfig:
    """The `FinetuneConfig` of parsed `build_arg_parser` flags."""
    names = {f.name for f in dataclasses.fields(FinetuneConfig)}
    return FinetuneConfig(**{k: v for k, v in vars(args).items() if k in names})


def summary(metrics: dict[str, Any]) -> dict[str, Any]:
    """The metrics without the per-step lists (what the command line prints)."""
    return {k: v for k, v in metrics.items() if k not in ("train_losses", "evals")}


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m modernbert.training.finetune`: the same as `modernbert finetune`."""
    from ..cli import main as cli_main

    return cli_main(["finetune", *(sys.argv[1:] if argv is None else argv)])


if __name__ == "__main__":
    sys.exit(main())


__all__ = ["FinetuneConfig", "TASKS", "TextClassification", "build_arg_parser", "config_from_args", "finetune",
           "lr_factor", "model_card", "param_groups", "summary"]
