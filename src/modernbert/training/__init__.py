"""MLM pretraining of ModernBERT: packed data, masking, the training loop, evaluation and export.

    from modernbert.training import PretrainConfig, pretrain
    metrics = pretrain(PretrainConfig(train_data="data/corpus/train.jsonl", tokenizer="data/tokenizer", steps=100))

Fine-tuning from data files (`modernbert finetune TASK`):

    from modernbert.training import FinetuneConfig, finetune
    metrics = finetune(FinetuneConfig(model="modernbert-tiny", train="train.csv", validation="dev.csv",
                                      output="runs/clf"))

The pieces every trainer and resumable job shares: `Checkpointer` (atomic, verified checkpoints and a resume
that falls back), `RunLog` (the run's JSONL log, every step exactly once), `check_resume_inputs` (what a
resume must not change) and `choose_threads`.
"""

from .checkpointer import Checkpointer
from .finetune import FinetuneConfig, finetune
from .pretrain import (
    PretrainConfig,
    add_pretrain_arguments,
    build_arg_parser,
    config_from_args,
    evaluate,
    export_pretrained,
    main,
    pretrain,
    unigram_baseline,
    wsd_factor,
)
from .runinputs import check_resume_inputs
from .runlog import RunLog
from .threads import choose_threads

__all__ = [
    "Checkpointer",
    "FinetuneConfig",
    "PretrainConfig",
    "RunLog",
    "add_pretrain_arguments",
    "build_arg_parser",
    "check_resume_inputs",
    "choose_threads",
    "config_from_args",
    "evaluate",
    "export_pretrained",
    "finetune",
    "main",
    "pretrain",
    "unigram_baseline",
    "wsd_factor",
]
