"""Parity of modernbert.tokenizer.Tokenizer with transformers' fast tokenizer on ModernBERT's layout."""

from __future__ import annotations

import copy
import json
import logging
import pickle
import socket
import warnings
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
import torch
from tokenizer_fixture import SPECIAL_TOKENS, write_tokenizer

from modernbert.tokenizer import BatchEncoding, Tokenizer, TokenizerInputError

transformers = pytest.importorskip("transformers")
logging.getLogger("transformers").setLevel(logging.ERROR)  # its BPE clean-up notice is expected noise

TEXTS = [
    "The capital is [MASK].",
    "[MASK] at the start, then text.",
    "double  spaces  [MASK]  and   more",
    "A naïve café in 日本 🙂",
    "",
    "Hello , world . It's fine , isn't it ?",
    "   leading and trailing   ",
]
PAIRS = [
    ("What is the capital of France?", "Paris is the capital of France and a very big city."),
    ("Short", "A rather long second sequence that keeps going and going for a while."),
    ("A long first sequence with many many words inside of it, yes.", "Tiny"),
]


# ---------------------------------------------------------------------------------------------------------------
# fixtures and helpers
# ---------------------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("tok")
    write_tokenizer(path)
    return path


@pytest.fixture(scope="module")
def ref(folder):
    return transformers.AutoTokenizer.from_pretrained(str(folder))


@pytest.fixture(scope="module")
def tok(folder) -> Tokenizer:
    return Tokenizer.from_pretrained(folder)


def _plain(value):
    if isinstance(value, np.ndarray) and value.dtype == object:
        return ("ragged", [_plain(v) for v in value])
    if isinstance(value, (torch.Tensor, np.ndarray)):
        return (type(value).__name__, str(value.dtype), value.tolist())
    return value


def _norm(enc) -> list:
    """Key order and values (tensor type/dtype included) of an encoding."""
    return [(k, _plain(v)) for k, v in enc.items()]


def _outcome(fn, *args, **kwargs):
    try:
        return _norm(fn(*args, **kwargs))
    except Exception:  # both must fail on the same inputs (our error types may be clearer)
        return "error"


@pytest.fixture
def no_network(monkeypatch):
    """Record (and refuse) every socket connection attempt."""
    calls: list = []

    def refuse(self, *args, **kwargs):
        calls.append(args)
        raise OSError("network access attempted in a test")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    return calls


# ---------------------------------------------------------------------------------------------------------------
# the fixture itself
# ---------------------------------------------------------------------------------------------------------------
def test_fixture_layout_matches_modernbert(folder, tmp_path):
    ids = write_tokenizer(tmp_path / "again")
    assert ids == write_tokenizer(tmp_path / "again2")
    for name in ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"):
        assert (folder / name).read_bytes() == (tmp_path / "again" / name).read_bytes(), name
    data = json.loads((folder / "tokenizer.json").read_text())
    added = {t["content"]: t for t in data["added_tokens"]}
    # the five specials are the last ids, in ModernBERT's order, [MASK] strips left
    assert [added[t]["id"] for t in SPECIAL_TOKENS] == list(range(507, 512))
    assert added["[MASK]"]["lstrip"] and not added["[CLS]"]["lstrip"]
    assert ids["pad_token_id"] != 0 and ids["bos_token_id"] == ids["cls_token_id"]
    assert ids["eos_token_id"] == ids["sep_token_id"] == added["[SEP]"]["id"]
    assert data["pre_tokenizer"]["type"] == "ByteLevel" and data["decoder"]["type"] == "ByteLevel"
    assert data["post_processor"]["type"] == "TemplateProcessing"
    config = json.loads((folder / "tokenizer_config.json").read_text())
    assert config["model_max_length"] == 8192 and config["clean_up_tokenization_spaces"] is True
    assert config["model_input_names"] == ["input_ids", "attention_mask"]


