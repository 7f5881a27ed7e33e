"""The `Tokenizer` class: transformers' fast tokenizer interface over a `tokenizers.Tokenizer` backend.

The class holds the settings and the backend and ties the package's other modules together: `inputs` checks
what a call gets, `strategy` decides padding and truncation, `encoding` shapes the result, `special_tokens`
holds the special-token table and `files` reads and writes the folder.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import tokenizers
from tokenizers import AddedToken

from . import files, strategy
from .encoding import BatchEncoding, check_tensor_type
from .inputs import TokenizerInputError, batch_inputs, ids_to_decode, is_int, to_py
from .special_tokens import (
    EXTRA_SPECIAL_TOKENS,
    SpecialTokensMixin,
    as_added_token,
    from_config,
    plan_additions,
    token_content,
)

logger = logging.getLogger(__name__)

DEFAULT_MODEL_INPUT_NAMES = ("input_ids", "attention_mask")


class Tokenizer(SpecialTokensMixin):
    """ModernBERT's tokenizer, with the interface and the output of transformers' fast tokenizer.

    It reads the files `transformers.AutoTokenizer` reads and gives the same ids, masks, offsets, overflow
    windows, padding, truncation and decoding, without transformers. Build it with `from_pretrained`, or from
    a `tokenizers.Tokenizer` and the parsed tokenizer_config.json:

        tok = Tokenizer.from_pretrained("answerdotai/ModernBERT-base")
        enc = tok(["The capital of France is [MASK]."], padding=True, return_tensors="pt")

    backend: the `tokenizers.Tokenizer` of tokenizer.json. The instance owns it: it sets the backend's
        truncation and padding on every call.
    config: tokenizer_config.json (merged with special_tokens_map.json in older folders). The keys transformers
        reads are honoured: the named special tokens, `model_max_length`, `padding_side`, `truncation_side`,
        `model_input_names`, `clean_up_tokenization_spaces`, `split_special_tokens`, `extra_special_tokens`
        (or `additional_special_tokens`) and `added_tokens_decoder`.
    name_or_path: where it was loaded from, for information.
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
        self.model_max_length: int = (
            int(model_max_length) if model_max_length is not None else strategy.VERY_LARGE_INTEGER
        )
        self.padding_side: str = config.get("padding_side") or "right"
        self.truncation_side: str = config.get("truncation_side") or "right"
        for name in ("padding_side", "truncation_side"):
            if getattr(self, name) not in ("right", "left"):
                raise ValueError(f"{name} must be 'right' or 'left', got {getattr(self, name)!r}")
        self.model_input_names: list[str] = list(config.get("model_input_names") or DEFAULT_MODEL_INPUT_NAMES)
        self.clean_up_tokenization_spaces: bool = bool(config.get("clean_up_tokenization_spaces", False))
        self.clean_up_tokenization_spaces_for_bpe_even_though_it_will_corrupt_output: bool = bool(
            config.get("clean_up_tokenization_spaces_for_bpe_even_though_it_will_corrupt_output", False)
        )
        self.split_special_tokens: bool = bool(config.get("split_special_tokens", False))
        self.pad_token_type_id: int = 0

        named, extra = from_config(config)
        self._special_tokens = {k: (token_content(v, k) if v is not None else None) for k, v in named.items()}
        self._extra_special_tokens = [token_content(v, EXTRA_SPECIAL_TOKENS) for v in extra]
        self._add_missing_tokens(config.get("added_tokens_decoder") or {}, [*named.values(), *extra])

        backend.no_truncation()
        backend.no_padding()
        if hasattr(backend, "encode_special_tokens"):
            backend.encode_special_tokens = self.split_special_tokens

    def _add_missing_tokens(self, added_tokens_decoder: Mapping[str, Any], special: list[Any]) -> None:
        """Add to the backend, as transformers does, the config's added tokens and special tokens it lacks."""
        present = {t.content for t in self._backend.get_added_tokens_decoder().values()}
        to_add: list[AddedToken] = []
        for _, entry in sorted(((int(i), e) for i, e in added_tokens_decoder.items()), key=lambda item: item[0]):
            token = as_added_token(entry, special=False)
            if token.content not in present:
                to_add.append(token)
                present.add(token.content)
        for value in special:
            if value is not None and token_content(value, "special token") not in present:
                token = as_added_token(value, special=True)
                token.special = True
                to_add.append(token)
                present.add(token.content)
        for token in to_add:
            (self._backend.add_special_tokens if token.special else self._backend.add_tokens)([token])

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state.pop("_lock", None)  # a lock cannot be pickled (DataLoader workers, deepcopy)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._lock = threading.RLock()

    # ----- loading and saving -----

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
        """Load from a folder, a bundled model name or a hub repo id.

        The folder needs tokenizer.json; tokenizer_config.json and special_tokens_map.json are optional. A repo
        id is fetched into the standard hub cache (or `cache_dir`); with `local_files_only=True` or
        HF_HUB_OFFLINE=1 only the cache is read, without any network access.

        name_or_path: a folder, a bundled model name or a hub repo id ("answerdotai/ModernBERT-base").
        revision, cache_dir, local_files_only, token: for a hub repo id, as in huggingface_hub.
        subfolder: the folder inside `name_or_path` that holds the files.
        kwargs: tokenizer_config.json values to override (`model_max_length=512`, `padding_side="left"`,
            `pad_token="[PAD]"`, ...). `use_fast` and `trust_remote_code` are accepted and ignored; any other
            keyword is a TypeError.
        """
        backend, config = files.read_pretrained(
            name_or_path, revision=revision, cache_dir=cache_dir, local_files_only=local_files_only,
            token=token, subfolder=subfolder, **kwargs,
        )
        tokenizer = cls(backend, config, name_or_path=os.fspath(name_or_path))
        tokenizer._flag_special_tokens()
        return tokenizer

    def _flag_special_tokens(self) -> None:
        """Mark every named and extra special token special in the backend, keeping its other flags, as
        transformers' from_pretrained does after loading (a folder may hold one as a plain added token)."""
        added = {t.content: t for t in self._backend.get_added_tokens_decoder().values()}
        contents = dict.fromkeys(t for t in [*self._special_tokens.values(), *self._extra_special_tokens] if t)
        tokens = [added.get(c) or AddedToken(c, special=True, normalized=False) for c in contents]
        self._backend.add_special_tokens(tokens)

    def save_pretrained(self, save_directory: str | os.PathLike[str]) -> tuple[str, str, str]:
        """Write tokenizer.json, tokenizer_config.json and special_tokens_map.json (each atomically) and return
        their paths. `from_pretrained` and `transformers.AutoTokenizer.from_pretrained` load the folder back,
        added tokens included; the per-call padding and truncation are not saved."""
        with self._lock:
            tokenizer_json = json.loads(self._backend.to_str())
            added = self.added_tokens_decoder
        config = {
            **self._config,
            "model_max_length": self.model_max_length,
            "padding_side": self.padding_side,
            "truncation_side": self.truncation_side,
            "model_input_names": list(self.model_input_names),
            "clean_up_tokenization_spaces": self.clean_up_tokenization_spaces,
            "split_special_tokens": self.split_special_tokens,
        }
        return files.write_pretrained(
            save_directory, tokenizer_json=tokenizer_json, config=config, added_tokens=added,
            special_tokens=self.special_tokens_map, extra_special_tokens=self._extra_special_tokens,
        )

    # ----- vocabulary -----

    @property
    def backend_tokenizer(self) -> tokenizers.Tokenizer:
        """The underlying `tokenizers.Tokenizer`."""
        return self._backend

    @property
    def is_fast(self) -> bool:
        """Always True (a Rust backend), for transformers-style checks."""
        return True

    @property
    def vocab_size(self) -> int:
        """Size of the base (BPE) vocabulary, added tokens left out, as transformers reports it."""
        return self._backend.get_vocab_size(with_added_tokens=False)

    def __len__(self) -> int:
        """Size of the whole vocabulary, added tokens included: the embedding rows a model needs."""
        return self._backend.get_vocab_size(with_added_tokens=True)

    def get_vocab(self) -> dict[str, int]:
        """Token -> id over the whole vocabulary, added tokens included."""
        return self._backend.get_vocab(with_added_tokens=True)

    @property
    def added_tokens_decoder(self) -> dict[int, AddedToken]:
        """Id -> `AddedToken` for every added token, by id."""
        return dict(sorted(self._backend.get_added_tokens_decoder().items()))

    def get_added_vocab(self) -> dict[str, int]:
        """Added token -> id, by id."""
        return {t.content: i for i, t in self.added_tokens_decoder.items()}

    def num_special_tokens_to_add(self, pair: bool = False) -> int:
        """How many special tokens the post-processor adds to one sequence, or to a pair."""
        return self._backend.num_special_tokens_to_add(pair)

    @property
    def max_len_single_sentence(self) -> int:
        """The longest text, in tokens, that fits `model_max_length` with its special tokens."""
        return self.model_max_length - self.num_special_tokens_to_add(pair=False)

    @property
    def max_len_sentences_pair(self) -> int:
        """The longest text pair, in tokens together, that fits `model_max_length` with its special tokens."""
        return self.model_max_length - self.num_special_tokens_to_add(pair=True)

    def convert_tokens_to_ids(self, tokens: str | Iterable[str]) -> int | None | list[int | None]:
        """Token (or tokens) to id(s); a token not in the vocabulary gives `unk_token_id` (None without one)."""
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
            unk = self._special_tokens.get("unk_token")
            return None if unk is None else self._backend.token_to_id(unk)
        return index

    def convert_ids_to_tokens(self, ids: Any, skip_special_tokens: bool = False) -> str | None | list[str | None]:
        """Id (or ids: a list, a tensor or an array) to token string(s); an unknown id gives None.

        skip_special_tokens: leave the ids of `all_special_ids` out of a list.
        """
        ids = to_py(ids)
        if is_int(ids):
            return self._backend.id_to_token(ids)
        if not isinstance(ids, list) or not all(is_int(i) for i in ids):
            raise TypeError(f"ids must be an int or a list of ints, got {ids!r}")
        skip = set(self.all_special_ids) if skip_special_tokens else set()
        return [self._backend.id_to_token(i) for i in ids if i not in skip]

    def get_special_tokens_mask(
        self,
        token_ids_0: Sequence[int],
        token_ids_1: Sequence[int] | None = None,
        already_has_special_tokens: bool = False,
    ) -> list[int]:
        """1 for special tokens and 0 for the others, over ids that already hold their special tokens (what data
        collators ask). Only `already_has_special_tokens=True` is supported, as in transformers' fast
        tokenizers; while encoding, pass `return_special_tokens_mask=True` instead."""
        if not already_has_special_tokens:
            raise NotImplementedError(
                "get_special_tokens_mask needs already_has_special_tokens=True; use "
                "tokenizer(..., return_special_tokens_mask=True) to get the mask while encoding"
            )
        if token_ids_1 is not None:
            raise ValueError("token_ids_1 must be None when already_has_special_tokens=True")
        special = set(self.all_special_ids)
        return [1 if int(i) in special else 0 for i in to_py(token_ids_0)]

    # ----- adding tokens -----

    def add_tokens(
        self, new_tokens: str | AddedToken | Sequence[str | AddedToken], special_tokens: bool = False
    ) -> int:
        """Add tokens to the vocabulary, as transformers does, and return how many the backend added.

        A new token gets the next id after the whole vocabulary (so `len(tok)` grows: resize the model's
        embeddings to it) and is never split. A token already in the vocabulary keeps its id; one already added
        with the same flags is not counted.

        new_tokens: a str, an `AddedToken` (to choose lstrip, rstrip, single_word, normalized) or a list.
        special_tokens: add them as special tokens, which `decode(skip_special_tokens=True)` skips (a str
            becomes a special, unnormalized token); they get no name: `add_special_tokens` gives one.
        """
        if not new_tokens:
            return 0
        if isinstance(new_tokens, (str, AddedToken)):
            new_tokens = [new_tokens]
        if not isinstance(new_tokens, (list, tuple)) or not all(isinstance(t, (str, AddedToken)) for t in new_tokens):
            raise TokenizerInputError(
                f"new_tokens must be a str, an AddedToken or a list of them, got {new_tokens!r:.80}"
            )
        with self._lock:
            add = self._backend.add_special_tokens if special_tokens else self._backend.add_tokens
            return add(list(new_tokens))

    def add_special_tokens(
        self,
        special_tokens_dict: Mapping[str, str | AddedToken | Sequence[str | AddedToken]],
        replace_extra_special_tokens: bool = True,
        *,
        replace_additional_special_tokens: bool | None = None,
    ) -> int:
        """Set named special tokens and extra special tokens, adding the new ones to the vocabulary, as
        transformers does; returns how many tokens were added.

            tok.add_special_tokens({"bos_token": "<s>", "extra_special_tokens": ["<ent>", "</ent>"]})

        special_tokens_dict: a special token name (`bos_token`, ..., `mask_token`) -> a str or an `AddedToken`,
            and `extra_special_tokens` (or `additional_special_tokens`) -> a list of them. A str is added as a
            special token that is neither normalized nor stripped.
        replace_extra_special_tokens: a new list replaces `extra_special_tokens` (the old ones stay in the
            vocabulary); False appends the tokens that are not in it yet.
        replace_additional_special_tokens: the transformers 4 name of `replace_extra_special_tokens`.
        """
        if replace_additional_special_tokens is not None:
            replace_extra_special_tokens = replace_additional_special_tokens
        named, extra, to_add = plan_additions(
            special_tokens_dict, self._extra_special_tokens, replace=replace_extra_special_tokens
        )
        for name, token in named.items():
            setattr(self, name, token)
        self._extra_special_tokens = extra
        return self.add_tokens(to_add, special_tokens=True)

    # ----- encoding -----

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
        """Tokenize one text, a batch or text pairs, with the output of transformers' fast tokenizer.

        A single input without `return_tensors` or overflow gives flat lists; otherwise there is one row per
        input, or per window with overflow. Malformed `text` / `text_pair` raise `TokenizerInputError` (a
        TypeError and a ValueError); bad options, padding without a pad token and ragged tensors a ValueError.

        text: a str, a list of str (a batch) or a list of (text, text_pair) pairs; with
            `is_split_into_words=True`, a list of words or a list of such lists.
        text_pair: the second sequence(s): a str for one text, a list for a batch.
        add_special_tokens: wrap as `[CLS] A [SEP]` (`[CLS] A [SEP] B [SEP]` for pairs).
        padding: False or "do_not_pad"; True or "longest" (to the longest row); "max_length" (to `max_length`,
            else `model_max_length`).
        truncation: True or "longest_first", "only_first", "only_second", False or "do_not_truncate". None (the
            default) truncates only when `max_length` alone is given, transformers' rule. Without `max_length`
            it truncates to `model_max_length`.
        max_length: the length for truncation and for "max_length" padding.
        stride: tokens of overlap between overflowing windows (with `return_overflowing_tokens`).
        is_split_into_words: the inputs are already split into words.
        pad_to_multiple_of: round padded lengths up to a multiple of this.
        padding_side: "right" or "left"; None takes the tokenizer's (right).
        return_tensors: None (lists), "pt" (torch) or "np" (numpy).
        return_token_type_ids, return_attention_mask: None includes them when `model_input_names` lists them.
        return_overflowing_tokens: every truncation window as its own row, and `overflow_to_sample_mapping`
            (row -> input index).
        return_special_tokens_mask: `special_tokens_mask` (1 for special tokens).
        return_offsets_mapping: `offset_mapping`, the (start, end) characters of every token.
        return_length: `length`, the number of tokens of every row.
        """
        batch, is_batched = batch_inputs(text, text_pair, is_split_into_words)
        strategy.check_options(max_length, pad_to_multiple_of, stride, padding_side)
        return_tensors = check_tensor_type(return_tensors)
        pad_id = self.pad_token_id
        plan = strategy.resolve(
            padding, truncation, max_length, pad_to_multiple_of,
            model_max_length=self.model_max_length, pad_token_id=pad_id,
        )
        settings = strategy.backend_settings(
            plan, stride=stride, pad_to_multiple_of=pad_to_multiple_of, truncation_side=self.truncation_side,
            padding_side=padding_side or self.padding_side, pad_token_id=pad_id, pad_token=self.pad_token,
            pad_token_type_id=self.pad_token_type_id,
        )
        with self._lock:
            self._configure_backend(*settings)
            try:
                encodings = self._backend.encode_batch(
                    batch, add_special_tokens=add_special_tokens, is_pretokenized=is_split_into_words
                )
            except (TypeError, ValueError, KeyboardInterrupt, SystemExit, GeneratorExit):
                raise
            except BaseException as exc:  # bare `Exception`s, and pyo3's PanicException (a BaseException)
                hint = (
                    " (with overflow, stride must be smaller than max_length minus the special tokens "
                    "and the other sequence)" if stride else ""
                )
                raise ValueError(f"tokenization failed: {exc}{hint}") from exc

        if plan.max_length is None and not self._warned_too_long:
            self._warn_if_too_long(encodings, return_overflowing_tokens)
        return BatchEncoding.from_encodings(
            encodings,
            is_batched=is_batched,
            tensor_type=return_tensors,
            return_token_type_ids=(
                "token_type_ids" in self.model_input_names if return_token_type_ids is None else return_token_type_ids
            ),
            return_attention_mask=(
                "attention_mask" in self.model_input_names if return_attention_mask is None else return_attention_mask
            ),
            return_overflowing_tokens=return_overflowing_tokens,
            return_special_tokens_mask=return_special_tokens_mask,
            return_offsets_mapping=return_offsets_mapping,
            return_length=return_length,
        )

    def _warn_if_too_long(self, encodings: Sequence[tokenizers.Encoding], overflowing: bool) -> None:
        rows = [w for e in encodings for w in ([e, *e.overflowing] if overflowing else [e])]
        longest = max((len(e.ids) for e in rows), default=0)
        if longest > self.model_max_length:
            self._warned_too_long = True
            logger.warning(
                "Token indices sequence length is longer than the specified maximum sequence length for "
                "this model (%d > %d). Running this sequence through the model will result in indexing "
                "errors; pass truncation=True.",
                longest,
                self.model_max_length,
            )

    def _configure_backend(self, truncation: dict[str, Any] | None, padding: dict[str, Any] | None) -> None:
        """Give the backend these settings (see `strategy.backend_settings`), touching it only on a change."""
        backend = self._backend
        if truncation is None:
            if backend.truncation is not None:
                backend.no_truncation()
        elif backend.truncation is None or {k: backend.truncation.get(k) for k in truncation} != truncation:
            backend.enable_truncation(**truncation)
        if padding is None:
            if backend.padding is not None:
                backend.no_padding()
        elif backend.padding != padding:
            backend.enable_padding(**padding)

    def encode(
        self,
        text: str | Sequence[str],
        text_pair: str | Sequence[str] | None = None,
        *,
        add_special_tokens: bool = True,
        **kwargs: Any,
    ) -> list[int] | Any:
        """The token ids of one text (or pair); other keyword arguments as in `__call__`."""
        return self(text, text_pair, add_special_tokens=add_special_tokens, **kwargs)["input_ids"]

    def tokenize(self, text: str, pair: str | None = None, *, add_special_tokens: bool = False) -> list[str]:
        """The token strings of `text` (and `pair`), without special tokens unless asked."""
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
        """Pad encoded inputs (a dict of lists, or the list of dicts a collate function gets), as transformers'
        `pad` does: `input_ids` with `pad_token_id`, `attention_mask` and `token_type_ids` with 0,
        `special_tokens_mask` with 1. Tensor inputs come back as tensors of their kind unless `return_tensors`
        says otherwise."""
        main = self.model_input_names[0]
        encoded, kind = strategy.gather_features(encoded_inputs, main)
        if encoded[main] is None or len(encoded[main]) == 0:
            if return_attention_mask:
                encoded["attention_mask"] = []
            return BatchEncoding(encoded)
        plan = strategy.resolve(
            padding, None, max_length, None, model_max_length=self.model_max_length, pad_token_id=self.pad_token_id
        )
        if return_attention_mask is None:
            return_attention_mask = "attention_mask" in self.model_input_names
        padded = strategy.pad_features(
            encoded, plan, main_input=main, pad_to_multiple_of=pad_to_multiple_of,
            side=padding_side or self.padding_side, pad_token_id=self.pad_token_id,
            pad_token_type_id=self.pad_token_type_id, return_attention_mask=return_attention_mask,
        )
        return BatchEncoding(padded, tensor_type=return_tensors or kind)

    # ----- decoding -----

    def decode(
        self,
        token_ids: Any,
        skip_special_tokens: bool = False,
        clean_up_tokenization_spaces: bool | None = None,
    ) -> str | list[str]:
        """Ids to text, as transformers decodes them.

        token_ids: an int, a list of ints, a 1-D tensor or array, or a `BatchEncoding` / dict (its
            `input_ids`); a batch (a list of lists, a 2-D tensor) gives a list of strings.
        skip_special_tokens: drop the special tokens (every added token flagged special).
        clean_up_tokenization_spaces: None takes tokenizer_config.json's. It has no effect on BPE tokenizers
            such as ModernBERT's, as in transformers 5.
        """
        rows, batched = ids_to_decode(token_ids)
        texts = [self._decode_one(row, skip_special_tokens, clean_up_tokenization_spaces) for row in rows]
        return texts if batched else texts[0]

    def _decode_one(self, ids: list[int], skip_special_tokens: bool, clean_up: bool | None) -> str:
        with self._lock:
            text = self._backend.decode(ids, skip_special_tokens=skip_special_tokens)
        clean_up = self.clean_up_tokenization_spaces if clean_up is None else clean_up
        # As in transformers 5, the WordPiece-era clean-up is skipped for BPE models (it corrupts text:
        # "a ." becomes "a."), unless the config forces it.
        is_bpe = type(self._backend.model).__name__ == "BPE"
        if clean_up and (not is_bpe or self.clean_up_tokenization_spaces_for_bpe_even_though_it_will_corrupt_output):
            text = clean_up_tokenization(text)
        return text

    def batch_decode(
        self,
        sequences: Any,
        skip_special_tokens: bool = False,
        clean_up_tokenization_spaces: bool | None = None,
    ) -> list[str]:
        """Decode a batch (a list of id lists, a 2-D tensor) into a list of strings; see `decode`."""
        seqs = to_py(sequences)
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
        """Join token strings into text with the backend's decoder (byte-level for ModernBERT)."""
        decoder = self._backend.decoder
        return decoder.decode(list(tokens)) if decoder is not None else " ".join(tokens)

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(name_or_path={self.name_or_path!r}, vocab_size={self.vocab_size}, "
            f"len={len(self)}, model_max_length={self.model_max_length}, padding_side={self.padding_side!r}, "
            f"truncation_side={self.truncation_side!r}, special_tokens={self.special_tokens_map})"
        )


def clean_up_tokenization(text: str) -> str:
    """transformers' `clean_up_tokenization`: the WordPiece-era removal of spaces before punctuation."""
    for spaced, joined in (
        (" .", "."), (" ?", "?"), (" !", "!"), (" ,", ","), (" ' ", "'"), (" n't", "n't"),
        (" 'm", "'m"), (" 's", "'s"), (" 've", "'ve"), (" 're", "'re"),
    ):
        text = text.replace(spaced, joined)
    return text
