"""ModernBERT tokenizer: a thin layer over the `tokenizers` library.

:class:`Tokenizer` loads the same files as ``transformers.AutoTokenizer`` (``tokenizer.json``,
``tokenizer_config.json``, ``special_tokens_map.json``) and reproduces the output of transformers'
fast tokenizer (``TokenizersBackend`` / ``PreTrainedTokenizerFast``) for the arguments it supports:
ids, attention masks, offsets, special-token masks, overflow with stride, padding, truncation and
decoding. ``transformers`` itself is *not* needed at runtime.

Example::

    tok = Tokenizer.from_pretrained("answerdotai/ModernBERT-base")
    enc = tok(["The capital of France is [MASK]."], padding=True, return_tensors="pt")
    enc.input_ids, enc.attention_mask
"""

from __future__ import annotations

import json
import logging
import os
import threading
import warnings
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import tokenizers
from tokenizers import AddedToken, Encoding

__all__ = ["BatchEncoding", "Tokenizer", "TokenizerInputError"]

logger = logging.getLogger(__name__)

TOKENIZER_FILE = "tokenizer.json"
TOKENIZER_CONFIG_FILE = "tokenizer_config.json"
SPECIAL_TOKENS_MAP_FILE = "special_tokens_map.json"

#: What transformers uses for "no limit" (``model_max_length`` absent from the config).
VERY_LARGE_INTEGER = int(1e30)
LARGE_INTEGER = int(1e20)

#: Named special tokens, in transformers' order (this order drives ``all_special_tokens``).
SPECIAL_TOKENS_ATTRIBUTES: tuple[str, ...] = (
    "bos_token",
    "eos_token",
    "unk_token",
    "sep_token",
    "pad_token",
    "cls_token",
    "mask_token",
)

_PADDING_STRATEGIES = ("longest", "max_length", "do_not_pad")
_TRUNCATION_STRATEGIES = ("longest_first", "only_first", "only_second", "do_not_truncate")
_TENSOR_TYPES = ("pt", "np")
_DEFAULT_MODEL_INPUT_NAMES = ("input_ids", "attention_mask")
_CONFIG_OVERRIDES = frozenset(
    {
        "model_max_length",
        "padding_side",
        "truncation_side",
        "clean_up_tokenization_spaces",
        "clean_up_tokenization_spaces_for_bpe_even_though_it_will_corrupt_output",
        "model_input_names",
        "split_special_tokens",
        "extra_special_tokens",
        "additional_special_tokens",
        *SPECIAL_TOKENS_ATTRIBUTES,
    }
)
#: from_pretrained kwargs accepted for transformers compatibility and ignored (always fast, no remote code).
_IGNORED_KWARGS = frozenset({"use_fast", "trust_remote_code", "_from_pipeline", "_commit_hash", "force_download"})


class TokenizerInputError(TypeError, ValueError):
    """Invalid input to the tokenizer.

    Subclasses both :class:`TypeError` and :class:`ValueError` so that callers written against
    transformers (which raises either, depending on the case) keep working.
    """


# --------------------------------------------------------------------------------------------------------------
# BatchEncoding
# --------------------------------------------------------------------------------------------------------------


def _is_empty(value: Any) -> bool:
    """True if ``value`` has no leaf elements (nested empty lists)."""
    if len(value) == 0:
        return True
    if not isinstance(value[0], (list, tuple)):
        return False
    return all(_is_empty(v) for v in value)


