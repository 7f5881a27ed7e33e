"""What every pipeline shares: loading a model and its tokenizer, input checks, length-sorted batching, progress.

Batching: a pipeline turns its inputs into token sequences (one per text, or several when a long text is split
into windows), and `run_batched` runs them `batch_size` at a time, longest first, so that each batch holds
sequences of similar length. Sequences are packed (no padding at all) and passed to the model with `cu_seqlens`,
the model's unpadded path; results come back in input order.

Two entry points over one core: `Pipeline.run(list)` gives one JSON-safe result per input, with one shape per
task whatever the inputs (what the command line, the server and batch jobs call); `__call__` takes transformers'
input forms and gives transformers' output shapes. Both go through the task's `_predict`, so they cannot drift.
"""

from __future__ import annotations

import inspect
import os
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, TextIO, TypeVar

import numpy as np
import torch
from torch import Tensor

from ..auto import AutoTokenizer
from ..errors import MissingTokenizerError
from ..model import ModernBertPreTrainedModel
from ..tokenizer import Tokenizer

DEFAULT_BATCH_SIZE = 8

R = TypeVar("R")


# ----- progress -----


class Progress:
    """A progress bar over `total` items: tqdm when it is installed, else a one-line counter. Disabled (or over
    zero items), every method does nothing.

    The pipelines draw one when called with progress=True; the command line uses the same class:

        bar = Progress(len(texts), "embed", stream=sys.stderr)
        for chunk in chunks:
            ...
            bar.update(len(chunk))
        bar.close()

    or `with Progress(len(texts), "embed") as bar: ...`, which closes it at the end of the block.

    Args:
        total: how many items the bar counts to.
        desc: the label shown before the count ("fill-mask", "embed", ...).
        enabled: False gives a bar that draws nothing.
        stream: where to draw; default sys.stderr (as it is when the bar is made).
        unit: what is counted ("seq" by default).
    """

    def __init__(
        self, total: int, desc: str = "", enabled: bool = True, *, stream: TextIO | None = None, unit: str = "seq"
    ) -> None:
        self.total, self.desc, self.unit, self.done = total, desc, unit, 0
        self.enabled = bool(enabled) and total > 0
        self.stream = sys.stderr if stream is None else stream
        self._start = time.perf_counter()
        self._bar: Any = None
        if not self.enabled:
            return
        try:
            from tqdm.auto import tqdm
        except ImportError:
            self._print()
        else:
            self._bar = tqdm(total=total, desc=desc or None, unit=unit, file=self.stream)

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _print(self) -> None:
        elapsed = time.perf_counter() - self._start
        rate = f" {self.done / elapsed:.1f}/s" if self.done and elapsed > 0 else ""
        label = f"{self.desc}: " if self.desc else ""
        self.stream.write(f"\r{label}{self.done}/{self.total} {self.unit}{rate}")
        self.stream.flush()

    def update(self, n: int = 1) -> None:
        """Count `n` more items done."""
        if not self.enabled:
            return
        self.done += n
        if self._bar is not None:
            self._bar.update(n)
        else:
            self._print()

    def close(self) -> None:
        """End the bar (its line stays on screen); closing twice is harmless."""
        if not self.enabled:
            return
        self.enabled = False
        if self._bar is not None:
            self._bar.close()
        else:
            self.stream.write("\n")
            self.stream.flush()


# ----- batching -----


@dataclass
class Batch:
    """One batch of sequences, packed without padding (the model's `cu_seqlens` input).

    Not the model's `AttnBatch` (the attention kernels' view, which the model builds from `cu_seqlens`): this is
    the pipeline's view, which of its sequences the batch holds (`indices`) and their lengths on the host, to
    split the outputs back per sequence without a device sync.
    """

    input_ids: Tensor  # (tokens,) long, on the model's device
    cu_seqlens: Tensor  # (batch + 1,) int32 offsets of each sequence in input_ids
    lengths: list[int]  # tokens per sequence
    indices: list[int]  # position of each sequence in the list given to run_batched

    def split(self, x: Tensor) -> list[Tensor]:
        """(tokens, ...) → one (length, ...) tensor per sequence."""
        return list(x.split(self.lengths))


