"""What the tokenizer accepts: text inputs checked and shaped for the backend, and values made plain Python.

Pure functions, no backend: `batch_inputs` validates `text` / `text_pair` the way transformers reads them and
says which argument is wrong and how; `ids_to_decode` does the same for the ids `decode` gets; `to_py` turns
tensors and arrays into ints and lists.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..errors import TokenizerInputError


def is_int(x: Any) -> bool:
    """Whether `x` is an int and not a bool."""
    return isinstance(x, int) and not isinstance(x, bool)


def to_py(obj: Any) -> Any:
    """Tensors, numpy arrays and numpy scalars to Python ints and lists, recursively."""
    if isinstance(obj, (int, float, str)):
        return obj
    if isinstance(obj, Mapping):
        return {k: to_py(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_py(o) for o in obj]
    if hasattr(obj, "tolist"):  # torch.Tensor, np.ndarray, np.generic
        return obj.tolist()
    return obj


def ids_to_decode(token_ids: Any) -> tuple[list[list[int]], bool]:
    """The rows of ids `decode` gets, and whether it got a batch.

    token_ids: an int, a list of ints, a tensor or an array, a `BatchEncoding` or dict (its `input_ids`), or a
        batch of these rows (a list of lists, a 2-D tensor).
    """
    ids = to_py(token_ids)
    if isinstance(ids, Mapping):
        if "input_ids" not in ids:
            raise TokenizerInputError("a dict passed to decode must have an 'input_ids' key")
        ids = ids["input_ids"]
    if is_int(ids):
        ids = [ids]
    if not isinstance(ids, list):
        raise TokenizerInputError(
            f"token_ids must be an int, a list of ints, a batch of lists or a tensor, got {type(token_ids).__name__}"
        )
    batched = bool(ids) and isinstance(ids[0], list)
    rows = ids if batched else [ids]
    for row in rows:
        if not isinstance(row, list):
            raise TokenizerInputError(f"a batch of token ids must be a list of lists of ints, got a row {row!r:.60}")
        for i in row:
            if not is_int(i):
                raise TokenizerInputError(f"token ids must be ints, got {i!r}")
            if i < 0:
                raise ValueError(f"token ids must be non-negative, got {i}")
    return rows, batched


def _is_words(x: Any) -> bool:
    return isinstance(x, (list, tuple)) and all(isinstance(w, str) for w in x)


def _split_words_inputs(text: Any, text_pair: Any) -> tuple[list[Any], bool]:
    if _is_words(text):
        if text_pair is not None and not _is_words(text_pair):
            raise TokenizerInputError("`text_pair` must be a list of str (words) when `text` is")
        return [(list(text), list(text_pair)) if text_pair else list(text)], False
    if isinstance(text, (list, tuple)) and text and all(_is_words(t) for t in text):
        if text_pair is None:
            return [list(t) for t in text], True
        if not isinstance(text_pair, (list, tuple)) or not all(_is_words(t) for t in text_pair):
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


def batch_inputs(text: Any, text_pair: Any, is_split_into_words: bool) -> tuple[list[Any], bool]:
    """The inputs of one `Tokenizer.__call__` as a list for `tokenizers.Tokenizer.encode_batch`, and whether
    the call was batched. A `TokenizerInputError` names the argument (and the item) that is wrong."""
    if text is None:
        raise TokenizerInputError("`text` is required (a str, a list of str or a list of (text, pair) tuples)")
    if is_split_into_words:
        return _split_words_inputs(text, text_pair)

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
                    raise TokenizerInputError(f"`{name}[{i}]` must be a str, got {type(item).__name__}: {item!r:.60}")
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
