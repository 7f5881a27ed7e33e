"""Padding and truncation as pure functions: no tokenizers backend is built in this module.

The strategy resolution is checked against transformers' own `_get_padding_truncation_strategies`, called on
a plain object that holds only the three attributes it reads, over a grid of arguments.
"""

from __future__ import annotations

import enum
import itertools
import warnings
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from modernbert.tokenizer import TokenizerInputError
from modernbert.tokenizer.strategy import (
    LARGE_INTEGER,
    PADDING_STRATEGIES,
    TRUNCATION_STRATEGIES,
    VERY_LARGE_INTEGER,
    Strategy,
    check_options,
    gather_features,
    pad_features,
    padded_length,
    resolve,
)


def _resolve(padding=False, truncation=None, max_length=None, pad_to_multiple_of=None, *, limit=16, pad_id=3):
    return resolve(padding, truncation, max_length, pad_to_multiple_of, model_max_length=limit, pad_token_id=pad_id)


# ----- resolution by transformers' rules -----


def test_defaults_do_nothing():
    assert _resolve() == Strategy("do_not_pad", "do_not_truncate", None)
    assert _resolve(None, False) == Strategy("do_not_pad", "do_not_truncate", None)


def test_max_length_alone_truncates():
    assert _resolve(max_length=8) == Strategy("do_not_pad", "longest_first", 8)
    # not when truncation is given, even as False
    assert _resolve(max_length=8, truncation=False) == Strategy("do_not_pad", "do_not_truncate", 8)


def test_lengths_default_to_model_max_length():
    assert _resolve("max_length") == Strategy("max_length", "do_not_truncate", 16)
    assert _resolve(truncation=True) == Strategy("do_not_pad", "longest_first", 16)
    assert _resolve(True, "only_second") == Strategy("longest", "only_second", 16)
    # a model without a limit: nothing to pad or truncate to
    assert _resolve("max_length", True, limit=VERY_LARGE_INTEGER) == Strategy("do_not_pad", "do_not_truncate", None)
    assert _resolve("max_length", limit=LARGE_INTEGER) == Strategy("max_length", "do_not_truncate", LARGE_INTEGER)


def test_padding_true_ignores_max_length_without_truncation():
    with pytest.warns(UserWarning, match="max_length` is ignored"):
        assert _resolve(True, max_length=8) == Strategy("longest", "do_not_truncate", 8)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert _resolve(True, True, max_length=8) == Strategy("longest", "longest_first", 8)


def test_enum_values_are_read():
    class Padding(enum.Enum):
        MAX_LENGTH = "max_length"

    class Truncation(enum.Enum):
        ONLY_FIRST = "only_first"

    assert _resolve(Padding.MAX_LENGTH, Truncation.ONLY_FIRST, 8) == Strategy("max_length", "only_first", 8)


@pytest.mark.parametrize("padding", PADDING_STRATEGIES)
@pytest.mark.parametrize("truncation", TRUNCATION_STRATEGIES)
def test_every_strategy_name_is_accepted(padding, truncation):
    assert _resolve(padding, truncation, 8)[:2] == (padding, truncation)


def test_padding_needs_a_pad_token():
    for padding in (True, "longest", "max_length"):
        with pytest.raises(ValueError, match=r"no padding token \(pad_token\)"):
            _resolve(padding, pad_id=None)
    assert _resolve(False, True, pad_id=None).truncation == "longest_first"


def test_truncation_length_must_be_a_multiple():
    with pytest.raises(ValueError, match=r"truncation length \(10\) is not a multiple of pad_to_multiple_of \(4\)"):
        _resolve(True, True, 10, 4)
    assert _resolve(True, True, 12, 4) == Strategy("longest", "longest_first", 12)
    with pytest.warns(UserWarning, match="ignored"):
        assert _resolve(True, False, 10, 4).truncation == "do_not_truncate"  # no truncation: no constraint


@pytest.mark.parametrize(
    ("padding", "truncation", "match"),
    [("bogus", None, "padding"), (1, None, "padding"), (False, "bogus", "truncation"), (False, 2, "truncation")],
)
def test_bad_strategy_values(padding, truncation, match):
    with pytest.raises(ValueError, match=rf"{match} must be a bool or one of \["):
        _resolve(padding, truncation)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"max_length": -1}, "max_length"),
        ({"max_length": 2.0}, "max_length"),
        ({"max_length": True}, "max_length"),
        ({"pad_to_multiple_of": 0}, "pad_to_multiple_of"),
        ({"stride": -1}, "stride"),
        ({"stride": None}, "stride"),
        ({"padding_side": "middle"}, "padding_side"),
    ],
)
def test_check_options(kwargs, match):
    options = {"max_length": None, "pad_to_multiple_of": None, "stride": 0, "padding_side": None, **kwargs}
    with pytest.raises(ValueError, match=match):
        check_options(**options)


def test_check_options_accepts_valid_values():
    check_options(0, 8, 3, "left")
    check_options(None, None, 0, None)


def test_padded_length():
    assert [padded_length(n, 8) for n in (0, 1, 8, 9, 16)] == [0, 8, 8, 16, 16]
    assert padded_length(13, None) == 13


# ----- the same decisions as transformers -----

PADDINGS = [False, True, "longest", "max_length", "do_not_pad", "bogus"]
TRUNCATIONS = [None, False, True, "longest_first", "only_first", "only_second", "do_not_truncate", "bogus"]


