"""Tokenizer files: reading a tokenizer folder (local, bundled or on the hub) and writing one atomically.

A folder holds tokenizer.json (the `tokenizers` backend), tokenizer_config.json and, optionally,
special_tokens_map.json: the layout transformers reads and writes. Folders, file names, JSON reading and the
atomic writes all come from `modernbert.hub`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import tokenizers
from tokenizers import AddedToken

from ..hub import (
    SPECIAL_TOKENS_MAP_FILE,
    TOKENIZER_CONFIG_FILE,
    TOKENIZER_FILE,
    TOKENIZER_PATTERNS,
    read_json,
    resolve_folder,
    write_json_atomic,
)
from .special_tokens import EXTRA_SPECIAL_TOKENS, SPECIAL_TOKENS_ATTRIBUTES, added_token_dict

# from_pretrained keywords that override tokenizer_config.json values.
CONFIG_OVERRIDES = frozenset(
    {
        "model_max_length",
        "padding_side",
        "truncation_side",
        "clean_up_tokenization_spaces",
        "clean_up_tokenization_spaces_for_bpe_even_though_it_will_corrupt_output",
        "model_input_names",
        "split_special_tokens",
        EXTRA_SPECIAL_TOKENS,
        "additional_special_tokens",
        *SPECIAL_TOKENS_ATTRIBUTES,
    }
)
# from_pretrained keywords accepted for transformers compatibility and ignored (always fast, no remote code).
IGNORED_KWARGS = frozenset({"use_fast", "trust_remote_code", "_from_pipeline", "_commit_hash", "force_download"})
# Config keys that describe where a tokenizer was loaded from, or that the save writes again from the tokenizer.
_NOT_SAVED = frozenset(
    {"name_or_path", "tokenizer_file", "special_tokens_map_file", "additional_special_tokens", EXTRA_SPECIAL_TOKENS}
)


def read_pretrained(
    name_or_path: str | os.PathLike[str],
    *,
    revision: str | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
    local_files_only: bool = False,
    token: str | bool | None = None,
    subfolder: str | None = None,
    **kwargs: Any,
) -> tuple[tokenizers.Tokenizer, dict[str, Any]]:
    """The backend and the config (tokenizer_config.json, with the keyword overrides) of a tokenizer folder.

    See `Tokenizer.from_pretrained` for the arguments. An unknown keyword is a TypeError, as in transformers.
    """
    unknown = set(kwargs) - CONFIG_OVERRIDES - IGNORED_KWARGS
    if unknown:
        raise TypeError(f"Tokenizer.from_pretrained got unexpected keyword argument(s): {sorted(unknown)}")
    overrides = {k: v for k, v in kwargs.items() if k in CONFIG_OVERRIDES}

    name = os.fspath(name_or_path)
    if Path(name).expanduser().is_file():
        raise ValueError(
            f"'{name}' is a file; pass the folder that contains {TOKENIZER_FILE} and {TOKENIZER_CONFIG_FILE}"
        )
    patterns = [f"{subfolder}/{p}" for p in TOKENIZER_PATTERNS] if subfolder else TOKENIZER_PATTERNS
    root = resolve_folder(
        name, patterns=patterns, revision=revision, cache_dir=cache_dir, local_files_only=local_files_only, token=token
    )
    folder = root / subfolder if subfolder else root
    tokenizer_file = folder / TOKENIZER_FILE
    if not tokenizer_file.is_file():
        raise FileNotFoundError(
            f"No {TOKENIZER_FILE} in the tokenizer folder '{folder}': a ModernBERT tokenizer folder needs "
            f"{TOKENIZER_FILE} (plus optionally {TOKENIZER_CONFIG_FILE} and {SPECIAL_TOKENS_MAP_FILE})."
        )
    try:
        backend = tokenizers.Tokenizer.from_file(str(tokenizer_file))
    except Exception as exc:
        raise ValueError(f"Could not parse {tokenizer_file}: {exc}") from exc

    config_file, map_file = folder / TOKENIZER_CONFIG_FILE, folder / SPECIAL_TOKENS_MAP_FILE
    config: dict[str, Any] = read_json(config_file, "tokenizer config") if config_file.is_file() else {}
    if map_file.is_file() and "added_tokens_decoder" not in config:
        # The legacy layout, as transformers reads it: special_tokens_map.json counts only without added_tokens_decoder.
        for key, value in read_json(map_file, "special tokens map").items():
            if not overrides.get(key):
                config[key] = value
    config.update(overrides)
    return backend, config


def write_pretrained(
    save_directory: str | os.PathLike[str],
    *,
    tokenizer_json: dict[str, Any],
    config: Mapping[str, Any],
    added_tokens: Mapping[int, AddedToken],
    special_tokens: Mapping[str, str],
    extra_special_tokens: Sequence[str],
) -> tuple[str, str, str]:
    """Write tokenizer.json, tokenizer_config.json and special_tokens_map.json, each atomically.

    tokenizer_json: the backend's JSON; its per-call truncation and padding are not saved.
    config: the tokenizer config to write: the loaded one with the tokenizer's current settings.
    added_tokens: id -> `AddedToken`, for `added_tokens_decoder` and the token flags of the special-token map.
    special_tokens: the named special tokens, name -> token string.
    extra_special_tokens: the unnamed special tokens.

    Returns the three file paths.
    """
    folder = Path(save_directory)
    if folder.is_file():
        raise ValueError(f"save_directory '{folder}' is a file, expected a folder")

    tokenizer_json = {**tokenizer_json, "truncation": None, "padding": None}
    saved_config = {k: v for k, v in config.items() if k not in _NOT_SAVED and k not in SPECIAL_TOKENS_ATTRIBUTES}
    saved_config["added_tokens_decoder"] = {str(i): added_token_dict(t) for i, t in sorted(added_tokens.items())}
    saved_config.setdefault("tokenizer_class", "PreTrainedTokenizerFast")
    saved_config.update(special_tokens)
    if extra_special_tokens:
        saved_config[EXTRA_SPECIAL_TOKENS] = list(extra_special_tokens)

    by_content = {t.content: t for t in added_tokens.values()}

    def entry(content: str) -> dict[str, Any] | str:
        token = by_content.get(content)
        return added_token_dict(token, with_special=False) if token is not None else content

    special_map: dict[str, Any] = {name: entry(content) for name, content in special_tokens.items()}
    if extra_special_tokens:
        special_map["additional_special_tokens"] = [entry(content) for content in extra_special_tokens]

    paths = folder / TOKENIZER_FILE, folder / TOKENIZER_CONFIG_FILE, folder / SPECIAL_TOKENS_MAP_FILE
    write_json_atomic(paths[0], tokenizer_json, sort_keys=False)
    write_json_atomic(paths[1], saved_config)
    write_json_atomic(paths[2], special_map)
    return str(paths[0]), str(paths[1]), str(paths[2])