@pytest.mark.parametrize("vocab_size", [300, 512, 4096])
def test_fixture_vocab_fits(tmp_path, vocab_size):
    ids = write_tokenizer(tmp_path, vocab_size=vocab_size)
    tok = Tokenizer.from_pretrained(tmp_path)
    assert len(tok) <= vocab_size
    assert max(ids.values()) == len(tok) - 1


def test_fixture_rejects_tiny_vocab(tmp_path):
    with pytest.raises(ValueError, match="vocab_size"):
        write_tokenizer(tmp_path, vocab_size=100)


# ---------------------------------------------------------------------------------------------------------------
# attributes
# ---------------------------------------------------------------------------------------------------------------
ATTRIBUTES = [
    "vocab_size",
    "model_max_length",
    "model_input_names",
    "padding_side",
    "truncation_side",
    "clean_up_tokenization_spaces",
    "all_special_tokens",
    "all_special_ids",
    "special_tokens_map",
    *[f"{name}_token" for name in ("bos", "eos", "unk", "sep", "pad", "cls", "mask")],
    *[f"{name}_token_id" for name in ("bos", "eos", "unk", "sep", "pad", "cls", "mask")],
    "max_len_single_sentence",
    "max_len_sentences_pair",
]


@pytest.mark.parametrize("name", ATTRIBUTES)
def test_attributes_match(tok, ref, name):
    assert getattr(tok, name) == getattr(ref, name)


def test_vocab_and_lengths(tok, ref, tmp_path):
    assert len(tok) == len(ref) == 512
    assert tok.get_vocab() == ref.get_vocab()
    assert tok.get_added_vocab() == ref.get_added_vocab()
    assert tok.num_special_tokens_to_add() == ref.num_special_tokens_to_add() == 2
    assert tok.num_special_tokens_to_add(pair=True) == 3
    assert tok.pad_token_id == write_tokenizer(tmp_path)["pad_token_id"] != 0
    assert tok.bos_token is None and tok.eos_token_id is None  # as transformers gives them for ModernBERT
    assert "Tokenizer(" in repr(tok) and tok.is_fast


# ---------------------------------------------------------------------------------------------------------------
# encoding parity
# ---------------------------------------------------------------------------------------------------------------
CALL_KWARGS = [
    {},
    {"padding": True},
    {"padding": "longest", "return_tensors": "pt"},
    {"padding": "max_length", "max_length": 24, "truncation": True, "return_tensors": "pt"},
    {"padding": "max_length", "max_length": 24},
    {"padding": "max_length"},  # pads to model_max_length
    {"padding": "do_not_pad", "truncation": "do_not_truncate"},
    {"max_length": 6},  # max_length alone truncates (longest_first)
    {"truncation": True, "max_length": 8, "padding": True, "return_tensors": "np"},
    {"truncation": True, "max_length": 8, "stride": 3, "return_overflowing_tokens": True},
    {"truncation": True, "max_length": 8, "stride": 2, "return_overflowing_tokens": True, "padding": True},
    {"truncation": "only_first", "max_length": 7, "return_overflowing_tokens": True, "return_tensors": "pt"},
    {"return_offsets_mapping": True, "return_special_tokens_mask": True, "return_length": True},
    {"return_token_type_ids": True, "return_attention_mask": False},
    {"add_special_tokens": False, "return_special_tokens_mask": True},
    {"padding": True, "pad_to_multiple_of": 8, "return_tensors": "pt"},
    {"padding": True, "padding_side": "left", "return_offsets_mapping": True},
    {"return_tensors": "pt"},  # ragged batch: both must refuse
]


@pytest.mark.parametrize("kwargs", CALL_KWARGS, ids=lambda kw: ",".join(f"{k}={v}" for k, v in kw.items()) or "none")
@pytest.mark.parametrize("inputs", ["batch", "single", "unicode", "empty", "batch_of_one"])
def test_call_matches_transformers(tok, ref, kwargs, inputs):
    text = {
        "batch": TEXTS,
        "single": TEXTS[0],
        "unicode": TEXTS[3],
        "empty": "",
        "batch_of_one": [TEXTS[2]],
    }[inputs]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ours, theirs = _outcome(tok, text, **kwargs), _outcome(ref, text, **kwargs)
    assert ours == theirs
    if inputs == "single" and not kwargs:
        assert ours[0][1][0] == tok.cls_token_id  # a real, non-error result


