"""Fault injection for training runs and resumable jobs: kill -9, torn and truncated files, full disks.

Shared by the pretraining tests and the trainers and jobs that reuse `Checkpointer` and `RunLog`:

- `run_child(target, *args, kill_at=..., kill_after=...)` runs `target(*args)` ("module:function") in a
  child process forked from a server that has torch and the package imported (so a child starts in
  milliseconds), and kills it with SIGKILL at a chosen I/O point (`KillAt`) or after a delay.
- `tear_last_line`, `truncate`, `stale_temporary` damage files as killed writers do.
- `FullDisk` simulates a disk that fills up by patching the package's writers; `tmpfs` mounts a real
  small filesystem where the machine allows it (and skips the test where it does not).
- `comparable_run` and `assert_steps_once` compare a run with an uninterrupted one.
"""

from __future__ import annotations

import contextlib
import errno
import fnmatch
import importlib
import json
import multiprocessing
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

TIMING_KEYS = frozenset({"elapsed_s", "tokens_per_s"})  # differ between any two runs
# States of NumPy's and Python's global generators: seeded by the OS in each process, unused by training.
PROCESS_RANDOM_KEYS = frozenset({"numpy", "python"})

_context: Any = None


def _mp():
    global _context
    if _context is None:
        _context = multiprocessing.get_context("forkserver")
        # torch._dynamo: torch.optim imports it on first use (seconds); once here, every child has it.
        preload = ["torch", "torch._dynamo", "modernbert.model", "modernbert.training.pretrain", __name__]
        _context.set_forkserver_preload(preload)
    return _context


# ----- kill -9 -----


@dataclass(frozen=True)
class KillAt:
    """Where a child process kills itself with SIGKILL, as `kill -9` at that moment would.

    event: "write" (while a file is written through `hub.atomic_write`, after `after_bytes` of its bytes),
        "rename" (just before a finished temporary file is renamed onto its target), "unlink" (just before a
        file is deleted) or "append" (in the middle of appending a line to a log: half of it written).
    match: shell pattern of the target file's name (`step-*.pt`, `log.jsonl`).
    nth: the nth such event of a matching file.
    after_bytes: for "write".
    """

    event: str
    match: str
    nth: int = 1
    after_bytes: int = 0


def _die() -> None:
    sys.stdout.flush()
    os.kill(os.getpid(), signal.SIGKILL)


