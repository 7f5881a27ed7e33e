"""Files and the hub: where a checkpoint lives, what its files are called, and how every save is written.

This is the package's one I/O leaf: it imports nothing from the package but its error classes, and never
imports torch, so the
tokenizer, the command line and the config can find and write files without loading the model stack.

- `resolve_folder` turns a folder, a bundled model name or a hub repo id into a local folder.
- `atomic_write` / `write_atomic` / `write_json_atomic` write through a temporary file in the target's
  folder (fsync, then rename), so a reader sees the old file or the new one, never half of one; a save also
  removes the temporary files that killed saves of this package left in the same folder.
- `atomic_folder` replaces a whole folder (a checkpoint) at once: a reader sees the old folder or the new one.
- `read_json` reads a JSON file with errors that name the file.
- `DTYPE_ALIASES` is the one table of dtype spellings.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import re
import secrets
import shutil
import stat
import sys
import tempfile
import time
import warnings
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import IO, Any

from .errors import DiskFullError, HubUnavailableError

# ----- standard file names -----

CONFIG_NAME = "config.json"
SAFETENSORS_NAME = "model.safetensors"
SAFETENSORS_INDEX_NAME = "model.safetensors.index.json"
BIN_NAME = "pytorch_model.bin"
BIN_INDEX_NAME = "pytorch_model.bin.index.json"
WEIGHT_NAMES = (SAFETENSORS_NAME, SAFETENSORS_INDEX_NAME, BIN_NAME, BIN_INDEX_NAME)
# Shards as transformers names them: model-00001-of-00003.safetensors, pytorch_model-00001-of-00003.bin.
SAFETENSORS_SHARD_NAME = "model-{index:05d}-of-{total:05d}.safetensors"
BIN_SHARD_NAME = "pytorch_model-{index:05d}-of-{total:05d}.bin"
_SHARD_PATTERN = re.compile(r"^(?:model-\d{5}-of-\d{5}\.safetensors|pytorch_model-\d{5}-of-\d{5}\.bin)$")
TOKENIZER_FILE = "tokenizer.json"
TOKENIZER_CONFIG_FILE = "tokenizer_config.json"
SPECIAL_TOKENS_MAP_FILE = "special_tokens_map.json"
TOKENIZER_FILES = (TOKENIZER_FILE, TOKENIZER_CONFIG_FILE, SPECIAL_TOKENS_MAP_FILE)
ST_MODULES_FILE = "modules.json"  # sentence-transformers folders

MODEL_PATTERNS = ("*.json", "*.safetensors", "*.txt")  # what a hub download fetches for a model
TOKENIZER_PATTERNS = TOKENIZER_FILES  # ... and for a tokenizer alone

BUNDLED_DIR = Path(__file__).parent / "bundled"

# Every spelling of a dtype the package accepts, to its canonical config.json name.
DTYPE_ALIASES: dict[str, str] = {
    "float32": "float32", "fp32": "float32", "float": "float32",
    "float16": "float16", "fp16": "float16", "half": "float16",
    "bfloat16": "bfloat16", "bf16": "bfloat16",
}
DTYPES = ("float32", "float16", "bfloat16")


def dtype_name(dtype: Any) -> str:
    """The canonical name ("float32", "float16", "bfloat16") of a dtype or any of its spellings."""
    key = str(dtype).removeprefix("torch.")
    if key not in DTYPE_ALIASES:
        raise ValueError(f"dtype={dtype!r} is not supported; choose one of {DTYPES}")
    return DTYPE_ALIASES[key]


def is_weight_file(name: str) -> bool:
    """Whether file name `name` belongs to one of the weight layouts the loader reads (single file, shard or
    shard index, safetensors or .bin)."""
    return name in WEIGHT_NAMES or _SHARD_PATTERN.match(name) is not None


# ----- resolving folders -----


def bundled_models() -> list[str]:
    """Names of the models shipped inside the package (resolvable with no network)."""
    if not BUNDLED_DIR.is_dir():
        return []
    return sorted(p.name for p in BUNDLED_DIR.iterdir() if (p / CONFIG_NAME).is_file())


def hub_offline() -> bool:
    """HF_HUB_OFFLINE (or TRANSFORMERS_OFFLINE) read now; huggingface_hub reads it once, at import."""
    value = os.environ.get("HF_HUB_OFFLINE", os.environ.get("TRANSFORMERS_OFFLINE", "0"))
    return value.strip().lower() in ("1", "true", "yes", "on")


def looks_like_path(name: str) -> bool:
    """Whether `name` can only be a filesystem path (never a hub repo id or a bundled name)."""
    return name.startswith((".", "/", "~")) or name.count("/") > 1 or not name.strip()


def resolve_folder(
    name_or_path: str | os.PathLike,
    *,
    patterns: Iterable[str] = MODEL_PATTERNS,
    revision: str | None = None,
    cache_dir: str | os.PathLike | None = None,
    local_files_only: bool = False,
    token: str | bool | None = None,
) -> Path:
    """A local folder holding the checkpoint: the path itself, a bundled model, or a hub snapshot.

    For a hub id only the files matching `patterns` are fetched; HF_HUB_OFFLINE=1 or local_files_only=True
    use the standard cache without touching the network.
    """
    path = Path(name_or_path).expanduser()
    if path.is_dir():
        return path
    name = os.fspath(name_or_path)
    if name in bundled_models():
        return BUNDLED_DIR / name
    if path.exists():
        raise ValueError(f"{name} is a file; pass the folder that holds {CONFIG_NAME} and the weights")
    if looks_like_path(name):
        raise FileNotFoundError(f"folder {name!r} does not exist")
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import HFValidationError

    offline = local_files_only or hub_offline()
    try:
        folder = snapshot_download(
            name, revision=revision, cache_dir=cache_dir, local_files_only=offline,
            allow_patterns=list(patterns), token=token,
        )
    except HFValidationError:
        raise FileNotFoundError(f"folder {name!r} does not exist, and it is not a valid hub repo id") from None
    except Exception as e:  # offline, not cached, repo missing, network down: one clear message
        hint = (
            "the hub is offline (HF_HUB_OFFLINE / local_files_only) and it is not in the cache"
            if offline
            else f"it could not be downloaded ({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''})"
        )
        bundled = ", ".join(bundled_models()) or "none"
        raise HubUnavailableError(
            f"cannot load {name!r}: it is not a local folder and {hint}. "
            f"Pass a local folder, or a bundled model ({bundled})."
        ) from None
    return Path(folder)


# ----- reading -----


def read_json(path: str | os.PathLike, what: str = "JSON file") -> Any:
    """The parsed content of a JSON file; a ValueError naming the file when it is not valid JSON or UTF-8."""
    path = Path(path)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise ValueError(f"{path} is not a valid {what}: {e}") from None
    except UnicodeDecodeError as e:
        raise ValueError(f"{path} is not a valid {what}: not UTF-8 text ({e.reason} at byte {e.start})") from None


# ----- atomic writes -----

# Temporary files of this package's saves: .<target name>.<pid>.<random>.mbtmp, in the target's folder.
TMP_SUFFIX = ".mbtmp"
_TMP_PATTERN = re.compile(r"^\.(?P<target>.+)\.(?P<pid>\d+)\.[A-Za-z0-9_]+" + re.escape(TMP_SUFFIX) + "$")
STALE_TMP_SECONDS = 24 * 3600  # a temporary file this old is stale even if its pid is alive again
# Earlier versions named them .<target name>.<8 random characters>.tmp, without a pid. Only those of the files
# a checkpoint holds, and only once untouched for LEGACY_TMP_SECONDS (a live writer touches its file), are stale.
_LEGACY_TMP_PATTERN = re.compile(r"^\.(?P<target>.+)\.[a-z0-9_]{8}\.tmp$")
LEGACY_TMP_SECONDS = 3600
# Earlier pretraining runs named theirs .<target name>.tmp<pid> (checkpoints step-N.pt, metrics.json, the
# exported files): stale once that process no longer runs, like the current ones.
_LEGACY_PID_PATTERN = re.compile(r"^\.(?P<target>step-\d+\.pt|.+\.json|.+\.safetensors)\.tmp(?P<pid>\d+)$")


def _pid_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def stale_temporaries(folder: str | os.PathLike) -> list[Path]:
    """Temporary files of killed saves in `folder`: named as this package names them, and written by a
    process that no longer runs (or older than STALE_TMP_SECONDS). Nothing else is ever listed."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    now = time.time()
    stale = []
    for entry in folder.iterdir():
        match = _TMP_PATTERN.match(entry.name) or _LEGACY_PID_PATTERN.match(entry.name)
        legacy = _LEGACY_TMP_PATTERN.match(entry.name) if match is None else None
        if legacy is not None and not _is_checkpoint_file(legacy["target"]):
            legacy = None
        if (match is None and legacy is None) or not entry.is_file() or entry.is_symlink():
            continue
        try:
            age = now - entry.stat().st_mtime
        except FileNotFoundError:
            continue
        if legacy is not None:
            if age > LEGACY_TMP_SECONDS:
                stale.append(entry)
        elif not _pid_alive(int(match["pid"])) or age > STALE_TMP_SECONDS:
            stale.append(entry)
    return sorted(stale)