@pytest.mark.parametrize(
    "kwargs",
    [
        {},
        {"truncation": "only_second", "max_length": 20},
        {"truncation": "only_second", "max_length": 20, "stride": 2, "return_overflowing_tokens": True},
        {"truncation": "only_second", "max_length": 20, "return_overflowing_tokens": True, "padding": True},
        {"truncation": "longest_first", "max_length": 12, "return_token_type_ids": True},
        {"truncation": True, "max_length": 12, "padding": "max_length", "return_tensors": "pt"},
        {"return_offsets_mapping": True, "return_special_tokens_mask": True, "return_token_type_ids": True},
    ],
)
def test_pairs_match_transformers(tok, ref, kwargs):
    firsts, seconds = [p[0] for p in PAIRS[:2]], [p[1] for p in PAIRS[:2]]
    ours, theirs = tok(firsts, seconds, **kwargs), ref(firsts, seconds, **kwargs)
    assert _norm(ours) == _norm(theirs)
    # a list of 2-tuples or 2-lists is the same batch of pairs
    assert _norm(tok([tuple(p) for p in PAIRS[:2]], **kwargs)) == _norm(ours)
    assert _norm(tok([list(p) for p in PAIRS[:2]], **kwargs)) == _norm(ours)
    for row in range(len(ours["input_ids"])):
        assert ours.sequence_ids(row) == theirs.sequence_ids(row)
        assert ours.word_ids(row) == theirs.word_ids(row)
        assert ours.tokens(row) == theirs.tokens(row)
    assert 1 in ours.sequence_ids(0)


def test_only_second_overflow_windows(tok, ref):
    first, second = PAIRS[1]
    ours = tok(first, second, truncation="only_second", max_length=12, stride=3, return_overflowing_tokens=True)
    theirs = ref(first, second, truncation="only_second", max_length=12, stride=3, return_overflowing_tokens=True)
    assert _norm(ours) == _norm(theirs)
    assert len(ours["input_ids"]) > 2 and set(ours["overflow_to_sample_mapping"]) == {0}
    assert all(len(row) <= 12 for row in ours["input_ids"])
    # every window keeps the whole first sequence
    first_ids = tok(first, add_special_tokens=False)["input_ids"]
    assert all(row[1 : 1 + len(first_ids)] == first_ids for row in ours["input_ids"])


def test_overflow_sample_mapping_over_batch(tok, ref):
    kwargs = dict(truncation=True, max_length=6, stride=1, return_overflowing_tokens=True, padding=True)
    ours, theirs = tok(TEXTS, **kwargs), ref(TEXTS, **kwargs)
    assert ours["overflow_to_sample_mapping"] == theirs["overflow_to_sample_mapping"]
    assert sorted(set(ours["overflow_to_sample_mapping"])) == list(range(len(TEXTS)))
    assert _norm(ours) == _norm(theirs)


@pytest.mark.parametrize("pair", ["", "second"])
def test_single_pair_and_empty_pair(tok, ref, pair):
    # transformers treats text_pair="" of a single input as "no pair"; a batch keeps the empty pair
    assert _norm(tok("first", pair)) == _norm(ref("first", pair))
    assert _norm(tok(["first"], [pair])) == _norm(ref(["first"], [pair]))


