#!/usr/bin/env python
"""Start a `modernbert pretrain` run from the weights of an existing model (a warm start).

Writes the step-0 checkpoint of the run into ``--out-dir``: the weights of ``--init-from`` (which must have
the run's model shape and vocabulary), a fresh optimizer and schedule, and the run's data position and RNG
state, exactly as `modernbert pretrain` would start. The run is then continued with the same options and
``--resume``; everything after step 0 is the ordinary pretraining code. With ``--eval-at-start`` the held-out
evaluation of the initial weights is logged as the step-0 point of the training curve.

Usage (the pretraining options are those of `modernbert pretrain --help`)::

    python scripts/warm_start.py --init-from data/init $OPTIONS
    modernbert pretrain $OPTIONS --resume
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

SHAPE_KEYS = (
    "vocab_size", "hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads", "local_attention",
    "global_attn_every_n_layers", "global_rope_theta", "local_rope_theta", "max_position_embeddings",
    "pad_token_id", "cls_token_id", "sep_token_id",
)


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point."""
    import torch

    from modernbert import hub
    from modernbert.model import ModernBertForMaskedLM
    from modernbert.training import distributed
    # the module: the package exports a function of the same name
    pt = importlib.import_module("modernbert.training.pretrain")

    parser = pt.build_arg_parser("warm_start.py")
    parser.add_argument("--init-from", type=Path, required=True, help="model folder whose weights start the run")
    parser.add_argument("--eval-at-start", action="store_true", help="evaluate the initial weights (step 0)")
    args = parser.parse_args(argv)
    init_from, eval_at_start = args.init_from, args.eval_at_start
    del args.init_from, args.eval_at_start
    cfg = pt.config_from_args(args)
    if not (init_from / hub.CONFIG_NAME).is_file():
        print(f"error: {init_from} has no {hub.CONFIG_NAME}; pass a model folder to --init-from", file=sys.stderr)
        return 2
    if pt.list_checkpoints(cfg.out_dir):
        print(f"error: {cfg.out_dir} already holds checkpoints; continue it with --resume or use another --out-dir",
              file=sys.stderr)
        return 2
    cfg.resume = False
    cfg.validate()
    init = ModernBertForMaskedLM.from_pretrained(str(init_from), dtype=torch.float32)
    dist = distributed.setup(cfg.device)
    try:
        run = pt._Run(cfg, dist)
        want, have = run.model_cfg.to_dict(), init.config.to_dict()
        diff = {k: (have.get(k), want.get(k)) for k in SHAPE_KEYS if have.get(k) != want.get(k)}
        if diff:
            print(f"error: {init_from} does not match the run's model (init, run): {diff}", file=sys.stderr)
            return 2
        run.resume()  # starts the run and its log, as `modernbert pretrain` does
        run.model.load_state_dict(init.state_dict(), strict=True)
        if eval_at_start:
            run.evaluate()
        run.checkpoint()
    finally:
        distributed.teardown(dist)
    print(f"wrote the step-0 checkpoint of {cfg.out_dir} from {init_from}; continue with --resume", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
