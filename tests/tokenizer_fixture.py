"""Build a tiny tokenizer laid out exactly like ModernBERT's, for tests.

The real ``answerdotai/ModernBERT-base`` tokenizer is a byte-level BPE (OLMo vocabulary) whose
special tokens ``[UNK] [CLS] [SEP] [PAD] [MASK]`` are *added tokens at the end of the vocabulary*
(ids 50280-50284), with ``[MASK]`` stripping the space on its left. A ``<|endoftext|>`` special
token that is not one of the named special tokens sits just before them (id 50279). The
post-processor wraps inputs as ``[CLS] A [SEP]`` / ``[CLS] A [SEP] B [SEP]``.

:func:`write_tokenizer` reproduces that layout with a BPE trained on a few built-in sentences, so
tests never need the hub. Other test modules import it: keep its signature stable.
"""

from __future__ import annotations

import json
from pathlib import Path

from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers, processors, trainers

__all__ = ["SPECIAL_TOKENS", "TRAINING_TEXT", "write_tokenizer"]

#: The named special tokens, in the order (and relative ids) of the real model.
SPECIAL_TOKENS: tuple[str, ...] = ("[UNK]", "[CLS]", "[SEP]", "[PAD]", "[MASK]")

#: A non-named special token placed right before the named ones, like ModernBERT's id 50279.
_EOT = "<|endoftext|>"

#: Small, varied English corpus (plus a little unicode) that the BPE is trained on.
TRAINING_TEXT: tuple[str, ...] = (
    "The capital of France is Paris.",
    "The quick brown fox jumps over the lazy dog.",
    "ModernBERT is a modern bidirectional encoder with a long context window.",
    "She sold seashells by the seashore, didn't she?",
    "I can't believe it's already 2024; time flies!",
    "A naïve café owner served crème brûlée to the visitors.",
    "日本の首都は東京です。",
    "Tokyo is the capital of Japan (日本), and Kyoto was the old one.",
    "Machine learning models need data, compute, and patience.",
    "Hello, world! How are you doing today?",
    "The weather in London is often rainy, but summers can be warm.",
    "Attention is all you need, or so they say.",
    "Rotary position embeddings encode positions by rotating query and key vectors.",
    'He said: "Never give up," and then walked away.',
    "Numbers like 3.14159, 42, and 1,000,000 appear in text too.",
    "Email me at someone@example.com or visit https://example.org/page?id=7.",
    "The children played football in the park until sunset.",
    "Über, façade, jalapeño and résumé are borrowed words.",
    "Mathematics: x^2 + y^2 = z^2 holds for right triangles.",
    "Paris, Berlin, Madrid, Rome and Lisbon are European capitals.",
    "We're testing the tokenizer with contractions: you'll, they've, I'm, we'd.",
    "Transformers process tokens in parallel rather than sequentially.",
    "Emoji 🙂 and symbols like © or € sometimes show up.",
    "The mask token is used for masked language modeling.",
    "Sentence pairs are separated by a separator token.",
    "Padding makes every sequence in a batch the same length.",
    "Truncation cuts sequences that are longer than the maximum length.",
    "The library was quiet except for the sound of turning pages.",
    "Birds migrate south for the winter and return in spring.",
    "Good morning! Would you like some coffee or tea?",
    "Science advances one funeral at a time, said Max Planck.",
    "The river flows through the valley toward the sea.",
    "Programming in Python is fun; debugging is sometimes less fun.",
    "New York, Los Angeles, and Chicago are large American cities.",
    "The old man and the sea is a short novel by Ernest Hemingway.",
    "Why did the chicken cross the road? To get to the other side.",
    "Grammar, spelling, and punctuation all matter in formal writing.",
    "Zürich and São Paulo have characters outside plain ASCII.",
    "Deep learning has changed natural language processing forever.",
    "   Leading spaces, double  spaces and trailing spaces   ",
    "Tabs\tand\nnewlines are whitespace as well.",
    "The end.",
)


