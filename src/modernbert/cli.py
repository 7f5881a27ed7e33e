"""The ``modernbert`` command line: ``fill-mask``, ``classify``, ``ner``, ``qa``, ``embed``, ``info``, ``pretrain``.

Examples::

    modernbert fill-mask "The capital of France is [MASK]."
    modernbert classify --model ./my-sentiment-model "What a great film!" "Dull."
    modernbert ner --file sentences.txt --json > entities.jsonl
    modernbert qa --question "Where is the Eiffel tower?" --context "The Eiffel tower is in Paris."
    echo "some text" | modernbert embed --normalize --json
    modernbert info answerdotai/ModernBERT-base
    modernbert pretrain --help

Input (every model subcommand): the texts given as arguments; or ``--file PATH`` with one text per line, or
JSONL (a ``.jsonl`` file, or lines that start with ``{``) whose records carry ``text`` (and ``text_pair`` for
``classify``; ``question`` and ``context`` for ``qa``); or standard input, read like a file when no text is
given and stdin is not a terminal, or where an argument is ``-``. Blank lines are skipped; order is kept.

Output: an aligned table, or with ``--json`` one JSON object per input, one per line (JSONL), in input
order; a single input therefore prints a single JSON document. Each object holds the input fields and the
pipeline's own output, unchanged (``predictions``, ``labels``, ``entities``, ``answer`` or ``embedding``).

Exit codes: 0 on success; 2 for bad input (bad arguments, a missing file, empty input, a model that cannot be
loaded, ...) with a one-line ``error: ...`` on stderr; 1 for an unexpected failure (set ``MODERNBERT_DEBUG=1``
for the traceback); 130 when interrupted.

Warnings (of Python and of the ``modernbert`` loggers) are printed as one ``warning: ...`` line each. Heavy
imports (torch, the model) happen inside the subcommands; this module itself imports none.
"""

from __future__ import annotations

import argparse
import inspect
import json
import logging
import math
import os
import sys
import time
import unicodedata
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn, TextIO

from . import __version__

DEFAULT_MODEL = "answerdotai/ModernBERT-base"
BUNDLED_MODEL = "modernbert-tiny"
DTYPES = ("auto", "float32", "bfloat16", "float16")
AGGREGATIONS = ("none", "simple", "first", "average", "max")
POOLINGS = ("mean", "cls")
CELL_WIDTH = 60  # longest text shown in a table cell


class CLIError(Exception):
    """A bad input: printed as one line ``error: ...`` on stderr, exit code 2."""


