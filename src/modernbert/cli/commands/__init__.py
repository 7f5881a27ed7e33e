"""The subcommands: one module each, registered in `COMMANDS`.

A subcommand module holds:

- ``HELP``: its one-line summary in ``modernbert --help``;
- ``add_arguments(parser)``: its options, added to its own `argparse` parser;
- ``run(args) -> int``: what it does with the parsed arguments, returning the exit code; its docstring is the
  description ``modernbert NAME --help`` shows.

A module that parses its own arguments (``pretrain``, whose flags belong to the training package) sets
``OWN_PARSER = True`` and has ``run(argv) -> int`` instead of ``add_arguments``.

Adding a subcommand means writing its module and adding one line to `COMMANDS`. The modules import nothing
heavy at import time (torch, the model, the pipelines are imported inside ``run``): the parser imports them all.
"""

from __future__ import annotations

from types import ModuleType

from . import batch, classify, embed, export, fill_mask, finetune, info, ner, pretrain, qa, serve

COMMANDS: dict[str, ModuleType] = {
    "fill-mask": fill_mask,
    "classify": classify,
    "ner": ner,
    "qa": qa,
    "embed": embed,
    "info": info,
    "pretrain": pretrain,
    "finetune": finetune,
    "serve": serve,
    "batch": batch,
    "export": export,
}
