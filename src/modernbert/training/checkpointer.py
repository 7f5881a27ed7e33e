"""Checkpoints of a training run: written atomically, verified on load, and a resume that falls back.

A `Checkpointer` owns one folder of numbered checkpoints, `step-00000042.pt` (a `torch.save` of any state
dict), each with a record `step-00000042.json` of its size and SHA-256 written at save. The record is
committed before the checkpoint, so every checkpoint a save completed has one.

- `save` streams the state through `modernbert.hub.atomic_write` (temporary file, fsync, rename), so a
  killed save leaves the previous checkpoints untouched and its temporary file is removed by the next save
  in the folder. A full disk raises `hub.DiskFullError` naming the path and about how much space the
  checkpoint needs. After a save, checkpoints beyond the newest `keep` are deleted.
- `load_latest` returns the newest checkpoint whose size and checksum match its record (or, without a
  record, that loads), skipping damaged ones with a warning. The damaged files are renamed `*.damaged`,
  never deleted, so the run can write that step again and the user can look at them.
- `rng_state` / `restore_rng_state` capture the random generators a trainer resumes exactly with.
"""

from __future__ import annotations

import errno
import hashlib
import logging
import random
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import numpy as np
import torch

from .. import hub

logger = logging.getLogger(__name__)

_CHECKPOINT_RE = re.compile(r"^step-(\d{8,})\.pt$")
_RECORD_RE = re.compile(r"^step-(\d{8,})\.json$")
DAMAGED_SUFFIX = ".damaged"


@dataclass
class Restored:
    """The checkpoint `load_latest` chose: its step, file and state, and the newer ones it skipped."""

    step: int
    path: Path
    state: dict[str, Any]
    skipped: list[tuple[Path, str]] = field(default_factory=list)  # (file, why it was skipped)


class _HashingWriter:
    """A write-only file object that hashes and counts what goes through it.

    torch.save reports a failed write as a RuntimeError ("unexpected pos"); the OSError behind it (ENOSPC)
    is kept here so the caller can raise it instead.
    """

    def __init__(self, f: IO[bytes]) -> None:
        self.f, self.sha256, self.size, self.error = f, hashlib.sha256(), 0, None

    def write(self, data) -> int:
        try:
            n = self.f.write(data)
        except OSError as e:
            self.error = e
            raise
        view = memoryview(data)
        self.sha256.update(view)
        self.size += view.nbytes
        return n

    def flush(self) -> None:
        self.f.flush()


def _nbytes(obj: Any) -> int:
    """Bytes of the tensors in a nested state (about the size of its `torch.save`)."""
    if isinstance(obj, torch.Tensor):
        return obj.numel() * obj.element_size()
    if isinstance(obj, dict):
        return sum(_nbytes(v) for v in obj.values())
    if isinstance(obj, (list, tuple)):
        return sum(_nbytes(v) for v in obj)
    return 0


def _digest(path: Path) -> tuple[int, str]:
    h, size = hashlib.sha256(), 0
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
            size += len(block)
    return size, h.hexdigest()


