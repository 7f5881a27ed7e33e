"""The encoding result: `BatchEncoding`, a dict of model inputs that also maps tokens to words and characters.

torch is imported only when a result is converted to torch tensors or moved to a device.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from tokenizers import Encoding

TENSOR_TYPES = ("pt", "np")


def check_tensor_type(tensor_type: Any) -> str | None:
    """`return_tensors` as "pt", "np" or None (an enum with a `.value` is read as its value)."""
    if tensor_type is None:
        return None
    value = getattr(tensor_type, "value", tensor_type)
    if value not in TENSOR_TYPES:
        raise ValueError(f"return_tensors must be None, 'pt' or 'np', got {tensor_type!r}")
    return value


def _is_empty(value: Any) -> bool:
    """Whether `value` holds no leaf element (nested empty lists)."""
    if len(value) == 0:
        return True
    if not isinstance(value[0], (list, tuple)):
        return False
    return all(_is_empty(v) for v in value)


class BatchEncoding(dict):
    """What `Tokenizer.__call__` returns: a dict with attribute access and alignment helpers.

    It behaves as `transformers.BatchEncoding`: `enc["input_ids"]` is `enc.input_ids`; `enc[i]` (an int) is
    the `tokenizers.Encoding` of row i; `word_ids`, `sequence_ids`, `tokens`, `char_to_token` and the other
    helpers map between tokens, words and characters; `to` moves tensors to a device.

    data: the model inputs, key to value.
    encodings: the `tokenizers.Encoding` of every row, for the alignment helpers.
    tensor_type: "pt" or "np" converts every value; None keeps lists.
    n_sequences: 1 for single texts, 2 for pairs; None reads it from `encodings`.
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

    @classmethod
    def from_encodings(
        cls,
        encodings: Sequence[Encoding],
        *,
        is_batched: bool,
        tensor_type: str | None,
        return_token_type_ids: bool,
        return_attention_mask: bool,
        return_overflowing_tokens: bool,
        return_special_tokens_mask: bool,
        return_offsets_mapping: bool,
        return_length: bool,
    ) -> BatchEncoding:
        """The result of a call, from the backend's encodings, in transformers' key order.

        With overflow, every window is its own row and `overflow_to_sample_mapping` gives each row's input.
        A single input without tensors or overflow drops the batch dimension, as transformers does.
        """
        fields = {
            "input_ids": lambda e: e.ids,
            "token_type_ids": (lambda e: e.type_ids) if return_token_type_ids else None,
            "attention_mask": (lambda e: e.attention_mask) if return_attention_mask else None,
            "special_tokens_mask": (lambda e: e.special_tokens_mask) if return_special_tokens_mask else None,
            "offset_mapping": (lambda e: e.offsets) if return_offsets_mapping else None,
            "length": (lambda e: len(e.ids)) if return_length else None,
        }
        fields = {key: get for key, get in fields.items() if get is not None}
        rows: list[Encoding] = []
        sample_mapping: list[int] = []
        for i, encoding in enumerate(encodings):
            windows = [encoding, *encoding.overflowing] if return_overflowing_tokens else [encoding]
            rows.extend(windows)
            sample_mapping.extend([i] * len(windows))
        data: dict[str, list[Any]] = {key: [get(e) for e in rows] for key, get in fields.items()}
        if return_overflowing_tokens:
            data["overflow_to_sample_mapping"] = sample_mapping
        if not is_batched and tensor_type is None and not return_overflowing_tokens:
            # Values that are not lists of lists (e.g. `length`) keep their list.
            data = {k: (v[0] if v and isinstance(v[0], list) else v) for k, v in data.items()}
        return cls(data, rows, tensor_type=tensor_type, n_sequences=rows[0].n_sequences if rows else None)

    # ----- dict behaviour -----

    def __getattr__(self, item: str) -> Any:
        if item.startswith("__") and item.endswith("__"):
            raise AttributeError(item)
        try:
            return self[item]
        except KeyError:
            raise AttributeError(f"BatchEncoding has no key or attribute {item!r}") from None

    def __getitem__(self, item: str | int | slice) -> Any:
        """A str key gives its value, an int the row's `tokenizers.Encoding`, a slice a dict of row slices."""
        if isinstance(item, str):
            return super().__getitem__(item)
        if isinstance(item, int) and self._encodings is not None:
            return self._encodings[item]
        if isinstance(item, slice):
            return {key: value[item] for key, value in self.items()}
        raise KeyError(f"invalid key {item!r}: use a string key, an int row index or a slice")

    @property
    def data(self) -> dict[str, Any]:
        """The underlying dict (self), for code written against `transformers.BatchEncoding`."""
        return self

    @property
    def encodings(self) -> list[Encoding] | None:
        """The `tokenizers.Encoding` of every row, overflowing rows included."""
        return self._encodings

    @property
    def n_sequences(self) -> int | None:
        """1 for single sequences, 2 for pairs, None when unknown."""
        return self._n_sequences

    @property
    def is_fast(self) -> bool:
        """Whether alignment information (`encodings`) is available."""
        return self._encodings is not None

    # ----- alignment helpers -----

    def _encoding(self, batch_index: int) -> Encoding:
        if not self._encodings:
            raise ValueError("this BatchEncoding has no `tokenizers.Encoding` (it was not produced by __call__)")
        return self._encodings[batch_index]

    @staticmethod
    def _split(batch_or_index: int, index: int | None) -> tuple[int, int]:
        return (batch_or_index, index) if index is not None else (0, batch_or_index)

    def tokens(self, batch_index: int = 0) -> list[str]:
        """Token strings of row `batch_index`."""
        return self._encoding(batch_index).tokens

    def word_ids(self, batch_index: int = 0) -> list[int | None]:
        """Word index of every token of row `batch_index`; None for special and padding tokens."""
        return self._encoding(batch_index).word_ids

    def sequence_ids(self, batch_index: int = 0) -> list[int | None]:
        """Sequence (0 = text, 1 = text_pair) of every token of row `batch_index`; None for special tokens."""
        return self._encoding(batch_index).sequence_ids

    def token_to_sequence(self, batch_or_token_index: int, token_index: int | None = None) -> int | None:
        """Sequence index of a token: `(token_index)` or `(batch_index, token_index)`."""
        b, t = self._split(batch_or_token_index, token_index)
        enc = self._encoding(b)
        return enc.token_to_sequence(t if t >= 0 else len(enc) + t)

    def token_to_word(self, batch_or_token_index: int, token_index: int | None = None) -> int | None:
        """Word index of a token: `(token_index)` or `(batch_index, token_index)`."""
        b, t = self._split(batch_or_token_index, token_index)
        enc = self._encoding(b)
        return enc.token_to_word(t if t >= 0 else len(enc) + t)

    def token_to_chars(self, batch_or_token_index: int, token_index: int | None = None) -> tuple[int, int] | None:
        """(start, end) character span of a token; None for special tokens."""
        b, t = self._split(batch_or_token_index, token_index)
        return self._encoding(b).token_to_chars(t)

    def char_to_token(
        self, batch_or_char_index: int, char_index: int | None = None, sequence_index: int = 0
    ) -> int | None:
        """Index of the token holding a character of sequence `sequence_index`."""
        b, c = self._split(batch_or_char_index, char_index)
        return self._encoding(b).char_to_token(c, sequence_index)

    def char_to_word(
        self, batch_or_char_index: int, char_index: int | None = None, sequence_index: int = 0
    ) -> int | None:
        """Index of the word holding a character of sequence `sequence_index`."""
        b, c = self._split(batch_or_char_index, char_index)
        return self._encoding(b).char_to_word(c, sequence_index)

    def word_to_tokens(
        self, batch_or_word_index: int, word_index: int | None = None, sequence_index: int = 0
    ) -> tuple[int, int] | None:
        """(start, end) token span of a word of sequence `sequence_index`."""
        b, w = self._split(batch_or_word_index, word_index)
        return self._encoding(b).word_to_tokens(w, sequence_index)

    def word_to_chars(
        self, batch_or_word_index: int, word_index: int | None = None, sequence_index: int = 0
    ) -> tuple[int, int] | None:
        """(start, end) character span of a word of sequence `sequence_index`."""
        b, w = self._split(batch_or_word_index, word_index)
        return self._encoding(b).word_to_chars(w, sequence_index)

    # ----- tensors -----

    def convert_to_tensors(self, tensor_type: str | None = None) -> BatchEncoding:
        """Convert every value in place to torch ("pt") or numpy ("np") arrays; returns self."""
        tensor_type = check_tensor_type(tensor_type)
        if tensor_type is None:
            return self
        as_tensor = _as_torch if tensor_type == "pt" else _as_numpy
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
        """Move every tensor value to `device` (a str, an int or a torch.device); returns self."""
        import torch

        if not isinstance(device, (str, int, torch.device)):
            raise TypeError(f"BatchEncoding.to expects a device (str, int or torch.device), got {device!r}")
        for key, value in list(self.items()):
            if hasattr(value, "to") and callable(value.to):
                self[key] = value.to(device=device, non_blocking=non_blocking)
        return self


def _as_torch(value: Any) -> Any:
    import torch

    if torch.is_tensor(value):
        return value
    if isinstance(value, list) and value and isinstance(value[0], np.ndarray):
        return torch.from_numpy(np.array(value))
    return torch.tensor(value, dtype=torch.int64 if _is_empty(value) else None)


def _as_numpy(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return value
    if isinstance(value, (list, tuple)) and value and isinstance(value[0], (list, tuple, np.ndarray)):
        if len({len(v) for v in value}) > 1:  # ragged: an object array, like transformers
            ragged = np.empty(len(value), dtype=object)
            ragged[:] = [np.asarray(v) for v in value]
            return ragged
    return np.asarray(value, dtype=np.int64 if _is_empty(value) else None)