@pytest.mark.parametrize(
    "text",
    ["The capital is [MASK].", "[MASK]", "[MASK] first", "two  [MASK]  spaces", "x [MASK][MASK] [MASK]"],
)
def test_mask_lstrip(tok, ref, text):
    ours = tok(text, return_offsets_mapping=True)
    assert _norm(ours) == _norm(ref(text, return_offsets_mapping=True))
    ids, tokens = ours["input_ids"], ours.tokens()
    positions = [i for i, token_id in enumerate(ids) if token_id == tok.mask_token_id]
    assert len(positions) == text.count("[MASK]")
    for i in positions:
        # lstrip: the whitespace before [MASK] belongs to it, never to a separate "Ġ" token before it
        start, end = ours["offset_mapping"][i]
        assert text[start:end].strip() == "[MASK]" and not tokens[i - 1].endswith("Ġ")


def test_truncation_true_uses_model_max_length(tok, ref, caplog):
    long_text = "word " * 9000
    ours = tok(long_text, truncation=True)
    assert len(ours["input_ids"]) == tok.model_max_length == 8192
    assert ours["input_ids"][-1] == tok.sep_token_id
    assert _norm(ours) == _norm(ref(long_text, truncation=True))
    with caplog.at_level(logging.WARNING, logger="modernbert.tokenizer"):
        untruncated = Tokenizer.from_pretrained(tok.name_or_path)(long_text)
    assert len(untruncated["input_ids"]) > 8192
    assert "longer than the specified maximum" in caplog.text


def test_batch_alignment_helpers(tok, ref):
    ours, theirs = tok(TEXTS, padding=True), ref(TEXTS, padding=True)
    for row in range(len(TEXTS)):
        assert ours.word_ids(row) == theirs.word_ids(row)
        assert ours.sequence_ids(row) == theirs.sequence_ids(row)
        assert ours.tokens(row) == theirs.tokens(row)
    assert ours.word_ids() == theirs.word_ids()
    assert ours.token_to_chars(0, 1) == tuple(theirs.token_to_chars(0, 1))
    assert ours.char_to_token(0, 5) == theirs.char_to_token(0, 5)
    assert ours.token_to_word(0, 2) == theirs.token_to_word(0, 2)
    assert ours.token_to_sequence(0, 1) == theirs.token_to_sequence(0, 1) == 0
    assert ours.word_to_tokens(0, 1) == tuple(theirs.word_to_tokens(0, 1))
    assert ours.word_to_chars(0, 1) == tuple(theirs.word_to_chars(0, 1))
    assert ours.char_to_word(0, 5) == theirs.char_to_word(0, 5)
    assert ours.n_sequences == theirs.n_sequences == 1
    assert ours.word_ids(4)[:2] == [None, None]  # "" -> [CLS] [SEP] + padding


def test_tokenize_and_encode(tok, ref):
    for text in TEXTS:
        assert tok.tokenize(text) == ref.tokenize(text)
        assert tok.encode(text) == ref.encode(text)
    assert tok.tokenize("a", "b", add_special_tokens=True) == ref.tokenize("a", "b", add_special_tokens=True)
    assert tok.tokenize("The capital is [MASK].")[-2:] == [" [MASK]", "."]


def test_split_into_words(tok, ref):
    words = [["Hello", "world", "!"], ["naïve", "café"]]
    assert _norm(tok(words, is_split_into_words=True)) == _norm(ref(words, is_split_into_words=True))
    assert _norm(tok(words[0], is_split_into_words=True)) == _norm(ref(words[0], is_split_into_words=True))
    word_ids = tok(words, is_split_into_words=True).word_ids(0)
    assert word_ids[0] is None and word_ids[-1] is None
    assert sorted({w for w in word_ids if w is not None}) == [0, 1, 2]