def _is_checkpoint_file(name: str) -> bool:
    return name == CONFIG_NAME or name in TOKENIZER_FILES or is_weight_file(name)


def remove_stale_temporaries(folder: str | os.PathLike) -> list[Path]:
    """Remove what `stale_temporaries` lists; returns the removed paths."""
    removed = []
    for path in stale_temporaries(folder):
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
            removed.append(path)
    return removed


def _fsync_dir(folder: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike) -> Iterator[IO[bytes]]:
    """A binary file to write `path` through: a temporary file in the same folder, fsynced and renamed onto
    `path` when the block ends without an error, removed when it raises. Stale temporary files of earlier,
    killed saves in that folder are removed first.

        with atomic_write(folder / "model.safetensors") as f:
            f.write(data)
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(path.parent)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.{os.getpid()}.", suffix=TMP_SUFFIX)
    umask = os.umask(0)
    os.umask(umask)
    try:
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; a saved file is an ordinary file
        with os.fdopen(fd, "wb") as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as e:
        Path(tmp).unlink(missing_ok=True)
        if isinstance(e, OSError) and e.errno == 28:  # ENOSPC
            raise DiskFullError(path) from e
        raise
    _fsync_dir(path.parent)


def write_atomic(path: str | os.PathLike, data: bytes) -> None:
    """Write `data` to `path` atomically (see `atomic_write`)."""
    with atomic_write(path) as f:
        f.write(data)


def write_json_atomic(path: str | os.PathLike, obj: Any, *, sort_keys: bool = True) -> None:
    """Write `obj` as indented UTF-8 JSON (with a final newline) to `path` atomically."""
    text = json.dumps(obj, indent=2, sort_keys=sort_keys, ensure_ascii=False) + "\n"
    write_atomic(path, text.encode("utf-8"))


# ----- replacing a folder as a whole -----

# A save builds the new folder next to the target, as .<name>.<pid>.<random>.saving, and swaps the two.
STAGING_SUFFIX = ".saving"
_NAME_MAX = 200  # of the target name kept in a staging name (file names are at most 255 bytes)
_RENAME_EXCHANGE = 2
_AT_FDCWD = -100
_RENAMEAT2_SYSCALL = {"x86_64": 316, "amd64": 316, "aarch64": 276, "arm64": 276}
_DISK_FULL = (errno.ENOSPC, errno.EDQUOT)
_NO_EXCHANGE = (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP, errno.ENOTSUP, errno.EXDEV, errno.EBUSY)


def _staging_pattern(name: str) -> re.Pattern[str]:
    return re.compile(
        r"^\." + re.escape(name[:_NAME_MAX]) + r"\.(?P<pid>\d+)\.[A-Za-z0-9_]+" + re.escape(STAGING_SUFFIX) + "$"
    )


def _lock(fd: int) -> bool | None:
    """Take the lock a save holds on its staging folder: True when taken, False when another process holds
    it, None where the filesystem has no such locks."""
    try:
        import fcntl
    except ImportError:  # not POSIX
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    except OSError:
        return None
    return True


def stale_staging_folders(folder: str | os.PathLike) -> list[Path]:
    """Staging folders that killed saves of `folder` left next to it: named as `atomic_folder` names them, not
    locked by a running save, and made by a process that no longer runs (or older than STALE_TMP_SECONDS).
    Nothing else is ever listed."""
    target = Path(os.path.realpath(Path(folder).expanduser()))
    pattern = _staging_pattern(target.name)
    if not target.name or not target.parent.is_dir():
        return []
    now = time.time()
    stale = []
    for entry in target.parent.iterdir():
        match = pattern.match(entry.name)
        if match is None or entry.is_symlink() or not entry.is_dir():
            continue
        try:
            fd = os.open(entry, os.O_RDONLY)
        except OSError:
            continue
        try:
            if _lock(fd) is False:
                continue  # a save is building it now
            age = now - os.fstat(fd).st_mtime
        finally:
            os.close(fd)
        if not _pid_alive(int(match["pid"])) or age > STALE_TMP_SECONDS:
            stale.append(entry)
    return sorted(stale)


def remove_stale_staging_folders(folder: str | os.PathLike) -> list[Path]:
    """Remove what `stale_staging_folders` lists; returns the removed paths."""
    removed = []
    for path in stale_staging_folders(folder):
        _remove_tree(path)
        removed.append(path)
    return removed


def _write_all(fd: int, data: bytes | bytearray | memoryview) -> None:
    """Write all of `data` to `fd` (os.write may write less than asked)."""
    view = memoryview(data).cast("B")
    while view:
        view = view[os.write(fd, view[: 1 << 30]) :]


def _write_new(path: Path, data: bytes | bytearray | memoryview) -> None:
    """Create `path` (it must not exist) holding `data`, fsynced; on any error nothing is left at `path`."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0), 0o666)
    try:
        _write_all(fd, data)
        os.fsync(fd)
    except BaseException:
        os.close(fd)
        path.unlink(missing_ok=True)
        raise
    os.close(fd)


