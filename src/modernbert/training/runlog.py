"""The log of a training run: one JSON record per line (`log.jsonl`), every step exactly once.

- `append` writes a record whole or not at all: one write of the whole line, and on a full disk the file is
  cut back to where it was and `hub.DiskFullError` names it. Only a kill in the middle of that write can
  leave a torn last line.
- `restart` (a run that starts from step 0) and `cut_back` (a run that resumes the checkpoint of a step)
  rewrite the log atomically through `modernbert.hub`, so a resumed run's log holds every record up to
  its checkpoint once, and those of later, lost steps not at all.
- `records` reads the log; a torn or unreadable line is dropped with a warning naming the file and line,
  never an error, so a torn line cannot make a resume fail.
- `sync` makes the records written so far durable; a trainer calls it before each checkpoint, so a
  checkpoint never outlives the log records of its steps.
"""

from __future__ import annotations

import errno
import json
import logging
import os
from pathlib import Path
from typing import Any

from .. import hub

logger = logging.getLogger(__name__)


class RunLog:
    """The JSONL log at `path`; records are dicts, those of training steps carry a `step`.

    path: the log file (its folder must exist).
    echo: also print every appended record on stdout.
    """

    def __init__(self, path: str | os.PathLike, *, echo: bool = False) -> None:
        self.path, self.echo = Path(path), echo

    def records(self) -> list[dict[str, Any]]:
        """The records of the log (none when it does not exist), without torn or unreadable lines."""
        return [record for record, _ in self._read()]

    def _read(self) -> list[tuple[dict[str, Any], bytes]]:
        if not self.path.is_file():
            return []
        lines = self.path.read_bytes().split(b"\n")
        out = []
        for n, line in enumerate(lines, 1):
            if n == len(lines):
                if line.strip():
                    self._dropped(n, "a torn last line (no newline: its writer was interrupted)")
                break
            if not line.strip():
                continue
            try:
                record = json.loads(line.decode("utf-8"))
            except (UnicodeDecodeError, json.JSONDecodeError) as e:
                self._dropped(n, f"an unreadable line ({e})")
                continue
            if not isinstance(record, dict):
                self._dropped(n, "a line that is not a JSON object")
                continue
            out.append((record, line))
        return out

    def _dropped(self, line: int, what: str) -> None:
        logger.warning(f"{self.path}:{line}: dropped {what}; the run goes on from its checkpoint")

    def restart(self) -> None:
        """Empty the log: the run starts from its first step."""
        hub.write_atomic(self.path, b"")

    def cut_back(self, step: int) -> None:
        """Keep only the records of steps up to `step` (the checkpoint the run resumes from)."""
        kept = [line + b"\n" for record, line in self._read() if record.get("step", 0) <= step]
        hub.write_atomic(self.path, b"".join(kept))

    def append(self, record: dict[str, Any]) -> None:
        """Add one record; on a full disk nothing is added and `hub.DiskFullError` is raised."""
        data = (json.dumps(record) + "\n").encode("utf-8")
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o666)
        try:
            start = os.fstat(fd).st_size
            view = memoryview(data)
            try:
                while view:
                    view = view[os.write(fd, view):]
            except OSError as e:
                try:
                    os.ftruncate(fd, start)
                except OSError:
                    pass
                if e.errno == errno.ENOSPC:
                    raise hub.DiskFullError(self.path, needed=len(data)) from None
                raise
        finally:
            os.close(fd)
        if self.echo:
            print(json.dumps(record), flush=True)

    def sync(self) -> None:
        """Flush the log's records to the disk."""
        if self.path.is_file():
            fd = os.open(self.path, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
