"""The special-token table: the named special tokens, how a config spells them, and their attributes.

`SPECIAL_TOKENS` is the one table. Each entry becomes two attributes of the tokenizer, `tok.pad_token` (the
string) and `tok.pad_token_id` (its id). `SpecialTokensMixin` holds what is
computed from the table: `special_tokens_map`, `extra_special_tokens`, `all_special_tokens`, `all_special_ids`
and the model-specific named tokens of a config (`image_token`, `image_token_id`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tokenizers import AddedToken

from .inputs import TokenizerInputError

# Named special token -> what it is, in transformers' order (the order of `all_special_tokens`).
SPECIAL_TOKENS: dict[str, str] = {
    "bos_token": "Beginning-of-sequence token; None for ModernBERT, whose tokenizer defines none.",
    "eos_token": "End-of-sequence token; None for ModernBERT, whose tokenizer defines none.",
    "unk_token": "Unknown token (`[UNK]`): the id of any token that is not in the vocabulary.",
    "sep_token": "Separator token (`[SEP]`), at the end of each sequence.",
    "pad_token": "Padding token (`[PAD]`); never assume its id is 0: it is 50283 for ModernBERT.",
    "cls_token": "Classifier token (`[CLS]`), at the start of every input.",
    "mask_token": "Mask token (`[MASK]`, which takes the space on its left).",
}
SPECIAL_TOKENS_ATTRIBUTES: tuple[str, ...] = tuple(SPECIAL_TOKENS)
EXTRA_SPECIAL_TOKENS = "extra_special_tokens"  # the unnamed ones; "additional_special_tokens" before transformers 5


def token_content(value: Any, where: str) -> str:
    """The text of a special token given as a str, an `AddedToken` or a serialized `AddedToken` dict."""
    if isinstance(value, str):
        return value
    if isinstance(value, AddedToken):
        return value.content
    if isinstance(value, Mapping) and isinstance(value.get("content"), str):
        return value["content"]
    raise TokenizerInputError(f"{where}: a special token must be a str or an AddedToken, got {value!r}")


def as_added_token(value: Any, *, special: bool = True) -> AddedToken:
    """An `AddedToken` from a str, an `AddedToken` (returned as it is) or a serialized dict."""
    if isinstance(value, AddedToken):
        return value
    if isinstance(value, str):
        return AddedToken(value, special=special)
    fields = {k: value[k] for k in ("lstrip", "rstrip", "single_word", "normalized") if k in value}
    return AddedToken(value["content"], special=value.get("special", special), **fields)


def added_token_dict(token: AddedToken, *, with_special: bool = True) -> dict[str, Any]:
    """An `AddedToken` as the JSON files store it."""
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


def from_config(config: Mapping[str, Any]) -> tuple[dict[str, Any], list[Any]]:
    """The named special tokens (the standard seven, then model-specific `*_token` keys) and the unnamed
    extra ones of a tokenizer config, as the config gives them (str, `AddedToken` or dict; None when unset).

    `extra_special_tokens` (or the older `additional_special_tokens`) is a list of unnamed tokens, or a dict
    of named model-specific ones, as transformers reads it.
    """
    named: dict[str, Any] = {name: config.get(name) for name in SPECIAL_TOKENS_ATTRIBUTES}
    extra = config.get(EXTRA_SPECIAL_TOKENS)
    if extra is None:
        extra = config.get("additional_special_tokens")
    unnamed: list[Any] = []
    if isinstance(extra, Mapping):
        named.update(extra)
    elif isinstance(extra, (list, tuple)):
        unnamed = list(extra)
    elif extra is not None:
        raise TypeError("extra_special_tokens must be a list of tokens or a dict of named tokens")
    for key, value in config.items():
        if key.endswith("_token") and key not in named and isinstance(value, (str, Mapping, AddedToken)):
            if not isinstance(value, Mapping) or "content" in value:
                named[key] = value
    return named, unnamed


class SpecialToken:
    """A named special token as a read-only attribute: its string, or with `as_id=True` its id."""

    def __init__(self, name: str, doc: str, *, as_id: bool = False) -> None:
        self.name = name
        self.as_id = as_id
        self.attribute = f"{name}_id" if as_id else name
        self.__doc__ = doc if not as_id else f"Id of `{name}` (None when it is unset)."

    def __get__(self, obj: Any, owner: type | None = None) -> Any:
        if obj is None:
            return self
        token = obj.__dict__.get("_special_tokens", {}).get(self.name)
        return obj.convert_tokens_to_ids(token) if self.as_id and token is not None else token

    def __set__(self, obj: Any, value: Any) -> None:
        raise AttributeError(f"{self.attribute} is read-only")


class SpecialTokensMixin:
    """What the tokenizer computes from its special tokens; the `SPECIAL_TOKENS` attributes are added below.

    The host class sets `_special_tokens` (name -> token string or None) and `_extra_special_tokens` (a list
    of strings), and has `convert_tokens_to_ids` / `convert_ids_to_tokens`.
    """

    _special_tokens: dict[str, str | None]
    _extra_special_tokens: list[str]

    def __getattr__(self, name: str) -> Any:
        # Model-specific named special tokens of the config (`image_token`, `image_token_id`).
        specials = self.__dict__.get("_special_tokens", {})
        base = name.removesuffix("_id") if name.endswith("_token_id") else name
        if base in specials and base not in SPECIAL_TOKENS:
            token = specials[base]
            return token if base == name or token is None else self.convert_tokens_to_ids(token)
        raise AttributeError(f"{type(self).__name__} has no attribute {name!r}")

    @property
    def special_tokens_map(self) -> dict[str, str]:
        """Named special token attribute -> token string, the unset ones left out."""
        return {k: v for k, v in self._special_tokens.items() if v is not None}

    @property
    def extra_special_tokens(self) -> list[str]:
        """The special tokens without a name (`additional_special_tokens` before transformers 5)."""
        return list(self._extra_special_tokens)

    @property
    def all_special_tokens(self) -> list[str]:
        """The named then the extra special tokens, without repeats, in transformers' order."""
        seen: dict[str, None] = {}
        for token in [*self._special_tokens.values(), *self._extra_special_tokens]:
            if token is not None:
                seen.setdefault(token, None)
        return list(seen)

    @property
    def all_special_ids(self) -> list[int]:
        """Ids of `all_special_tokens`."""
        return self.convert_tokens_to_ids(self.all_special_tokens)


for _name, _doc in SPECIAL_TOKENS.items():
    setattr(SpecialTokensMixin, _name, SpecialToken(_name, _doc))
    setattr(SpecialTokensMixin, f"{_name}_id", SpecialToken(_name, _doc, as_id=True))
del _name, _doc
