"""The inputs a resumed run must not change, recorded at save and checked on resume.

A trainer describes what makes its run the same run as a nested dict of JSON values (file hashes, the
model config, packing options), stores it in every checkpoint, and on resume calls `check_resume_inputs`
with the saved and the current description. Anything left out of the dict (more steps, another evaluation
interval) may change freely.

    inputs = {"tokenizer": folder_digest(tok_dir, TOKENIZER_FILES), "train_data": file_digest(path), ...}
    check_resume_inputs(saved["inputs"], inputs, checkpoint_path)
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

_MISSING = object()
_DIGESTS: dict[tuple, str] = {}  # (path, inode, size, mtime, ctime) -> sha256: each file is hashed once


def file_sha256(path: str | os.PathLike) -> str:
    """The SHA-256 (hex) of a file's bytes; a file unchanged since the last call is not read again."""
    path = Path(path)
    st = path.stat()
    key = (str(path.resolve()), st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)
    if key not in _DIGESTS:
        h = hashlib.sha256()
        with path.open("rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
        _DIGESTS[key] = h.hexdigest()
    return _DIGESTS[key]


def file_digest(path: str | os.PathLike) -> dict[str, Any]:
    """`{"size", "sha256"}` of a file: its content, not its name, so a moved file is the same input."""
    return {"size": Path(path).stat().st_size, "sha256": file_sha256(path)}


def folder_digest(folder: str | os.PathLike, names: Iterable[str]) -> dict[str, str | None]:
    """`{name: sha256, or None when absent}` of the named files of a folder (e.g. a tokenizer's)."""
    folder = Path(folder)
    return {name: file_sha256(folder / name) if (folder / name).is_file() else None for name in names}


def _flatten(value: Any, prefix: str) -> dict[str, Any]:
    if isinstance(value, Mapping):
        out: dict[str, Any] = {}
        for key, item in value.items():
            out.update(_flatten(item, f"{prefix}.{key}" if prefix else str(key)))
        return out or {prefix: {}}
    if isinstance(value, tuple):
        value = list(value)
    return {prefix: value}


def _show(value: Any) -> str:
    if isinstance(value, str) and len(value) == 64 and all(c in "0123456789abcdef" for c in value):
        return value[:12] + "…"  # a SHA-256
    return "absent" if value is _MISSING else repr(value)


def changed_inputs(saved: Mapping[str, Any], current: Mapping[str, Any]) -> list[str]:
    """One line per difference between two input descriptions: `name: saved → now`."""
    a, b = _flatten(saved, ""), _flatten(current, "")
    return [
        f"{key}: {_show(a.get(key, _MISSING))} → {_show(b.get(key, _MISSING))}"
        for key in sorted(a.keys() | b.keys())
        if a.get(key, _MISSING) != b.get(key, _MISSING)
    ]


def check_resume_inputs(saved: Mapping[str, Any], current: Mapping[str, Any], checkpoint: str | os.PathLike) -> None:
    """Raise `ValueError` naming every input that differs from the one `checkpoint` was trained with.

    saved: the description stored in the checkpoint.
    current: the same description of this run.
    checkpoint: the checkpoint being resumed (named in the error).
    """
    changes = changed_inputs(saved, current)
    if changes:
        raise ValueError(
            f"cannot resume from {checkpoint}: inputs differ from the ones the run was started with "
            f"(checkpoint → now): {'; '.join(changes)}. A resumed run must keep them: restore the original "
            "inputs to continue this run, or start a new run with the new inputs in another --out-dir "
            "(without --resume)."
        )