class _Parser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one line (``error: ...``) on stderr, exit code 2."""

    def error(self, message: str) -> NoReturn:
        message = " ".join(message.split())
        self.exit(2, f"error: {message} (see '{self.prog} --help')\n")


# ----- input -----


@dataclass
class Record:
    """One input: a text, or a dict of fields (``text``/``text_pair``, ``question``/``context``)."""

    data: str | dict[str, str]
    where: str  # "argument 2", "notes.jsonl:7", "stdin:3": for error messages


def _is_jsonl(lines: list[str], name: str) -> bool:
    if name.endswith(".jsonl"):
        return True
    first = next((line for line in lines if line.strip()), "")
    return first.lstrip().startswith("{")


def _parse_lines(lines: list[str], name: str, fields: tuple[str, ...], optional: tuple[str, ...]) -> list[Record]:
    """Records of a text (one per non-blank line) or JSONL document called ``name``.

    JSONL records must hold every field of ``fields`` (strings); ``optional`` fields are kept when present. A
    record with one field becomes a plain text, others a dict.
    """
    records: list[Record] = []
    jsonl = _is_jsonl(lines, name)
    for number, line in enumerate(lines, 1):
        line = line.rstrip("\r\n")
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


def _names(fields: tuple[str, ...]) -> str:
    return " and ".join(repr(f) for f in fields)


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
    return _parse_lines(text.splitlines(), path, fields, optional)


def _read_stdin(stdin: TextIO, fields: tuple[str, ...], optional: tuple[str, ...]) -> list[Record]:
    """Standard input, decoded as UTF-8 whatever the locale says (like --file)."""
    buffer = getattr(stdin, "buffer", None)
    try:
        text = buffer.read().decode("utf-8-sig") if buffer is not None else stdin.read()
    except UnicodeDecodeError:
        raise CLIError("standard input is not UTF-8 text") from None
    return _parse_lines(text.splitlines(), "stdin", fields, optional)


def _argument_text(text: str) -> str:
    """An argument as text: bytes the locale could not decode (surrogate escapes) are read as UTF-8."""
    if any("\udc80" <= c <= "\udcff" for c in text):
        return os.fsencode(text).decode("utf-8", errors="replace")
    return text


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
            read_stdin = stdin is not None and not _isatty(stdin)
        if read_stdin:
            records.extend(_read_stdin(stdin, fields, optional))
            from_stream = True
    return records, from_stream


def _isatty(stream: Any) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError, OSError):
        return False


def _no_input(command: str) -> CLIError:
    return CLIError(f"no input: give texts as arguments, with --file PATH, or on standard input "
                    f"(see 'modernbert {command} --help')")


# ----- progress -----


class Progress:
    """A one-line progress bar on stderr (``\\r``-updated); silent when disabled."""

    def __init__(self, total: int, enabled: bool, label: str = "inputs", stream: TextIO | None = None) -> None:
        self.total, self.enabled, self.label = total, enabled and total > 0, label
        self.stream = sys.stderr if stream is None else stream
        self.done = 0
        self.start = time.perf_counter()
        self._draw()

    def update(self, n: int) -> None:
        self.done += n
        self._draw()

    def _draw(self) -> None:
        if not self.enabled:
            return
        width = 30
        filled = int(width * self.done / self.total)
        elapsed = time.perf_counter() - self.start
        rate = f" {self.done / elapsed:.1f}/s" if self.done and elapsed > 0 else ""
        bar = "#" * filled + "." * (width - filled)
        self.stream.write(f"\r[{bar}] {self.done}/{self.total} {self.label}{rate}")
        self.stream.flush()

    def close(self) -> None:
        if self.enabled:
            self.stream.write("\n")
            self.stream.flush()
            self.enabled = False


# ----- output -----


def _jsonable(obj: Any) -> Any:
    """Plain Python (for json.dumps) of pipeline output: numpy / torch scalars and arrays become numbers/lists."""
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, (str, bool, int, float)) or obj is None:
        return obj
    if hasattr(obj, "tolist"):  # numpy arrays and scalars, torch tensors
        return _jsonable(obj.tolist())
    if hasattr(obj, "item"):
        return obj.item()
    return str(obj)


def _ensure_ascii(stream: TextIO) -> bool:
    encoding = (getattr(stream, "encoding", None) or "").lower().replace("-", "").replace("_", "")
    return encoding not in ("utf8", "utf8sig")


def _write_json(obj: Any, stream: TextIO | None = None) -> None:
    stream = sys.stdout if stream is None else stream
    stream.write(json.dumps(_jsonable(obj), ensure_ascii=_ensure_ascii(stream)) + "\n")


def _display_width(text: str) -> int:
    return sum(2 if unicodedata.east_asian_width(c) in "WF" else 0 if unicodedata.combining(c) else 1
               for c in text)


def cell(value: Any, width: int = CELL_WIDTH) -> str:
    """``value`` as one short table cell: control characters made visible, long text cut with ``…``."""
    text = value if isinstance(value, str) else str(value)
    text = text.replace("\r\n", "\n").translate({ord("\n"): "⏎", ord("\t"): " ", ord("\r"): "⏎"})
    text = "".join(c if unicodedata.category(c) != "Cc" else "�" for c in text)
    if _display_width(text) > width:
        while _display_width(text) > width - 1:
            text = text[:-1]
        text += "…"
    return text


def format_table(headers: Sequence[str], rows: Sequence[Sequence[str]], right: Sequence[int] = ()) -> str:
    """An aligned plain-text table; columns in ``right`` are right-aligned (numbers)."""
    widths = [_display_width(h) for h in headers]
    for row in rows:
        for j, value in enumerate(row):
            widths[j] = max(widths[j], _display_width(value))

    def line(values: Sequence[str]) -> str:
        parts = []
        for j, value in enumerate(values):
            pad = " " * (widths[j] - _display_width(value))
            parts.append(pad + value if j in right else value + pad)
        return "  ".join(parts).rstrip()

    return "\n".join([line(headers), *(line(row) for row in rows)]) + "\n"


def _score(value: Any) -> str:
    return f"{float(value):.4f}"


# ----- models -----


def _hub_offline() -> bool:
    from .hub import hub_offline

    return hub_offline()


def _bundled_hint() -> str:
    from .hub import bundled_models

    bundled = bundled_models()
    name = BUNDLED_MODEL if BUNDLED_MODEL in bundled or not bundled else bundled[0]
    return f"try --model {name}, which ships with modernbert"


def resolve_model(name: str) -> Path:
    """The local folder of ``name`` (a folder, a bundled model or a hub id), or a CLIError naming the fix."""
    path = Path(name).expanduser()
    if not path.is_dir() and (name.startswith((".", "/", "~")) or name.count("/") > 1):
        # clearly a path, not a hub id or a bundled name: answer without importing torch
        raise CLIError(f"no such model folder: {name}" if not path.exists() else
                       f"{name} is a file; pass the folder that holds config.json and the weights")
    from .hub import HubUnavailableError, resolve_folder

    try:
        return resolve_folder(name)
    except HubUnavailableError:
        why = "offline and not cached" if _hub_offline() else "not cached and the hub could not be reached"
        raise CLIError(f"cannot load {name!r} ({why}); {_bundled_hint()}") from None
    except FileNotFoundError as e:
        raise CLIError(str(e)) from None
    except ValueError as e:
        raise CLIError(str(e)) from None


def _check_device(device: str | None) -> None:
    if device is None:
        return
    import torch

    try:
        dev = torch.device(device)
    except (RuntimeError, ValueError, TypeError):
        raise CLIError(f"--device {device!r} is not a device (try cpu, cuda, cuda:1 or mps)") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise CLIError(f"--device {device!r}, but CUDA is not available here")
    if dev.type == "mps" and not (hasattr(torch.backends, "mps") and torch.backends.mps.is_available()):
        raise CLIError(f"--device {device!r}, but MPS is not available here")


def load_pipeline(task: str, args: argparse.Namespace, **kwargs: Any) -> Any:
    """``modernbert.pipelines.pipeline(task, ...)`` for the model, device, dtype and batch size of ``args``."""
    folder = resolve_model(args.model)
    _check_device(args.device)
    from .pipelines import pipeline
    from .runtime import configure_cpu

    configure_cpu()
    return pipeline(task, model=str(folder), device=args.device, dtype=args.dtype, batch_size=args.batch_size,
                    **kwargs)


def run_batches(
    call: Callable[[list[Any]], list[Any]],
    items: list[Any],
    chunk: int,
    progress: Progress,
    emit: Callable[[int, Any, Any], None],
) -> None:
    """Run ``call`` on ``items`` in chunks of ``chunk``; ``emit(index, item, result)`` for each, in order."""
    try:
        for start in range(0, len(items), chunk):
            part = items[start:start + chunk]
            results = call(part)
            if len(results) != len(part):
                raise RuntimeError(f"the pipeline returned {len(results)} results for {len(part)} inputs")
            for offset, (item, result) in enumerate(zip(part, results)):
                emit(start + offset, item, result)
            sys.stdout.flush()
            progress.update(len(part))
    finally:
        progress.close()


def _per_input(pipe_out: Any, n: int) -> list[Any]:
    """The pipeline output of a single input (n == 1) as a one-element list; a list of n results otherwise."""
    return [pipe_out] if n == 1 else list(pipe_out)


def _as_list(result: Any) -> list[Any]:
    return result if isinstance(result, list) else [result]


def _progress_for(args: argparse.Namespace, from_stream: bool, total: int) -> Progress:
    if args.progress is not None:
        enabled = args.progress
    else:  # auto: for file / stdin input on a terminal, unless streamed JSON lines would cut through the bar
        enabled = from_stream and _isatty(sys.stderr) and not (args.json and _isatty(sys.stdout))
    return Progress(total, enabled)


def _execute(
    args: argparse.Namespace,
    records: list[Record],
    from_stream: bool,
    call: Callable[[list[Any]], list[Any]],
    to_json: Callable[[Record, Any], dict[str, Any]],
    to_rows: Callable[[int, Record, Any], list[list[str]]],
    headers: Sequence[str],
    right: Sequence[int],
) -> int:
    """Run the pipeline call over the records and print JSONL (streamed) or a table (at the end)."""
    rows: list[list[str]] = []

    def emit(index: int, record: Record, result: Any) -> None:
        if args.json:
            _write_json(to_json(record, result))
        else:
            rows.extend(to_rows(index + 1, record, result))

    chunk = max(1, args.batch_size) * 8  # length-sorted within a chunk; JSONL streams per chunk
    run_batches(call, records, chunk, _progress_for(args, from_stream, len(records)), emit)
    if not args.json:
        sys.stdout.write(format_table(headers, rows, right))
    return 0


def _input_fields(record: Record) -> dict[str, str]:
    return dict(record.data) if isinstance(record.data, dict) else {"text": record.data}


# ----- subcommands -----


def cmd_fill_mask(args: argparse.Namespace) -> int:
    """Predict the tokens behind ``[MASK]``: top-k tokens with score and the filled-in sequence."""
    records, from_stream = gather_inputs(args.texts, args.file)
    if not records:
        raise _no_input("fill-mask")
    targets = [t for group in args.targets or () for t in group.split(",") if t.strip()] or None
    pipe = load_pipeline("fill-mask", args)
    mask = getattr(pipe.tokenizer, "mask_token", None) or "[MASK]"
    for record in records:
        if mask not in record.data:
            raise CLIError(f"{record.where} has no {mask} token: {cell(record.data, 50)!r}")
    extra: dict[str, Any] = {"top_k": args.top_k}
    if targets:
        extra["targets"] = targets

    def call(part: list[Record]) -> list[Any]:
        texts = [r.data for r in part]
        return _per_input(pipe(texts[0] if len(texts) == 1 else texts, **extra), len(texts))

    several = any(r.data.count(mask) > 1 for r in records)  # a "mask" column only when needed

    def to_json(record: Record, result: Any) -> dict[str, Any]:
        return {"text": record.data, "predictions": result}

    def to_rows(number: int, record: Record, result: Any) -> list[list[str]]:
        per_mask = result if result and isinstance(result[0], list) else [result]
        rows: list[list[str]] = []
        for m, predictions in enumerate(per_mask, 1):
            for rank, p in enumerate(predictions, 1):
                token = p["token_str"].strip() or repr(p["token_str"])
                row = [str(number) if not rows else "", str(m) if rank == 1 else "", str(rank), _score(p["score"]),
                       cell(token, 20), cell(p["sequence"])]
                rows.append(row if several else row[:1] + row[2:])
        return rows

    headers = ["#", "mask", "rank", "score", "token", "sequence"] if several else ["#", "rank", "score", "token",
                                                                                     "sequence"]
    right = (2, 3) if several else (1, 2)
    return _execute(args, records, from_stream, call, to_json, to_rows, headers, right)


def cmd_classify(args: argparse.Namespace) -> int:
    """Classify texts (or ``text``/``text_pair`` pairs from JSONL): the top-k labels with their scores."""
    records, from_stream = gather_inputs(args.texts, args.file, optional=("text_pair",))
    if not records:
        raise _no_input("classify")
    pipe = load_pipeline("text-classification", args)

    def call(part: list[Record]) -> list[Any]:
        inputs = [r.data for r in part]
        out = pipe(inputs[0] if len(inputs) == 1 else inputs, top_k=args.top_k)
        if len(inputs) == 1:  # one input: its labels (a list), or a bare dict for top_k=1 in some versions
            return [_as_list(out)]
        return [_as_list(r) for r in out]

    def to_json(record: Record, result: Any) -> dict[str, Any]:
        return {**_input_fields(record), "labels": result}

    def to_rows(number: int, record: Record, result: Any) -> list[list[str]]:
        fields = _input_fields(record)
        text = fields["text"] + (f" ‖ {fields['text_pair']}" if "text_pair" in fields else "")
        return [[str(number) if i == 0 else "", cell(text) if i == 0 else "", str(r["label"]), _score(r["score"])]
                for i, r in enumerate(result)]

    return _execute(args, records, from_stream, call, to_json, to_rows, ["#", "text", "label", "score"], (3,))


def cmd_ner(args: argparse.Namespace) -> int:
    """Token classification: the entities of each text (grouped by ``--aggregation``)."""
    records, from_stream = gather_inputs(args.texts, args.file)
    if not records:
        raise _no_input("ner")
    pipe = load_pipeline("token-classification", args, aggregation_strategy=args.aggregation)

    def call(part: list[Record]) -> list[Any]:
        texts = [r.data for r in part]
        out = pipe(texts[0] if len(texts) == 1 else texts, aggregation_strategy=args.aggregation)
        return _per_input(out, len(texts))

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
            rows.append([str(number) if i == 0 else "", str(label), cell(e.get("word", "")), _score(e["score"]),
                         start, end])
        return rows

    return _execute(args, records, from_stream, call, to_json, to_rows,
                    ["#", "entity", "word", "score", "start", "end"], (3, 4, 5))


def cmd_qa(args: argparse.Namespace) -> int:
    """Extractive question answering: the answer span of each question in its context.

    Inputs: ``--question Q --context C``; ``--context C`` with questions as texts; ``--question Q`` with
    contexts as texts; or JSONL records with ``question`` and ``context``.
    """
    if args.question is not None and args.context is not None:
        if args.texts or args.file:
            raise CLIError("with both --question and --context, give no other texts or --file")
        records: list[Record] = [Record({"question": args.question, "context": args.context}, "arguments")]
        from_stream = False
    else:
        records, from_stream = gather_inputs(args.texts, args.file, fields=("question", "context"))
        if not records:
            raise _no_input("qa")
        converted = []
        for record in records:
            if isinstance(record.data, str):
                if args.context is not None:
                    record = Record({"question": record.data, "context": args.context}, record.where)
                elif args.question is not None:
                    record = Record({"question": args.question, "context": record.data}, record.where)
                else:
                    raise CLIError(f"{record.where}: qa needs a question and a context: give --question and/or "
                                   "--context, or JSONL records with 'question' and 'context'")
            converted.append(record)
        records = converted
    for record in records:
        for key in ("question", "context"):
            if not record.data[key].strip():
                raise CLIError(f"{record.where}: the {key} is empty")
    pipe = load_pipeline("question-answering", args)

    def call(part: list[Record]) -> list[Any]:
        questions = [r.data["question"] for r in part]
        contexts = [r.data["context"] for r in part]
        if len(part) == 1:
            out = pipe(question=questions[0], context=contexts[0], top_k=args.top_k)
        else:
            out = pipe(question=questions, context=contexts, top_k=args.top_k)
        return _per_input(out, len(part))

    def to_json(record: Record, result: Any) -> dict[str, Any]:
        return {**record.data, "answer": result}

    def to_rows(number: int, record: Record, result: Any) -> list[list[str]]:
        return [[str(number) if i == 0 else "", cell(record.data["question"], 40) if i == 0 else "",
                 cell(a["answer"], 40), _score(a["score"]), str(a["start"]), str(a["end"])]
                for i, a in enumerate(_as_list(result))]

    return _execute(args, records, from_stream, call, to_json, to_rows,
                    ["#", "question", "answer", "score", "start", "end"], (3, 4, 5))


def cmd_embed(args: argparse.Namespace) -> int:
    """Sentence embeddings: one vector per text, as sentence-transformers computes it.

    The folder's sentence-transformers settings (pooling, normalization, prompts) apply; a plain ModernBERT
    folder gets mean pooling. --pooling and --normalize override them.
    """
    records, from_stream = gather_inputs(args.texts, args.file)
    if not records:
        raise _no_input("embed")
    encode = load_encoder(args)

    def call(part: list[Record]) -> list[Any]:
        return list(encode([r.data for r in part]))

    def to_json(record: Record, result: Any) -> dict[str, Any]:
        return {"text": record.data, "embedding": result}

    def to_rows(number: int, record: Record, result: Any) -> list[list[str]]:
        values = [float(v) for v in _jsonable(result)]
        norm = math.sqrt(sum(v * v for v in values))
        head = ", ".join(f"{v:.4f}" for v in values[:4]) + (", …" if len(values) > 4 else "")
        return [[str(number), cell(record.data, 40), str(len(values)), f"{norm:.4f}", f"[{head}]"]]

    return _execute(args, records, from_stream, call, to_json, to_rows,
                    ["#", "text", "dim", "norm", "embedding"], (2, 3))


def load_encoder(args: argparse.Namespace) -> Callable[[list[str]], list[list[float]]]:
    """A function texts -> embeddings for ``embed``: ``SentenceEncoder`` with the options of ``args``."""
    folder = resolve_model(args.model)
    _check_device(args.device)
    from .pipelines import SentenceEncoder

    encoder = SentenceEncoder.from_pretrained(str(folder), device=args.device, dtype=args.dtype, pooling=args.pooling)

    def encode(texts: list[str]) -> list[list[float]]:
        vectors = encoder.encode(texts, batch_size=args.batch_size, normalize_embeddings=args.normalize,
                                 prompt_name=args.prompt_name)
        return vectors.tolist()

    return encode


# ----- info -----


def _weights_dtype(folder: Path) -> str | None:
    """The dtype of the stored weights, from the safetensors header (no tensor is read)."""
    names = {"F32": "float32", "F16": "float16", "BF16": "bfloat16", "F64": "float64"}
    candidates = [folder / "model.safetensors"]
    index = folder / "model.safetensors.index.json"
    if index.is_file():
        try:
            shards = sorted(set(json.loads(index.read_text())["weight_map"].values()))
            candidates.append(folder / shards[0])
        except (ValueError, KeyError, IndexError, TypeError):
            pass
    for path in candidates:
        if not path.is_file():
            continue
        try:
            with path.open("rb") as f:
                size = int.from_bytes(f.read(8), "little")
                header = json.loads(f.read(size))
        except (OSError, ValueError):
            return None
        for key, meta in header.items():
            if key != "__metadata__" and isinstance(meta, dict) and "dtype" in meta:
                return names.get(meta["dtype"], meta["dtype"])
    return None


def layer_pattern(layer_types: Sequence[str]) -> str:
    """``G L L G ...``: G for a global (full) attention layer, L for a local (sliding window) one."""
    return " ".join("G" if t == "full_attention" else "L" for t in layer_types)


def model_info(name: str) -> dict[str, Any]:
    """Summary of a checkpoint: architecture, parameter count, dtype, layer pattern and the full config."""
    folder = resolve_model(name)
    from .config import ModernBertConfig

    config = ModernBertConfig.from_folder(folder)
    import torch

    from . import model as model_module

    arch = (config.architectures or ["ModernBertModel"])[0]
    cls = getattr(model_module, arch, None)
    if not (isinstance(cls, type) and issubclass(cls, model_module.ModernBertPreTrainedModel)):
        cls = model_module.ModernBertModel
    with torch.device("meta"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        num_parameters = cls(config).num_parameters()
    weights = [p for p in folder.iterdir() if p.suffix in (".safetensors", ".bin") and p.is_file()]
    return {
        "model": name,
        "folder": str(folder),
        "architecture": arch,
        "num_parameters": num_parameters,
        "dtype": _weights_dtype(folder) or config.dtype or "float32",
        "size_bytes": sum(p.stat().st_size for p in weights),
        "num_layers": config.num_hidden_layers,
        "layer_pattern": layer_pattern(config.layer_types),
        "local_attention": config.local_attention,
        "global_rope_theta": config.global_rope_theta,
        "local_rope_theta": config.local_rope_theta,
        "config": config.to_dict(),
    }


def _human(n: float, unit: str = "") -> str:
    for suffix in ("", "K", "M", "G", "T"):
        if abs(n) < 1000 or suffix == "T":
            return f"{n:.1f}{suffix}{unit}" if suffix else f"{n:.0f}{unit}"
        n /= 1000
    return str(n)  # pragma: no cover


def cmd_info(args: argparse.Namespace) -> int:
    """Show a checkpoint's architecture, parameter count, dtype, attention layer pattern and config."""
    info = model_info(args.model_pos or args.model)
    if args.json:
        _write_json(info)
        return 0
    cfg = info["config"]
    window = info["local_attention"]
    rows = [["model", info["model"]]]
    if Path(info["folder"]) != Path(info["model"]):
        rows.append(["folder", info["folder"]])
    rows += [
        ["architecture", info["architecture"]],
        ["parameters", f"{info['num_parameters']:,} ({_human(info['num_parameters'])})"],
        ["dtype", info["dtype"]],
        ["weights size", _human(info["size_bytes"], "B")],
        ["shape", f"{cfg['num_hidden_layers']} layers, hidden {cfg['hidden_size']}, "
                  f"{cfg['num_attention_heads']} heads, intermediate {cfg['intermediate_size']}"],
        ["layer pattern", info["layer_pattern"]],
        ["", f"G = global attention (RoPE theta {info['global_rope_theta']:g}), "
             f"L = local attention, window {window} (±{window // 2} tokens, RoPE theta {info['local_rope_theta']:g})"],
        ["max positions", str(cfg["max_position_embeddings"])],
        ["vocab size", str(cfg["vocab_size"])],
    ]
    sys.stdout.write(format_table(["", ""], rows).split("\n", 1)[1])
    sys.stdout.write("\nconfig:\n")
    config_rows = [[f"  {key}", json.dumps(cfg[key], ensure_ascii=False, sort_keys=True)] for key in sorted(cfg)]
    sys.stdout.write(format_table(["", ""], config_rows).split("\n", 1)[1])
    return 0


