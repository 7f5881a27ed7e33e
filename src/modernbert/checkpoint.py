"""Weights: read safetensors (single or sharded) or .bin, match keys strictly, save.

Folders, file names and atomic writes live in hub.py. Model classes reach this module only through
`from_pretrained` / `save_pretrained` in model.py.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import pickle
import re
import warnings
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from .attention import check_implementation
from .config import ModernBertConfig
from .errors import LoadWarning
from .hub import (
    BIN_INDEX_NAME,
    BIN_NAME,
    BIN_SHARD_NAME,
    CONFIG_NAME,
    DTYPE_ALIASES,
    MODEL_PATTERNS,
    SAFETENSORS_INDEX_NAME,
    SAFETENSORS_NAME,
    SAFETENSORS_SHARD_NAME,
    atomic_folder,
    is_weight_file,
    read_json,
    resolve_folder,
)

# ----- reading weights -----


def _load_safetensors(path: Path) -> dict[str, Tensor]:
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    try:
        return load_file(str(path))
    except (SafetensorError, OSError, ValueError, RuntimeError) as e:
        raise ValueError(f"{path} is not a readable safetensors file (truncated or corrupt?): {e}") from None


def _load_bin(path: Path) -> dict[str, Tensor]:
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        if "allowed global" not in str(e) and "Unsupported global" not in str(e):
            raise ValueError(f"{path} is not a readable PyTorch weights file (truncated or corrupt?)") from None
        raise ValueError(
            f"{path} holds Python objects that only load by running code from the file (pickle), and this "
            "package refuses to run code from a checkpoint. Use a safetensors checkpoint of this model"
        ) from None
    except Exception as e:
        raise ValueError(f"{path} is not a readable PyTorch weights file (truncated or corrupt?): {e}") from None
    if not isinstance(state, dict):
        raise ValueError(f"{path} does not hold a state dict")
    return state


def _load_index(folder: Path, index_name: str, loader: Any) -> dict[str, Tensor]:
    index_path = folder / index_name
    try:
        weight_map: dict[str, str] = read_json(index_path, "shard index")["weight_map"]
    except (KeyError, TypeError) as e:
        raise ValueError(f"{index_path} is not a valid shard index (needs a 'weight_map'): {e}") from None
    state: dict[str, Tensor] = {}
    for shard in sorted(set(weight_map.values())):
        shard_path = folder / shard
        if not shard_path.is_file():
            raise FileNotFoundError(f"{index_path} names shard {shard}, which is missing from {folder}")
        state.update(loader(shard_path))
    missing = sorted(set(weight_map) - set(state))
    if missing:
        raise ValueError(f"{index_path} lists tensors its shards do not hold: {missing[:5]}")
    return state


def load_state_dict(folder: Path, use_safetensors: bool | None = None) -> dict[str, Tensor]:
    """All tensors of a checkpoint folder: safetensors first (single or sharded), then .bin.

    use_safetensors: True reads only safetensors files; False prefers .bin files (safetensors if none).
    """
    safetensors = [(SAFETENSORS_NAME, None), (SAFETENSORS_INDEX_NAME, _load_safetensors)]
    bins = [(BIN_NAME, None), (BIN_INDEX_NAME, _load_bin)]
    layouts = {None: safetensors + bins, True: safetensors, False: bins + safetensors}[use_safetensors]
    for name, shard_loader in layouts:
        if (folder / name).is_file():
            if shard_loader is not None:
                return _load_index(folder, name, shard_loader)
            return _load_safetensors(folder / name) if name == SAFETENSORS_NAME else _load_bin(folder / name)
    expected = ", ".join(name for name, _ in layouts)
    raise FileNotFoundError(f"{folder} holds no weights: expected {expected}")


# ----- matching keys -----


def _match_keys(
    model: nn.Module, state: dict[str, Tensor], ignore_mismatched_sizes: bool = False
) -> tuple[dict[str, Tensor], list[str], list[str], list[tuple[str, torch.Size, torch.Size]]]:
    """Rename checkpoint keys to the model's, strictly.

    Returns the state to load, the task-head keys the checkpoint lacks, the checkpoint keys not used, and
    (with ignore_mismatched_sizes) the keys left out for a shape that differs: (key, checkpoint, model).

    Accepted differences: the base-model prefix ("model.") present or absent; weights of another task's head
    (decoder.*, classifier.*, head.*) that this model does not have; a tied decoder stored or not. Everything
    else missing or unexpected is an error that lists the keys.
    """
    expected = dict(model.state_dict())
    tied = getattr(model.config, "tie_word_embeddings", False) and "decoder.weight" in expected
    prefix = getattr(model, "base_model_prefix", "")
    has_prefix = any(k.startswith("model.") for k in state)
    renamed: dict[str, Tensor] = {}
    dropped: list[str] = []
    for key, tensor in state.items():
        if prefix and not has_prefix:
            key = f"{prefix}.{key}"
        elif not prefix and has_prefix:
            if not key.startswith("model."):
                dropped.append(key)  # a task head the base model does not have
                continue
            key = key.removeprefix("model.")
        renamed[key] = tensor
    if tied:
        emb_key = "model.embeddings.tok_embeddings.weight"
        if emb_key not in renamed and "decoder.weight" in renamed:
            renamed[emb_key] = renamed["decoder.weight"]
        renamed.pop("decoder.weight", None)
        expected.pop("decoder.weight")
    task_keys = tuple(getattr(model, "task_head_prefixes", ()))
    other_heads = ("decoder.", "classifier.", "head.")
    unexpected = [k for k in renamed if k not in expected]
    for key in unexpected:
        if key.startswith(other_heads):
            dropped.append(key)
            del renamed[key]
    unexpected = [k for k in renamed if k not in expected]
    missing = [k for k in expected if k not in renamed]
    head_missing = [k for k in missing if k.startswith(task_keys)]
    missing = [k for k in missing if not k.startswith(task_keys)]
    if missing or unexpected:
        parts = []
        if missing:
            parts.append(f"missing keys: {missing}")
        if unexpected:
            parts.append(f"unexpected keys: {unexpected}")
        raise ValueError(
            f"checkpoint does not match {type(model).__name__} (config {model.config.num_hidden_layers} layers, "
            f"hidden {model.config.hidden_size}): " + "; ".join(parts)
        )
    mismatched = []
    for key, tensor in list(renamed.items()):
        if tuple(tensor.shape) != tuple(expected[key].shape):
            if ignore_mismatched_sizes:
                mismatched.append((key, tensor.shape, expected[key].shape))
                del renamed[key]
                continue
            hint = " (pass num_labels= matching the checkpoint?)" if key.startswith("classifier.") else ""
            raise ValueError(
                f"checkpoint tensor {key} has shape {tuple(tensor.shape)}, the model expects "
                f"{tuple(expected[key].shape)}{hint}; or pass ignore_mismatched_sizes=True to initialise it"
            )
    return renamed, head_missing, dropped, mismatched


# from_pretrained arguments of transformers that mean nothing here: accepted, used up, never written anywhere.
_IGNORED_LOADER_KWARGS = frozenset({
    "low_cpu_mem_usage", "trust_remote_code", "force_download", "resume_download", "proxies", "_from_pipeline",
    "_from_auto", "_commit_hash", "offload_folder", "offload_state_dict", "mirror", "use_auth_token_deprecated",
})


def load_model(
    cls: type,
    name_or_path: str | os.PathLike | None,
    *,
    config: ModernBertConfig | None = None,
    state_dict: dict[str, Tensor] | None = None,
    dtype: str | torch.dtype | None = "auto",
    attn_implementation: str | None = None,
    device: str | torch.device | None = None,
    device_map: str | dict | torch.device | None = None,
    revision: str | None = None,
    cache_dir: str | os.PathLike | None = None,
    local_files_only: bool = False,
    token: str | bool | None = None,
    subfolder: str = "",
    use_safetensors: bool | None = None,
    ignore_mismatched_sizes: bool = False,
    output_loading_info: bool = False,
    torch_dtype: str | torch.dtype | None = None,
    **kwargs: Any,
) -> Any:
    """Build `cls` from a checkpoint folder, bundled name or hub id and load its weights strictly.

    config: use this config instead of the folder's config.json (with state_dict=, name_or_path may be None).
    state_dict: load these tensors instead of the folder's weight files.
    dtype: "auto" takes the config's dtype (float32 when it names none); or a torch.dtype / its name.
    device / device_map: where the weights go; device_map may be a device, "auto" (CUDA when available) or
        {"": device}; a model is never split across devices.
    subfolder: the checkpoint lies in this folder of the repo / directory.
    use_safetensors: True requires safetensors weights, False prefers .bin ones.
    ignore_mismatched_sizes: initialise tensors whose shape differs from the checkpoint's (e.g. a classifier
        with another num_labels) instead of raising.
    output_loading_info: also return {"missing_keys", "unexpected_keys", "mismatched_keys", "error_msgs"}.
    Other keyword arguments must be config fields (num_labels=3, classifier_pooling="mean", ...): they
    override config.json. transformers-only loader flags (low_cpu_mem_usage, trust_remote_code, ...) are
    accepted and ignored; anything else is a TypeError, as in transformers.
    """
    if torch_dtype is not None:  # the transformers 4.x name
        dtype = torch_dtype
    attn_implementation = attn_implementation or "sdpa"
    for key in [k for k in kwargs if k in _IGNORED_LOADER_KWARGS]:
        kwargs.pop(key)
    _refuse_unsupported(kwargs)
    device = _device_from(device, device_map)
    folder = None
    if name_or_path is not None:
        patterns = [f"{subfolder}/{p}" for p in MODEL_PATTERNS] if subfolder else MODEL_PATTERNS
        root = resolve_folder(
            name_or_path, patterns=patterns, revision=revision, cache_dir=cache_dir,
            local_files_only=local_files_only, token=token,
        )
        folder = root / subfolder if subfolder else root
    elif config is None or state_dict is None:
        raise ValueError("from_pretrained(None, ...) needs both config= and state_dict=")
    if isinstance(config, (str, os.PathLike)):  # a folder or hub id of its own, as transformers allows
        config = ModernBertConfig.from_pretrained(config, revision=revision, cache_dir=cache_dir,
                                                  local_files_only=local_files_only, token=token)
    if config is None:
        config = ModernBertConfig.from_folder(folder)
    unknown = sorted(k for k in kwargs if not config.accepts(k))
    if unknown:
        raise TypeError(
            f"{cls.__name__}.from_pretrained() got unexpected keyword argument(s) {unknown}: neither a loader "
            "argument nor a config field"
        )
    if kwargs:
        config = config.updated(**kwargs)
    torch_dtype_ = resolve_dtype(dtype, config)
    check_implementation(attn_implementation, device, torch_dtype_)
    state = state_dict if state_dict is not None else load_state_dict(folder, use_safetensors)

    with torch.device("meta"), _skip_init():
        model = cls(config, attn_implementation=attn_implementation)
    renamed, head_missing, unused, mismatched = _match_keys(model, state, ignore_mismatched_sizes)
    renamed = {k: v.to(device=device, dtype=torch_dtype_ if v.is_floating_point() else v.dtype)
               for k, v in renamed.items()}
    model.load_state_dict(renamed, strict=False, assign=True)
    model.tie_weights()
    model.init_missing_weights(device, torch_dtype_)
    where = f" at {folder}" if folder is not None else ""
    if head_missing or mismatched:
        shapes = [f"{k}: checkpoint {tuple(a)}, model {tuple(b)}" for k, a, b in mismatched]
        warnings.warn(
            f"{type(model).__name__}: newly initialised (not in the checkpoint{where}): "
            f"{head_missing + [k for k, _, _ in mismatched]}; train them before use."
            + (f" Shapes that differed: {shapes}." if shapes else "")
            + (f" Checkpoint weights not used: {unused}" if unused else ""),
            LoadWarning,
            stacklevel=3,
        )
    model.config.dtype = str(torch_dtype_).removeprefix("torch.")
    model.name_or_path = str(name_or_path) if name_or_path is not None else ""
    model.eval()
    if output_loading_info:
        info = {
            "missing_keys": head_missing,
            "unexpected_keys": unused,
            "mismatched_keys": [(k, tuple(a), tuple(b)) for k, a, b in mismatched],
            "error_msgs": [],
        }
        return model, info
    return model


def _refuse_unsupported(kwargs: dict[str, Any]) -> None:
    """transformers loader arguments this package cannot honour: a clear error instead of a silent ignore."""
    for key, why in (
        ("quantization_config", "quantized loading is not supported; load in float32 or bfloat16 (dtype=)"),
        ("variant", "weight variants (model.<variant>.safetensors) are not supported; pass the folder of one"),
        ("from_tf", "TensorFlow checkpoints are not supported"),
        ("from_flax", "Flax checkpoints are not supported"),
        ("gguf_file", "GGUF files are not supported"),
    ):
        if kwargs.get(key):
            raise ValueError(f"{key}={kwargs[key]!r}: {why}")
        kwargs.pop(key, None)


def _device_from(device: str | torch.device | None, device_map: Any) -> torch.device:
    if device_map is not None:
        if device is not None:
            raise ValueError("pass device= or device_map=, not both")
        if isinstance(device_map, dict):
            if set(device_map) != {""}:
                raise ValueError(
                    f"device_map={device_map!r} would split the model across devices, which is not supported; "
                    'pass device_map={"": "cuda:0"} or device="cuda:0"'
                )
            device_map = device_map[""]
        if device_map == "auto":
            device_map = "cuda" if torch.cuda.is_available() else "cpu"
        device = device_map if not isinstance(device_map, int) else f"cuda:{device_map}"
    try:
        device = torch.device(device) if device is not None else torch.device("cpu")
    except (RuntimeError, TypeError) as e:
        raise ValueError(f"device={device!r} is not a device: {e}") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device={str(device)!r}: CUDA is not available here; use device='cpu'")
    return device


@contextlib.contextmanager
def _skip_init() -> Iterator[None]:
    """Build modules without initialising their parameters, which the checkpoint overwrites next. On the meta
    device torch's init functions go through its reference implementations, which import the compiler stack
    (about a second); what the checkpoint lacks is initialised afterwards, by `init_missing_weights`."""
    names = ("normal_", "uniform_", "trunc_normal_", "kaiming_uniform_", "ones_", "zeros_")
    saved = {name: getattr(nn.init, name) for name in names}
    for name in names:
        setattr(nn.init, name, lambda tensor, *args, **kwargs: tensor)
    try:
        yield
    finally:
        for name, fn in saved.items():
            setattr(nn.init, name, fn)


def resolve_dtype(dtype: str | torch.dtype | None, config: ModernBertConfig) -> torch.dtype:
    """The torch dtype for `dtype`: None is float32, "auto" the config's (float32 when it names none)."""
    if dtype is None:
        return torch.float32
    if dtype == "auto":
        dtype = config.dtype or "float32"
    if isinstance(dtype, torch.dtype) and dtype not in (torch.float32, torch.float16, torch.bfloat16):
        raise ValueError(f"dtype={dtype} is not supported; use float32, float16 or bfloat16")
    key = str(dtype).removeprefix("torch.")
    if key not in DTYPE_ALIASES:
        raise ValueError(f"dtype={dtype!r} is not supported; use 'auto', 'float32', 'float16' or 'bfloat16'")
    return getattr(torch, DTYPE_ALIASES[key])