class Checkpointer:
    """Numbered checkpoints in `folder`, the newest `keep` of them kept.

    folder: where the checkpoints live (created on the first save).
    keep: how many complete checkpoints a save leaves (the newest ones).
    """

    def __init__(self, folder: str | Path, keep: int = 2) -> None:
        if keep < 1:
            raise ValueError(f"keep={keep} must be at least 1")
        self.folder, self.keep = Path(folder), keep

    def path(self, step: int) -> Path:
        """The checkpoint file of `step`."""
        return self.folder / f"step-{step:08d}.pt"

    @staticmethod
    def record_path(path: Path) -> Path:
        """The size-and-checksum record of the checkpoint file `path`."""
        return path.with_suffix(".json")

    def _numbered(self, pattern: re.Pattern) -> Iterator[tuple[int, Path]]:
        if self.folder.is_dir():
            for p in self.folder.iterdir():
                m = pattern.match(p.name)
                if m and p.is_file():
                    yield int(m[1]), p

    def checkpoints(self) -> list[Path]:
        """The checkpoint files, oldest first (damaged ones set aside are not listed)."""
        return [p for _, p in sorted(self._numbered(_CHECKPOINT_RE))]

    def save(self, step: int, state: dict[str, Any]) -> Path:
        """Write `state` as the checkpoint of `step`, then delete the ones beyond the newest `keep`."""
        path, record = self.path(step), self.record_path(self.path(step))
        committed = False
        try:
            with hub.atomic_write(path) as f:
                writer = _HashingWriter(f)
                try:
                    torch.save(state, writer)
                except RuntimeError:
                    if writer.error is not None:
                        raise writer.error from None
                    raise
                # The record goes first: a checkpoint on disk always has the record of its own bytes.
                hub.write_json_atomic(record, {"step": step, "size": writer.size, "sha256": writer.sha256.hexdigest()})
            committed = True
        except OSError as e:
            if e.errno == errno.ENOSPC:
                raise hub.DiskFullError(path, needed=_nbytes(state)) from None
            raise
        finally:
            if not committed:
                record.unlink(missing_ok=True)
        self._prune(step)
        return path

    def _prune(self, newest: int) -> None:
        for old in self.checkpoints()[: -self.keep]:
            old.unlink(missing_ok=True)
            self.record_path(old).unlink(missing_ok=True)
        kept = {p.name for p in self.checkpoints()}
        for step, rec in self._numbered(_RECORD_RE):  # records of saves killed before their checkpoint
            if step < newest and rec.with_suffix(".pt").name not in kept:
                rec.unlink(missing_ok=True)

    def problem(self, path: Path) -> str | None:
        """Why the checkpoint `path` cannot be trusted, or None when its size and checksum match its record."""
        record = self.record_path(path)
        if not record.is_file():
            return None  # saved before records existed, or copied without one: `load_latest` tries to load it
        try:
            saved = hub.read_json(record, "checkpoint record")
            want_size, want_sha = int(saved["size"]), str(saved["sha256"])
        except (ValueError, KeyError, TypeError):
            return None
        size, sha = _digest(path)
        if size != want_size:
            return f"it is truncated or damaged: {size} bytes, {want_size} were written"
        if sha != want_sha:
            return "its SHA-256 differs from the one recorded when it was written: it is damaged"
        return None

    def load_latest(self, map_location: str | torch.device = "cpu", set_aside: bool = True) -> Restored | None:
        """The newest checkpoint that verifies and loads, or None when there is none.

        map_location: where tensors are loaded (as in `torch.load`).
        set_aside: warn about each newer, damaged checkpoint and rename it `*.damaged` (the process that
        writes the run does this; other ranks pass False).

        Raises `ValueError` when checkpoints exist but none of them loads.
        """
        skipped: list[tuple[Path, str]] = []
        for path in reversed(self.checkpoints()):
            try:
                problem = self.problem(path)
                state = None
                if problem is None:
                    state = torch.load(path, map_location=map_location, weights_only=True)
            except FileNotFoundError:  # set aside by another rank meanwhile
                problem = "it was set aside by another process"
            except Exception as e:
                first = (str(e).strip().splitlines() or [""])[0].split(". ")[0][:200]
                problem = f"it does not load ({type(e).__name__}: {first})"
            if problem is None and isinstance(state, dict):
                restored = Restored(int(_CHECKPOINT_RE.match(path.name)[1]), path, state, skipped)
                if set_aside:
                    self._set_aside(restored)
                return restored
            skipped.append((path, problem or "it does not hold a state dict"))
        if skipped:
            raise ValueError(
                f"no checkpoint in {self.folder} can be resumed from: "
                + "; ".join(f"{p.name}: {why}" for p, why in skipped)
                + ". Start a new run in another --out-dir, or move these files away to start this one over."
            )
        return None

    def _set_aside(self, restored: Restored) -> None:
        for path, why in restored.skipped:
            target = path.with_name(path.name + DAMAGED_SUFFIX)
            n = 1
            while target.exists():
                target, n = path.with_name(f"{path.name}{DAMAGED_SUFFIX}.{n}"), n + 1
            try:
                path.rename(target)
                record = self.record_path(path)
                if record.is_file():
                    record.rename(target.with_name(record.name + target.name[len(path.name):]))
                kept = f"it is kept as {target}"
            except FileNotFoundError:
                kept = "another process set it aside"
            logger.warning(f"skipping checkpoint {path}: {why}; resuming from {restored.path.name} "
                           f"(step {restored.step}) instead; {kept}")


def rng_state() -> dict[str, Any]:
    """The states of torch's, CUDA's, NumPy's and Python's global random generators."""
    np_state = np.random.get_state()
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "numpy": (np_state[0], np_state[1].tolist(), *np_state[2:]),
        "python": random.getstate(),
    }


def restore_rng_state(state: dict[str, Any]) -> None:
    """Restore what `rng_state` captured."""
    torch.set_rng_state(state["torch"])
    if state.get("cuda") and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
    name, keys, *rest = state["numpy"]
    np.random.set_state((name, np.asarray(keys, dtype=np.uint32), *rest))
    random.setstate(state["python"])
