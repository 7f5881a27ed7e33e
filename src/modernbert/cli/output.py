"""What a subcommand prints: an aligned table, or JSON lines, streamed as the batches come back."""

from __future__ import annotations

import argparse
import json
import sys
import unicodedata
from collections.abc import Callable, Sequence
from typing import Any, TextIO

from .inputs import Record, isatty

CELL_WIDTH = 60  # longest text shown in a table cell
_VISIBLE = {"\n": "⏎", "\r": "⏎", "\t": " "}


def ensure_ascii(stream: TextIO) -> bool:
    """Whether JSON written to `stream` must escape non-ASCII characters (a stream that is not UTF-8)."""
    encoding = (getattr(stream, "encoding", None) or "").lower().replace("-", "").replace("_", "")
    return encoding not in ("utf8", "utf8sig")


def write_json(obj: Any, stream: TextIO | None = None) -> None:
    """`obj` as one line of JSON on `stream` (default: stdout)."""
    stream = sys.stdout if stream is None else stream
    stream.write(json.dumps(obj, ensure_ascii=ensure_ascii(stream)) + "\n")


def char_width(c: str) -> int:
    """Columns one character takes on a terminal: 2 for wide (CJK), 0 for combining marks, else 1."""
    return 2 if unicodedata.east_asian_width(c) in "WF" else 0 if unicodedata.combining(c) else 1


def display_width(text: str) -> int:
    """Columns `text` takes on a terminal."""
    return sum(char_width(c) for c in text)


def cell(value: Any, width: int = CELL_WIDTH) -> str:
    """``value`` as one short table cell: control characters made visible, long text cut with ``…``.

    One pass that stops at the first character past `width` columns: the cost does not grow with the text.
    """
    text = value if isinstance(value, str) else str(value)
    shown: list[str] = []
    used = 0  # columns of `shown`
    fits = 0  # how many characters of `shown` fit in width - 1 columns (room for the "…")
    previous = ""
    for c in text:
        if c == "\n" and previous == "\r":  # \r\n is one line break: already shown as ⏎
            previous = c
            continue
        previous = c
        c = _VISIBLE.get(c, c)
        if unicodedata.category(c) == "Cc":
            c = "�"
        used += char_width(c)
        if used > width:
            return "".join(shown[:fits]) + "…"
        shown.append(c)
        if used <= width - 1:
            fits = len(shown)
    return "".join(shown)


def format_table(headers: Sequence[str], rows: Sequence[Sequence[str]], right: Sequence[int] = ()) -> str:
    """An aligned plain-text table; columns in ``right`` are right-aligned (numbers)."""
    widths = [display_width(h) for h in headers]
    for row in rows:
        for j, value in enumerate(row):
            widths[j] = max(widths[j], display_width(value))

    def line(values: Sequence[str]) -> str:
        parts = []
        for j, value in enumerate(values):
            pad = " " * (widths[j] - display_width(value))
            parts.append(pad + value if j in right else value + pad)
        return "  ".join(parts).rstrip()

    return "\n".join([line(headers), *(line(row) for row in rows)]) + "\n"


def score(value: Any) -> str:
    """A score as a table shows it."""
    return f"{float(value):.4f}"


def execute(
    args: argparse.Namespace,
    records: list[Record],
    from_stream: bool,
    call: Callable[[list[Record]], list[Any]],
    to_json: Callable[[Record, Any], dict[str, Any]],
    to_rows: Callable[[int, Record, Any], list[list[str]]],
    headers: Sequence[str],
    right: Sequence[int],
) -> int:
    """Run ``call`` over the records in chunks and print JSONL (streamed, chunk by chunk) or a table (at the end).

    call: the records of one chunk → one result per record (the pipeline's `run`).
    to_json: a record and its result → the JSON object printed for it.
    to_rows: its number (from 1), the record and its result → its table rows.
    """
    from ..pipelines.base import Progress

    if args.progress is not None:
        enabled = args.progress
    else:  # auto: for file / stdin input on a terminal, unless streamed JSON lines would cut through the bar
        enabled = from_stream and isatty(sys.stderr) and not (args.json and isatty(sys.stdout))
    bar = Progress(len(records), args.command, enabled)
    rows: list[list[str]] = []
    chunk = max(1, args.batch_size) * 8  # length-sorted within a chunk; JSONL streams per chunk
    try:
        for start in range(0, len(records), chunk):
            part = records[start:start + chunk]
            results = call(part)
            if len(results) != len(part):
                raise RuntimeError(f"the pipeline returned {len(results)} results for {len(part)} inputs")
            for offset, (record, result) in enumerate(zip(part, results)):
                if args.json:
                    write_json(to_json(record, result))
                else:
                    rows.extend(to_rows(start + offset + 1, record, result))
            sys.stdout.flush()
            bar.update(len(part))
    finally:
        bar.close()
    if not args.json:
        sys.stdout.write(format_table(headers, rows, right))
    return 0