# ----- saving -----

DEFAULT_MAX_SHARD_SIZE = "5GB"
# Units of max_shard_size as transformers and huggingface_hub read them (KB, MB... are powers of ten).
_SIZE_UNITS = {"KB": 10**3, "MB": 10**6, "GB": 10**9, "TB": 10**12,
               "KIB": 2**10, "MIB": 2**20, "GIB": 2**30, "TIB": 2**40}


def shard_size_bytes(size: int | str) -> int:
    """`max_shard_size` in bytes: an int, or a number and a unit ("500MB", "5GB", "1.5GiB")."""
    if isinstance(size, str):
        match = re.fullmatch(r"\s*(\d+(?:\.\d*)?|\.\d+)\s*([KMGT]i?B)\s*", size, flags=re.IGNORECASE)
        value = int(float(match[1]) * _SIZE_UNITS[match[2].upper()]) if match else 0
    else:
        value = size if isinstance(size, int) and not isinstance(size, bool) else 0
    if value <= 0:
        raise ValueError(
            f"max_shard_size={size!r} is not a size: pass a positive number of bytes, or a number and a unit "
            "such as '500MB', '5GB' or '2GiB'"
        )
    return value


def _state_to_save(model: nn.Module, state_dict: Mapping[str, Tensor] | None) -> dict[str, Tensor]:
    """The tensors to store, on the CPU and contiguous, in the reference's layout: the tied decoder is not
    stored (the loader ties it again)."""
    source = model.state_dict() if state_dict is None else state_dict
    if not isinstance(source, Mapping):
        raise ValueError(f"state_dict= must be a dict of tensor names to tensors, not {type(source).__name__}")
    bad = [k for k, v in source.items() if not isinstance(k, str) or not isinstance(v, Tensor)]
    if bad:
        raise ValueError(f"state_dict= must map tensor names (str) to tensors; these do not: {bad[:5]}")
    state = {k: v.detach().contiguous().cpu() for k, v in source.items()}
    if getattr(model.config, "tie_word_embeddings", False):
        state.pop("decoder.weight", None)
    if not state:
        raise ValueError("nothing to save: the state dict is empty")
    return state


