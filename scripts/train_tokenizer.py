#!/usr/bin/env python
"""Train a byte-level BPE tokenizer in ModernBERT's layout on the corpus from ``build_corpus.py``.

Layout (as in ``answerdotai/ModernBERT-base``):

* NFC normaliser, ``ByteLevel`` pre-tokenizer (``add_prefix_space=False``, regex split) and decoder;
* the ordinary BPE vocabulary first (ids ``0 .. n-1``), then the special added tokens
  ``[UNK] [CLS] [SEP] [PAD] [MASK]`` at the end (``[PAD]`` is *not* id 0); ``[MASK]`` has
  ``lstrip=True`` so ``"The [MASK]"`` masks the word together with its leading space;
* ``TemplateProcessing`` post-processor ``[CLS] $A [SEP]`` / ``[CLS] $A [SEP] $B [SEP]``.

``--vocab-size`` is the *total* size including the 5 special tokens; choose a multiple of 64 and the
model's ``vocab_size`` equals it (otherwise the printed ``model vocab_size`` is rounded up to the next
multiple of 64).  Writes ``tokenizer.json``, ``tokenizer_config.json`` and ``special_tokens_map.json``,
then checks that ``transformers.AutoTokenizer`` (if installed) loads the folder and round-trips text.

Usage::

    python scripts/train_tokenizer.py --corpus data/corpus/train.jsonl --out data/tokenizer --vocab-size 8192
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterator
from pathlib import Path

SPECIAL_TOKENS = ["[UNK]", "[CLS]", "[SEP]", "[PAD]", "[MASK]"]


def iter_texts(path: Path) -> Iterator[str]:
    """Yield document texts from a ``.jsonl`` (``{"text": ...}`` per line) or plain-text file."""
    with path.open(encoding="utf-8") as f:
        for line in f:
            if not line.strip():
                continue
            yield json.loads(line)["text"] if path.suffix == ".jsonl" else line.rstrip("\n")


def train_tokenizer(corpus: list[Path], vocab_size: int, min_frequency: int = 2):
    """Train and return a ``tokenizers.Tokenizer`` with ``vocab_size`` ids in total (specials last)."""
    from tokenizers import AddedToken, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors
    from tokenizers.trainers import BpeTrainer

    n_special = len(SPECIAL_TOKENS)
    if vocab_size < 256 + n_special + 1:
        raise ValueError(f"vocab_size must be at least {256 + n_special + 1} (256 bytes + specials), got {vocab_size}")
    for p in corpus:
        if not p.is_file():
            raise ValueError(f"corpus file {p} does not exist")

    tok = Tokenizer(models.BPE(unk_token=None, fuse_unk=False, byte_fallback=False))
    tok.normalizer = normalizers.NFC()
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=True, use_regex=True)
    tok.decoder = decoders.ByteLevel(add_prefix_space=False, trim_offsets=True, use_regex=True)
    trainer = BpeTrainer(
        vocab_size=vocab_size - n_special,
        min_frequency=min_frequency,
        show_progress=False,
        special_tokens=[],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )

    def texts() -> Iterator[str]:
        for p in corpus:
            yield from iter_texts(p)

    tok.train_from_iterator(texts(), trainer=trainer)
    n_vocab = tok.get_vocab_size(with_added_tokens=False)
    # Specials go at the end, as in ModernBERT.
    tok.add_special_tokens(
        [AddedToken(t, lstrip=(t == "[MASK]"), rstrip=False, normalized=False, special=True) for t in SPECIAL_TOKENS]
    )
    ids = {t: tok.token_to_id(t) for t in SPECIAL_TOKENS}
    if ids["[UNK]"] != n_vocab or ids["[MASK]"] != n_vocab + n_special - 1:
        raise RuntimeError(f"special tokens not at the end of the vocabulary: {ids} (vocab {n_vocab})")
    cls_id, sep_id = ids["[CLS]"], ids["[SEP]"]
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS]:0 $A:0 [SEP]:0",
        pair="[CLS]:0 $A:0 [SEP]:0 $B:1 [SEP]:1",
        special_tokens=[("[CLS]", cls_id), ("[SEP]", sep_id)],
    )
    return tok


def save_tokenizer(tok, out: Path, model_max_length: int) -> dict[str, int]:
    """Write ``tokenizer.json``, ``tokenizer_config.json`` and ``special_tokens_map.json``; return special ids."""
    out.mkdir(parents=True, exist_ok=True)
    tok.save(str(out / "tokenizer.json"))
    ids = {t: tok.token_to_id(t) for t in SPECIAL_TOKENS}
    added = {
        str(ids[t]): {
            "content": t,
            "lstrip": t == "[MASK]",
            "normalized": False,
            "rstrip": False,
            "single_word": False,
            "special": True,
        }
        for t in SPECIAL_TOKENS
    }
    config = {
        "added_tokens_decoder": added,
        "clean_up_tokenization_spaces": True,
        "cls_token": "[CLS]",
        "mask_token": "[MASK]",
        "model_input_names": ["input_ids", "attention_mask"],
        "model_max_length": model_max_length,
        "pad_token": "[PAD]",
        "sep_token": "[SEP]",
        "tokenizer_class": "PreTrainedTokenizerFast",
        "unk_token": "[UNK]",
    }
    (out / "tokenizer_config.json").write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
    special_map = {
        "cls_token": {"content": "[CLS]", "lstrip": False, "normalized": False, "rstrip": False, "single_word": False},
        "mask_token": {"content": "[MASK]", "lstrip": True, "normalized": False, "rstrip": False, "single_word": False},
        "pad_token": {"content": "[PAD]", "lstrip": False, "normalized": False, "rstrip": False, "single_word": False},
        "sep_token": {"content": "[SEP]", "lstrip": False, "normalized": False, "rstrip": False, "single_word": False},
        "unk_token": {"content": "[UNK]", "lstrip": False, "normalized": False, "rstrip": False, "single_word": False},
    }
    (out / "special_tokens_map.json").write_text(json.dumps(special_map, indent=2) + "\n", encoding="utf-8")
    return ids


def check_with_transformers(out: Path, samples: list[str]) -> None:
    """Load ``out`` with ``transformers.AutoTokenizer`` and check round trips (skipped if not installed)."""
    try:
        from transformers import AutoTokenizer
    except ImportError:
        print("transformers not installed; skipping the AutoTokenizer check")
        return
    hf = AutoTokenizer.from_pretrained(str(out))
    for text in samples:
        enc = hf(text)
        ids = enc["input_ids"]
        if ids[0] != hf.cls_token_id or ids[-1] != hf.sep_token_id:
            raise RuntimeError(f"missing [CLS]/[SEP] around {ids}")
        back = hf.decode(ids, skip_special_tokens=True, clean_up_tokenization_spaces=False)
        if back != text:
            raise RuntimeError(f"round trip failed: {text!r} -> {back!r}")
    masked = hf("The Python [MASK] library.")["input_ids"]
    if hf.mask_token_id not in masked:
        raise RuntimeError("[MASK] not recognised as a single token")
    print(f"AutoTokenizer ok: {type(hf).__name__}, {len(hf)} tokens, mask example {hf.convert_ids_to_tokens(masked)}")


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--corpus", type=Path, nargs="+", default=[Path("data/corpus/train.jsonl")])
    ap.add_argument("--out", type=Path, default=Path("data/tokenizer"))
    ap.add_argument("--vocab-size", type=int, default=8192, help="total ids including the 5 special tokens")
    ap.add_argument("--min-frequency", type=int, default=2)
    ap.add_argument("--model-max-length", type=int, default=1024)
    args = ap.parse_args(argv)
    try:
        tok = train_tokenizer(args.corpus, args.vocab_size, args.min_frequency)
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    ids = save_tokenizer(tok, args.out, args.model_max_length)
    total = tok.get_vocab_size(with_added_tokens=True)
    model_vocab = -(-total // 64) * 64
    print(f"tokenizer: {total} ids ({total - len(SPECIAL_TOKENS)} BPE + {len(SPECIAL_TOKENS)} special) -> {args.out}")
    print(f"special ids: {ids}; model vocab_size (multiple of 64): {model_vocab}")
    samples = [
        "The quick brown fox jumps over the lazy dog.",
        "The json module exposes an API familiar to users of the standard library marshal and pickle modules.",
        "  leading spaces,\ttabs and newlines\nare kept; unicode: café – “quotes” ✓",
    ]
    for s in samples[:2]:
        enc = tok.encode(s)
        print(f"  {len(enc.ids):3d} tokens: {enc.tokens}")
    check_with_transformers(args.out, samples)
    return 0


if __name__ == "__main__":
    sys.exit(main())
