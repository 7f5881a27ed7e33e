"""The package's error and warning classes, in one place: `from modernbert.errors import ...`.

This module imports nothing; every other module takes its errors from here. Each class also subclasses the
built-in exception that code written for transformers expects in its case (FileNotFoundError, ValueError…).
"""

from __future__ import annotations

import os
from pathlib import Path


class HubUnavailableError(FileNotFoundError):
    """A hub id that is neither a local folder nor in the cache, and the hub could not be reached."""


class MissingTokenizerError(FileNotFoundError, ValueError):
    """A model folder holds no tokenizer (both a FileNotFoundError and a ValueError)."""


class TokenizerInputError(TypeError, ValueError):
    """Invalid input to the tokenizer: both a TypeError and a ValueError, since transformers raises either,
    depending on the case."""


class LoadWarning(UserWarning):
    """Warned when task-head weights are initialised instead of loaded."""


class CLIError(Exception):
    """A bad command-line input: printed as one line `error: ...` on stderr, exit code 2."""


class DiskFullError(OSError):
    """A save ran out of disk space; the file it was replacing is untouched."""

    def __init__(self, path: str | os.PathLike, needed: int | None = None) -> None:
        path = Path(path)
        self.path, self.needed = path, needed
        try:
            stat = os.statvfs(path.parent)
            free: int | None = stat.f_bavail * stat.f_frsize
        except OSError:
            free = None
        need = f", about {human_bytes(needed)} needed" if needed else ""
        have = f" ({human_bytes(free)} free)" if free is not None else ""
        super().__init__(
            28, f"no space left on device while writing {path}{have}{need}; the previous file is intact. "
            "Free some space and run again"
        )

    def __str__(self) -> str:
        return self.args[1]


def human_bytes(n: float) -> str:
    """1536 -> '1.5 KB'."""
    for unit in ("B", "KB", "MB", "GB"):
        if abs(n) < 1024:
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TB"


__all__ = [
    "CLIError",
    "DiskFullError",
    "HubUnavailableError",
    "LoadWarning",
    "MissingTokenizerError",
    "TokenizerInputError",
]
