"""``modernbert finetune TASK``: fine-tuning from data files, with the flags of `modernbert.training.finetune`."""

from __future__ import annotations

import argparse
import os

from ..errors import Parser
from ..output import write_json

HELP = "fine-tune a model on a data file (see 'modernbert finetune --help')"
OWN_PARSER = True  # the training package defines the flags; they are parsed only when this command runs


def run(argv: list[str]) -> int:
    """Fine-tuning: ``modernbert.training.finetune`` with its own flags (``modernbert finetune --help``)."""
    from ...training.finetune import build_arg_parser, config_from_args, finetune, summary

    parser = build_arg_parser(prog="modernbert finetune", parser_class=Parser)
    parser.formatter_class = argparse.HelpFormatter
    args = parser.parse_args(argv)
    metrics = finetune(config_from_args(args))
    if int(os.environ.get("RANK", "0")) == 0:  # under torchrun every rank returns the metrics; one prints them
        write_json(summary(metrics))
    return 0
