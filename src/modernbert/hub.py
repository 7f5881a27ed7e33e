"""Files and the hub: where a checkpoint lives, what its files are called, and how every save is written.

This is the package's one I/O leaf: it imports nothing from the package but its error classes, and never
imports torch, so the
tokenizer, the command line and the config can find and write files without loading the model stack.

- `resolve_folder` turns a folder, a bundled model name or a hub repo id into a local folder.
- `atomic_write` / `write_atomic` / `write_json_atomic` write through a temporary file in the target's
  folder (fsync, then rename), so a reader sees the old file or the new one, never half of one; a save also
  removes the temporary files that killed saves of this package left in the same folder.
- `read_json` reads a JSON file with errors that name the file.
- `DTYPE_ALIASES` is the one table of dtype spellings.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import tempfile
import time
from collections.abc import Iterable, Iterator
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
        match = _TMP_PATTERN.match(entry.name)
        if match is None or not entry.is_file() or entry.is_symlink():
            continue
        try:
            age = now - entry.stat().st_mtime
        except FileNotFoundError:
            continue
        if not _pid_alive(int(match["pid"])) or age > STALE_TMP_SECONDS:
            stale.append(entry)
    return sorted(stale)


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
