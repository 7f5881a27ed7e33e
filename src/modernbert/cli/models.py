"""What every model subcommand shares: its common options, finding and loading its model, running its pipeline.

Torch and the pipelines are imported inside the functions that load a model, never at import, so that
``modernbert --help`` stays fast.
"""

from __future__ import annotations

import argparse
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ..hub import (
    DTYPE_ALIASES,
    MODEL_PATTERNS,
    TOKENIZER_FILE,
    TOKENIZER_FILES,
    TOKENIZER_PATTERNS,
    HubUnavailableError,
    bundled_models,
    dtype_name,
    hub_offline,
    looks_like_path,
    resolve_folder,
)
from .errors import CLIError
from .inputs import Record

DEFAULT_MODEL = "answerdotai/ModernBERT-base"
BUNDLED_MODEL = "modernbert-tiny"
DTYPES = ("auto", *DTYPE_ALIASES)

logger = logging.getLogger("modernbert.cli")


# ----- options -----


def positive_int(text: str) -> int:
    """argparse type: an integer of at least 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be a positive integer")
    return value


def non_negative_int(text: str) -> int:
    """argparse type: an integer of at least 0."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be 0 or more")
    return value


def add_model_options(p: argparse.ArgumentParser, *, top_k: int | None, truncate: bool = False) -> None:
    """The inputs, model, device, dtype, batching and output options of a model subcommand.

    top_k: the default of ``--top-k`` (None: no such option). truncate: add ``--truncate``.
    """
    p.add_argument("texts", nargs="*", metavar="TEXT",
                   help="input texts; '-' reads standard input (which is also read when no text is given and it "
                        "is not a terminal)")
    p.add_argument("-f", "--file", metavar="PATH",
                   help="read inputs from PATH: one text per line, or JSONL (.jsonl, or lines starting with '{')")
    p.add_argument("-m", "--model", default=DEFAULT_MODEL,
                   help=f"checkpoint folder, bundled model ({BUNDLED_MODEL}) or hub id (default: {DEFAULT_MODEL})")
    p.add_argument("--tokenizer", default=None, metavar="FOLDER",
                   help=f"the tokenizer's folder, bundled model or hub id, for a model folder without "
                        f"{TOKENIZER_FILE} (default: the model's own)")
    p.add_argument("--device", default=None,
                   help="torch device: cpu, cuda, cuda:1, mps (default: cuda when available, else cpu)")
    p.add_argument("--dtype", default="auto", choices=DTYPES, metavar="DTYPE",
                   help="weights dtype: auto (the checkpoint's), float32 (fp32), bfloat16 (bf16) or float16 "
                        "(fp16, half) (default: auto)")
    p.add_argument("-b", "--batch-size", type=positive_int, default=8, metavar="N",
                   help="inputs per forward pass (default: 8)")
    if top_k is not None:
        p.add_argument("-k", "--top-k", type=positive_int, default=top_k, metavar="K",
                       help=f"results per input (default: {top_k})")
    if truncate:
        p.add_argument("--truncate", action="store_true",
                       help="cut inputs longer than the model's maximum to that many tokens (default: such an "
                            "input is an error)")
    p.add_argument("--json", action="store_true",
                   help="print one JSON object per input, one per line (JSONL), instead of a table")
    p.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None,
                   help="progress bar on stderr (default: when reading a file or stdin and stderr is a terminal)")


# ----- finding and loading the model -----


def resolve_model(name: str, option: str = "--model", patterns: tuple[str, ...] = MODEL_PATTERNS) -> Path:
    """The local folder of ``name`` (a folder, a bundled model or a hub id), or a CLIError naming the fix."""
    try:
        return resolve_folder(name, patterns=patterns)
    except HubUnavailableError:
        why = "offline and not cached" if hub_offline() else "not cached and the hub could not be reached"
        bundled = bundled_models()
        name_ = BUNDLED_MODEL if BUNDLED_MODEL in bundled or not bundled else bundled[0]
        raise CLIError(f"cannot load {name!r} ({why}); try {option} {name_}, which ships with modernbert") from None
    except FileNotFoundError as e:
        what = "model" if option == "--model" else "tokenizer"
        raise CLIError(f"no such {what} folder: {name}" if looks_like_path(name) else str(e)) from None
    except ValueError as e:
        raise CLIError(str(e)) from None


def resolve_tokenizer(name: str | None) -> str | None:
    """The folder of ``--tokenizer`` (None stays None), checked to hold a tokenizer."""
    if name is None:
        return None
    folder = resolve_model(name, "--tokenizer", TOKENIZER_PATTERNS)
    if not (folder / TOKENIZER_FILE).is_file():
        raise CLIError(f"--tokenizer {name}: {folder} has no {TOKENIZER_FILE}")
    return str(folder)


