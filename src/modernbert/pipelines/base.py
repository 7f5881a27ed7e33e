"""What every pipeline shares: loading a model and its tokenizer, input checks, length-sorted batching, progress.

Batching: a pipeline turns its inputs into token sequences (one per text, or several when a long text is split
into windows), and `run_batched` runs them `batch_size` at a time, longest first, so that each batch holds
sequences of similar length. Sequences are packed (no padding at all) and passed to the model with `cu_seqlens`,
the model's unpadded path; results come back in input order.
"""

from __future__ import annotations

import inspect
import os
import sys
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, TypeVar

import numpy as np
import torch
from torch import Tensor

from ..errors import MissingTokenizerError
from ..model import ModernBertPreTrainedModel
from ..tokenizer import Tokenizer

DEFAULT_BATCH_SIZE = 8

R = TypeVar("R")


# ----- progress -----


class Progress:
    """A progress bar: tqdm when it is installed, else a one-line counter on stderr. Disabled: does nothing."""

    def __init__(self, total: int, desc: str, enabled: bool) -> None:
        self.total, self.desc, self.enabled, self.done = total, desc, enabled, 0
        self._bar: Any = None
        if not enabled:
            return
        try:
            from tqdm.auto import tqdm
        except ImportError:
            self._print()
        else:
            self._bar = tqdm(total=total, desc=desc, unit="seq")

    def _print(self) -> None:
        sys.stderr.write(f"\r{self.desc}: {self.done}/{self.total}")
        sys.stderr.flush()

    def update(self, n: int) -> None:
        if not self.enabled:
            return
        self.done += n
        if self._bar is not None:
            self._bar.update(n)
        else:
            self._print()

    def close(self) -> None:
        if not self.enabled:
            return
        if self._bar is not None:
            self._bar.close()
        else:
            sys.stderr.write("\n")
            sys.stderr.flush()


# ----- batching -----


@dataclass
class Batch:
    """One batch of sequences, packed without padding (the model's `cu_seqlens` input)."""

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
    from ..auto import AutoTokenizer

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
    ) -> list[R]:
        return run_batched(
            sequences, step, batch_size=batch_size, device=self.device, progress=progress, desc=self.task
        )

    def run(self, inputs: list[Any], **kwargs: Any) -> list[Any]:
        """The shape-stable core: one JSON-safe result per input, in input order, whatever the batch size.

        This is what the command line, the server and batch jobs call; `__call__` keeps the transformers
        call shapes on top of it. Each task documents the shape of its per-input result.
        """
        if not isinstance(inputs, list):
            raise TypeError(f"{type(self).__name__}.run takes a list of inputs, got {type(inputs).__name__}")
        if not inputs:
            return []
        out = self(inputs, **kwargs)
        out = out if len(inputs) > 1 else [out]
        return [_jsonable(r) for r in out]

    def __call__(self, inputs: Any, **kwargs: Any) -> Any:  # pragma: no cover - every task overrides it
        raise NotImplementedError


def _jsonable(obj: Any) -> Any:
    """Plain Python values (lists, dicts, str, int, float, bool, None) for tensors and numpy values."""
    if isinstance(obj, dict):
        return {k: _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, (Tensor, np.ndarray)):
        return obj.tolist()
    if isinstance(obj, np.generic):
        return obj.item()
    return obj
