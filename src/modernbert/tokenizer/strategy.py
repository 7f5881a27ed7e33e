"""Padding and truncation: which strategy a call asks for, to which length, and the padding of encoded rows.

Pure functions, no backend. `resolve` is transformers' `_get_padding_truncation_strategies`: it turns the
`padding` / `truncation` / `max_length` arguments of a call into one `Strategy`. `gather_features` and
`pad_features` are transformers' `pad` of already-encoded inputs (what a data collator calls).
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from typing import Any, NamedTuple

import numpy as np

from .inputs import TokenizerInputError, is_int, to_py

VERY_LARGE_INTEGER = int(1e30)  # transformers' model_max_length when the config gives none
LARGE_INTEGER = int(1e20)  # a model_max_length above this means "no limit"

PADDING_STRATEGIES = ("longest", "max_length", "do_not_pad")
TRUNCATION_STRATEGIES = ("longest_first", "only_first", "only_second", "do_not_truncate")


class Strategy(NamedTuple):
    """What one call does: `padding` in PADDING_STRATEGIES, `truncation` in TRUNCATION_STRATEGIES, and the
    length both work to (None: the longest row for padding, no limit for truncation)."""

    padding: str
    truncation: str
    max_length: int | None


def padding_strategy(padding: Any) -> str:
    """`padding` as one of PADDING_STRATEGIES: True is "longest", False and None are "do_not_pad"."""
    if padding is True:
        return "longest"
    if padding is False or padding is None:
        return "do_not_pad"
    value = getattr(padding, "value", padding)  # transformers' PaddingStrategy enum
    if value not in PADDING_STRATEGIES:
        raise ValueError(f"padding must be a bool or one of {list(PADDING_STRATEGIES)}, got {padding!r}")
    return value


def truncation_strategy(truncation: Any) -> str:
    """`truncation` as one of TRUNCATION_STRATEGIES: True is "longest_first", False and None "do_not_truncate"."""
    if truncation is True:
        return "longest_first"
    if truncation is False or truncation is None:
        return "do_not_truncate"
    value = getattr(truncation, "value", truncation)  # transformers' TruncationStrategy enum
    if value not in TRUNCATION_STRATEGIES:
        raise ValueError(f"truncation must be a bool or one of {list(TRUNCATION_STRATEGIES)}, got {truncation!r}")
    return value


def resolve(
    padding: Any,
    truncation: Any,
    max_length: int | None,
    pad_to_multiple_of: int | None,
    *,
    model_max_length: int,
    pad_token_id: int | None,
) -> Strategy:
    """The strategy of one call, by transformers' rules.

    padding, truncation, max_length, pad_to_multiple_of: the call's arguments.
    model_max_length: the tokenizer's limit, used when max_length is None; above LARGE_INTEGER it means none.
    pad_token_id: the tokenizer's pad id; None (no pad token) refuses any padding.

    `max_length` alone (no padding, truncation None) truncates to it. `padding=True` pads to the longest row
    and ignores `max_length` without truncation, with a warning, as transformers does.
    """
    if max_length is not None and padding is False and truncation is None:
        truncation = "longest_first"
    if padding is True and max_length is not None and truncation in (None, False, "do_not_truncate"):
        warnings.warn(
            "`max_length` is ignored when `padding`=`True` and there is no truncation strategy. "
            "To pad to max length, use `padding='max_length'`.",
            stacklevel=3,
        )
    pad, trunc = padding_strategy(padding), truncation_strategy(truncation)

    if max_length is None:
        unlimited = model_max_length > LARGE_INTEGER
        if pad == "max_length":
            if unlimited:
                pad = "do_not_pad"
            else:
                max_length = model_max_length
        if trunc != "do_not_truncate":
            if unlimited:
                trunc = "do_not_truncate"
            else:
                max_length = model_max_length

    if pad != "do_not_pad" and (pad_token_id is None or pad_token_id < 0):
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
    return Strategy(pad, trunc, max_length)


def backend_settings(
    plan: Strategy,
    *,
    stride: int,
    pad_to_multiple_of: int | None,
    truncation_side: str,
    padding_side: str,
    pad_token_id: int | None,
    pad_token: str | None,
    pad_token_type_id: int,
) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
    """The `tokenizers.Tokenizer` truncation and padding settings (`enable_truncation` / `enable_padding`
    keyword arguments) that carry out `plan`; None where it does not truncate or pad."""
    truncation = None
    if plan.truncation != "do_not_truncate":
        truncation = {
            "max_length": plan.max_length, "stride": stride, "strategy": plan.truncation, "direction": truncation_side
        }
    padding = None
    if plan.padding != "do_not_pad":
        padding = {
            "length": plan.max_length if plan.padding == "max_length" else None,
            "direction": padding_side,
            "pad_id": pad_token_id,
            "pad_token": pad_token,
            "pad_type_id": pad_token_type_id,
            "pad_to_multiple_of": pad_to_multiple_of,
        }
    return truncation, padding


def check_options(max_length: Any, pad_to_multiple_of: Any, stride: Any, padding_side: Any) -> None:
    """A ValueError naming the first of these call arguments that has an invalid value."""
    for name, value in (("max_length", max_length), ("pad_to_multiple_of", pad_to_multiple_of)):
        if value is not None and (not is_int(value) or value < 0 or (name == "pad_to_multiple_of" and value == 0)):
            raise ValueError(f"{name} must be a positive int or None, got {value!r}")
    if not is_int(stride) or stride < 0:
        raise ValueError(f"stride must be a non-negative int, got {stride!r}")
    if padding_side not in (None, "right", "left"):
        raise ValueError(f"padding_side must be 'right', 'left' or None, got {padding_side!r}")


def padded_length(length: int, pad_to_multiple_of: int | None) -> int:
    """`length` rounded up to a multiple of `pad_to_multiple_of` (unchanged when that is None)."""
    if pad_to_multiple_of is not None and length % pad_to_multiple_of:
        return (length // pad_to_multiple_of + 1) * pad_to_multiple_of
    return length


def gather_features(encoded_inputs: Any, main_input: str) -> tuple[dict[str, Any], str | None]:
    """The inputs of `Tokenizer.pad` as one dict of lists, and the tensor kind ("pt", "np") they came in.

    encoded_inputs: a dict of lists (or tensors), or a list of such dicts (what a collate function gets).
    main_input: the key that must be there (`model_input_names[0]`, "input_ids").
    """
    if isinstance(encoded_inputs, (list, tuple)) and encoded_inputs and isinstance(encoded_inputs[0], Mapping):
        encoded_inputs = {key: [example[key] for example in encoded_inputs] for key in encoded_inputs[0]}
    if not isinstance(encoded_inputs, Mapping):
        raise TokenizerInputError("`encoded_inputs` must be a dict of lists or a non-empty list of dicts")
    encoded = dict(encoded_inputs)
    if main_input not in encoded:
        raise ValueError(f"`encoded_inputs` must include {main_input!r}, got keys {list(encoded)}")
    required = encoded[main_input]
    if required is None or len(required) == 0:
        return encoded, None
    first = required[0]
    if isinstance(first, (list, tuple)):
        first = next((item[0] for item in required if len(item)), first)
    if isinstance(first, (int, list, tuple)):
        return encoded, None
    if hasattr(first, "detach"):
        kind = "pt"
    elif isinstance(first, (np.ndarray, np.generic)):
        kind = "np"
    else:
        raise TokenizerInputError(f"unsupported value type in `encoded_inputs`: {type(first).__name__}")
    return {k: to_py(v) for k, v in encoded.items()}, kind


def pad_features(
    encoded: dict[str, Any],
    strategy: Strategy,
    *,
    main_input: str,
    pad_to_multiple_of: int | None,
    side: str,
    pad_token_id: int | None,
    pad_token_type_id: int,
    return_attention_mask: bool,
) -> dict[str, Any]:
    """One row (a dict of lists) or a batch (a dict of lists of lists) padded as `strategy` says.

    `main_input` is padded with `pad_token_id`, `attention_mask` with 0, `token_type_ids` with
    `pad_token_type_id` and `special_tokens_mask` with 1, on `side` ("right" or "left"). A missing
    `attention_mask` is created when `return_attention_mask` is true.
    """
    fills = {
        "attention_mask": 0, "token_type_ids": pad_token_type_id, "special_tokens_mask": 1, main_input: pad_token_id
    }

    def pad_row(row: dict[str, Any], max_length: int | None, pad: str) -> dict[str, Any]:
        length = len(row[main_input])
        if pad == "longest":
            max_length = length
        if max_length is not None:
            max_length = padded_length(max_length, pad_to_multiple_of)
        if return_attention_mask and "attention_mask" not in row:
            row["attention_mask"] = [1] * length
        if pad == "do_not_pad" or max_length is None or length == max_length:
            return row
        diff = max_length - length
        for key, fill in fills.items():
            if key not in row or (key == "attention_mask" and not return_attention_mask):
                continue
            values = list(row[key])
            row[key] = values + [fill] * diff if side == "right" else [fill] * diff + values
        return row

    required = encoded[main_input]
    if required and not isinstance(required[0], (list, tuple)):
        return pad_row(encoded, strategy.max_length, strategy.padding)
    batch_size = len(required)
    if any(len(v) != batch_size for v in encoded.values()):
        raise ValueError("all values of `encoded_inputs` must have the same batch size")
    pad, max_length = strategy.padding, strategy.max_length
    if pad == "longest":
        pad, max_length = "max_length", max(len(ids) for ids in required)
    out: dict[str, list[Any]] = {}
    for i in range(batch_size):
        for k, v in pad_row({k: v[i] for k, v in encoded.items()}, max_length, pad).items():
            out.setdefault(k, []).append(v)
    return out