# ----- pretrain -----


def cmd_pretrain(argv: list[str]) -> int:
    """MLM pretraining: ``modernbert.training.pretrain`` with its own flags (``modernbert pretrain --help``)."""
    from .training.pretrain import build_arg_parser, config_from_args, pretrain

    parser = build_arg_parser(prog="modernbert pretrain")
    parser.error = _Parser.error.__get__(parser)  # one-line errors, exit code 2
    args = parser.parse_args(argv)
    metrics = pretrain(config_from_args(args))
    if int(os.environ.get("RANK", "0")) == 0:
        summary = {k: v for k, v in metrics.items() if k not in ("train_losses", "evals")}
        _write_json(summary)
    return 0


# ----- parser -----


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be a positive integer")
    return value


def _add_model_options(p: argparse.ArgumentParser, *, top_k: int | None) -> None:
    p.add_argument("texts", nargs="*", metavar="TEXT",
                   help="input texts; '-' reads standard input (which is also read when no text is given and it "
                        "is not a terminal)")
    p.add_argument("-f", "--file", metavar="PATH",
                   help="read inputs from PATH: one text per line, or JSONL (.jsonl, or lines starting with '{')")
    p.add_argument("-m", "--model", default=DEFAULT_MODEL,
                   help=f"checkpoint folder, bundled model ({BUNDLED_MODEL}) or hub id (default: {DEFAULT_MODEL})")
    p.add_argument("--device", default=None, help="torch device: cpu, cuda, cuda:1, mps (default: cpu)")
    p.add_argument("--dtype", default="auto", choices=DTYPES,
                   help="weights dtype; auto takes the checkpoint's (default: auto)")
    p.add_argument("-b", "--batch-size", type=_positive_int, default=8, metavar="N",
                   help="inputs per forward pass (default: 8)")
    if top_k is not None:
        p.add_argument("-k", "--top-k", type=_positive_int, default=top_k, metavar="K",
                       help=f"results per input (default: {top_k})")
    p.add_argument("--json", action="store_true",
                   help="print one JSON object per input, one per line (JSONL), instead of a table")
    p.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None,
                   help="progress bar on stderr (default: when reading a file or stdin and stderr is a terminal)")