# ---------------------------------------------------------------------------------------------------------------
# decoding and conversions
# ---------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("skip_special_tokens", [False, True])
@pytest.mark.parametrize("clean_up", [None, True, False])
def test_decode_matches(tok, ref, skip_special_tokens, clean_up):
    batch = ref(TEXTS + [p[0] for p in PAIRS], padding=True)["input_ids"]
    kwargs = {"skip_special_tokens": skip_special_tokens, "clean_up_tokenization_spaces": clean_up}
    assert tok.batch_decode(batch, **kwargs) == ref.batch_decode(batch, **kwargs)
    for ids in batch:
        assert tok.decode(ids, **kwargs) == ref.decode(ids, **kwargs)
    tensor = torch.tensor(batch)
    assert tok.batch_decode(tensor, **kwargs) == ref.batch_decode(tensor, **kwargs)
    assert tok.decode(tensor, **kwargs) == ref.decode(tensor, **kwargs)  # 2-D → list of str
    assert tok.decode(tensor[0], **kwargs) == ref.decode(tensor[0], **kwargs)
    assert tok.decode(np.array(batch[0]), **kwargs) == ref.decode(np.array(batch[0]), **kwargs)
    decoded = tok.decode(batch[0], **kwargs)
    assert ("[CLS]" in decoded) is not skip_special_tokens


@pytest.mark.parametrize("text", [t for t in TEXTS if "[MASK]" not in t])
def test_decode_round_trip(tok, text):
    # byte-level BPE is lossless: skipping the added specials gives the text back exactly
    assert tok.decode(tok(text)["input_ids"], skip_special_tokens=True) == text


def test_decode_scalars_pairs_and_edge_cases(tok, ref):
    pair_ids = ref(*PAIRS[0])["input_ids"]
    assert tok.decode(pair_ids) == ref.decode(pair_ids)
    assert tok.decode(tok.mask_token_id) == ref.decode(ref.mask_token_id) == "[MASK]"
    assert tok.decode(torch.tensor(tok.cls_token_id)) == "[CLS]"
    assert tok.decode([]) == ref.decode([]) == ""
    assert tok.batch_decode([]) == ref.batch_decode([]) == []
    # <|endoftext|> is special in the backend but not a named token: decode skips it, convert_ids_to_tokens doesn't
    eot = tok.convert_tokens_to_ids("<|endoftext|>")
    assert tok.decode([eot, 40], skip_special_tokens=True) == ref.decode([eot, 40], skip_special_tokens=True)
    assert tok.convert_ids_to_tokens(
        [eot, 40, tok.pad_token_id], skip_special_tokens=True
    ) == ref.convert_ids_to_tokens([eot, 40, ref.pad_token_id], skip_special_tokens=True)
    assert tok.decode(tok("a b")) == ref.decode(ref("a b")) == tok.decode(tok("a b")["input_ids"])  # dict input
    assert tok.decode(tok(["a", "b"], padding=True, return_tensors="pt")) == ["[CLS]a[SEP]", "[CLS]b[SEP]"]
    assert tok.decode([10_000, 40]) == ref.decode([10_000, 40])  # unknown ids are dropped


def test_bpe_cleanup_can_be_forced(folder):
    # transformers >= 5 ignores clean_up_tokenization_spaces for BPE unless explicitly forced
    kwargs = {"clean_up_tokenization_spaces_for_bpe_even_though_it_will_corrupt_output": True}
    ours = Tokenizer.from_pretrained(folder, **kwargs)
    theirs = transformers.AutoTokenizer.from_pretrained(str(folder), **kwargs)
    ids = ours("Hello , world .")["input_ids"]
    assert ours.decode(ids) == theirs.decode(ids) == "[CLS]Hello, world.[SEP]"
    assert ours.decode(ids, clean_up_tokenization_spaces=False) == "[CLS]Hello , world .[SEP]"


@pytest.mark.parametrize("ids", [5, [5, 40, 511], [507, 508], [10_000], []])
@pytest.mark.parametrize("skip", [False, True])
def test_convert_ids_to_tokens(tok, ref, ids, skip):
    assert tok.convert_ids_to_tokens(ids, skip_special_tokens=skip) == ref.convert_ids_to_tokens(
        ids, skip_special_tokens=skip
    )