class FolderWriter:
    """The files of a save in progress, given by `atomic_folder`; `write(name, data)` adds one."""

    def __init__(self, target: Path, root: Path, needed: int | None) -> None:
        self.target, self.root, self.needed = target, root, needed
        self.written: list[str] = []

    def write(self, name: str, data: bytes | bytearray | memoryview) -> None:
        """Write file `name` (a plain name, no folder) of the new folder, replacing the old folder's file."""
        if not name or name in (".", "..") or any(sep and sep in name for sep in ("/", os.sep, os.altsep)):
            raise ValueError(f"{name!r} is not a plain file name")
        if name in self.written:
            raise ValueError(f"{name} is written twice in one save")
        path = self.root / name
        try:
            if self.root == self.target:  # in place: through a temporary file (see `atomic_write`)
                tmp = path.with_name(f".{name}.{os.getpid()}.{secrets.token_hex(4)}{TMP_SUFFIX}")
                _write_new(tmp, data)
                try:
                    os.replace(tmp, path)
                except BaseException:
                    tmp.unlink(missing_ok=True)
                    raise
            else:
                path.unlink(missing_ok=True)  # a hard link to the old folder's file: never write through it
                _write_new(path, data)
        except OSError as e:
            if e.errno in _DISK_FULL:
                raise DiskFullError(self.target / name, self.needed) from e
            raise
        self.written.append(name)


