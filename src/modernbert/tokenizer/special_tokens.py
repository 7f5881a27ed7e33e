"""The special-token table: the named special tokens, how a config spells them, and their attributes.

`SPECIAL_TOKENS` is the one table. Each entry becomes two attributes of the tokenizer, `tok.pad_token` (the
string) and `tok.pad_token_id` (its id), both settable as in transformers. `SpecialTokensMixin` holds what is
computed from the table: `special_tokens_map`, `extra_special_tokens`, `all_special_tokens`, `all_special_ids`
and the model-specific named tokens of a config (`image_token`, `image_token_id`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from tokenizers import AddedToken

from .inputs import TokenizerInputError, is_int

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


def special_added_token(value: str | AddedToken) -> AddedToken:
    """A token of `add_special_tokens` as transformers adds it: a str becomes a special, unnormalized token."""
    if isinstance(value, AddedToken):
        return value
    return AddedToken(value, rstrip=False, lstrip=False, normalized=False, special=True)


def check_extra_tokens(tokens: Any) -> list[str]:
    """The strings of a list of extra special tokens; a clear error for anything else."""
    if not isinstance(tokens, (list, tuple)) or not all(isinstance(t, (str, AddedToken)) for t in tokens):
        raise TokenizerInputError(
            f"{EXTRA_SPECIAL_TOKENS} must be a list of str or AddedToken, got {tokens!r:.80}; "
            "for a single token pass a list of one"
        )
    return [token_content(t, EXTRA_SPECIAL_TOKENS) for t in tokens]


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


def plan_additions(
    special_tokens_dict: Any, extra_special_tokens: list[str], *, replace: bool
) -> tuple[dict[str, AddedToken], list[str], list[AddedToken]]:
    """What `Tokenizer.add_special_tokens` does, every value checked before anything changes: the named tokens
    to set, the new list of extra special tokens, and the tokens to add to the vocabulary, in transformers'
    order. `extra_special_tokens` is the current list; `replace` as `replace_extra_special_tokens`."""
    if not special_tokens_dict:
        return {}, list(extra_special_tokens), []
    if not isinstance(special_tokens_dict, Mapping):
        raise TokenizerInputError(
            f"special_tokens_dict must be a dict of special token names to tokens, got {special_tokens_dict!r:.80}"
        )
    tokens = dict(special_tokens_dict)
    if "additional_special_tokens" in tokens and not tokens.get(EXTRA_SPECIAL_TOKENS):
        tokens[EXTRA_SPECIAL_TOKENS] = tokens.pop("additional_special_tokens")
    for key, value in tokens.items():
        if key == EXTRA_SPECIAL_TOKENS:
            check_extra_tokens(value)
        elif key not in SPECIAL_TOKENS:
            names = [*SPECIAL_TOKENS_ATTRIBUTES, EXTRA_SPECIAL_TOKENS]
            raise ValueError(f"{key!r} is not a special token name; use one of {names}")
        elif not isinstance(value, (str, AddedToken)):
            raise TokenizerInputError(f"{key} must be a str or an AddedToken, got {value!r:.80}")

    named: dict[str, AddedToken] = {}
    extra = list(extra_special_tokens)
    to_add: list[AddedToken] = []
    for key, value in tokens.items():
        if key == EXTRA_SPECIAL_TOKENS:
            kept = value if replace else [t for t in value if token_content(t, key) not in extra_special_tokens]
            new = [special_added_token(t) for t in kept]
            extra = [t.content for t in new] if replace and new else [*extra, *(t.content for t in new)]
            to_add.extend(new)
        else:
            named[key] = special_added_token(value)
            to_add.append(named[key])
    return named, extra, to_add


class SpecialToken:
    """A named special token as an attribute: its string, or with `as_id=True` its id.

    Setting it changes which token the name refers to, as in transformers; it adds nothing to the vocabulary
    (`add_special_tokens` does). An id is set through its token; None unsets the name.
    """

    def __init__(self, name: str, doc: str, *, as_id: bool = False) -> None:
        self.name = name
        self.as_id = as_id
        self.__doc__ = doc if not as_id else f"Id of `{name}` (None when it is unset)."

    def __get__(self, obj: Any, owner: type | None = None) -> Any:
        if obj is None:
            return self
        token = obj.__dict__.get("_special_tokens", {}).get(self.name)
        return obj.convert_tokens_to_ids(token) if self.as_id and token is not None else token

    def __set__(self, obj: Any, value: Any) -> None:
        if value is not None and self.as_id:
            if not is_int(value):
                raise TokenizerInputError(f"{self.name}_id must be an int id or None, got {value!r}")
            value = obj.convert_ids_to_tokens(value)
        elif value is not None and not isinstance(value, (str, AddedToken)):
            raise TokenizerInputError(f"{self.name} must be a str, an AddedToken or None, got {value!r}")
        obj._special_tokens[self.name] = None if value is None else token_content(value, self.name)


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
        """The special tokens without a name (`additional_special_tokens` before transformers 5).

        Setting it (a list of str or `AddedToken`) changes the list; it adds nothing to the vocabulary.
        """
        return list(self._extra_special_tokens)

    @extra_special_tokens.setter
    def extra_special_tokens(self, tokens: Sequence[str | AddedToken] | None) -> None:
        self._extra_special_tokens = check_extra_tokens(tokens or [])

    @property
    def additional_special_tokens(self) -> list[str]:
        """transformers 4's name of `extra_special_tokens`."""
        return self.extra_special_tokens

    @property
    def extra_special_tokens_ids(self) -> list[int]:
        """Ids of `extra_special_tokens`."""
        return self.convert_tokens_to_ids(self.extra_special_tokens)

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
