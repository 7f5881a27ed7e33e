"""``modernbert classify``: text (or text-pair) classification."""

from __future__ import annotations

import argparse
from typing import Any

from ..errors import CLIError
from ..inputs import Record, check_not_empty, gather_inputs, no_input
from ..models import add_model_options, load_pipeline, max_tokens, over_length, run_pipeline, too_long
from ..output import cell, execute, score

HELP = "text (or text-pair) classification"


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_model_options(p, top_k=1, truncate=True)


def _fields(record: Record) -> dict[str, str]:
    return dict(record.data) if isinstance(record.data, dict) else {"text": record.data}


def _tokenizer_input(record: Record) -> str | tuple[str, str]:
    fields = _fields(record)
    return (fields["text"], fields["text_pair"]) if "text_pair" in fields else fields["text"]


def run(args: argparse.Namespace) -> int:
    """Classify texts (or ``text``/``text_pair`` pairs from JSONL): the top-k labels with their scores."""
    records, from_stream = gather_inputs(args.texts, args.file, optional=("text_pair",))
    if not records:
        raise no_input("classify")
    check_not_empty(records, ("text", "text_pair"))
    pipe = load_pipeline("text-classification", args)
    limit = max_tokens(pipe)
    options: dict[str, Any] = {"top_k": args.top_k}
    if args.truncate:
        options.update(truncation=True, max_length=limit)

    def call(part: list[Record]) -> list[Any]:
        if not args.truncate:
            for record, tokens, _ in over_length(pipe, part, [_tokenizer_input(r) for r in part]):
                raise CLIError(too_long(record, tokens, limit, f"pass --truncate to cut it to {limit} tokens"))
        return run_pipeline(pipe, [r.data for r in part], **options)

    def to_json(record: Record, result: Any) -> dict[str, Any]:
        return {**_fields(record), "labels": result}

    def to_rows(number: int, record: Record, result: Any) -> list[list[str]]:
        fields = _fields(record)
        text = fields["text"] + (f" ‖ {fields['text_pair']}" if "text_pair" in fields else "")
        return [[str(number) if i == 0 else "", cell(text) if i == 0 else "", str(r["label"]), score(r["score"])]
                for i, r in enumerate(result)]

    return execute(args, records, from_stream, call, to_json, to_rows, ["#", "text", "label", "score"], (3,))