def _outside_stacklevel() -> int:
    """The `warnings.warn` stacklevel, for the caller of this function, of the first frame outside the package."""
    package = os.path.dirname(os.path.abspath(__file__))
    frame, level = sys._getframe(2), 2
    while frame is not None and (frame.f_code.co_filename.startswith(package)
                                 or frame.f_code.co_filename == contextlib.__file__):
        frame, level = frame.f_back, level + 1
    return level


def _renameat2_exchange(a: Path, b: Path) -> None:
    """Swap the paths `a` and `b` in one step (Linux renameat2 RENAME_EXCHANGE); OSError when impossible."""
    if not sys.platform.startswith("linux"):
        raise OSError(errno.ENOSYS, "RENAME_EXCHANGE is Linux-only")
    import ctypes
    import platform

    libc = ctypes.CDLL(None, use_errno=True)
    args = (_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE)
    types = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    if hasattr(libc, "renameat2"):  # glibc 2.28+
        fn = libc.renameat2
        fn.argtypes, fn.restype = types, ctypes.c_int
        result = fn(*args)
    elif platform.machine().lower() in _RENAMEAT2_SYSCALL:
        fn = libc.syscall
        fn.argtypes, fn.restype = [ctypes.c_long, *types], ctypes.c_long
        result = fn(_RENAMEAT2_SYSCALL[platform.machine().lower()], *args)
    else:
        raise OSError(errno.ENOSYS, f"no renameat2 on {platform.machine()}")
    if result != 0:
        code = ctypes.get_errno()
        raise OSError(code, os.strerror(code), str(a), None, str(b))


