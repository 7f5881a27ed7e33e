"""The inputs of a subcommand: argument texts, standard input, and text or JSONL files.

A text file holds one input per line; a JSONL file (a ``.jsonl`` name, or a first line that starts with ``{``)
one JSON object per line. Lines end at ``\\n`` only (a trailing ``\\r`` is dropped), never at the other
characters `str.splitlines` breaks on (U+2028, U+0085, form feed, ...), which may sit inside a text or a JSON
string. Blank lines are skipped; every record remembers where it came from, for error messages.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from .errors import CLIError


@dataclass
class Record:
    """One input: a text, or a dict of fields (``text``/``text_pair``, ``question``/``context``)."""

    data: str | dict[str, str]
    where: str  # "argument 2", "notes.jsonl:7", "stdin:3": for error messages


def split_lines(text: str) -> list[str]:
    """`text` cut at each ``\\n`` (a ``\\r`` before it dropped); no other character ends a line."""
    lines = text.split("\n")
    return [line[:-1] if line.endswith("\r") else line for line in lines]


def _is_jsonl(lines: list[str], name: str) -> bool:
    if name.endswith(".jsonl"):
        return True
    first = next((line for line in lines if line.strip()), "")
    return first.lstrip().startswith("{")


def _names(fields: tuple[str, ...]) -> str:
    return " and ".join(repr(f) for f in fields)


def parse_lines(lines: list[str], name: str, fields: tuple[str, ...], optional: tuple[str, ...]) -> list[Record]:
    """Records of a text (one per non-blank line) or JSONL document called ``name``.

    JSONL records must hold every field of ``fields`` (strings); ``optional`` fields are kept when present. A
    record whose only field is ``text`` becomes a plain text, others a dict.
    """
    records: list[Record] = []
    jsonl = _is_jsonl(lines, name)
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        where = f"{name}:{number}"
        if not jsonl:
            records.append(Record(line, where))
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as e:
            raise CLIError(f"{where}: not valid JSON ({e.msg}, column {e.colno})") from None
        if isinstance(obj, str) and fields == ("text",):
            obj = {"text": obj}
        if not isinstance(obj, dict):
            raise CLIError(f"{where}: a JSONL record must be an object with {_names(fields)}")
        data: dict[str, str] = {}
        for key in fields + optional:
            if key not in obj or obj[key] is None:
                if key in fields:
                    raise CLIError(f"{where}: the record has no {key!r} field (needs {_names(fields)})")
                continue
            if not isinstance(obj[key], str):
                raise CLIError(f"{where}: field {key!r} must be a string, not {type(obj[key]).__name__}")
            data[key] = obj[key]
        records.append(Record(data["text"] if list(data) == ["text"] else data, where))
    return records


def _read_file(path: str, fields: tuple[str, ...], optional: tuple[str, ...]) -> list[Record]:
    p = Path(path)
    if not p.exists():
        raise CLIError(f"no such file: {path}")
    if p.is_dir():
        raise CLIError(f"{path} is a folder, not a file")
    try:
        text = p.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError:
        raise CLIError(f"{path} is not UTF-8 text") from None
    except OSError as e:
        raise CLIError(f"cannot read {path}: {e.strerror or e}") from None
    return parse_lines(split_lines(text), path, fields, optional)


def _read_stdin(stdin: TextIO, fields: tuple[str, ...], optional: tuple[str, ...]) -> list[Record]:
    """Standard input, decoded as UTF-8 whatever the locale says (like --file)."""
    buffer = getattr(stdin, "buffer", None)
    try:
        text = buffer.read().decode("utf-8-sig") if buffer is not None else stdin.read()
    except UnicodeDecodeError:
        raise CLIError("standard input is not UTF-8 text") from None
    return parse_lines(split_lines(text), "stdin", fields, optional)


def _argument_text(text: str) -> str:
    """An argument as text: bytes the locale could not decode (surrogate escapes) are read as UTF-8."""
    if any("\udc80" <= c <= "\udcff" for c in text):
        return os.fsencode(text).decode("utf-8", errors="replace")
    return text


def isatty(stream: Any) -> bool:
    """Whether `stream` is a terminal (False for anything that cannot say)."""
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError, OSError):
        return False


def gather_inputs(
    texts: Sequence[str],
    file: str | None,
    *,
    fields: tuple[str, ...] = ("text",),
    optional: tuple[str, ...] = (),
    stdin: TextIO | None = None,
    read_stdin: bool | None = None,
) -> tuple[list[Record], bool]:
    """The inputs of a subcommand, in order: argument texts (``-`` reads stdin), then ``--file``.

    With no text and no file, stdin is read when it is not a terminal (``read_stdin=None``) or when
    ``read_stdin`` is true. Returns the records and whether any came from a file or stdin.
    """
    stdin = sys.stdin if stdin is None else stdin
    records: list[Record] = []
    from_stream = False
    stdin_used = False
    for i, text in enumerate(texts, 1):
        if text == "-":
            if stdin_used:
                raise CLIError("'-' (standard input) given more than once")
            stdin_used = from_stream = True
            records.extend(_read_stdin(stdin, fields, optional))
        else:
            records.append(Record(_argument_text(text), f"argument {i}"))
    if file is not None:
        records.extend(_read_file(file, fields, optional))
        from_stream = True
    if not texts and file is None:
        if read_stdin is None:
            read_stdin = stdin is not None and not isatty(stdin)
        if read_stdin:
            records.extend(_read_stdin(stdin, fields, optional))
            from_stream = True
    return records, from_stream


def no_input(command: str) -> CLIError:
    """The error for a subcommand that got no input at all."""
    return CLIError(f"no input: give texts as arguments, with --file PATH, or on standard input "
                    f"(see 'modernbert {command} --help')")


def check_not_empty(records: list[Record], fields: tuple[str, ...] = ("text",)) -> None:
    """A CLIError naming the first record whose text (or one of `fields`) is empty or only whitespace."""
    for record in records:
        data = record.data if isinstance(record.data, dict) else {"text": record.data}
        for key in fields:
            if key in data and not data[key].strip():
                what = "the text" if key == "text" else f"the {key}"
                blank = " (only whitespace)" if data[key] else ""
                raise CLIError(f"{record.where}: {what} is empty{blank}; give it some text, or leave it out")
