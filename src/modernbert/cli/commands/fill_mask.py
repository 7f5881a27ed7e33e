"""``modernbert fill-mask``: the most likely tokens behind each [MASK]."""

from __future__ import annotations

import argparse
from typing import Any

from ..errors import CLIError
from ..inputs import Record, check_not_empty, gather_inputs, no_input
from ..models import add_model_options, load_pipeline, max_tokens, over_length, run_pipeline, too_long
from ..output import cell, execute, score

HELP = "predict the [MASK] tokens of texts"


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_model_options(p, top_k=5, truncate=True)
    p.add_argument("-t", "--targets", action="append", metavar="WORDS",
                   help="score only these candidate words (comma-separated; repeatable)")


def run(args: argparse.Namespace) -> int:
    """Predict the tokens behind ``[MASK]``: top-k tokens with score and the filled-in sequence."""
    records, from_stream = gather_inputs(args.texts, args.file)
    if not records:
        raise no_input("fill-mask")
    check_not_empty(records)
    targets = [t for group in args.targets or () for t in group.split(",") if t.strip()] or None
    pipe = load_pipeline("fill-mask", args)
    tok = pipe.tokenizer
    mask = tok.mask_token or "[MASK]"
    for record in records:
        if mask not in record.data:
            raise CLIError(f"{record.where} has no {mask} token: {cell(record.data, 50)!r}")
    options: dict[str, Any] = {"top_k": args.top_k}
    if targets:
        options["targets"] = targets
    limit = max_tokens(pipe)
    if args.truncate:
        options["tokenizer_kwargs"] = {"truncation": True, "max_length": limit}

    def call(part: list[Record]) -> list[Any]:
        texts = [r.data for r in part]
        for record, tokens, _ in over_length(pipe, part, texts):
            if not args.truncate:
                raise CLIError(too_long(record, tokens, limit, f"pass --truncate to cut it to {limit} tokens"))
            kept = tok([record.data], truncation=True, max_length=limit, return_attention_mask=False)["input_ids"][0]
            if tok.mask_token_id not in kept:
                raise CLIError(too_long(record, tokens, limit, f"its {mask} is past token {limit}, so --truncate "
                                                               "cuts it off: shorten the text before the mask"))
        return run_pipeline(pipe, texts, **options)

    several = any(r.data.count(mask) > 1 for r in records)  # a "mask" column only when needed

    def to_json(record: Record, result: Any) -> dict[str, Any]:
        return {"text": record.data, "predictions": result}

    def to_rows(number: int, record: Record, result: Any) -> list[list[str]]:
        rows: list[list[str]] = []
        for m, predictions in enumerate(result, 1):  # one list of candidates per mask
            for rank, p in enumerate(predictions, 1):
                token = p["token_str"].strip() or repr(p["token_str"])
                row = [str(number) if not rows else "", str(m) if rank == 1 else "", str(rank), score(p["score"]),
                       cell(token, 20), cell(p["sequence"])]
                rows.append(row if several else row[:1] + row[2:])
        return rows

    headers = ["#", "mask", "rank", "score", "token", "sequence"] if several else ["#", "rank", "score", "token",
                                                                                     "sequence"]
    right = (2, 3) if several else (1, 2)
    return execute(args, records, from_stream, call, to_json, to_rows, headers, right)