def run_batched(
    sequences: Sequence[Sequence[int]],
    step: Callable[[Batch], list[R]],
    *,
    batch_size: int = DEFAULT_BATCH_SIZE,
    device: torch.device | str = "cpu",
    progress: bool = False,
    desc: str = "",
) -> list[R]:
    """Run `step` on the sequences, `batch_size` at a time, longest first; results in input order.

    `step(batch)` gets one `Batch` packed without padding and returns one result per sequence of the batch, in
    batch order. Runs under torch.inference_mode().
    """
    batch_size = check_batch_size(batch_size)
    order = sorted(range(len(sequences)), key=lambda i: -len(sequences[i]))  # stable: equal lengths keep order
    results: list[Any] = [None] * len(sequences)
    bar = Progress(len(sequences), desc, progress)
    try:
        with torch.inference_mode():
            for start in range(0, len(order), batch_size):
                chunk = order[start : start + batch_size]
                lengths = [len(sequences[i]) for i in chunk]
                if min(lengths) == 0:
                    raise ValueError("a sequence has no tokens; every input needs at least one token")
                ids = torch.tensor([t for i in chunk for t in sequences[i]], dtype=torch.long, device=device)
                cu = torch.tensor([0, *lengths], dtype=torch.int32).cumsum(0, dtype=torch.int32).to(device)
                out = step(Batch(ids, cu, lengths, chunk))
                if len(out) != len(chunk):  # pragma: no cover - a bug in a pipeline
                    raise RuntimeError(f"internal error: step returned {len(out)} results for {len(chunk)} sequences")
                for i, r in zip(chunk, out):
                    results[i] = r
                bar.update(len(chunk))
    finally:
        bar.close()
    return results


def check_batch_size(batch_size: Any) -> int:
    """batch_size as a positive int, or a ValueError."""
    if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size < 1:
        raise ValueError(f"batch_size={batch_size!r} must be a positive integer")
    return batch_size


# ----- input checks -----


def as_text_list(inputs: Any, what: str = "text") -> tuple[list[str], bool]:
    """str → ([str], False); a non-empty list/tuple/iterable of str → (list, True). Clear errors otherwise."""
    if isinstance(inputs, str):
        return [inputs], False
    items = as_list(inputs, what)
    for i, item in enumerate(items):
        if not isinstance(item, str):
            raise TypeError(f"inputs[{i}] is a {type(item).__name__} ({item!r:.60}); every {what} must be a str")
    return items, True


def as_list(inputs: Any, what: str = "text") -> list[Any]:
    """A non-empty list from a list, tuple or other iterable (not str / bytes / dict)."""
    if inputs is None:
        raise ValueError(f"no input: pass a {what} (str) or a list of them")
    if isinstance(inputs, (bytes, bytearray)):
        raise TypeError(f"got {type(inputs).__name__}; pass a {what} as str (decode the bytes first)")
    if isinstance(inputs, (list, tuple)):
        items = list(inputs)
    elif isinstance(inputs, Iterable) and not isinstance(inputs, (str, dict)):
        items = list(inputs)
    else:
        raise TypeError(f"got a {type(inputs).__name__} ({inputs!r:.60}); pass a {what} (str) or a list of them")
    if not items:
        raise ValueError(f"empty list: pass at least one {what}")
    return items


# ----- devices and dtypes -----

# most real tokens in one packed forward pass of a batch job or the server when none is given, per device type:
# on a CPU smaller chunks stay in cache, a GPU needs large ones to fill (benchmarks/README.md)
DEFAULT_BATCH_TOKENS = {"cpu": 4096, "cuda": 16384}


def default_batch_tokens(device: torch.device | str) -> int:
    """The batch-token budget of `device` when none is given (`DEFAULT_BATCH_TOKENS`; other accelerators get
    CUDA's)."""
    return DEFAULT_BATCH_TOKENS.get(torch.device(device).type, DEFAULT_BATCH_TOKENS["cuda"])


def resolve_device(device: Any) -> torch.device | None:
    """None stays None; an int is a CUDA ordinal (-1 = CPU); a str or torch.device is used as given."""
    if device is None:
        return None
    if isinstance(device, torch.device):
        return device
    if isinstance(device, bool):
        raise TypeError(f"device={device!r}: pass 'cpu', 'cuda', 'cuda:1', an int ordinal or a torch.device")
    if isinstance(device, int):
        return torch.device("cpu") if device < 0 else torch.device(f"cuda:{device}")
    if isinstance(device, str):
        try:
            return torch.device(device)
        except RuntimeError:
            raise ValueError(f"device={device!r} is not a device; pass 'cpu', 'cuda', 'cuda:1' or 'mps'") from None
    raise TypeError(f"device={device!r}: pass 'cpu', 'cuda', 'cuda:1', an int ordinal or a torch.device")


def default_device() -> torch.device:
    """Where a pipeline loads its model when no device is given: CUDA when available, else the CPU."""
    return torch.device("cuda") if torch.cuda.is_available() else torch.device("cpu")


# ----- loading -----


