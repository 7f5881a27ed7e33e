"""``modernbert ner``: token classification / named entities."""

from __future__ import annotations

import argparse
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from ..errors import CLIError
from ..inputs import Record, check_not_empty, gather_inputs, no_input
from ..models import (
    add_model_options,
    load_pipeline,
    logger,
    max_tokens,
    non_negative_int,
    over_length,
    run_pipeline,
    too_long,
)
from ..output import cell, execute, score

HELP = "token classification / named entities"
AGGREGATIONS = ("none", "simple", "first", "average", "max")


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_model_options(p, top_k=None)
    p.add_argument("-a", "--aggregation", default="simple", choices=AGGREGATIONS,
                   help="how sub-word predictions are grouped into entities (default: simple)")
    p.add_argument("--stride", type=non_negative_int, default=None, metavar="N",
                   help="read a text longer than the model's maximum in windows of that many tokens that overlap "
                        "by N tokens, so that entities are found in all of it (e.g. --stride 128; not with "
                        "--aggregation none) (default: no windows: only the first window is read, with a warning)")
    p.add_argument("--truncate", action="store_true",
                   help="read only the first window of a text longer than the model's maximum, without the "
                        "warning (default: warn)")


@contextmanager
def _cli_words_for_the_cut() -> Iterator[None]:
    """Without the pipeline's own warning for a text cut to one window: it names the Python option (stride=),
    and the command line has already said it with its flags (or was told --truncate)."""
    pipeline_logger = logging.getLogger("modernbert.pipelines.token_classification")

    def no_warning(record: logging.LogRecord) -> bool:
        return record.levelno != logging.WARNING

    pipeline_logger.addFilter(no_warning)
    try:
        yield
    finally:
        pipeline_logger.removeFilter(no_warning)


def run(args: argparse.Namespace) -> int:
    """Token classification: the entities of each text (grouped by ``--aggregation``).

    A text longer than the model's maximum is read whole with ``--stride N`` (overlapping windows); without
    it only its first window is read, with a warning that names the way out (``--truncate`` silences it).
    """
    if args.stride is not None and args.aggregation == "none":
        raise CLIError("--stride merges the entities of overlapping windows, which needs --aggregation simple, "
                       "first, average or max (not none)")
    if args.stride is not None and args.truncate:
        raise CLIError("--stride reads all of a long text and --truncate only its beginning: give one of them")
    records, from_stream = gather_inputs(args.texts, args.file)
    if not records:
        raise no_input("ner")
    check_not_empty(records)
    pipe = load_pipeline("token-classification", args, aggregation_strategy=args.aggregation)
    limit = max_tokens(pipe)
    options: dict[str, Any] = {"aggregation_strategy": args.aggregation}
    if args.stride is not None:
        window = limit - pipe.tokenizer.num_special_tokens_to_add(pair=False)
        if args.stride >= window:
            raise CLIError(f"--stride {args.stride} must be less than the window, {window} tokens (the model's "
                           f"maximum of {limit}, less the special tokens)")
        options["stride"] = args.stride

    def call(part: list[Record]) -> list[Any]:
        texts = [r.data for r in part]
        if args.stride is not None:
            return run_pipeline(pipe, texts, **options)
        if not args.truncate:
            for record, tokens, _ in over_length(pipe, part, texts):
                logger.warning(too_long(record, tokens, limit, f"only its first {limit} tokens are read: pass "
                                        "--stride N (e.g. --stride 128) to read all of it in overlapping windows, "
                                        "or --truncate to read the beginning without this warning"))
        with _cli_words_for_the_cut():
            return run_pipeline(pipe, texts, **options)

    def to_json(record: Record, result: Any) -> dict[str, Any]:
        return {"text": record.data, "entities": result}

    def to_rows(number: int, record: Record, result: Any) -> list[list[str]]:
        if not result:
            return [[str(number), "-", "(no entities)", "", "", ""]]
        rows = []
        for i, e in enumerate(result):
            label = e.get("entity_group", e.get("entity", ""))
            start = "" if e.get("start") is None else str(e["start"])
            end = "" if e.get("end") is None else str(e["end"])
            rows.append([str(number) if i == 0 else "", str(label), cell(e.get("word", "")), score(e["score"]),
                         start, end])
        return rows

    return execute(args, records, from_stream, call, to_json, to_rows,
                   ["#", "entity", "word", "score", "start", "end"], (3, 4, 5))