@pytest.mark.parametrize("tokens", ["[MASK]", "Ġthe", "not-a-token", ["[CLS]", "a", "zzzzzz", "[PAD]"], []])
def test_convert_tokens_to_ids(tok, ref, tokens):
    assert tok.convert_tokens_to_ids(tokens) == ref.convert_tokens_to_ids(tokens)


def test_convert_tensor_ids_and_tokens_to_string(tok, ref):
    ids = torch.tensor([508, 40, 41, 509])
    assert tok.convert_ids_to_tokens(ids) == ref.convert_ids_to_tokens(ids.tolist())
    tokens = ref.convert_ids_to_tokens(ref("A naïve café")["input_ids"])
    assert tok.convert_tokens_to_string(tokens) == ref.convert_tokens_to_string(tokens)
    assert tok.get_special_tokens_mask(ids.tolist(), already_has_special_tokens=True) == ref.get_special_tokens_mask(
        ids.tolist(), already_has_special_tokens=True
    )


# ---------------------------------------------------------------------------------------------------------------
# BatchEncoding and pad
# ---------------------------------------------------------------------------------------------------------------
def test_batch_encoding_behaviour(tok):
    enc = tok(["a b", "c"], padding=True, return_tensors="pt")
    assert isinstance(enc, BatchEncoding) and isinstance(enc, dict)
    assert list(enc.keys()) == ["input_ids", "attention_mask"]
    assert enc.input_ids is enc["input_ids"] and enc.input_ids.dtype == torch.int64
    assert enc.to("cpu") is enc and enc.attention_mask.device.type == "cpu"
    assert enc[0].ids == enc.input_ids[0].tolist()  # int index -> tokenizers.Encoding
    assert enc[:1]["input_ids"].shape == (1, enc.input_ids.shape[1])
    with pytest.raises(AttributeError):
        _ = enc.token_type_ids
    with pytest.raises(TypeError, match="device"):
        enc.to(torch.float16)
    restored = pickle.loads(pickle.dumps(enc))
    assert torch.equal(restored.input_ids, enc.input_ids) and restored.word_ids(0) == enc.word_ids(0)
    assert BatchEncoding({"input_ids": [[1, 2]]}, tensor_type="pt").input_ids.shape == (1, 2)


def test_empty_input_tensor_is_int64(tok, ref):
    ours = tok("", add_special_tokens=False, return_tensors="pt")
    assert ours.input_ids.dtype == torch.int64 and ours.input_ids.shape == (1, 0)
    assert _norm(ours) == _norm(ref("", add_special_tokens=False, return_tensors="pt"))


@pytest.mark.parametrize(
    "kwargs",
    [
        {},
        {"padding": "max_length", "max_length": 16},
        {"pad_to_multiple_of": 8},
        {"return_tensors": "pt"},
        {"padding_side": "left"},
    ],
)
def test_pad_matches(tok, ref, kwargs):
    features = [dict(tok(t, return_special_tokens_mask=True)) for t in ["a b c", "hello there my friend", ""]]
    ours = tok.pad([dict(f) for f in features], **kwargs)
    theirs = ref.pad([dict(f) for f in features], **kwargs)
    assert _norm(ours) == _norm(theirs)
    tensors = [{k: torch.tensor(v) for k, v in f.items()} for f in features]
    assert _norm(tok.pad(tensors, **kwargs)) == _norm(ref.pad(tensors, **kwargs))


def test_tokenizer_pickles_and_deepcopies(tok):
    for clone in (pickle.loads(pickle.dumps(tok)), copy.deepcopy(tok)):
        assert clone is not tok and clone.mask_token_id == tok.mask_token_id
        assert _norm(clone(TEXTS, padding=True)) == _norm(tok(TEXTS, padding=True))


def test_thread_safety_of_per_call_settings(tok):
    expected = {
        "pad": tok(TEXTS, padding="max_length", max_length=32, truncation=True)["input_ids"],
        "raw": tok(TEXTS)["input_ids"],
    }

    def work(i: int):
        if i % 2:
            return "pad", tok(TEXTS, padding="max_length", max_length=32, truncation=True)["input_ids"]
        return "raw", tok(TEXTS)["input_ids"]

    with ThreadPoolExecutor(4) as pool:
        for kind, ids in pool.map(work, range(40)):
            assert ids == expected[kind]


