"""``modernbert qa``: extractive question answering."""

from __future__ import annotations

import argparse
from typing import Any

from ..errors import CLIError
from ..inputs import Record, check_not_empty, gather_inputs, no_input
from ..models import add_model_options, load_pipeline, run_pipeline
from ..output import cell, execute, score

HELP = "extractive question answering"


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_model_options(p, top_k=1)
    p.add_argument("-q", "--question",
                   help="the question, asked of every context: the texts, the lines of --file, or JSONL records "
                        "that hold only 'context' (a record with its own 'question' is then an error)")
    p.add_argument("-c", "--context",
                   help="the context, in which every question is answered: the texts, the lines of --file, or "
                        "JSONL records that hold only 'question' (a record with its own 'context' is then an error)")


def _records(args: argparse.Namespace) -> tuple[list[Record], bool]:
    """The (question, context) records of the arguments, --file and stdin, with --question / --context applied."""
    if args.question is not None and args.context is not None:
        if args.texts or args.file:
            raise CLIError("with both --question and --context, give no other texts or --file")
        return [Record({"question": args.question, "context": args.context}, "arguments")], False
    given, flag = ("question", "--question") if args.question is not None else ("context", "--context")
    fixed = args.question if args.question is not None else args.context
    if fixed is None:
        return gather_inputs(args.texts, args.file, fields=("question", "context"))
    other = "context" if given == "question" else "question"
    records, from_stream = gather_inputs(args.texts, args.file, fields=(other,), optional=(given,))
    converted = []
    for record in records:
        if isinstance(record.data, str):
            data = {other: record.data}
        elif given in record.data:
            raise CLIError(f"{record.where}: the record has its own {given!r}, and {flag} gives one too: leave out "
                           f"{flag}, or the {given!r} field")
        else:
            data = dict(record.data)
        data[given] = fixed
        converted.append(Record({"question": data["question"], "context": data["context"]}, record.where))
    return converted, from_stream


def run(args: argparse.Namespace) -> int:
    """Extractive question answering: the answer span of each question in its context.

    Inputs: ``--question Q --context C``; ``--context C`` with questions as texts (or lines, or JSONL records
    with ``question``); ``--question Q`` with contexts as texts (or lines, or JSONL records with ``context``);
    or JSONL records with ``question`` and ``context``.
    """
    records, from_stream = _records(args)
    if not records:
        raise no_input("qa")
    for record in records:
        if isinstance(record.data, str):
            raise CLIError(f"{record.where}: qa needs a question and a context: give --question and/or "
                           "--context, or JSONL records with 'question' and 'context'")
    check_not_empty(records, ("question", "context"))
    pipe = load_pipeline("question-answering", args)

    def call(part: list[Record]) -> list[Any]:
        return run_pipeline(pipe, [r.data for r in part], top_k=args.top_k)

    def to_json(record: Record, result: Any) -> dict[str, Any]:
        return {**record.data, "answer": result}

    def to_rows(number: int, record: Record, result: Any) -> list[list[str]]:
        return [[str(number) if i == 0 else "", cell(record.data["question"], 40) if i == 0 else "",
                 cell(a["answer"], 40), score(a["score"]), str(a["start"]), str(a["end"])]
                for i, a in enumerate(result)]

    return execute(args, records, from_stream, call, to_json, to_rows,
                   ["#", "question", "answer", "score", "start", "end"], (3, 4, 5))