def check_device(device: str | None) -> None:
    """A CLIError for a device that is no device, or is not available here (None: the default, always fine)."""
    if device is None:
        return
    import torch

    try:
        dev = torch.device(device)
    except (RuntimeError, ValueError, TypeError):
        raise CLIError(f"--device {device!r} is not a device (try cpu, cuda, cuda:1 or mps)") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise CLIError(f"--device {device!r}, but CUDA is not available here; use --device cpu")
    if dev.type == "cuda" and dev.index is not None and dev.index >= torch.cuda.device_count():
        raise CLIError(f"--device {device!r}, but this machine has {torch.cuda.device_count()} CUDA device(s)")
    if dev.type == "mps" and not (hasattr(torch.backends, "mps") and torch.backends.mps.is_available()):
        raise CLIError(f"--device {device!r}, but MPS is not available here; use --device cpu")


def _dtype(name: str) -> str:
    return name if name == "auto" else dtype_name(name)


@contextmanager
def _loading(args: argparse.Namespace, folder: Path) -> Iterator[None]:
    """Turn the pipelines' "no tokenizer" error into the command-line way out."""
    from ..pipelines import MissingTokenizerError

    try:
        yield
    except MissingTokenizerError:
        raise CLIError(
            f"the model {args.model!r} ({folder}) has no tokenizer ({TOKENIZER_FILE} is missing): pass --tokenizer "
            f"FOLDER (a folder, bundled model or hub id that holds one), or copy {', '.join(TOKENIZER_FILES)} "
            "into the model folder"
        ) from None


def load_pipeline(task: str, args: argparse.Namespace, **options: Any) -> Any:
    """``modernbert.pipelines.pipeline(task, ...)`` for the model, tokenizer, device, dtype and batch size of
    ``args``; ``options`` are the task's default call options."""
    folder = resolve_model(args.model)
    tokenizer = resolve_tokenizer(args.tokenizer)
    check_device(args.device)
    from ..pipelines import pipeline
    from ..runtime import configure_cpu

    configure_cpu()
    with _loading(args, folder):
        return pipeline(task, model=str(folder), tokenizer=tokenizer, device=args.device, dtype=_dtype(args.dtype),
                        batch_size=args.batch_size, **options)


def load_sentence_pipeline(args: argparse.Namespace, **settings: Any) -> Any:
    """The sentence-embeddings pipeline of ``args``' model; ``settings`` (pooling, normalize) override what a
    sentence-transformers folder says (None: keep the folder's)."""
    folder = resolve_model(args.model)
    tokenizer = resolve_tokenizer(args.tokenizer)
    check_device(args.device)
    from ..pipelines import SentenceEmbeddingPipeline, SentenceEncoder
    from ..runtime import configure_cpu

    configure_cpu()
    with _loading(args, folder):
        encoder = SentenceEncoder.from_pretrained(str(folder), tokenizer=tokenizer, device=args.device,
                                                  dtype=_dtype(args.dtype), **settings)
    return SentenceEmbeddingPipeline(encoder, batch_size=args.batch_size)


# ----- running it -----


def run_pipeline(pipe: Any, inputs: list[Any], **options: Any) -> list[Any]:
    """``pipe.run(inputs, **options)``: one JSON-safe result per input, in the shape the task's `run` documents."""
    return pipe.run(inputs, **options)


def max_tokens(pipe: Any) -> int:
    """The most tokens (special tokens included) one input may have: the tokenizer's model_max_length, capped
    by the model's max_position_embeddings."""
    return min(pipe.tokenizer.model_max_length, pipe.model.config.max_position_embeddings)


def over_length(pipe: Any, records: list[Record], inputs: list[Any]) -> Iterator[tuple[Record, int, int]]:
    """(record, its tokens, the maximum) for each input longer than the model takes; `inputs` are what the
    tokenizer gets for `records` (texts, or (text, text_pair) tuples)."""
    limit = max_tokens(pipe)
    # max_length with truncation off: exact counts, and no "longer than the maximum" warning from the tokenizer
    ids = pipe.tokenizer(inputs, truncation=False, max_length=limit, return_attention_mask=False)["input_ids"]
    for record, seq in zip(records, ids):
        if len(seq) > limit:
            yield record, len(seq), limit


def too_long(record: Record, tokens: int, limit: int, advice: str) -> str:
    """The message for an input longer than the model takes."""
    return f"{record.where} has {tokens} tokens, more than the model's maximum of {limit}; {advice}"