def _split_shards(state: dict[str, Tensor], limit: int) -> list[list[str]]:
    """Tensor names per shard, in the state dict's order, as huggingface_hub splits them: a shard is closed
    when the next tensor would take it over `limit`; a tensor larger than `limit` gets a shard of its own."""
    shards: list[list[str]] = []
    current: list[str] = []
    size = 0
    for key, tensor in state.items():
        nbytes = tensor.numel() * tensor.element_size()
        if nbytes > limit:
            shards.append([key])
            continue
        if current and size + nbytes > limit:
            shards.append(current)
            current, size = [], 0
        current.append(key)
        size += nbytes
    if current:
        shards.append(current)
    return shards


def _serialize(shard: dict[str, Tensor], safe: bool) -> bytes | memoryview:
    if safe:
        from safetensors.torch import save

        return save(shard, metadata={"format": "pt"})
    buffer = io.BytesIO()
    torch.save(shard, buffer)
    return buffer.getbuffer()


def _is_saved_file(name: str) -> bool:
    """A file a save writes, or one of another weight layout that would confuse a loader afterwards."""
    return name == CONFIG_NAME or is_weight_file(name)


def save_model(
    model: nn.Module,
    folder: str | os.PathLike,
    *,
    state_dict: Mapping[str, Tensor] | None = None,
    max_shard_size: int | str = DEFAULT_MAX_SHARD_SIZE,
    safe_serialization: bool = True,
    is_main_process: bool = True,
    push_to_hub: bool = False,
    variant: str | None = None,
    token: str | bool | None = None,
    save_peft_format: bool = True,
    save_original_format: bool = True,
    **unknown: Any,
) -> None:
    """Write `model` to `folder` as transformers does: config.json and the weights in the reference's key
    layout (the tied decoder is not stored), replacing the folder as a whole.

    folder: the checkpoint folder; made when missing. Other files in it (a tokenizer, a README, subfolders)
        are kept; config.json and every weights file of an earlier save, of any layout, are replaced.
    state_dict: the tensors to save instead of the model's own, in the same key layout.
    max_shard_size: the largest weights file, in bytes or as "500MB" / "5GB" / "2GiB". A model over it is
        written as model-00001-of-0000N.safetensors ... with model.safetensors.index.json (or
        pytorch_model-0000i-of-0000N.bin with pytorch_model.bin.index.json); one tensor larger than it gets a
        file of its own. transformers 5 defaults to "50GB"; this keeps 4.x's and huggingface_hub's "5GB".
    safe_serialization: True writes safetensors; False writes pytorch_model.bin (`torch.save` of the state).
    is_main_process: False writes nothing (the other ranks of a distributed run).
    push_to_hub, variant: not supported (an error says what to do instead).
    token, save_peft_format, save_original_format: accepted for code written for transformers; they change
        nothing here (no hub upload, no adapters, weights are always stored in the original format).

    The save is atomic for the folder as a whole (`modernbert.hub.atomic_folder`): after a crash or a kill at
    any moment the folder holds the old checkpoint or the new one, never new weights with an old config, and
    a later save removes what a killed one left behind. Where the folder cannot be swapped in one step (not
    Linux, a mount point, a read-only parent, a filesystem without RENAME_EXCHANGE) each file is replaced
    atomically instead, with a warning. A full disk raises `modernbert.errors.DiskFullError` and leaves the
    old checkpoint intact. Unknown keywords raise a TypeError.
    """
    del token, save_peft_format, save_original_format  # no effect here, see above
    if unknown:
        raise TypeError(f"save_pretrained() got unexpected keyword argument(s): {', '.join(sorted(unknown))}")
    if push_to_hub:
        raise ValueError(
            "push_to_hub=True is not supported: save to a folder, then upload it with "
            "huggingface_hub.upload_folder(repo_id=..., folder_path=folder)"
        )
    if variant is not None:
        raise ValueError(f"variant={variant!r} is not supported: save each variant to a folder of its own")
    limit = shard_size_bytes(max_shard_size)
    if not is_main_process:
        return
    state = _state_to_save(model, state_dict)
    config: ModernBertConfig = model.config
    dtype = next((v.dtype for v in state.values() if v.is_floating_point()), torch.float32)
    config = config.replace(
        architectures=[type(model).__name__], dtype=str(dtype).removeprefix("torch."), extra=dict(config.extra)
    )
    shards = _split_shards(state, limit)
    total_size = sum(v.numel() * v.element_size() for v in state.values())
    if len(shards) == 1:
        names = [SAFETENSORS_NAME if safe_serialization else BIN_NAME]
    else:
        pattern = SAFETENSORS_SHARD_NAME if safe_serialization else BIN_SHARD_NAME
        names = [pattern.format(index=i + 1, total=len(shards)) for i in range(len(shards))]
    with atomic_folder(folder, drop=_is_saved_file, needed=total_size) as out:
        for name, keys in zip(names, shards):
            out.write(name, _serialize({k: state[k] for k in keys}, safe_serialization))
        if len(shards) > 1:
            index = {
                "metadata": {"total_parameters": sum(p.numel() for p in model.parameters()),
                             "total_size": total_size},
                "weight_map": {k: name for name, keys in zip(names, shards) for k in keys},
            }
            text = json.dumps(index, indent=2, sort_keys=True) + "\n"
            out.write(SAFETENSORS_INDEX_NAME if safe_serialization else BIN_INDEX_NAME, text.encode())
        out.write(CONFIG_NAME, config.to_json_string().encode())