def _build(vocab_size: int) -> Tokenizer:
    n_added = len(SPECIAL_TOKENS) + 1  # + <|endoftext|>
    alphabet = pre_tokenizers.ByteLevel.alphabet()
    if vocab_size < len(alphabet) + n_added:
        raise ValueError(
            f"vocab_size={vocab_size} is too small: a byte-level BPE needs at least "
            f"{len(alphabet) + n_added} ids ({len(alphabet)} bytes + {n_added} added tokens)"
        )
    tok = Tokenizer(models.BPE())
    tok.normalizer = None
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=True, use_regex=True)
    tok.decoder = decoders.ByteLevel(add_prefix_space=True, trim_offsets=True, use_regex=True)
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size - n_added,
        min_frequency=1,
        show_progress=False,
        initial_alphabet=sorted(alphabet),
        special_tokens=[],
    )
    tok.train_from_iterator(list(TRAINING_TEXT), trainer=trainer)

    tok.add_special_tokens([AddedToken(_EOT, normalized=False, special=True)])
    tok.add_special_tokens(
        [AddedToken(t, lstrip=(t == "[MASK]"), rstrip=False, normalized=False, special=True) for t in SPECIAL_TOKENS]
    )
    cls_id, sep_id = tok.token_to_id("[CLS]"), tok.token_to_id("[SEP]")
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS]:0 $A:0 [SEP]:0",
        pair="[CLS]:0 $A:0 [SEP]:0 $B:1 [SEP]:1",
        special_tokens=[("[CLS]", cls_id), ("[SEP]", sep_id)],
    )
    if tok.get_vocab_size(with_added_tokens=True) > vocab_size:  # pragma: no cover - guarded above
        raise AssertionError("fixture tokenizer exceeds vocab_size")
    return tok


def _added_token_entry(content: str, *, special: bool) -> dict[str, object]:
    return {
        "content": content,
        "lstrip": content == "[MASK]",
        "normalized": False,
        "rstrip": False,
        "single_word": False,
        "special": special,
    }


def write_tokenizer(folder: str | Path, vocab_size: int = 512) -> dict[str, int]:
    """Write ``tokenizer.json``, ``tokenizer_config.json`` and ``special_tokens_map.json`` into ``folder``.

    The layout mirrors ``answerdotai/ModernBERT-base``: a byte-level BPE, then ``<|endoftext|>``,
    then ``[UNK] [CLS] [SEP] [PAD] [MASK]`` as the last ids (``[MASK]`` with ``lstrip=True``), a
    ``[CLS] $A [SEP] ($B [SEP])`` template post-processor, a ByteLevel decoder and the same
    ``tokenizer_config.json`` keys (``model_max_length`` 8192, ``clean_up_tokenization_spaces``
    true, no ``token_type_ids``). The total vocabulary, added tokens included, is ``<= vocab_size``.
    Output is deterministic.

    Args:
        folder: Directory to write into (created if missing).
        vocab_size: Upper bound on the total number of ids (must be >= 262).

    Returns:
        The special token ids: ``unk/cls/sep/pad/mask_token_id`` plus ``bos_token_id`` (= CLS) and
        ``eos_token_id`` (= SEP), as ModernBERT's model config sets them.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    tok = _build(vocab_size)
    ids = {t: tok.token_to_id(t) for t in (_EOT, *SPECIAL_TOKENS)}

    tokenizer_json = json.loads(tok.to_str())
    (folder / "tokenizer.json").write_text(
        json.dumps(tokenizer_json, indent=2, ensure_ascii=False) + "\n", encoding="utf-8"
    )

    added_tokens_decoder = {str(ids[t]): _added_token_entry(t, special=True) for t in (_EOT, *SPECIAL_TOKENS)}
    config = {
        "added_tokens_decoder": added_tokens_decoder,
        "clean_up_tokenization_spaces": True,
        "cls_token": "[CLS]",
        "mask_token": "[MASK]",
        "model_input_names": ["input_ids", "attention_mask"],
        "model_max_length": 8192,
        "pad_token": "[PAD]",
        "sep_token": "[SEP]",
        "tokenizer_class": "PreTrainedTokenizerFast",
        "unk_token": "[UNK]",
    }
    (folder / "tokenizer_config.json").write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")

    def entry(t: str) -> dict[str, object]:
        e = _added_token_entry(t, special=True)
        e.pop("special")
        return e

    special_map = {
        "cls_token": entry("[CLS]"),
        "mask_token": entry("[MASK]"),
        "pad_token": entry("[PAD]"),
        "sep_token": entry("[SEP]"),
        "unk_token": entry("[UNK]"),
    }
    (folder / "special_tokens_map.json").write_text(json.dumps(special_map, indent=2) + "\n", encoding="utf-8")

    return {
        "unk_token_id": ids["[UNK]"],
        "cls_token_id": ids["[CLS]"],
        "sep_token_id": ids["[SEP]"],
        "pad_token_id": ids["[PAD]"],
        "mask_token_id": ids["[MASK]"],
        "bos_token_id": ids["[CLS]"],
        "eos_token_id": ids["[SEP]"],
    }