class BatchEncoding(dict):
    """Output of :meth:`Tokenizer.__call__`: a ``dict`` with attribute access and alignment helpers.

    Mirrors ``transformers.BatchEncoding``: ``enc["input_ids"] == enc.input_ids``; ``enc[i]`` (an int)
    is the ``tokenizers.Encoding`` of row ``i``; :meth:`word_ids`, :meth:`sequence_ids`,
    :meth:`tokens`, :meth:`char_to_token` etc. map between tokens, words and characters;
    :meth:`to` moves tensors to a device.
    """

    def __init__(
        self,
        data: Mapping[str, Any] | None = None,
        encodings: Encoding | Sequence[Encoding] | None = None,
        tensor_type: str | None = None,
        n_sequences: int | None = None,
    ) -> None:
        super().__init__(data or {})
        if isinstance(encodings, Encoding):
            encodings = [encodings]
        self._encodings: list[Encoding] | None = list(encodings) if encodings is not None else None
        if n_sequences is None and self._encodings:
            n_sequences = self._encodings[0].n_sequences
        self._n_sequences = n_sequences
        self.convert_to_tensors(tensor_type)

    # -- dict behaviour ------------------------------------------------------------------------------------------
    def __getattr__(self, item: str) -> Any:
        if item.startswith("__") and item.endswith("__"):
            raise AttributeError(item)
        try:
            return self[item]
        except KeyError:
            raise AttributeError(f"BatchEncoding has no key or attribute {item!r}") from None

    def __getitem__(self, item: str | int | slice) -> Any:
        """A key (``str``) gives its value, an ``int`` the row's ``tokenizers.Encoding``, a slice a sub-dict."""
        if isinstance(item, str):
            return super().__getitem__(item)
        if isinstance(item, int) and self._encodings is not None:
            return self._encodings[item]
        if isinstance(item, slice):
            return {key: value[item] for key, value in self.items()}
        raise KeyError(f"invalid key {item!r}: use a string key, an int row index or a slice")

    @property
    def data(self) -> dict[str, Any]:
        """The underlying dict (``self``), for code written against ``transformers.BatchEncoding``."""
        return self

    @property
    def encodings(self) -> list[Encoding] | None:
        """The ``tokenizers.Encoding`` of every row (overflowing rows included)."""
        return self._encodings

    @property
    def n_sequences(self) -> int | None:
        """1 for single sequences, 2 for pairs, ``None`` if unknown."""
        return self._n_sequences

    @property
    def is_fast(self) -> bool:
        """Whether alignment information (``encodings``) is available."""
        return self._encodings is not None

    # -- alignment helpers ---------------------------------------------------------------------------------------
    def _encoding(self, batch_index: int) -> Encoding:
        if not self._encodings:
            raise ValueError("this BatchEncoding has no `tokenizers.Encoding` (it was not produced by __call__)")
        return self._encodings[batch_index]

    @staticmethod
    def _split(batch_or_index: int, index: int | None) -> tuple[int, int]:
        return (batch_or_index, index) if index is not None else (0, batch_or_index)

    def tokens(self, batch_index: int = 0) -> list[str]:
        """Token strings of row ``batch_index``."""
        return self._encoding(batch_index).tokens

    def word_ids(self, batch_index: int = 0) -> list[int | None]:
        """Word index of every token of row ``batch_index`` (``None`` for special and padding tokens)."""
        return self._encoding(batch_index).word_ids

    def sequence_ids(self, batch_index: int = 0) -> list[int | None]:
        """Sequence (0 = text, 1 = text_pair) of every token of row ``batch_index``; ``None`` for special tokens."""
        return self._encoding(batch_index).sequence_ids

    def token_to_sequence(self, batch_or_token_index: int, token_index: int | None = None) -> int | None:
        """Sequence index of a token: ``(token_index)`` or ``(batch_index, token_index)``."""
        b, t = self._split(batch_or_token_index, token_index)
        enc = self._encoding(b)
        return enc.token_to_sequence(t if t >= 0 else len(enc) + t)

    def token_to_word(self, batch_or_token_index: int, token_index: int | None = None) -> int | None:
        """Word index of a token: ``(token_index)`` or ``(batch_index, token_index)``."""
        b, t = self._split(batch_or_token_index, token_index)
        enc = self._encoding(b)
        return enc.token_to_word(t if t >= 0 else len(enc) + t)

    def token_to_chars(self, batch_or_token_index: int, token_index: int | None = None) -> tuple[int, int] | None:
        """``(start, end)`` character span of a token, ``None`` for special tokens."""
        b, t = self._split(batch_or_token_index, token_index)
        return self._encoding(b).token_to_chars(t)

    def char_to_token(
        self, batch_or_char_index: int, char_index: int | None = None, sequence_index: int = 0
    ) -> int | None:
        """Index of the token containing a character of sequence ``sequence_index``."""
        b, c = self._split(batch_or_char_index, char_index)
        return self._encoding(b).char_to_token(c, sequence_index)

    def char_to_word(
        self, batch_or_char_index: int, char_index: int | None = None, sequence_index: int = 0
    ) -> int | None:
        """Index of the word containing a character of sequence ``sequence_index``."""
        b, c = self._split(batch_or_char_index, char_index)
        return self._encoding(b).char_to_word(c, sequence_index)

    def word_to_tokens(
        self, batch_or_word_index: int, word_index: int | None = None, sequence_index: int = 0
    ) -> tuple[int, int] | None:
        """``(start, end)`` token span of a word of sequence ``sequence_index``."""
        b, w = self._split(batch_or_word_index, word_index)
        return self._encoding(b).word_to_tokens(w, sequence_index)

    def word_to_chars(
        self, batch_or_word_index: int, word_index: int | None = None, sequence_index: int = 0
    ) -> tuple[int, int] | None:
        """``(start, end)`` character span of a word of sequence ``sequence_index``."""
        b, w = self._split(batch_or_word_index, word_index)
        return self._encoding(b).word_to_chars(w, sequence_index)

    # -- tensors -------------------------------------------------------------------------------------------------
    def convert_to_tensors(self, tensor_type: str | None = None) -> BatchEncoding:
        """Convert every value in place to ``torch`` (``"pt"``) or ``numpy`` (``"np"``) arrays."""
        tensor_type = _check_tensor_type(tensor_type)
        if tensor_type is None:
            return self
        if tensor_type == "pt":
            import torch

            def as_tensor(value: Any) -> Any:
                if torch.is_tensor(value):
                    return value
                if isinstance(value, list) and value and isinstance(value[0], np.ndarray):
                    return torch.from_numpy(np.array(value))
                return torch.tensor(value, dtype=torch.int64 if _is_empty(value) else None)

        else:

            def as_tensor(value: Any) -> Any:
                if isinstance(value, np.ndarray):
                    return value
                if isinstance(value, (list, tuple)) and value and isinstance(value[0], (list, tuple, np.ndarray)):
                    if len({len(v) for v in value}) > 1:  # ragged: an object array, like transformers
                        ragged = np.empty(len(value), dtype=object)
                        ragged[:] = [np.asarray(v) for v in value]
                        return ragged
                return np.asarray(value, dtype=np.int64 if _is_empty(value) else None)

        for key, value in list(self.items()):
            try:
                self[key] = as_tensor(value)
            except Exception as exc:
                raise ValueError(
                    f"Unable to create a tensor for `{key}`: the sequences have different lengths. Use "
                    "padding=True (and truncation=True for inputs longer than the model) to get a "
                    "rectangular batch, or return_tensors=None to get lists."
                ) from exc
        return self

    def to(self, device: Any, *, non_blocking: bool = False) -> BatchEncoding:
        """Move every tensor value to ``device`` (a ``str``, ``int`` or ``torch.device``); returns ``self``."""
        import torch

        if not isinstance(device, (str, int, torch.device)):
            raise TypeError(f"BatchEncoding.to expects a device (str, int or torch.device), got {device!r}")
        for key, value in list(self.items()):
            if hasattr(value, "to") and callable(value.to):
                self[key] = value.to(device=device, non_blocking=non_blocking)
        return self


# --------------------------------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------------------------------


def _check_tensor_type(tensor_type: Any) -> str | None:
    if tensor_type is None:
        return None
    value = getattr(tensor_type, "value", tensor_type)
    if value not in _TENSOR_TYPES:
        raise ValueError(f"return_tensors must be None, 'pt' or 'np', got {tensor_type!r}")
    return value


