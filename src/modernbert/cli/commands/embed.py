"""``modernbert embed``: sentence embeddings, as sentence-transformers computes them."""

from __future__ import annotations

import argparse
import math
from typing import Any

from ..inputs import Record, check_not_empty, gather_inputs, no_input
from ..models import add_model_options, load_sentence_pipeline, run_pipeline
from ..output import cell, execute

HELP = "sentence embeddings"
POOLINGS = ("mean", "cls")


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_model_options(p, top_k=None)
    p.add_argument("--pooling", default=None, choices=POOLINGS,
                   help="mean of the token vectors, or the [CLS] vector (default: what a sentence-transformers "
                        "folder says, else mean)")
    p.add_argument("--normalize", action=argparse.BooleanOptionalAction, default=None,
                   help="scale every embedding to unit length, or (--no-normalize) never, even when the folder "
                        "has a Normalize module (default: as the folder says; a plain folder does not)")
    p.add_argument("--prompt-name", default=None, metavar="NAME",
                   help="prefix every text with this prompt of the folder (e.g. query, document)")


def run(args: argparse.Namespace) -> int:
    """Sentence embeddings: one vector per text, as sentence-transformers computes it.

    The folder's sentence-transformers settings (pooling, normalization, prompts) apply; a plain ModernBERT
    folder gets mean pooling. --pooling and --normalize / --no-normalize override them.
    """
    records, from_stream = gather_inputs(args.texts, args.file)
    if not records:
        raise no_input("embed")
    check_not_empty(records)
    pipe = load_sentence_pipeline(args, pooling=args.pooling, normalize=args.normalize)
    options = {} if args.prompt_name is None else {"prompt_name": args.prompt_name}

    def call(part: list[Record]) -> list[Any]:
        return run_pipeline(pipe, [r.data for r in part], **options)

    def to_json(record: Record, result: Any) -> dict[str, Any]:
        return {"text": record.data, "embedding": result}

    def to_rows(number: int, record: Record, result: Any) -> list[list[str]]:
        norm = math.sqrt(sum(v * v for v in result))
        head = ", ".join(f"{v:.4f}" for v in result[:4]) + (", …" if len(result) > 4 else "")
        return [[str(number), cell(record.data, 40), str(len(result)), f"{norm:.4f}", f"[{head}]"]]

    return execute(args, records, from_stream, call, to_json, to_rows,
                   ["#", "text", "dim", "norm", "embedding"], (2, 3))