def _install(kill: KillAt) -> None:
    from modernbert import hub

    seen = [0]

    def due(name: str) -> bool:
        if not fnmatch.fnmatch(name, kill.match):
            return False
        seen[0] += 1
        return seen[0] == kill.nth

    if kill.event == "write":
        real_atomic = hub.atomic_write

        class Dying:
            def __init__(self, f):
                self.f, self.n = f, 0

            def write(self, data):
                data = bytes(data)
                if self.n + len(data) > kill.after_bytes:
                    self.f.write(data[: max(0, kill.after_bytes - self.n)])
                    self.f.flush()
                    _die()
                self.n += len(data)
                return self.f.write(data)

            def __getattr__(self, name):
                return getattr(self.f, name)

        @contextlib.contextmanager
        def atomic_write(path):
            with real_atomic(path) as f:
                yield Dying(f) if due(Path(path).name) else f

        hub.atomic_write = atomic_write
    elif kill.event == "rename":
        real_replace = os.replace

        def replace(src, dst, *args, **kwargs):
            if due(Path(dst).name):
                _die()
            return real_replace(src, dst, *args, **kwargs)

        os.replace = replace
    elif kill.event == "unlink":
        real_unlink = Path.unlink

        def unlink(self, *args, **kwargs):
            if due(self.name):
                _die()
            return real_unlink(self, *args, **kwargs)

        Path.unlink = unlink
    elif kill.event == "append":
        real_write = os.write

        def write(fd, data):
            try:
                name = Path(os.readlink(f"/proc/self/fd/{fd}")).name
            except OSError:
                name = ""
            if due(name):
                real_write(fd, bytes(data)[: len(data) // 2])
                _die()
            return real_write(fd, data)

        os.write = write
    else:
        raise ValueError(f"unknown kill event {kill.event!r}")


def _child(target: str, args: tuple, kill_at: tuple[KillAt, ...]) -> None:
    module, name = target.split(":")
    fn = getattr(importlib.import_module(module), name)
    for kill in kill_at:
        _install(kill)
    fn(*args)


def run_child(
    target: str, *args: Any, kill_at: KillAt | tuple[KillAt, ...] = (), kill_after: float | None = None,
    timeout: float = 120.0,
) -> int:
    """Run `target(*args)` ("package.module:function") in a child process; returns its exit code.

    kill_at: I/O points where the child kills itself (see `KillAt`).
    kill_after: seconds after which the parent kills the child with SIGKILL if it still runs.
    Returns 0 when it completed, -9 when it was killed, 1 when it raised (the traceback is on stderr).
    """
    kills = (kill_at,) if isinstance(kill_at, KillAt) else tuple(kill_at)
    p = _mp().Process(target=_child, args=(target, args, kills))
    p.start()
    p.join(kill_after if kill_after is not None else timeout)
    if p.is_alive():
        if kill_after is None:
            p.kill()
            p.join()
            raise TimeoutError(f"{target} did not finish within {timeout} s")
        os.kill(p.pid, signal.SIGKILL)
        p.join()
    return p.exitcode


def warm_up() -> None:
    """Start the fork server now (imports torch once), so that timed kills measure the run, not the start."""
    assert run_child("os:getpid") == 0


# ----- damaged files -----


def tear_last_line(path: str | os.PathLike, fragment: bytes = b'{"step": 99, "event": "tra') -> None:
    """Append the start of a record without its end, as a writer killed mid-line leaves it."""
    with open(path, "ab") as f:
        f.write(fragment)


def truncate(path: str | os.PathLike, keep: float = 0.5) -> None:
    """Cut a file to the first `keep` of its bytes."""
    path = Path(path)
    os.truncate(path, int(path.stat().st_size * keep))


def dead_pid() -> int:
    """The pid of a process that has exited."""
    p = subprocess.Popen(["true"])
    p.wait()
    return p.pid


def stale_temporary(folder: str | os.PathLike, target: str, *, pid: int | None = None, age_s: float = 0) -> Path:
    """A temporary file named as `hub.atomic_write` names them (`.<target>.<pid>.<random>.mbtmp`), as a save
    killed while writing `target` leaves it; `pid` defaults to one that has exited."""
    from modernbert import hub

    path = Path(folder) / f".{target}.{dead_pid() if pid is None else pid}.k1ll3d{hub.TMP_SUFFIX}"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"half a checkpoint")
    if age_s:
        t = path.stat().st_mtime - age_s
        os.utime(path, (t, t))
    return path


# ----- full disks -----


class _Budgeted:
    def __init__(self, f, disk: FullDisk) -> None:
        self.f, self.disk = f, disk

    def write(self, data) -> int:
        return self.disk.take(memoryview(data).nbytes, lambda n: self.f.write(bytes(data)[:n]))

    def __getattr__(self, name):
        return getattr(self.f, name)


class FullDisk:
    """A disk with `free` bytes left for files under `folder`, simulated by patching the package's writers
    (`hub.atomic_write` and `RunLog`'s appends); set `free` again to free space.

    A write that does not fit writes what fits and raises ENOSPC, as a real full disk does.
    """

    def __init__(self, monkeypatch: pytest.MonkeyPatch, folder: str | os.PathLike, free: int) -> None:
        from modernbert import hub
        from modernbert.training import runlog

        self.folder, self.free, self.refused = Path(folder).resolve(), free, 0
        real_atomic = hub.atomic_write

        @contextlib.contextmanager
        def atomic_write(path):
            with real_atomic(path) as f:
                yield _Budgeted(f, self) if self._covers(path) else f

        real_write = os.write

        def write(fd, data):
            try:
                covered = self._covers(os.readlink(f"/proc/self/fd/{fd}"))
            except OSError:
                covered = False
            if not covered:
                return real_write(fd, data)
            return self.take(len(data), lambda n: real_write(fd, bytes(data)[:n]) if n else 0)

        class Os:
            def __getattr__(self, name):
                return getattr(os, name)

        os_proxy = Os()
        os_proxy.write = write
        monkeypatch.setattr(hub, "atomic_write", atomic_write)
        monkeypatch.setattr(runlog, "os", os_proxy)

    def _covers(self, path: str | os.PathLike) -> bool:
        return Path(path).resolve().is_relative_to(self.folder)

    def take(self, n: int, write) -> int:
        if n <= self.free:
            self.free -= n
            return write(n)
        write(self.free)
        self.free, self.refused = 0, self.refused + 1
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


class Tmpfs:
    """A mounted tmpfs (see `tmpfs`); `resize` changes its size, as freeing space would."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def resize(self, size: int) -> None:
        subprocess.run(["mount", "-o", f"remount,size={size}", str(self.path)], check=True, capture_output=True)


@contextlib.contextmanager
def tmpfs(path: str | os.PathLike, size: int) -> Iterator[Tmpfs]:
    """Mount a `size`-byte tmpfs at `path` for the block; skips the test where mounting is not allowed."""
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    try:
        r = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
                           capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError) as e:
        pytest.skip(f"cannot mount a tmpfs here: {e}")
    if r.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {r.stderr.strip()}")
    try:
        yield Tmpfs(path)
    finally:
        subprocess.run(["umount", "-l", str(path)], capture_output=True)


# ----- comparing runs -----


def read_log(path: str | os.PathLike) -> list[dict]:
    """Every record of a JSONL log; fails on a torn or unreadable line."""
    text = Path(path).read_text(encoding="utf-8")
    assert text == "" or text.endswith("\n"), f"{path} ends in a torn line"
    return [json.loads(line) for line in text.splitlines()]


def _strip(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _strip(v) for k, v in value.items() if k not in TIMING_KEYS}
    if isinstance(value, list):
        return [_strip(v) for v in value]
    return value


def comparable_run(out_dir: str | os.PathLike) -> dict[str, Any]:
    """metrics.json and log.jsonl of a run, without the timings that differ between any two runs and with
    the run's folder written as `<run>`."""
    out = Path(out_dir)
    metrics = (out / "metrics.json").read_text(encoding="utf-8").replace(str(out), "<run>")
    log = (out / "log.jsonl").read_text(encoding="utf-8").replace(str(out), "<run>")
    assert log == "" or log.endswith("\n"), f"{out / 'log.jsonl'} ends in a torn line"
    return {"metrics": _strip(json.loads(metrics)), "log": _strip([json.loads(x) for x in log.splitlines()])}


_NOT_COMPARED = TIMING_KEYS | PROCESS_RANDOM_KEYS | {"config"}  # the config names the run's own folder


def assert_same_state(a: Any, b: Any, ignore: frozenset[str] = _NOT_COMPARED, where: str = "") -> None:
    """Two checkpoint states hold equal tensors (bit for bit) and values, except the keys in `ignore`."""
    import torch

    if isinstance(a, torch.Tensor):
        assert isinstance(b, torch.Tensor) and a.dtype == b.dtype and torch.equal(a, b), f"{where} differs"
    elif isinstance(a, dict):
        assert isinstance(b, dict) and a.keys() == b.keys(), f"{where} keys differ"
        for k in a:
            if k not in ignore:
                assert_same_state(a[k], b[k], ignore, f"{where}.{k}")
    elif isinstance(a, (list, tuple)):
        assert isinstance(b, (list, tuple)) and len(a) == len(b), f"{where} lengths differ"
        for i, (x, y) in enumerate(zip(a, b)):
            assert_same_state(x, y, ignore, f"{where}[{i}]")
    else:
        assert a == b, f"{where}: {a!r} != {b!r}"


def assert_steps_once(records: list[dict], steps: int, events: tuple[str, ...] = ("train",)) -> None:
    """Each of the steps 1..steps has exactly one record of each event, and there is one start record."""
    assert [r["event"] for r in records].count("start") == 1
    for event in events:
        logged = [r["step"] for r in records if r["event"] == event]
        assert logged == list(range(1, steps + 1)), f"{event} records of steps {logged}"