# ---------------------------------------------------------------------------------------------------------------
# loading and saving
# ---------------------------------------------------------------------------------------------------------------
def test_save_pretrained_round_trip(tok, ref, tmp_path):
    tok(TEXTS, padding="max_length", max_length=40, truncation=True)  # per-call state must not leak into the file
    files = tok.save_pretrained(tmp_path)
    assert sorted(Path(f).name for f in files) == ["special_tokens_map.json", "tokenizer.json", "tokenizer_config.json"]
    saved = json.loads((tmp_path / "tokenizer.json").read_text())
    assert saved["padding"] is None and saved["truncation"] is None
    ours, theirs = Tokenizer.from_pretrained(tmp_path), transformers.AutoTokenizer.from_pretrained(str(tmp_path))
    for reloaded in (ours, theirs):
        assert reloaded.all_special_ids == ref.all_special_ids
        assert reloaded.model_max_length == ref.model_max_length
        assert reloaded.model_input_names == ref.model_input_names
    kwargs = dict(padding=True, return_offsets_mapping=True, return_special_tokens_mask=True)
    expected = _norm(ref(TEXTS, **kwargs))
    assert _norm(ours(TEXTS, **kwargs)) == expected == _norm(theirs(TEXTS, **kwargs))
    assert ours.decode(ours(TEXTS[0])["input_ids"]) == ref.decode(ref(TEXTS[0])["input_ids"])


def test_load_transformers_saved_folder(ref, tmp_path):
    ref.save_pretrained(tmp_path)  # transformers 5 writes no special_tokens_map.json
    ours = Tokenizer.from_pretrained(tmp_path)
    assert ours.all_special_tokens == ref.all_special_tokens
    assert _norm(ours(TEXTS, padding=True)) == _norm(ref(TEXTS, padding=True))


def test_from_pretrained_offline_local_folder(folder, ref, monkeypatch, no_network):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    ours = Tokenizer.from_pretrained(str(folder))
    assert _norm(ours(TEXTS, padding=True)) == _norm(ref(TEXTS, padding=True))
    assert no_network == []


def test_from_pretrained_overrides(folder):
    kwargs = {"model_max_length": 16, "padding_side": "left", "truncation_side": "left"}
    ours = Tokenizer.from_pretrained(folder, **kwargs)
    theirs = transformers.AutoTokenizer.from_pretrained(str(folder), **kwargs)
    assert ours.model_max_length == 16
    text = "one two three four five six seven eight nine ten eleven twelve thirteen fourteen"
    assert _norm(ours([text, "a"], truncation=True, padding=True)) == _norm(
        theirs([text, "a"], truncation=True, padding=True)
    )
    with pytest.raises(TypeError, match="bogus"):
        Tokenizer.from_pretrained(folder, bogus=1)


def test_from_pretrained_hub_cache_offline(folder, tmp_path, monkeypatch, no_network):
    """A repo id resolves through the standard hub cache layout without network in offline mode."""
    repo = tmp_path / "models--someone--tiny-modernbert"
    commit = "0123456789abcdef0123456789abcdef01234567"
    snapshot = repo / "snapshots" / commit
    snapshot.mkdir(parents=True)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(commit)
    for name in ("tokenizer.json", "tokenizer_config.json"):  # special_tokens_map.json is optional
        (snapshot / name).write_bytes((folder / name).read_bytes())
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    ours = Tokenizer.from_pretrained("someone/tiny-modernbert", cache_dir=tmp_path)
    assert ours.mask_token_id == 511 and ours.model_max_length == 8192
    assert ours("The capital is [MASK].")["input_ids"][-3] == 511
    assert no_network == []


