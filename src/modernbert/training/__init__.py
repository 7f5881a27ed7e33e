"""MLM pretraining of ModernBERT: packed data, masking, the training loop, evaluation and export.

    from modernbert.training import PretrainConfig, pretrain
    metrics = pretrain(PretrainConfig(train_data="data/corpus/train.jsonl", tokenizer="data/tokenizer", steps=100))
"""

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

__all__ = [
    "PretrainConfig",
    "add_pretrain_arguments",
    "build_arg_parser",
    "config_from_args",
    "evaluate",
    "export_pretrained",
    "main",
    "pretrain",
    "unigram_baseline",
    "wsd_factor",
]