def build_parser() -> argparse.ArgumentParser:
    """The ``modernbert`` argument parser (``pretrain`` is listed here but parsed by the training module)."""
    parser = _Parser(
        prog="modernbert",
        description="ModernBERT from the command line: fill-mask, classification, NER, question answering, "
                    "embeddings, model info and MLM pretraining.",
        epilog="'modernbert COMMAND --help' shows the options of a command. Exit codes: 0 ok, 2 bad input, "
               "1 unexpected failure.",
    )
    parser.add_argument("--version", action="version", version=f"modernbert {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    def add(name: str, func: Callable[[argparse.Namespace], int], help_text: str) -> argparse.ArgumentParser:
        description = inspect.cleandoc(func.__doc__ or help_text).replace("``", "")
        p = sub.add_parser(name, help=help_text, description=description,
                           formatter_class=argparse.RawDescriptionHelpFormatter)
        p.set_defaults(func=func)
        return p

    p = add("fill-mask", cmd_fill_mask, "predict the [MASK] tokens of texts")
    _add_model_options(p, top_k=5)
    p.add_argument("-t", "--targets", action="append", metavar="WORDS",
                   help="score only these candidate words (comma-separated; repeatable)")

    p = add("classify", cmd_classify, "text (or text-pair) classification")
    _add_model_options(p, top_k=1)

    p = add("ner", cmd_ner, "token classification / named entities")
    _add_model_options(p, top_k=None)
    p.add_argument("-a", "--aggregation", default="simple", choices=AGGREGATIONS,
                   help="how sub-word predictions are grouped into entities (default: simple)")

    p = add("qa", cmd_qa, "extractive question answering")
    _add_model_options(p, top_k=1)
    p.add_argument("-q", "--question", help="the question (the texts are then contexts)")
    p.add_argument("-c", "--context", help="the context (the texts are then questions)")

    p = add("embed", cmd_embed, "sentence embeddings")
    _add_model_options(p, top_k=None)
    p.add_argument("--pooling", default=None, choices=POOLINGS,
                   help="mean of the token vectors, or the [CLS] vector (default: what a sentence-transformers "
                        "folder says, else mean)")
    p.add_argument("--normalize", action=argparse.BooleanOptionalAction, default=False,
                   help="scale every embedding to unit length (default: no, unless the folder normalizes)")
    p.add_argument("--prompt-name", default=None, metavar="NAME",
                   help="prefix every text with this prompt of the folder (e.g. query, document)")

    p = add("info", cmd_info, "show a checkpoint's config, parameter count, dtype and layer pattern")
    p.add_argument("model_pos", nargs="?", metavar="MODEL",
                   help=f"checkpoint folder, bundled model or hub id (default: {DEFAULT_MODEL})")
    p.add_argument("-m", "--model", default=DEFAULT_MODEL, help="the same as MODEL")
    p.add_argument("--json", action="store_true", help="print the information as one JSON object")

    sub.add_parser("pretrain", help="MLM pretraining (see 'modernbert pretrain --help')", add_help=False)
    return parser


# ----- entry point -----


def _show_warning(message: Any, category: Any, filename: str, lineno: int, file: Any = None,
                  line: str | None = None) -> None:
    sys.stderr.write(f"warning: {' '.join(str(message).split())}\n")


def _run(argv: list[str]) -> int:
    if argv and argv[0] == "pretrain":
        return cmd_pretrain(argv[1:])
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help(sys.stderr)
        return 2
    return args.func(args)


class _LogHandler(logging.StreamHandler):
    """Log records of the modernbert loggers as one ``warning: ...`` line each on (the current) stderr."""

    def __init__(self) -> None:
        super().__init__()
        self.setLevel(logging.WARNING)

    def emit(self, record: logging.LogRecord) -> None:
        self.stream = sys.stderr
        super().emit(record)

    def format(self, record: logging.LogRecord) -> str:
        return f"{record.levelname.lower()}: {' '.join(record.getMessage().split())}"


def main(argv: list[str] | None = None) -> int:
    """Run the ``modernbert`` command line on ``argv`` (default: ``sys.argv[1:]``); returns the exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if _ensure_ascii(sys.stdout) and hasattr(sys.stdout, "reconfigure"):
        try:  # a non-UTF-8 terminal: tables show "?" for what it cannot encode (JSON output is ASCII-escaped)
            sys.stdout.reconfigure(errors="replace")
        except (ValueError, OSError):
            pass
    debug = os.environ.get("MODERNBERT_DEBUG", "").strip().lower() in ("1", "true", "yes")
    handler = _LogHandler()
    logger = logging.getLogger("modernbert")
    logger.addHandler(handler)
    try:
        return _main(argv, debug)
    finally:
        logger.removeHandler(handler)


def _main(argv: list[str], debug: bool) -> int:
    with warnings.catch_warnings():
        warnings.showwarning = _show_warning
        try:
            return _run(argv)
        except SystemExit as e:  # argparse: --help, --version, bad arguments
            return e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
        except CLIError as e:
            _error(str(e))
            return 2
        except KeyboardInterrupt:
            _error("interrupted")
            return 130
        except BrokenPipeError:  # e.g. `modernbert ... | head`: stop quietly
            try:
                devnull = os.open(os.devnull, os.O_WRONLY)
                os.dup2(devnull, sys.stdout.fileno())
            except (OSError, ValueError):
                pass
            return 1
        except (ValueError, OSError) as e:  # bad input reported by the library (missing files, bad values)
            if debug:
                raise
            _error(_one_line(e))
            return 2
        except Exception as e:
            if debug:
                raise
            _error(f"unexpected {type(e).__name__}: {_one_line(e)} (set MODERNBERT_DEBUG=1 for the traceback)")
            return 1


def _one_line(e: BaseException) -> str:
    text = " ".join(str(e).split())
    if isinstance(e, KeyError):
        text = f"missing key {text}"
    return text or type(e).__name__


def _error(message: str) -> None:
    sys.stderr.write(f"error: {' '.join(message.split())}\n")
    sys.stderr.flush()


if __name__ == "__main__":
    raise SystemExit(main())