def test_from_pretrained_missing_hub_id_offline(tmp_path, monkeypatch, no_network):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(FileNotFoundError, match=r"tokenizer\.json.*nobody/no-such-model|nobody/no-such-model"):
        Tokenizer.from_pretrained("nobody/no-such-model", cache_dir=tmp_path)
    assert no_network == []


@pytest.mark.parametrize("kind", ["empty_folder", "missing_path", "file"])
def test_from_pretrained_bad_paths(tmp_path, folder, kind, no_network):
    if kind == "empty_folder":
        with pytest.raises(
            FileNotFoundError, match=rf"tokenizer\.json.*{tmp_path.name}|{tmp_path.name}.*tokenizer\.json"
        ):
            Tokenizer.from_pretrained(tmp_path)
    elif kind == "missing_path":
        with pytest.raises(FileNotFoundError, match="does not exist"):
            Tokenizer.from_pretrained(tmp_path / "nope" / "deeper")
    else:
        with pytest.raises(ValueError, match="folder"):
            Tokenizer.from_pretrained(folder / "tokenizer.json")
    assert no_network == []


# ---------------------------------------------------------------------------------------------------------------
# bad input
# ---------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "text_pair", "match"),
    [
        (5, None, "`text` must be"),
        (None, None, "`text` is required"),
        ([], None, "empty list"),
        ([1, 2], None, r"`text\[0\]`"),
        ([["a", "b", "c"]], None, r"`text\[0\]`"),
        ([("a",)], None, r"`text\[0\]`"),
        (["ok", {"a": 1}], None, r"`text\[1\]`"),
        ({"a": 1}, None, "`text` must be"),
        (["a", "b"], "c", "`text_pair` must be a list"),
        (["a", "b"], ["c"], "batch length"),
        ("a", ["b"], "`text_pair` must be a str"),
        (["a"], [3], r"`text_pair\[0\]`"),
        (b"bytes", None, "`text` must be"),
    ],
)
def test_bad_text_raises(tok, text, text_pair, match):
    with pytest.raises(TokenizerInputError, match=match) as info:
        tok(text, text_pair)
    assert isinstance(info.value, TypeError) and isinstance(info.value, ValueError)


def test_ragged_tensors_need_padding(tok, ref):
    with pytest.raises(ValueError, match="padding=True"):
        tok(["short", "a much longer sentence here"], return_tensors="pt")
    with pytest.raises(ValueError):
        ref(["short", "a much longer sentence here"], return_tensors="pt")
    assert tok(["short", "a much longer sentence here"], return_tensors="pt", padding=True).input_ids.ndim == 2


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"padding": "bogus"}, "padding"),
        ({"truncation": "bogus"}, "truncation"),
        ({"return_tensors": "tf"}, "return_tensors"),
        ({"max_length": -1}, "max_length"),
        ({"stride": -2}, "stride"),
        ({"padding_side": "middle"}, "padding_side"),
        ({"padding": True, "truncation": True, "max_length": 10, "pad_to_multiple_of": 4}, "multiple"),
        ({"truncation": "only_second", "max_length": 4}, "(?i)truncat"),  # a single text has no second sequence
    ],
)
def test_bad_options_raise(tok, kwargs, match):
    with pytest.raises(ValueError, match=match):
        tok("some text to encode here", **kwargs)


@pytest.mark.parametrize("bad", ["text", ["a", 1], [[1], "x"], 1.5, {"no_ids": [1]}, [-1]])
def test_bad_decode_input_raises(tok, bad):
    with pytest.raises((TypeError, ValueError)):
        tok.decode(bad)


@pytest.mark.parametrize("bad", [None, 5, ["ok", 3]])
def test_bad_convert_tokens_raises(tok, bad):
    with pytest.raises(TypeError, match="str"):
        tok.convert_tokens_to_ids(bad)


def test_bad_convert_ids_raises(tok):
    with pytest.raises(TypeError, match="int"):
        tok.convert_ids_to_tokens(["a"])