def _to_py(obj: Any) -> Any:
    """Tensors / numpy arrays / numpy scalars → python ints and lists (recursively)."""
    if isinstance(obj, (int, float, str)):
        return obj
    if isinstance(obj, Mapping):
        return {k: _to_py(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_to_py(o) for o in obj]
    if hasattr(obj, "tolist"):  # torch.Tensor, np.ndarray, np.generic
        return obj.tolist()
    return obj


def _is_int(x: Any) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


def _token_content(value: Any, where: str) -> str:
    """A special token given as str, ``AddedToken`` or serialized dict → its content."""
    if isinstance(value, str):
        return value
    if isinstance(value, AddedToken):
        return value.content
    if isinstance(value, Mapping) and isinstance(value.get("content"), str):
        return value["content"]
    raise TypeError(f"{where}: a special token must be a str or an AddedToken dict, got {value!r}")


def _as_added_token(value: Any, *, special: bool = True) -> AddedToken:
    if isinstance(value, AddedToken):
        return value
    if isinstance(value, str):
        return AddedToken(value, special=special)
    fields = {k: value[k] for k in ("lstrip", "rstrip", "single_word", "normalized") if k in value}
    return AddedToken(value["content"], special=value.get("special", special), **fields)


def _added_token_dict(token: AddedToken, *, with_special: bool = True) -> dict[str, Any]:
    out = {
        "content": token.content,
        "lstrip": token.lstrip,
        "normalized": token.normalized,
        "rstrip": token.rstrip,
        "single_word": token.single_word,
    }
    if with_special:
        out["special"] = token.special
    return out


def _clean_up_tokenization(text: str) -> str:
    """transformers' ``clean_up_tokenization`` (WordPiece-era space removal)."""
    return (
        text.replace(" .", ".")
        .replace(" ?", "?")
        .replace(" !", "!")
        .replace(" ,", ",")
        .replace(" ' ", "'")
        .replace(" n't", "n't")
        .replace(" 'm", "'m")
        .replace(" 's", "'s")
        .replace(" 've", "'ve")
        .replace(" 're", "'re")
    )


# --------------------------------------------------------------------------------------------------------------
# Tokenizer
# --------------------------------------------------------------------------------------------------------------


class Tokenizer:
    """ModernBERT tokenizer with the interface and output of transformers' fast tokenizer.

    Build it with :meth:`from_pretrained` (a local folder or a hub repo id), or directly from a
    ``tokenizers.Tokenizer`` plus the parsed ``tokenizer_config.json`` dict. The ``tokenizers``
    object is owned by this instance: its truncation/padding settings are changed on every call.

    Args:
        backend: The ``tokenizers.Tokenizer`` (from ``tokenizer.json``).
        config: The contents of ``tokenizer_config.json`` (optionally merged with
            ``special_tokens_map.json``); keys transformers reads are honoured: the named special
            tokens, ``model_max_length``, ``padding_side``, ``truncation_side``,
            ``model_input_names``, ``clean_up_tokenization_spaces``, ``split_special_tokens``,
            ``extra_special_tokens``/``additional_special_tokens`` and ``added_tokens_decoder``.
        name_or_path: Where it was loaded from (informational).
    """

    def __init__(
        self,
        backend: tokenizers.Tokenizer,
        config: Mapping[str, Any] | None = None,
        *,
        name_or_path: str = "",
    ) -> None:
        if not isinstance(backend, tokenizers.Tokenizer):
            raise TypeError(f"backend must be a tokenizers.Tokenizer, got {type(backend).__name__}")
        config = dict(config or {})
        self._backend = backend
        self._lock = threading.RLock()
        self._config = config
        self.name_or_path = str(name_or_path)
        self._warned_too_long = False

        model_max_length = config.get("model_max_length", config.get("max_len"))
        self.model_max_length: int = int(model_max_length) if model_max_length is not None else VERY_LARGE_INTEGER
        self.padding_side: str = config.get("padding_side") or "right"
        self.truncation_side: str = config.get("truncation_side") or "right"
        for name in ("padding_side", "truncation_side"):
            if getattr(self, name) not in ("right", "left"):
                raise ValueError(f"{name} must be 'right' or 'left', got {getattr(self, name)!r}")
        self.model_input_names: list[str] = list(config.get("model_input_names") or _DEFAULT_MODEL_INPUT_NAMES)
        self.clean_up_tokenization_spaces: bool = bool(config.get("clean_up_tokenization_spaces", False))
        self.clean_up_tokenization_spaces_for_bpe_even_though_it_will_corrupt_output: bool = bool(
            config.get("clean_up_tokenization_spaces_for_bpe_even_though_it_will_corrupt_output", False)
        )
        self.split_special_tokens: bool = bool(config.get("split_special_tokens", False))
        self.pad_token_type_id: int = 0

        # Named special tokens (the standard seven, then model-specific `*_token` keys like transformers).
        tokens: dict[str, Any] = {name: config.get(name) for name in SPECIAL_TOKENS_ATTRIBUTES}
        extra = config.get("extra_special_tokens")
        if extra is None:
            extra = config.get("additional_special_tokens")
        extra_list: list[Any] = []
        if isinstance(extra, Mapping):
            tokens.update(extra)
        elif isinstance(extra, (list, tuple)):
            extra_list = list(extra)
        elif extra is not None:
            raise TypeError("extra_special_tokens must be a list of tokens or a dict of named tokens")
        for key, value in config.items():
            if key.endswith("_token") and key not in tokens and isinstance(value, (str, Mapping, AddedToken)):
                if not isinstance(value, Mapping) or "content" in value:
                    tokens[key] = value
        self._special_tokens: dict[str, str | None] = {
            k: (_token_content(v, k) if v is not None else None) for k, v in tokens.items()
        }
        self._extra_special_tokens: list[str] = [_token_content(v, "extra_special_tokens") for v in extra_list]

        # Like transformers: special tokens (and config added tokens) missing from the backend's added
        # vocabulary are added to it, as special tokens.
        present = {t.content for t in backend.get_added_tokens_decoder().values()}
        to_add: list[AddedToken] = []
        decoder_cfg = config.get("added_tokens_decoder") or {}
        for _, entry in sorted(((int(i), e) for i, e in decoder_cfg.items()), key=lambda x: x[0]):
            token = _as_added_token(entry, special=False)
            if token.content not in present:
                to_add.append(token)
                present.add(token.content)
        for value in [*tokens.values(), *extra_list]:
            if value is None:
                continue
            content = _token_content(value, "special token")
            if content not in present:
                token = _as_added_token(value, special=True)
                token.special = True
                to_add.append(token)
                present.add(content)
        for token in to_add:
            if token.special:
                backend.add_special_tokens([token])
            else:
                backend.add_tokens([token])

        backend.no_truncation()
        backend.no_padding()
        if hasattr(backend, "encode_special_tokens"):
            backend.encode_special_tokens = self.split_special_tokens

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state.pop("_lock", None)  # locks cannot be pickled (DataLoader workers, deepcopy)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._lock = threading.RLock()

    # ----------------------------------------------------------------------------------------------------------
    # loading / saving
    # ----------------------------------------------------------------------------------------------------------
    @classmethod
    def from_pretrained(
        cls,
        name_or_path: str | os.PathLike[str],
        *,
        revision: str | None = None,
        cache_dir: str | os.PathLike[str] | None = None,
        local_files_only: bool = False,
        token: str | bool | None = None,
        subfolder: str | None = None,
        **kwargs: Any,
    ) -> Tokenizer:
        """Load from a local folder or a Hugging Face hub repo id.

        A folder must contain ``tokenizer.json``; ``tokenizer_config.json`` and
        ``special_tokens_map.json`` are optional. A repo id is fetched with
        ``huggingface_hub.hf_hub_download`` into the standard cache (or ``cache_dir``); with
        ``local_files_only=True`` or ``HF_HUB_OFFLINE=1`` only the cache is used and no network
        access is attempted.

        Args:
            name_or_path: Folder path or hub repo id (``"answerdotai/ModernBERT-base"``).
            revision: Hub branch, tag or commit (hub only).
            cache_dir: Hub cache folder (hub only).
            local_files_only: Never touch the network (hub only).
            token: Hub access token (hub only).
            subfolder: Sub-folder inside the folder / repo holding the files.
            **kwargs: Overrides for ``tokenizer_config.json`` values: ``model_max_length``,
                ``padding_side``, ``truncation_side``, ``clean_up_tokenization_spaces``,
                ``model_input_names``, ``split_special_tokens`` and the special tokens
                (``pad_token="[PAD]"``, ...). ``use_fast``/``trust_remote_code`` are accepted and ignored.

        Raises:
            FileNotFoundError: The folder / repo / ``tokenizer.json`` does not exist (or is not cached offline).
            TypeError: Unknown keyword arguments.
        """
        unknown = set(kwargs) - _CONFIG_OVERRIDES - _IGNORED_KWARGS
        if unknown:
            raise TypeError(f"Tokenizer.from_pretrained got unexpected keyword argument(s): {sorted(unknown)}")
        overrides = {k: v for k, v in kwargs.items() if k in _CONFIG_OVERRIDES}

        from .hub import TOKENIZER_PATTERNS, resolve_folder

        name = os.fspath(name_or_path)
        if Path(name).expanduser().is_file():
            raise ValueError(
                f"'{name}' is a file; pass the folder that contains {TOKENIZER_FILE} and {TOKENIZER_CONFIG_FILE}"
            )
        patterns = [f"{subfolder}/{p}" for p in TOKENIZER_PATTERNS] if subfolder else TOKENIZER_PATTERNS
        root = resolve_folder(
            name, patterns=patterns, revision=revision, cache_dir=cache_dir,
            local_files_only=local_files_only, token=token,
        )
        folder = root / subfolder if subfolder else root
        tokenizer_file = folder / TOKENIZER_FILE
        if not tokenizer_file.is_file():
            raise FileNotFoundError(
                f"No {TOKENIZER_FILE} in the tokenizer folder '{folder}': a ModernBERT tokenizer folder needs "
                f"{TOKENIZER_FILE} (plus optionally {TOKENIZER_CONFIG_FILE} and {SPECIAL_TOKENS_MAP_FILE})."
            )
        config_file: Path | None = folder / TOKENIZER_CONFIG_FILE
        map_file: Path | None = folder / SPECIAL_TOKENS_MAP_FILE
        config_file = config_file if config_file.is_file() else None
        map_file = map_file if map_file.is_file() else None

        try:
            backend = tokenizers.Tokenizer.from_file(str(tokenizer_file))
        except Exception as exc:
            raise ValueError(f"Could not parse {tokenizer_file}: {exc}") from exc
        config: dict[str, Any] = {}
        if config_file is not None:
            config = json.loads(Path(config_file).read_text(encoding="utf-8"))
        if map_file is not None and "added_tokens_decoder" not in config:
            # Legacy layout (like transformers): special_tokens_map.json only counts without added_tokens_decoder.
            for key, value in json.loads(Path(map_file).read_text(encoding="utf-8")).items():
                if key in overrides and overrides[key]:
                    continue
                config[key] = value
        config.update(overrides)
        return cls(backend, config, name_or_path=name)

    def save_pretrained(self, save_directory: str | os.PathLike[str]) -> tuple[str, str, str]:
        """Write ``tokenizer.json``, ``tokenizer_config.json`` and ``special_tokens_map.json``.

        The folder can be reloaded with :meth:`from_pretrained` and with
        ``transformers.AutoTokenizer.from_pretrained``. Per-call padding/truncation state is not saved.

        Returns:
            The three file paths.
        """
        folder = Path(save_directory)
        if folder.is_file():
            raise ValueError(f"save_directory '{folder}' is a file, expected a folder")
        folder.mkdir(parents=True, exist_ok=True)

        with self._lock:
            tokenizer_json = json.loads(self._backend.to_str())
        tokenizer_json["truncation"] = None
        tokenizer_json["padding"] = None
        tokenizer_path = folder / TOKENIZER_FILE
        tokenizer_path.write_text(json.dumps(tokenizer_json, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")

        added = self.added_tokens_decoder
        config = {
            k: v
            for k, v in self._config.items()
            if k not in ("name_or_path", "tokenizer_file", "special_tokens_map_file", "additional_special_tokens")
        }
        config.update(
            {
                "added_tokens_decoder": {str(i): _added_token_dict(t) for i, t in sorted(added.items())},
                "model_max_length": self.model_max_length,
                "padding_side": self.padding_side,
                "truncation_side": self.truncation_side,
                "model_input_names": list(self.model_input_names),
                "clean_up_tokenization_spaces": self.clean_up_tokenization_spaces,
                "split_special_tokens": self.split_special_tokens,
            }
        )
        config.setdefault("tokenizer_class", "PreTrainedTokenizerFast")
        config.update(self.special_tokens_map)
        config.pop("extra_special_tokens", None)
        if self._extra_special_tokens:
            config["extra_special_tokens"] = list(self._extra_special_tokens)
        config_path = folder / TOKENIZER_CONFIG_FILE
        config_path.write_text(
            json.dumps(config, indent=2, sort_keys=True, ensure_ascii=False) + "\n", encoding="utf-8"
        )

        by_content = {t.content: t for t in added.values()}
        special_map: dict[str, Any] = {}
        for name, content in self.special_tokens_map.items():
            tok = by_content.get(content)
            special_map[name] = _added_token_dict(tok, with_special=False) if tok is not None else content
        if self._extra_special_tokens:
            special_map["additional_special_tokens"] = [
                _added_token_dict(by_content[c], with_special=False) if c in by_content else c
                for c in self._extra_special_tokens
            ]
        map_path = folder / SPECIAL_TOKENS_MAP_FILE
        map_path.write_text(
            json.dumps(special_map, indent=2, sort_keys=True, ensure_ascii=False) + "\n", encoding="utf-8"
        )
        return str(tokenizer_path), str(config_path), str(map_path)

    # ----------------------------------------------------------------------------------------------------------
    # vocabulary and special tokens
    # ----------------------------------------------------------------------------------------------------------
    @property
    def backend_tokenizer(self) -> tokenizers.Tokenizer:
        """The underlying ``tokenizers.Tokenizer``."""
        return self._backend

    @property
    def is_fast(self) -> bool:
        """Always ``True`` (Rust backend), for transformers-style checks."""
        return True

    @property
    def vocab_size(self) -> int:
        """Size of the base (BPE) vocabulary, without added tokens — as transformers reports it."""
        return self._backend.get_vocab_size(with_added_tokens=False)

    def __len__(self) -> int:
        """Size of the full vocabulary, added (special) tokens included."""
        return self._backend.get_vocab_size(with_added_tokens=True)

    def get_vocab(self) -> dict[str, int]:
        """Token → id for the full vocabulary (added tokens included)."""
        return self._backend.get_vocab(with_added_tokens=True)

    @property
    def added_tokens_decoder(self) -> dict[int, AddedToken]:
        """id → ``AddedToken`` for every added token."""
        return dict(sorted(self._backend.get_added_tokens_decoder().items()))

    def get_added_vocab(self) -> dict[str, int]:
        """Added token content → id, sorted by id."""
        return {t.content: i for i, t in self.added_tokens_decoder.items()}

    def _special(self, name: str) -> str | None:
        return self.__dict__.get("_special_tokens", {}).get(name)

    def _special_id(self, name: str) -> int | None:
        token = self._special(name)
        return None if token is None else self.convert_tokens_to_ids(token)

    @property
    def bos_token(self) -> str | None:
        """Beginning-of-sequence token; ``None`` for ModernBERT (its tokenizer defines none)."""
        return self._special("bos_token")

    @property
    def eos_token(self) -> str | None:
        """End-of-sequence token; ``None`` for ModernBERT (its tokenizer defines none)."""
        return self._special("eos_token")

    @property
    def unk_token(self) -> str | None:
        """Unknown token (``[UNK]``)."""
        return self._special("unk_token")

    @property
    def sep_token(self) -> str | None:
        """Separator token (``[SEP]``)."""
        return self._special("sep_token")

    @property
    def pad_token(self) -> str | None:
        """Padding token (``[PAD]``)."""
        return self._special("pad_token")

    @property
    def cls_token(self) -> str | None:
        """Classifier token (``[CLS]``)."""
        return self._special("cls_token")

    @property
    def mask_token(self) -> str | None:
        """Mask token (``[MASK]``, strips the space on its left)."""
        return self._special("mask_token")

    @property
    def bos_token_id(self) -> int | None:
        """Id of :attr:`bos_token` (``None`` if unset)."""
        return self._special_id("bos_token")

    @property
    def eos_token_id(self) -> int | None:
        """Id of :attr:`eos_token` (``None`` if unset)."""
        return self._special_id("eos_token")

    @property
    def unk_token_id(self) -> int | None:
        """Id of :attr:`unk_token`."""
        return self._special_id("unk_token")

    @property
    def sep_token_id(self) -> int | None:
        """Id of :attr:`sep_token`."""
        return self._special_id("sep_token")

    @property
    def pad_token_id(self) -> int | None:
        """Id of :attr:`pad_token` (never assume 0: it is 50283 for ModernBERT)."""
        return self._special_id("pad_token")

    @property
    def cls_token_id(self) -> int | None:
        """Id of :attr:`cls_token`."""
        return self._special_id("cls_token")

    @property
    def mask_token_id(self) -> int | None:
        """Id of :attr:`mask_token`."""
        return self._special_id("mask_token")

    def __getattr__(self, name: str) -> Any:
        # Model-specific named special tokens (e.g. ``image_token`` / ``image_token_id``) from the config.
        specials = self.__dict__.get("_special_tokens", {})
        base = name[:-3] if name.endswith("_token_id") else name
        if base in specials and base not in SPECIAL_TOKENS_ATTRIBUTES:
            return specials[base] if base == name else self._special_id(base)
        raise AttributeError(f"{type(self).__name__} has no attribute {name!r}")

    @property
    def special_tokens_map(self) -> dict[str, str]:
        """Named special token attribute → token string (unset ones omitted)."""
        return {k: v for k, v in self._special_tokens.items() if v is not None}

    @property
    def extra_special_tokens(self) -> list[str]:
        """Additional special tokens without a name (``additional_special_tokens`` in older configs)."""
        return list(self._extra_special_tokens)

    @property
    def all_special_tokens(self) -> list[str]:
        """All named then extra special tokens, deduplicated, in transformers' order."""
        seen: dict[str, None] = {}
        for token in [*self._special_tokens.values(), *self._extra_special_tokens]:
            if token is not None:
                seen.setdefault(token, None)
        return list(seen)

    @property
    def all_special_ids(self) -> list[int]:
        """Ids of :attr:`all_special_tokens`."""
        return self.convert_tokens_to_ids(self.all_special_tokens)

    def num_special_tokens_to_add(self, pair: bool = False) -> int:
        """How many special tokens the post-processor adds to a single sequence (or a pair)."""
        return self._backend.num_special_tokens_to_add(pair)

    @property
    def max_len_single_sentence(self) -> int:
        """Longest single text (in tokens) that fits ``model_max_length`` with its special tokens."""
        return self.model_max_length - self.num_special_tokens_to_add(pair=False)

    @property
    def max_len_sentences_pair(self) -> int:
        """Longest text pair (in tokens, together) that fits ``model_max_length`` with its special tokens."""
        return self.model_max_length - self.num_special_tokens_to_add(pair=True)

    def convert_tokens_to_ids(self, tokens: str | Iterable[str]) -> int | list[int]:
        """Token (or tokens) → id(s); unknown tokens map to :attr:`unk_token_id` (``None`` if there is none)."""
        if isinstance(tokens, str):
            return self._token_to_id(tokens)
        if tokens is None or not isinstance(tokens, Iterable):
            raise TypeError(f"tokens must be a str or a list of str, got {type(tokens).__name__}")
        return [self._token_to_id(t) for t in tokens]

    def _token_to_id(self, token: str) -> int | None:
        if not isinstance(token, str):
            raise TypeError(f"tokens must be strings, got {token!r}")
        index = self._backend.token_to_id(token)
        if index is None:
            unk = self._special("unk_token")
            return None if unk is None else self._backend.token_to_id(unk)
        return index

    def convert_ids_to_tokens(self, ids: Any, skip_special_tokens: bool = False) -> str | None | list[str | None]:
        """Id (or ids; lists, tensors and arrays accepted) → token string(s); unknown ids give ``None``.

        With ``skip_special_tokens=True`` the ids of :attr:`all_special_ids` are dropped from a list.
        """
        ids = _to_py(ids)
        if _is_int(ids):
            return self._backend.id_to_token(ids)
        if not isinstance(ids, list) or not all(_is_int(i) for i in ids):
            raise TypeError(f"ids must be an int or a list of ints, got {ids!r}")
        skip = set(self.all_special_ids) if skip_special_tokens else set()
        return [self._backend.id_to_token(i) for i in ids if i not in skip]

    def get_special_tokens_mask(
        self,
        token_ids_0: Sequence[int],
        token_ids_1: Sequence[int] | None = None,
        already_has_special_tokens: bool = False,
    ) -> list[int]:
        """1 for special tokens, 0 otherwise, over ids that already contain special tokens (data collators).

        Only ``already_has_special_tokens=True`` is supported (like transformers' fast tokenizers); to
        get the mask while encoding, use ``return_special_tokens_mask=True``.
        """
        if not already_has_special_tokens:
            raise NotImplementedError(
                "get_special_tokens_mask needs already_has_special_tokens=True; use "
                "tokenizer(..., return_special_tokens_mask=True) to get the mask while encoding"
            )
        if token_ids_1 is not None:
            raise ValueError("token_ids_1 must be None when already_has_special_tokens=True")
        special = set(self.all_special_ids)
        return [1 if int(i) in special else 0 for i in _to_py(token_ids_0)]

    # ----------------------------------------------------------------------------------------------------------
    # encoding
    # ----------------------------------------------------------------------------------------------------------
    def _resolve_strategies(
        self,
        padding: Any,
        truncation: Any,
        max_length: int | None,
        pad_to_multiple_of: int | None,
    ) -> tuple[str, str, int | None]:
        """transformers' ``_get_padding_truncation_strategies``."""
        if max_length is not None and padding is False and truncation is None:
            truncation = "longest_first"  # only max_length given: truncate to it

        if padding is True:
            if max_length is not None and truncation in (None, False, "do_not_truncate"):
                warnings.warn(
                    "`max_length` is ignored when `padding`=`True` and there is no truncation strategy. "
                    "To pad to max length, use `padding='max_length'`.",
                    stacklevel=3,
                )
            pad = "longest"
        elif padding is False or padding is None:
            pad = "do_not_pad"
        else:
            pad = getattr(padding, "value", padding)
            if pad not in _PADDING_STRATEGIES:
                raise ValueError(f"padding must be a bool or one of {list(_PADDING_STRATEGIES)}, got {padding!r}")

        if truncation is True:
            trunc = "longest_first"
        elif truncation is False or truncation is None:
            trunc = "do_not_truncate"
        else:
            trunc = getattr(truncation, "value", truncation)
            if trunc not in _TRUNCATION_STRATEGIES:
                raise ValueError(
                    f"truncation must be a bool or one of {list(_TRUNCATION_STRATEGIES)}, got {truncation!r}"
                )

        if max_length is None:
            if pad == "max_length":
                if self.model_max_length > LARGE_INTEGER:
                    pad = "do_not_pad"
                else:
                    max_length = self.model_max_length
            if trunc != "do_not_truncate":
                if self.model_max_length > LARGE_INTEGER:
                    trunc = "do_not_truncate"
                else:
                    max_length = self.model_max_length

        if pad != "do_not_pad":
            pad_id = self.pad_token_id
            if self.pad_token is None or pad_id is None or pad_id < 0:
                raise ValueError("Asking to pad but the tokenizer has no padding token (pad_token).")
        if (
            trunc != "do_not_truncate"
            and pad != "do_not_pad"
            and pad_to_multiple_of is not None
            and max_length is not None
            and max_length % pad_to_multiple_of != 0
        ):
            raise ValueError(
                f"Truncation and padding are both activated but truncation length ({max_length}) is not a "
                f"multiple of pad_to_multiple_of ({pad_to_multiple_of})."
            )
        return pad, trunc, max_length

    def _configure_backend(
        self,
        pad: str,
        trunc: str,
        max_length: int | None,
        stride: int,
        pad_to_multiple_of: int | None,
        padding_side: str | None,
    ) -> None:
        backend = self._backend
        if trunc == "do_not_truncate":
            if backend.truncation is not None:
                backend.no_truncation()
        else:
            target = {
                "max_length": max_length,
                "stride": stride,
                "strategy": trunc,
                "direction": self.truncation_side,
            }
            current = backend.truncation
            if current is None or {k: current.get(k) for k in target} != target:
                backend.enable_truncation(**target)
        if pad == "do_not_pad":
            if backend.padding is not None:
                backend.no_padding()
        else:
            target = {
                "length": max_length if pad == "max_length" else None,
                "direction": padding_side or self.padding_side,
                "pad_id": self.pad_token_id,
                "pad_token": self.pad_token,
                "pad_type_id": self.pad_token_type_id,
                "pad_to_multiple_of": pad_to_multiple_of,
            }
            if backend.padding != target:
                backend.enable_padding(**target)

    @staticmethod
    def _batch_inputs(text: Any, text_pair: Any, is_split_into_words: bool) -> tuple[list[Any], bool]:
        """Validate ``text``/``text_pair`` → (inputs for ``encode_batch``, is_batched)."""
        if text is None:
            raise TokenizerInputError("`text` is required (a str, a list of str or a list of (text, pair) tuples)")

        def is_words(x: Any) -> bool:
            return isinstance(x, (list, tuple)) and all(isinstance(w, str) for w in x)

        if is_split_into_words:
            if is_words(text):
                if text_pair is not None and not is_words(text_pair):
                    raise TokenizerInputError("`text_pair` must be a list of str (words) when `text` is")
                return [(list(text), list(text_pair)) if text_pair else list(text)], False
            if isinstance(text, (list, tuple)) and text and all(is_words(t) for t in text):
                if text_pair is None:
                    return [list(t) for t in text], True
                if not isinstance(text_pair, (list, tuple)) or not all(is_words(t) for t in text_pair):
                    raise TokenizerInputError("`text_pair` must be a list of lists of str (words), like `text`")
                if len(text_pair) != len(text):
                    raise TokenizerInputError(
                        f"batch length of `text` ({len(text)}) does not match `text_pair` ({len(text_pair)})"
                    )
                return [(list(a), list(b)) for a, b in zip(text, text_pair)], True
            raise TokenizerInputError(
                "with is_split_into_words=True, `text` must be a list of str (one pre-split text) or a list of "
                f"lists of str (a batch), got {type(text).__name__}"
            )

        if isinstance(text, str):
            if text_pair is not None and not isinstance(text_pair, str):
                raise TokenizerInputError(
                    f"`text_pair` must be a str when `text` is a str, got {type(text_pair).__name__}"
                )
            # transformers treats an empty text_pair ("") of a single input as no pair at all.
            return [(text, text_pair) if text_pair else text], False

        if not isinstance(text, (list, tuple)):
            raise TokenizerInputError(
                f"`text` must be a str, a list of str or a list of (text, text_pair) pairs, got {type(text).__name__}"
            )
        if len(text) == 0:
            raise TokenizerInputError("`text` is an empty list: pass at least one string")
        if text_pair is not None:
            if isinstance(text_pair, str) or not isinstance(text_pair, (list, tuple)):
                raise TokenizerInputError(
                    "when `text` is a batch (list), `text_pair` must be a list of str of the same length, "
                    f"got {type(text_pair).__name__}"
                )
            if len(text_pair) != len(text):
                raise TokenizerInputError(
                    f"batch length of `text` ({len(text)}) does not match `text_pair` ({len(text_pair)})"
                )
            for name, seq in (("text", text), ("text_pair", text_pair)):
                for i, item in enumerate(seq):
                    if not isinstance(item, str):
                        raise TokenizerInputError(
                            f"`{name}[{i}]` must be a str, got {type(item).__name__}: {item!r:.60}"
                        )
            return list(zip(text, text_pair)), True
        batch: list[Any] = []
        for i, item in enumerate(text):
            if isinstance(item, str):
                batch.append(item)
            elif isinstance(item, (list, tuple)) and len(item) == 2 and all(isinstance(s, str) for s in item):
                batch.append((item[0], item[1]))
            else:
                raise TokenizerInputError(
                    f"`text[{i}]` must be a str or a (text, text_pair) pair of two str, "
                    f"got {type(item).__name__}: {item!r:.60}"
                )
        return batch, True

    def __call__(
        self,
        text: str | Sequence[str] | Sequence[tuple[str, str]] | Sequence[Sequence[str]],
        text_pair: str | Sequence[str] | None = None,
        *,
        add_special_tokens: bool = True,
        padding: bool | str = False,
        truncation: bool | str | None = None,
        max_length: int | None = None,
        stride: int = 0,
        is_split_into_words: bool = False,
        pad_to_multiple_of: int | None = None,
        padding_side: str | None = None,
        return_tensors: str | None = None,
        return_token_type_ids: bool | None = None,
        return_attention_mask: bool | None = None,
        return_overflowing_tokens: bool = False,
        return_special_tokens_mask: bool = False,
        return_offsets_mapping: bool = False,
        return_length: bool = False,
    ) -> BatchEncoding:
        """Tokenize one text, a batch, or text pairs — same output as transformers' fast tokenizer.

        Args:
            text: A str, a list of str (batch), or a list of ``(text, text_pair)`` 2-tuples/lists.
                With ``is_split_into_words=True``: a list of words or a list of such lists.
            text_pair: Second sequence(s): a str for a single ``text``, a list for a batch.
            add_special_tokens: Wrap with ``[CLS] ... [SEP]`` (``[CLS] A [SEP] B [SEP]`` for pairs).
            padding: ``False``/``"do_not_pad"``, ``True``/``"longest"`` (pad to the longest in the batch)
                or ``"max_length"`` (pad to ``max_length``, else ``model_max_length``).
            truncation: ``True``/``"longest_first"``, ``"only_first"``, ``"only_second"`` or
                ``False``/``"do_not_truncate"``. ``None`` (default) means no truncation, unless only
                ``max_length`` is given, which then truncates (transformers' rule). Without
                ``max_length`` truncation is to ``model_max_length``.
            max_length: Length limit for truncation / ``"max_length"`` padding.
            stride: Tokens of overlap between overflowing windows (with ``return_overflowing_tokens``).
            is_split_into_words: Inputs are pre-split into words.
            pad_to_multiple_of: Round padded lengths up to a multiple of this.
            padding_side: ``"right"``/``"left"``; default from ``tokenizer_config.json`` (right).
            return_tensors: ``None`` (python lists), ``"pt"`` (torch) or ``"np"`` (numpy).
            return_token_type_ids: Include ``token_type_ids`` (default: only if in ``model_input_names``).
            return_attention_mask: Include ``attention_mask`` (default: if in ``model_input_names``).
            return_overflowing_tokens: Return every truncation window as its own row, plus
                ``overflow_to_sample_mapping`` (row → input index).
            return_special_tokens_mask: Include ``special_tokens_mask`` (1 for special tokens).
            return_offsets_mapping: Include ``offset_mapping`` (character ``(start, end)`` per token).
            return_length: Include ``length`` (number of tokens per row).

        Returns:
            A :class:`BatchEncoding`. For a single (non-batched) input without ``return_tensors`` or
            overflow, values are flat lists; otherwise one row per input (per window with overflow).

        Raises:
            TokenizerInputError: (a ``TypeError`` and ``ValueError``) for malformed ``text``/``text_pair``.
            ValueError: Bad option values, padding without a pad token, or ragged tensors.
        """
        batch, is_batched = self._batch_inputs(text, text_pair, is_split_into_words)
        for name, value in (("max_length", max_length), ("pad_to_multiple_of", pad_to_multiple_of)):
            if value is not None and (not _is_int(value) or value < 0 or (name == "pad_to_multiple_of" and value == 0)):
                raise ValueError(f"{name} must be a positive int or None, got {value!r}")
        if not _is_int(stride) or stride < 0:
            raise ValueError(f"stride must be a non-negative int, got {stride!r}")
        if padding_side not in (None, "right", "left"):
            raise ValueError(f"padding_side must be 'right', 'left' or None, got {padding_side!r}")
        return_tensors = _check_tensor_type(return_tensors)
        pad, trunc, max_length = self._resolve_strategies(padding, truncation, max_length, pad_to_multiple_of)
        if return_token_type_ids is None:
            return_token_type_ids = "token_type_ids" in self.model_input_names
        if return_attention_mask is None:
            return_attention_mask = "attention_mask" in self.model_input_names

        with self._lock:
            self._configure_backend(pad, trunc, max_length, stride, pad_to_multiple_of, padding_side)
            try:
                encodings = self._backend.encode_batch(
                    batch, add_special_tokens=add_special_tokens, is_pretokenized=is_split_into_words
                )
            except (TypeError, ValueError):
                raise
            except (KeyboardInterrupt, SystemExit, GeneratorExit):
                raise
            except BaseException as exc:  # bare `Exception`s, and pyo3's PanicException (a BaseException)
                hint = (
                    " (with overflow, stride must be smaller than max_length minus the special tokens "
                    "and the other sequence)" if stride else ""
                )
                raise ValueError(f"tokenization failed: {exc}{hint}") from exc

        data: dict[str, list[Any]] = {"input_ids": []}
        if return_token_type_ids:
            data["token_type_ids"] = []
        if return_attention_mask:
            data["attention_mask"] = []
        if return_special_tokens_mask:
            data["special_tokens_mask"] = []
        if return_offsets_mapping:
            data["offset_mapping"] = []
        if return_length:
            data["length"] = []
        rows: list[Encoding] = []
        sample_mapping: list[int] = []
        for i, encoding in enumerate(encodings):
            windows = [encoding, *encoding.overflowing] if return_overflowing_tokens else [encoding]
            for e in windows:
                rows.append(e)
                sample_mapping.append(i)
                data["input_ids"].append(e.ids)
                if return_token_type_ids:
                    data["token_type_ids"].append(e.type_ids)
                if return_attention_mask:
                    data["attention_mask"].append(e.attention_mask)
                if return_special_tokens_mask:
                    data["special_tokens_mask"].append(e.special_tokens_mask)
                if return_offsets_mapping:
                    data["offset_mapping"].append(e.offsets)
                if return_length:
                    data["length"].append(len(e.ids))
        if return_overflowing_tokens:
            data["overflow_to_sample_mapping"] = sample_mapping

        if max_length is None and not self._warned_too_long:
            longest = max((len(ids) for ids in data["input_ids"]), default=0)
            if longest > self.model_max_length:
                self._warned_too_long = True
                logger.warning(
                    "Token indices sequence length is longer than the specified maximum sequence length for "
                    "this model (%d > %d). Running this sequence through the model will result in indexing "
                    "errors; pass truncation=True.",
                    longest,
                    self.model_max_length,
                )

        if not is_batched and return_tensors is None and not return_overflowing_tokens:
            # Single input: drop the batch dimension (values that are not lists of lists, e.g. `length`, stay).
            data = {k: (v[0] if v and isinstance(v[0], list) else v) for k, v in data.items()}
        return BatchEncoding(data, rows, tensor_type=return_tensors, n_sequences=rows[0].n_sequences if rows else None)

    def encode(
        self,
        text: str | Sequence[str],
        text_pair: str | Sequence[str] | None = None,
        *,
        add_special_tokens: bool = True,
        **kwargs: Any,
    ) -> list[int] | Any:
        """Token ids of one text (or pair); other keyword arguments as :meth:`__call__`."""
        return self(text, text_pair, add_special_tokens=add_special_tokens, **kwargs)["input_ids"]

    def tokenize(self, text: str, pair: str | None = None, *, add_special_tokens: bool = False) -> list[str]:
        """Token strings of ``text`` (and ``pair``), without special tokens by default."""
        return self(text, pair, add_special_tokens=add_special_tokens).tokens()

    def pad(
        self,
        encoded_inputs: Mapping[str, Any] | Sequence[Mapping[str, Any]],
        padding: bool | str = True,
        max_length: int | None = None,
        pad_to_multiple_of: int | None = None,
        padding_side: str | None = None,
        return_attention_mask: bool | None = None,
        return_tensors: str | None = None,
    ) -> BatchEncoding:
        """Pad already-encoded inputs (a dict of lists, or a list of dicts as a collate function gets).

        Same semantics as transformers' ``pad``: pads ``input_ids`` with :attr:`pad_token_id`,
        ``attention_mask`` with 0, ``token_type_ids`` with 0 and ``special_tokens_mask`` with 1.
        Tensor inputs come back as tensors of the same kind unless ``return_tensors`` says otherwise.
        """
        if isinstance(encoded_inputs, (list, tuple)) and encoded_inputs and isinstance(encoded_inputs[0], Mapping):
            encoded_inputs = {key: [example[key] for example in encoded_inputs] for key in encoded_inputs[0]}
        if not isinstance(encoded_inputs, Mapping):
            raise TokenizerInputError("`encoded_inputs` must be a dict of lists or a non-empty list of dicts")
        encoded = dict(encoded_inputs)
        main = self.model_input_names[0]
        if main not in encoded:
            raise ValueError(f"`encoded_inputs` must include {main!r}, got keys {list(encoded)}")
        required = encoded[main]
        if required is None or len(required) == 0:
            if return_attention_mask:
                encoded["attention_mask"] = []
            return BatchEncoding(encoded)
        first = required[0]
        if isinstance(first, (list, tuple)):
            first = next((item[0] for item in required if len(item)), first)
        if not isinstance(first, (int, list, tuple)):
            if hasattr(first, "detach"):
                return_tensors = return_tensors or "pt"
            elif isinstance(first, (np.ndarray, np.generic)):
                return_tensors = return_tensors or "np"
            else:
                raise TokenizerInputError(f"unsupported value type in `encoded_inputs`: {type(first).__name__}")
            encoded = {k: _to_py(v) for k, v in encoded.items()}
        pad, _, max_length = self._resolve_strategies(padding, None, max_length, None)
        if return_attention_mask is None:
            return_attention_mask = "attention_mask" in self.model_input_names
        required = encoded[main]
        if required and not isinstance(required[0], (list, tuple)):
            return BatchEncoding(
                self._pad_one(encoded, max_length, pad, pad_to_multiple_of, padding_side, return_attention_mask),
                tensor_type=return_tensors,
            )
        batch_size = len(required)
        if any(len(v) != batch_size for v in encoded.values()):
            raise ValueError("all values of `encoded_inputs` must have the same batch size")
        if pad == "longest":
            max_length = max(len(ids) for ids in required)
            pad = "max_length"
        out: dict[str, list[Any]] = {}
        for i in range(batch_size):
            row = self._pad_one(
                {k: v[i] for k, v in encoded.items()},
                max_length,
                pad,
                pad_to_multiple_of,
                padding_side,
                return_attention_mask,
            )
            for k, v in row.items():
                out.setdefault(k, []).append(v)
        return BatchEncoding(out, tensor_type=return_tensors)

    def _pad_one(
        self,
        inputs: dict[str, Any],
        max_length: int | None,
        pad: str,
        pad_to_multiple_of: int | None,
        padding_side: str | None,
        return_attention_mask: bool,
    ) -> dict[str, Any]:
        main = self.model_input_names[0]
        required = list(inputs[main])
        if pad == "longest":
            max_length = len(required)
        if max_length is not None and pad_to_multiple_of is not None and max_length % pad_to_multiple_of:
            max_length = (max_length // pad_to_multiple_of + 1) * pad_to_multiple_of
        if return_attention_mask and "attention_mask" not in inputs:
            inputs["attention_mask"] = [1] * len(required)
        if pad == "do_not_pad" or max_length is None or len(required) == max_length:
            return inputs
        diff = max_length - len(required)
        side = padding_side or self.padding_side
        fills = {
            "attention_mask": 0,
            "token_type_ids": self.pad_token_type_id,
            "special_tokens_mask": 1,
            main: self.pad_token_id,
        }
        for key, fill in fills.items():
            if key not in inputs or (key == "attention_mask" and not return_attention_mask):
                continue
            values = list(inputs[key])
            inputs[key] = values + [fill] * diff if side == "right" else [fill] * diff + values
        return inputs

    # ----------------------------------------------------------------------------------------------------------
    # decoding
    # ----------------------------------------------------------------------------------------------------------
    def _decode_one(self, ids: list[int], skip_special_tokens: bool, clean_up: bool | None) -> str:
        for i in ids:
            if not _is_int(i):
                raise TokenizerInputError(f"token ids must be ints, got {i!r}")
            if i < 0:
                raise ValueError(f"token ids must be non-negative, got {i}")
        with self._lock:
            text = self._backend.decode(ids, skip_special_tokens=skip_special_tokens)
        clean_up = self.clean_up_tokenization_spaces if clean_up is None else clean_up
        # Like transformers 5: the WordPiece-era clean-up is skipped for BPE models (it corrupts text,
        # e.g. "a ." → "a."), unless explicitly forced in the config.
        is_bpe = type(self._backend.model).__name__ == "BPE"
        if clean_up and (not is_bpe or self.clean_up_tokenization_spaces_for_bpe_even_though_it_will_corrupt_output):
            text = _clean_up_tokenization(text)
        return text

    def decode(
        self,
        token_ids: Any,
        skip_special_tokens: bool = False,
        clean_up_tokenization_spaces: bool | None = None,
    ) -> str | list[str]:
        """Ids → text, like transformers.

        Args:
            token_ids: An int, a list of ints, a tensor/array, a ``BatchEncoding``/dict (its
                ``input_ids``), or a batch (list of lists / 2-D tensor), which gives a list of strings.
            skip_special_tokens: Drop special tokens (every added token flagged special).
            clean_up_tokenization_spaces: Default from ``tokenizer_config.json``. Has no effect on BPE
                tokenizers such as ModernBERT's, exactly as in transformers >= 5.
        """
        ids = _to_py(token_ids)
        if isinstance(ids, Mapping):
            if "input_ids" not in ids:
                raise TokenizerInputError("a dict passed to decode must have an 'input_ids' key")
            ids = ids["input_ids"]
        if _is_int(ids):
            ids = [ids]
        if not isinstance(ids, list):
            raise TokenizerInputError(
                "token_ids must be an int, a list of ints, a batch of lists or a tensor, "
                f"got {type(token_ids).__name__}"
            )
        if ids and isinstance(ids[0], list):
            return [self._decode_one(seq, skip_special_tokens, clean_up_tokenization_spaces) for seq in ids]
        return self._decode_one(ids, skip_special_tokens, clean_up_tokenization_spaces)

    def batch_decode(
        self,
        sequences: Any,
        skip_special_tokens: bool = False,
        clean_up_tokenization_spaces: bool | None = None,
    ) -> list[str]:
        """Decode a batch (list of id lists, 2-D tensor) into a list of strings (see :meth:`decode`)."""
        seqs = _to_py(sequences)
        if isinstance(seqs, Mapping) and "input_ids" in seqs:
            seqs = seqs["input_ids"]
        if not isinstance(seqs, list):
            raise TokenizerInputError(
                f"sequences must be a list of id lists or a tensor, got {type(sequences).__name__}"
            )
        if not seqs:
            return []
        result = self.decode(seqs, skip_special_tokens, clean_up_tokenization_spaces)
        return [result] if isinstance(result, str) else result

    def convert_tokens_to_string(self, tokens: Sequence[str]) -> str:
        """Join token strings into text with the backend decoder (byte-level for ModernBERT)."""
        decoder = self._backend.decoder
        return decoder.decode(list(tokens)) if decoder is not None else " ".join(tokens)

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(name_or_path={self.name_or_path!r}, vocab_size={self.vocab_size}, "
            f"len={len(self)}, model_max_length={self.model_max_length}, padding_side={self.padding_side!r}, "
            f"truncation_side={self.truncation_side!r}, special_tokens={self.special_tokens_map})"
        )