def load_tokenizer(name_or_path: Any, **kwargs: Any) -> Tokenizer:
    """A Tokenizer instance is returned as is; a folder / hub id / bundled name is loaded."""
    if isinstance(name_or_path, Tokenizer):
        return name_or_path
    if not isinstance(name_or_path, (str, os.PathLike)):
        raise TypeError(
            f"tokenizer must be a modernbert Tokenizer, a folder or a hub repo id, got {type(name_or_path).__name__}"
        )
    return AutoTokenizer.from_pretrained(name_or_path, **kwargs)


def tokenizer_for_folder(folder: Path, shown_name: str, **kwargs: Any) -> Tokenizer:
    """The tokenizer stored beside the weights, or a clear error naming the folder and the missing file."""
    if not (folder / "tokenizer.json").is_file():
        raise MissingTokenizerError(
            f"model folder {shown_name!r} ({folder}) has no tokenizer: tokenizer.json is missing. Save the "
            "tokenizer there (tokenizer.save_pretrained(folder)) or pass tokenizer=<folder, hub id or Tokenizer>."
        )
    return Tokenizer.from_pretrained(folder, **kwargs)


# ----- the base class -----


class Pipeline:
    """Base of every pipeline: holds the model and tokenizer, the batching settings and default call options.

    Options given to the constructor (or to `pipeline(...)`) are defaults for every call; options given to a call
    override them for that call only.

    A task subclass sets `task` and `model_class`, and writes `_sanitize` (its options, checked), `_predict` (the
    core: a list of inputs → one result per input, in the shape its `run` docstring documents), `run` (only to
    document that shape) and `__call__` (transformers' input forms and output shapes, over `_predict`).
    """

    task: ClassVar[str] = ""
    model_class: ClassVar[type[ModernBertPreTrainedModel]] = ModernBertPreTrainedModel
    default_model: ClassVar[str | None] = None

    def __init__(
        self,
        model: ModernBertPreTrainedModel,
        tokenizer: Tokenizer,
        *,
        batch_size: int = DEFAULT_BATCH_SIZE,
        progress: bool = False,
        **options: Any,
    ) -> None:
        if not isinstance(model, self.model_class):
            raise TypeError(
                f"the {self.task!r} pipeline needs a {self.model_class.__name__}, got {type(model).__name__}; "
                f"load one with {self.model_class.__name__}.from_pretrained(...) or pass the checkpoint folder"
            )
        if not isinstance(tokenizer, Tokenizer):
            raise TypeError(f"tokenizer must be a modernbert Tokenizer, got {type(tokenizer).__name__}")
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.batch_size = check_batch_size(batch_size)
        self.progress = bool(progress)
        self._defaults: dict[str, Any] = self._checked_options(options)

    def __repr__(self) -> str:
        name = getattr(self.model, "name_or_path", "") or type(self.model).__name__
        return f"{type(self).__name__}(task={self.task!r}, model={name!r}, batch_size={self.batch_size})"

    @property
    def device(self) -> torch.device:
        """The device the model (and so every batch) is on."""
        return self.model.device

    def _sanitize(self, **options: Any) -> dict[str, Any]:
        """Validate the task's call options; unknown names are a TypeError."""
        if options:
            raise TypeError(f"{type(self).__name__} got unexpected option(s) {sorted(options)}")
        return {}

    def _checked_options(self, options: dict[str, Any]) -> dict[str, Any]:
        """`_sanitize(**options)`, with a TypeError that lists the valid names for an unknown one."""
        params = inspect.signature(self._sanitize).parameters
        if not any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
            unknown = sorted(set(options) - set(params))
            if unknown:
                raise TypeError(
                    f"the {self.task!r} pipeline got unknown option(s) {unknown}; its options are "
                    f"{sorted(params)}, plus batch_size and progress"
                )
        return self._sanitize(**options)

    def _options(self, kwargs: dict[str, Any]) -> tuple[dict[str, Any], int, bool]:
        """Call options merged over the constructor's, plus this call's batch_size and progress."""
        batch_size = check_batch_size(kwargs.pop("batch_size", self.batch_size))
        progress = bool(kwargs.pop("progress", self.progress))
        kwargs.pop("num_workers", None)  # transformers' DataLoader workers: nothing to do here
        return {**self._defaults, **self._checked_options(kwargs)}, batch_size, progress

    def _run(
        self,
        sequences: Sequence[Sequence[int]],
        step: Callable[[Batch], list[R]],
        batch_size: int,
        progress: bool,
        where: Callable[[int], str],
    ) -> list[R]:
        """`run_batched` on the model's device, after checking that every sequence fits the model.

        where: names the input a sequence comes from, for the error ("inputs[3]", "the input").
        """
        check_lengths(sequences, self.model.config.max_position_embeddings, where, self._too_long_advice)
        return run_batched(
            sequences, step, batch_size=batch_size, device=self.device, progress=progress, desc=self.task
        )

    def _too_long_advice(self, limit: int) -> str:
        """The way out of an input longer than the model takes, naming this task's option."""
        return f"shorten it to {limit} tokens or less"

    def run(self, inputs: list[Any], **options: Any) -> list[Any]:
        """The shape-stable core: one JSON-safe result per input, in input order, whatever the batch size.

        This is what the command line, the server and batch jobs call; `__call__` gives the transformers call
        shapes on top of the same core. Each result is made of plain lists, dicts, str, int, float, bool and None
        (no numpy or torch values), and has the same shape for every input: each task's `run` documents it.

        Args:
            inputs: a list of inputs (an empty list gives an empty list).
            **options: the task's call options, as `__call__` takes them (and batch_size, progress); they override
                the constructor's for this call.

        Raises:
            TypeError: `inputs` is not a list, or an option is unknown.
            ValueError: a bad input or option; the message names the input (inputs[i]) and the way out.
        """
        if not isinstance(inputs, list):
            raise TypeError(
                f"{type(self).__name__}.run takes a list of inputs, got {type(inputs).__name__}; wrap a single "
                "input in a list (pipe.run([x])), or call the pipeline (pipe(x)) for transformers' shapes"
            )
        resolved, batch_size, progress = self._options(dict(options))
        if not inputs:
            return []
        return [to_json(r) for r in self._predict(inputs, resolved, batch_size, progress)]

    def _predict(
        self, items: list[Any], options: dict[str, Any], batch_size: int, progress: bool, *, single: bool = False
    ) -> list[Any]:  # pragma: no cover - every task overrides it
        """The task's core: one result per item, in the shape `run` documents (numpy / torch leaves allowed).

        items: the inputs, a non-empty list. options: `_options`' merged call options. single: the items are one
        bare input given to `__call__` (errors then say "the input" instead of "inputs[0]").
        """
        raise NotImplementedError

    def __call__(self, inputs: Any, **kwargs: Any) -> Any:  # pragma: no cover - every task overrides it
        raise NotImplementedError


