"""``modernbert info``: what a checkpoint is, read from its files."""

from __future__ import annotations

import argparse
import json
import sys
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ...hub import SAFETENSORS_INDEX_NAME, SAFETENSORS_NAME, WEIGHT_NAMES, read_json
from ..errors import CLIError
from ..models import DEFAULT_MODEL, resolve_model
from ..output import format_table, write_json

HELP = "show a checkpoint's config, parameter count, dtype and layer pattern"
_SAFETENSORS_DTYPES = {"F32": "float32", "F16": "float16", "BF16": "bfloat16", "F64": "float64"}


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("model_pos", nargs="?", metavar="MODEL",
                   help=f"checkpoint folder, bundled model or hub id (default: {DEFAULT_MODEL})")
    p.add_argument("-m", "--model", default=DEFAULT_MODEL, help="the same as MODEL")
    p.add_argument("--json", action="store_true", help="print the information as one JSON object")


def _weights_dtype(folder: Path) -> str | None:
    """The dtype of the stored weights, from the safetensors header (no tensor is read)."""
    candidates = [folder / SAFETENSORS_NAME]
    index = folder / SAFETENSORS_INDEX_NAME
    if index.is_file():
        try:
            shards = sorted(set(read_json(index, "shard index")["weight_map"].values()))
            candidates.append(folder / shards[0])
        except (ValueError, KeyError, IndexError, TypeError, AttributeError):
            pass
    for path in candidates:
        if not path.is_file():
            continue
        try:
            with path.open("rb") as f:
                size = int.from_bytes(f.read(8), "little")
                header = json.loads(f.read(size))
        except (OSError, ValueError):
            return None
        for key, meta in header.items():
            if key != "__metadata__" and isinstance(meta, dict) and "dtype" in meta:
                return _SAFETENSORS_DTYPES.get(meta["dtype"], meta["dtype"])
    return None


def layer_pattern(layer_types: Sequence[str]) -> str:
    """``G L L G ...``: G for a global (full) attention layer, L for a local (sliding window) one."""
    return " ".join("G" if t == "full_attention" else "L" for t in layer_types)


def model_info(name: str) -> dict[str, Any]:
    """Summary of a checkpoint: architecture, parameter count, dtype, layer pattern and the full config."""
    folder = resolve_model(name)
    from ...config import ModernBertConfig

    config = ModernBertConfig.from_folder(folder)
    if not any((folder / weights).is_file() for weights in WEIGHT_NAMES):
        raise CLIError(f"{name}: the folder {folder} holds no weights (none of {', '.join(WEIGHT_NAMES)}); "
                       "pass a checkpoint folder that has them")
    import torch

    from ... import model as model_module

    arch = (config.architectures or ["ModernBertModel"])[0]
    cls = getattr(model_module, arch, None)
    if not (isinstance(cls, type) and issubclass(cls, model_module.ModernBertPreTrainedModel)):
        cls = model_module.ModernBertModel
    with torch.device("meta"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        num_parameters = cls(config).num_parameters()
    weights = [p for p in folder.iterdir() if p.suffix in (".safetensors", ".bin") and p.is_file()]
    return {
        "model": name,
        "folder": str(folder),
        "architecture": arch,
        "num_parameters": num_parameters,
        "dtype": _weights_dtype(folder) or config.dtype or "float32",
        "size_bytes": sum(p.stat().st_size for p in weights),
        "num_layers": config.num_hidden_layers,
        "layer_pattern": layer_pattern(config.layer_types),
        "local_attention": config.local_attention,
        "global_rope_theta": config.global_rope_theta,
        "local_rope_theta": config.local_rope_theta,
        "config": config.to_dict(),
    }


def _human(n: float, unit: str = "") -> str:
    for suffix in ("", "K", "M", "G", "T"):
        if abs(n) < 1000 or suffix == "T":
            return f"{n:.1f}{suffix}{unit}" if suffix else f"{n:.0f}{unit}"
        n /= 1000
    return str(n)  # pragma: no cover


def run(args: argparse.Namespace) -> int:
    """Show a checkpoint's architecture, parameter count, dtype, attention layer pattern and config."""
    info = model_info(args.model_pos or args.model)
    if args.json:
        write_json(info)
        return 0
    cfg = info["config"]
    window = info["local_attention"]
    rows = [["model", info["model"]]]
    if Path(info["folder"]) != Path(info["model"]):
        rows.append(["folder", info["folder"]])
    rows += [
        ["architecture", info["architecture"]],
        ["parameters", f"{info['num_parameters']:,} ({_human(info['num_parameters'])})"],
        ["dtype", info["dtype"]],
        ["weights size", _human(info["size_bytes"], "B")],
        ["shape", f"{cfg['num_hidden_layers']} layers, hidden {cfg['hidden_size']}, "
                  f"{cfg['num_attention_heads']} heads, intermediate {cfg['intermediate_size']}"],
        ["layer pattern", info["layer_pattern"]],
        ["", f"G = global attention (RoPE theta {info['global_rope_theta']:g}), "
             f"L = local attention, window {window} (±{window // 2} tokens, RoPE theta {info['local_rope_theta']:g})"],
        ["max positions", str(cfg["max_position_embeddings"])],
        ["vocab size", str(cfg["vocab_size"])],
    ]
    sys.stdout.write(format_table(["", ""], rows).split("\n", 1)[1])
    sys.stdout.write("\nconfig:\n")
    config_rows = [[f"  {key}", json.dumps(cfg[key], ensure_ascii=False, sort_keys=True)] for key in sorted(cfg)]
    sys.stdout.write(format_table(["", ""], config_rows).split("\n", 1)[1])
    return 0