@pytest.mark.parametrize("limit", [16, VERY_LARGE_INTEGER])
@pytest.mark.parametrize("pad_id", [3, None])
def test_resolve_matches_transformers(limit, pad_id):
    base = pytest.importorskip("transformers.tokenization_utils_base")
    pad_token = None if pad_id is None else "[PAD]"
    reference = SimpleNamespace(model_max_length=limit, pad_token=pad_token, pad_token_id=pad_id)

    def outcome(fn, *args, **kwargs):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                result = fn(*args, **kwargs)
            except ValueError:
                result = "error"
        return result, [str(w.message) for w in caught]

    compared = 0
    for padding, truncation, max_length, multiple in itertools.product(PADDINGS, TRUNCATIONS, [None, 8, 10], [None, 4]):
        ours, our_warnings = outcome(_resolve, padding, truncation, max_length, multiple, limit=limit, pad_id=pad_id)
        theirs, their_warnings = outcome(
            base.PreTrainedTokenizerBase._get_padding_truncation_strategies,
            reference, padding, truncation, max_length, multiple,
        )
        if theirs != "error":
            theirs = (theirs[0].value, theirs[1].value, theirs[2])
        assert ours == theirs, (padding, truncation, max_length, multiple)
        assert our_warnings == their_warnings, (padding, truncation, max_length, multiple)
        compared += ours != "error"
    assert compared > 50  # most of the grid resolves; the rest is refused by both


def test_padding_none_means_no_padding():
    # transformers raises on padding=None (`PaddingStrategy(None)`); we read it as False, as the type hint allows
    assert _resolve(None, True).padding == "do_not_pad"


# ----- padding encoded inputs -----


def _rows():
    return [
        {"input_ids": [1, 5, 2], "token_type_ids": [0, 0, 0], "special_tokens_mask": [1, 0, 1]},
        {"input_ids": [1, 5, 6, 7, 2], "token_type_ids": [0, 0, 0, 1, 1], "special_tokens_mask": [1, 0, 0, 0, 1]},
    ]


def _pad(encoded, plan, side="right", multiple=None, mask=True):
    return pad_features(
        encoded, plan, main_input="input_ids", pad_to_multiple_of=multiple, side=side,
        pad_token_id=9, pad_token_type_id=4, return_attention_mask=mask,
    )


def test_gather_features_of_lists_tensors_and_arrays():
    encoded, kind = gather_features(_rows(), "input_ids")
    assert kind is None and encoded["input_ids"] == [[1, 5, 2], [1, 5, 6, 7, 2]]
    tensors = [{k: torch.tensor(v) for k, v in row.items()} for row in _rows()]
    assert gather_features(tensors, "input_ids") == (encoded, "pt")
    arrays = [{k: np.array(v) for k, v in row.items()} for row in _rows()]
    assert gather_features(arrays, "input_ids") == (encoded, "np")
    assert gather_features({"input_ids": []}, "input_ids") == ({"input_ids": []}, None)


@pytest.mark.parametrize(
    ("inputs", "error", "match"),
    [
        ("text", TokenizerInputError, "dict of lists"),
        ([], TokenizerInputError, "dict of lists"),
        ({"attention_mask": [[1]]}, ValueError, "must include 'input_ids'"),
        ({"input_ids": [["a"]]}, TokenizerInputError, "unsupported value type"),
    ],
)
def test_gather_features_errors(inputs, error, match):
    with pytest.raises(error, match=match):
        gather_features(inputs, "input_ids")


@pytest.mark.parametrize("side", ["right", "left"])
def test_pad_features_fills_every_key(side):
    encoded, _ = gather_features(_rows(), "input_ids")
    out = _pad(encoded, Strategy("longest", "do_not_truncate", None), side)
    assert [len(row) for rows in out.values() for row in rows] == [5] * 8
    fills = {"input_ids": 9, "token_type_ids": 4, "special_tokens_mask": 1, "attention_mask": 0}
    for key, fill in fills.items():
        short, long = out[key]
        original = encoded[key][0] if key in encoded else [1, 1, 1]
        assert short == (original + [fill] * 2 if side == "right" else [fill] * 2 + original), key
        assert long == (encoded[key][1] if key in encoded else [1] * 5), key


def test_pad_features_lengths():
    encoded, _ = gather_features(_rows(), "input_ids")
    assert [len(r) for r in _pad(encoded, Strategy("longest", "x", None), multiple=4)["input_ids"]] == [8, 8]
    assert [len(r) for r in _pad(encoded, Strategy("max_length", "x", 6))["input_ids"]] == [6, 6]
    assert [len(r) for r in _pad(encoded, Strategy("max_length", "x", 6), multiple=4)["input_ids"]] == [8, 8]
    unpadded = _pad(encoded, Strategy("do_not_pad", "x", None), mask=False)
    assert unpadded["input_ids"] == encoded["input_ids"] and "attention_mask" not in unpadded
    one = _pad({"input_ids": [1, 2]}, Strategy("max_length", "x", 4), side="left")  # a single row
    assert one == {"input_ids": [9, 9, 1, 2], "attention_mask": [0, 0, 1, 1]}


def test_pad_features_needs_one_batch_size():
    with pytest.raises(ValueError, match="same batch size"):
        _pad({"input_ids": [[1], [2]], "attention_mask": [[1]]}, Strategy("longest", "x", None))
