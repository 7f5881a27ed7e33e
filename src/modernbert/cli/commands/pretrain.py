"""``modernbert pretrain``: MLM pretraining, with the argument parser of `modernbert.training.pretrain`."""

from __future__ import annotations

import argparse
import os

from ..errors import Parser
from ..output import write_json

HELP = "MLM pretraining (see 'modernbert pretrain --help')"
OWN_PARSER = True  # the training package defines the flags; they are parsed only when this command runs


def run(argv: list[str]) -> int:
    """MLM pretraining: ``modernbert.training.pretrain`` with its own flags (``modernbert pretrain --help``)."""
    from ...training.pretrain import build_arg_parser, config_from_args, pretrain

    parser = build_arg_parser(prog="modernbert pretrain")
    parser.error = Parser.error.__get__(parser)  # one-line errors, exit code 2
    if any("(default:" in (action.help or "") for action in parser._actions):
        parser.formatter_class = argparse.HelpFormatter  # the texts say their defaults: not a second time
    args = parser.parse_args(argv)
    metrics = pretrain(config_from_args(args))
    if int(os.environ.get("RANK", "0")) == 0:
        write_json({k: v for k, v in metrics.items() if k not in ("train_losses", "evals")})
    return 0