def _mirror(src: Path, dst: Path, skip: Callable[[str], bool]) -> list[Path]:
    """Fill the empty folder `dst` with hard links to every file under `src` (copies where a link fails),
    except the top-level names `skip` claims; returns the folders made, deepest first."""
    made: list[Path] = []
    for entry in os.scandir(src):
        if skip(entry.name):
            continue
        target = dst / entry.name
        if entry.is_dir(follow_symlinks=False):
            os.mkdir(target)
            made += _mirror(Path(entry.path), target, lambda name: False)
            os.chmod(target, stat.S_IMODE(entry.stat(follow_symlinks=False).st_mode))
            made.append(target)
            continue
        try:
            os.link(entry.path, target, follow_symlinks=False)
        except OSError as e:
            if e.errno in _DISK_FULL:
                raise
            if entry.is_symlink():
                os.symlink(os.readlink(entry.path), target)
            elif entry.is_file(follow_symlinks=False):
                shutil.copy2(entry.path, target)
                fd = os.open(target, os.O_RDONLY)
                try:
                    os.fsync(fd)
                finally:
                    os.close(fd)
            else:
                raise OSError(e.errno, f"cannot carry {entry.path} into the new folder: {e.strerror}") from e
    return made


def _why_not_swapped(target: Path) -> str | None:
    if not sys.platform.startswith("linux"):
        return f"{sys.platform} has no atomic folder exchange"
    if target == target.parent or (target.is_dir() and os.path.ismount(target)):
        return "it is a mount point"
    return None


def _warn_file_by_file(target: Path, reason: str) -> None:
    warnings.warn(
        f"{target} is saved file by file, not replaced as a whole ({reason}): each file is replaced atomically, "
        "but a save killed midway can leave new weights next to an old config. Save into a subfolder of a "
        "writable folder on a local Linux filesystem for a whole-folder replacement.",
        UserWarning,
        stacklevel=_outside_stacklevel(),
    )


def _drop_unwritten(target: Path, writer: FolderWriter, drop: Callable[[str], bool]) -> None:
    for entry in os.scandir(target):
        if drop(entry.name) and entry.name not in writer.written and not entry.is_dir(follow_symlinks=False):
            Path(entry.path).unlink(missing_ok=True)