def input_name(index: int, single: bool = False) -> str:
    """How errors name an input: "inputs[3]", or "the input" for a single bare input."""
    return "the input" if single else f"inputs[{index}]"


def token_ids(items: list[Any]) -> list[list[int]] | None:
    """`items` when every one is a non-empty list of token ids (ints), already tokenized, special tokens included;
    None when none is; a TypeError when they are mixed or one is not a list of ints (naming it).

    The pre-tokenized entry point of the embedding and feature-extraction pipelines: the server and batch jobs
    tokenize once (to count, check and cut inputs) and hand the ids on.
    """
    lists = [isinstance(item, list) for item in items]
    if not any(lists):
        return None
    for i, item in enumerate(items):
        if not isinstance(item, list) or not item or not all(
            isinstance(t, int) and not isinstance(t, bool) and t >= 0 for t in item
        ):
            raise TypeError(f"inputs[{i}] ({item!r:.60}) is not a non-empty list of token ids; pass every input "
                            "as a text, or every input as a list of non-negative ints")
    return items


def check_texts(items: list[Any], single: bool = False) -> list[str]:
    """`items` when every one is a str; else a TypeError naming the first that is not."""
    for i, item in enumerate(items):
        if not isinstance(item, str):
            raise TypeError(
                f"{input_name(i, single)} is a {type(item).__name__} ({item!r:.60}); every text must be a str"
            )
    return items


def check_text(text: str, name: str) -> None:
    """A ValueError for an empty or whitespace-only text, naming the input (`name`) and the way out."""
    if not text.strip():
        blank = " (only whitespace)" if text else ""
        raise ValueError(f"{name} is an empty text{blank}; there is nothing to read in it: give it some text, or "
                         "leave it out of the inputs")


def check_lengths(
    sequences: Sequence[Sequence[int]], limit: int, where: Callable[[int], str], advice: Callable[[int], str]
) -> None:
    """A ValueError for the first sequence longer than `limit` tokens, naming its input and `advice(limit)`."""
    for i, seq in enumerate(sequences):
        if len(seq) > limit:
            raise ValueError(
                f"{where(i)} has {len(seq)} tokens, more than the model takes (max_position_embeddings={limit}); "
                f"{advice(limit)}"
            )


def to_json(obj: Any) -> Any:
    """Plain Python values (lists, dicts, str, int, float, bool, None) for tensors and numpy values."""
    if isinstance(obj, dict):
        return {k: to_json(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_json(v) for v in obj]
    if isinstance(obj, Tensor):
        return obj.tolist()
    if isinstance(obj, (np.ndarray, np.generic)):
        return obj.tolist()
    return obj