@contextlib.contextmanager
def atomic_folder(
    folder: str | os.PathLike,
    *,
    drop: Callable[[str], bool] = lambda name: False,
    needed: int | None = None,
) -> Iterator[FolderWriter]:
    """Replace `folder` as a whole with the files written in the block: a reader, or the folder after a kill
    at any moment, shows the old folder or the new one, never a mix, and no temporary files.

    folder: the folder to write; made (with its parents) when missing.
    drop: top-level names of the old folder not carried into the new one (besides those written).
    needed: bytes the save needs, for the disk-full message.

    The new folder is built next to `folder`, as .<name>.<pid>.<random>.saving on the same filesystem: the old
    folder's files (subfolders too) are hard-linked into it (copied where a link fails), the block's files are
    written and fsynced, and the two folders are swapped in one step (Linux `renameat2(RENAME_EXCHANGE)`), then
    the old one is removed. Running this process in the folder, it moves along into the new one; other
    processes with open files or their working directory there keep the old, removed folder. Stale staging
    folders and temporary files of killed saves of `folder` are removed first (only those: matched by name,
    unlocked, of a process that no longer runs).

    Where the exchange is impossible — not Linux, `folder` a mount point, its parent not writable, or a
    filesystem without RENAME_EXCHANGE — the files are replaced one by one, each atomically, with a warning
    that says so: a kill midway can then leave a mix of old and new files.

    A full disk raises `DiskFullError`, naming the file, with the old folder intact.

        with atomic_folder(folder, drop=lambda name: name.endswith(".safetensors")) as out:
            out.write("config.json", data)
    """
    target = Path(os.path.realpath(Path(folder).expanduser()))
    if target.exists() and not target.is_dir():
        raise ValueError(f"{folder} is a file; pass the folder to save into")
    if target.is_dir() and not os.access(target, os.W_OK | os.X_OK):
        raise PermissionError(errno.EACCES, f"{target} is not writable; save into a folder you can write", str(target))
    target.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_staging_folders(target)
    if target.is_dir():
        remove_stale_temporaries(target)
    reason = _why_not_swapped(target)
    staging: Path | None = None
    if reason is None:
        try:
            staging = Path(tempfile.mkdtemp(
                dir=target.parent, prefix=f".{target.name[:_NAME_MAX]}.{os.getpid()}.", suffix=STAGING_SUFFIX
            ))
        except PermissionError:
            reason = f"its parent folder {target.parent} is not writable"
        except OSError as e:
            if e.errno in _DISK_FULL:
                raise DiskFullError(target, needed) from e
            raise
    if staging is None:
        _warn_file_by_file(target, reason or "no staging folder")
        target.mkdir(exist_ok=True)
        writer = FolderWriter(target, target, needed)
        yield writer
        _drop_unwritten(target, writer, drop)
        _fsync_dir(target)
        return

    lock_fd: int | None = None
    try:
        lock_fd = os.open(staging, os.O_RDONLY)
        _lock(lock_fd)
        existed = target.is_dir()
        try:
            made = _mirror(target, staging, drop) if existed else []
            writer = FolderWriter(target, staging, needed)
        except OSError as e:
            if e.errno in _DISK_FULL:
                raise DiskFullError(target, needed) from e
            raise
        yield writer
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(staging, stat.S_IMODE(target.stat().st_mode) if existed else 0o777 & ~umask)
        for path in (*made, staging):
            _fsync_dir(path)
        _commit(staging, target, existed, writer, drop)
    except BaseException:
        _remove_tree(staging)
        raise
    finally:
        if lock_fd is not None:
            os.close(lock_fd)
    _remove_tree(staging)  # the old folder, after a swap


def _remove_tree(path: Path) -> None:
    """Remove a staging folder, read-only subfolders included (only folders are made writable: its files may be
    hard links shared with the live folder)."""
    shutil.rmtree(path, ignore_errors=True)
    if not path.exists():
        return
    for root, dirs, _ in os.walk(path):
        for name in (".", *dirs):
            with contextlib.suppress(OSError):
                os.chmod(os.path.join(root, name), 0o700)
    shutil.rmtree(path, ignore_errors=True)


def _commit(staging: Path, target: Path, existed: bool, writer: FolderWriter, drop: Callable[[str], bool]) -> None:
    """Put the staging folder in place of `target`; afterwards `staging` holds the old folder (or nothing)."""
    if not existed:
        try:
            os.rename(staging, target)
        except OSError as e:
            if e.errno in (errno.ENOTEMPTY, errno.EEXIST):
                raise FileExistsError(f"{target} was created by someone else during the save; save again") from e
            raise
        _fsync_dir(target.parent)
        return
    try:
        cwd: str | None = os.getcwd()
    except OSError:
        cwd = None
    try:
        _renameat2_exchange(staging, target)
    except OSError as e:
        if e.errno not in _NO_EXCHANGE:
            raise
        _warn_file_by_file(target, f"the filesystem cannot exchange folders: {e.strerror}")
        for name in writer.written:
            os.replace(staging / name, target / name)
        _drop_unwritten(target, writer, drop)
        _fsync_dir(target)
        return
    _fsync_dir(target.parent)
    if cwd is not None and (cwd == str(target) or cwd.startswith(str(target) + os.sep)):
        with contextlib.suppress(OSError):
            os.chdir(cwd)  # follow the folder, not the removed old one
