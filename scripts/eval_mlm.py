#!/usr/bin/env python
"""Held-out masked-token accuracy and cloze accuracy of masked-LM models, for the model card.

Two held-out measures, overall and for each group of sources in ``--groups``:

* **masked-token accuracy**, the pretraining's own evaluation (`modernbert.training.pretrain.evaluate`) with the
  same masking settings (``--seq-len``, ``--capacity``, ``--mask-prob``, ``--seed``; the defaults are those of
  today's model card). Masked positions are token positions, so models that share a tokenizer are scored on
  the same positions; a model with another tokenizer is scored on the same text masked the same way in its own
  tokens. The unigram baseline (always the most frequent ordinary token of ``--train``) is scored per tokenizer.
* **masked-word accuracy**, the same for every model whatever its tokenizer: the held-out text is cut into
  chunks of lines (≤ ``--chunk-chars``), and ``--word-frac`` of the words that every model's tokenizer holds as
  one token (with their leading space) are replaced by ``[MASK]`` (seeded per chunk). A word counts when the
  model's top prediction is exactly that word. Its unigram baseline always answers the most frequent such word
  of ``--train``.

The cloze set (``--cloze``, JSON lines ``{"text": "... [MASK] ...", "answers": [...]}``) gives top-1 and
top-5 accuracy: a sentence counts when one of the first k predicted tokens, stripped and lower-cased, is an
accepted answer. With ``--disjoint-from`` the cloze sentences are first checked against those corpus files:
every sentence, with each answer filled in, is reduced to lower-case words; neither it (when shorter than 8
words) nor any of its 8-word windows may occur in the corpus, reduced the same way.

Usage::

    python scripts/eval_mlm.py --train data/corpus/train.jsonl --heldout data/corpus/heldout.jsonl \\
        --model today=path/to/old --model new=runs/tiny2/final --cloze tests/data/cloze.jsonl \\
        --disjoint-from data/corpus/train.jsonl data/corpus/heldout.jsonl --out data/eval/results.json

A ``--model`` is a model folder or a pretraining checkpoint (``runs/NAME/checkpoints/step-*.pt``); a
checkpoint uses the tokenizer of ``--tokenizer``, a folder its own.
"""

from __future__ import annotations

import argparse
import importlib
import json
import random
import re
import sys
from collections import Counter
from pathlib import Path

WINDOW = 8
_WORD = re.compile(r"\w+")
_PLAIN_WORD = re.compile(r"(?<= )[A-Za-z]+(?![\w'-])")


def words(text: str) -> list[str]:
    """Lower-case words of ``text`` (punctuation dropped)."""
    return _WORD.findall(text.lower())


def read_cloze(path: Path) -> list[dict]:
    """The cloze rows: each a ``text`` with exactly one ``[MASK]`` and a non-empty list of ``answers``."""
    rows = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        row = json.loads(line)
        if row["text"].count("[MASK]") != 1 or not row.get("answers"):
            raise ValueError(f"{path}:{n}: needs exactly one [MASK] and at least one answer")
        rows.append(row)
    return rows


def cloze_windows(row: dict) -> set[str]:
    """The word strings of ``row`` that must not occur in the corpus: 8-word windows of every filled-in sentence
    (the whole sentence when it is shorter)."""
    out = set()
    for answer in row["answers"]:
        w = words(row["text"].replace("[MASK]", answer))
        out.update(" ".join(w[i:i + WINDOW]) for i in range(max(1, len(w) - WINDOW + 1)))
    return out


def cloze_overlaps(rows: list[dict], corpus_files: list[Path]) -> list[tuple[str, str]]:
    """``(sentence, window)`` for every cloze window found in the corpus files (empty: disjoint)."""
    docs = []
    for path in corpus_files:
        with path.open(encoding="utf-8") as f:
            for line in f:
                if line.strip():
                    docs.append(" ".join(words(json.loads(line)["text"])))
    corpus = " | ".join(docs)
    return [(row["text"], w) for row in rows for w in sorted(cloze_windows(row)) if f" {w} " in f" {corpus} "]


def load_model(spec: str):
    """A `ModernBertForMaskedLM` (float32, eval mode) from a model folder or a pretraining checkpoint."""
    import torch

    from modernbert.config import ModernBertConfig
    from modernbert.model import ModernBertForMaskedLM

    path = Path(spec)
    if path.suffix == ".pt":
        state = torch.load(path, map_location="cpu", weights_only=False)
        model = ModernBertForMaskedLM(ModernBertConfig.from_dict(state["model_config"]))
        model.load_state_dict(state["model"])
    else:
        model = ModernBertForMaskedLM.from_pretrained(str(path), dtype=torch.float32)
    return model.float().eval()


def cloze_scores(rows: list[dict], preds: list[list[tuple[str, float]]]) -> dict:
    """Top-1 and top-5 accuracy of ``preds`` on ``rows``."""
    def hit(row, top, k):
        answers = {a.lower() for a in row["answers"]}
        return any(tok.lower() in answers for tok, _ in top[:k])

    n = len(rows)
    return {
        "top1": sum(hit(r, p, 1) for r, p in zip(rows, preds)) / n,
        "top5": sum(hit(r, p, 5) for r, p in zip(rows, preds)) / n,
        "n": n,
    }


def chunks(text: str, max_chars: int) -> list[str]:
    """``text`` cut at line ends into pieces of at most ``max_chars`` (a longer line is cut at a space)."""
    out, cur = [], ""
    for line in text.splitlines():
        if cur and len(cur) + 1 + len(line) > max_chars:
            out.append(cur)
            cur = ""
        while len(line) > max_chars:
            cut = line.rfind(" ", 0, max_chars)
            cut = cut if cut > 0 else max_chars
            out.append(line[:cut])
            line = line[cut:]
        cur = f"{cur}\n{line}" if cur else line
    if cur.strip():
        out.append(cur)
    return [c for c in out if c.strip()]


def single_token(tokenizers: list, word: str, cache: dict[str, bool]) -> bool:
    """Whether every tokenizer encodes ``" " + word`` as one ordinary token."""
    if word not in cache:
        cache[word] = all(len(t.encode(" " + word, add_special_tokens=False).ids) == 1 for t in tokenizers)
    return cache[word]


def masked_word_sets(texts: list[str], tokenizers: list, frac: float, seed: int, max_chars: int):
    """``(masked text, words)`` per chunk of ``texts``: a seeded ``frac`` of the chunk's words that are one token
    in every tokenizer, each replaced by ``[MASK]`` (its leading space kept, which the mask token absorbs)."""
    known: dict[str, bool] = {}
    out = []
    for n, chunk in enumerate(c for text in texts for c in chunks(text, max_chars)):
        if "[MASK]" in chunk:
            continue
        spans = [m for m in _PLAIN_WORD.finditer(chunk) if single_token(tokenizers, m.group(), known)]
        if not spans:
            continue
        rng = random.Random(seed * 1_000_003 + n)
        picked = sorted(rng.sample(spans, max(1, round(frac * len(spans)))), key=lambda m: m.start())
        pieces, at = [], 0
        for m in picked:
            pieces += [chunk[at:m.start()], "[MASK]"]
            at = m.end()
        out.append(("".join(pieces) + chunk[at:], [m.group() for m in picked]))
    return out


def word_accuracy(model, tokenizer, special, sets, seq_len: int) -> dict:
    """Share of masked words whose top prediction (special tokens excluded) is exactly the word."""
    import torch

    hits = n = 0
    for text, answers in sets:
        ids = tokenizer.encode(text).ids
        if len(ids) > seq_len:
            raise ValueError(f"a chunk of {len(ids)} tokens is longer than --seq-len {seq_len}; lower --chunk-chars")
        where = [i for i, t in enumerate(ids) if t == special.mask]
        if len(where) != len(answers):
            raise ValueError(f"{len(answers)} words masked but {len(where)} [MASK] tokens in {text[:60]!r}")
        with torch.no_grad():
            logits = model(input_ids=torch.tensor([ids])).logits[0, where]
        top = logits[:, : special.num_regular].argmax(-1).tolist()
        hits += sum(tokenizer.decode([i]).strip() == w for i, w in zip(top, answers))
        n += len(answers)
    return {"accuracy": hits / n, "words": n}


def word_unigram(train: Path, sets_by_group: dict[str, list], tokenizers: list) -> dict:
    """The most frequent word of ``train`` that every tokenizer holds as one token, and its accuracy per group."""
    counts: Counter = Counter()
    with train.open(encoding="utf-8") as f:
        for line in f:
            if line.strip():
                counts.update(_PLAIN_WORD.findall(json.loads(line)["text"]))
    known: dict[str, bool] = {}
    word = next(w for w, _ in counts.most_common() if single_token(tokenizers, w, known))
    out = {}
    for group, sets in sets_by_group.items():
        answers = [w for _, ws in sets for w in ws]
        out[group] = {"word": word, "accuracy": sum(a == word for a in answers) / len(answers), "words": len(answers)}
    return out


def pooled_words(results: list[dict]) -> dict:
    """Masked-word accuracy of several groups taken together (weighted by their words)."""
    n = sum(r["words"] for r in results)
    return {"accuracy": sum(r["accuracy"] * r["words"] for r in results) / n, "words": n}


def split_heldout(heldout: Path, groups: dict[str, list[str]], work: Path) -> dict[str, Path]:
    """One held-out file per group of sources, written under ``work``; every source must be in one group."""
    lines = [json.loads(line) for line in heldout.read_text(encoding="utf-8").splitlines() if line.strip()]
    missing = {r["source"] for r in lines} - {s for sources in groups.values() for s in sources}
    if missing:
        raise ValueError(f"sources {sorted(missing)} of {heldout} are in no --groups group")
    work.mkdir(parents=True, exist_ok=True)
    files = {}
    for name, sources in groups.items():
        path = work / f"heldout-{name}.jsonl"
        path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in lines if r["source"] in sources),
                        encoding="utf-8")
        files[name] = path
    return files


def pooled(results: list[dict]) -> dict:
    """Loss and accuracies of several evaluations taken together (weighted by their positions)."""
    n, m = sum(r["predictions"] for r in results), sum(r["mask_predictions"] for r in results)
    return {
        "loss": sum(r["loss"] * r["predictions"] for r in results) / n,
        "accuracy": sum(r["accuracy"] * r["predictions"] for r in results) / n,
        "mask_accuracy": sum(r["mask_accuracy"] * r["mask_predictions"] for r in results) / m,
        "predictions": n,
        "mask_predictions": m,
    }


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", action="append", default=[], metavar="NAME=PATH", help="a model to score (repeat)")
    ap.add_argument("--tokenizer", type=Path, help="tokenizer folder of the models given as checkpoints (.pt)")
    ap.add_argument("--train", type=Path, default=Path("data/corpus/train.jsonl"), help="for the unigram baseline")
    ap.add_argument("--heldout", type=Path, default=Path("data/corpus/heldout.jsonl"))
    ap.add_argument("--groups", default="wordnet+pydoc=wordnet,pydoc;dictionaries=gcide,jargon,devil",
                    help="source groups scored apart: NAME=SRC,SRC;NAME=...")
    ap.add_argument("--seq-len", type=int, default=512)
    ap.add_argument("--capacity", type=int, default=8192, help="tokens per evaluation batch (sets the packing)")
    ap.add_argument("--mask-prob", type=float, default=0.3)
    ap.add_argument("--seed", type=int, default=1234)
    ap.add_argument("--word-frac", type=float, default=0.15, help="share of the eligible words masked")
    ap.add_argument("--chunk-chars", type=int, default=1000, help="longest held-out chunk of the word measure")
    ap.add_argument("--cloze", type=Path, help="cloze set (.jsonl)")
    ap.add_argument("--disjoint-from", type=Path, nargs="*", default=[], help="corpus files the cloze set must avoid")
    ap.add_argument("--work-dir", type=Path, default=Path("data/eval"))
    ap.add_argument("--cache-dir", type=Path, help="token cache (default: WORK_DIR/cache; a run's --cache-dir works)")
    ap.add_argument("--out", type=Path, help="write the results as JSON here")
    args = ap.parse_args(argv)

    models = dict(spec.split("=", 1) for spec in args.model if "=" in spec)
    if len(models) != len(args.model) or any(not v for v in models.values()):
        print("error: give every model as --model NAME=PATH", file=sys.stderr)
        return 2
    results: dict = {"settings": {k: getattr(args, k) for k in ("seq_len", "capacity", "mask_prob", "seed")}}
    rows = read_cloze(args.cloze) if args.cloze else []
    if rows and args.disjoint_from:
        overlaps = cloze_overlaps(rows, args.disjoint_from)
        results["cloze_overlaps"] = overlaps
        print(f"cloze: {len(rows)} sentences, {len(overlaps)} windows found in the corpus", flush=True)
        for text, w in overlaps:
            print(f"  overlap: {text!r}: {w!r}")
        if overlaps:
            print("error: the cloze set is not disjoint from the corpus", file=sys.stderr)
            return 1
    if not models:
        return 0

    import torch

    from modernbert.training.data import (
        IGNORE_INDEX,
        SpecialIds,
        build_eval_batches,
        load_tokenizer,
        token_counts,
        tokenize_corpus,
    )
    from modernbert.training.report import mask_predictions
    pt = importlib.import_module("modernbert.training.pretrain")

    torch.manual_seed(0)
    tok_dirs = {}
    for label, spec in models.items():
        tok_dirs[label] = args.tokenizer if spec.endswith(".pt") else Path(spec)
        if tok_dirs[label] is None:
            print(f"error: --model {label}={spec} is a checkpoint; pass --tokenizer", file=sys.stderr)
            return 2
    tokenizers = {str(d): load_tokenizer(d) for d in tok_dirs.values()}
    cache = args.cache_dir or args.work_dir / "cache"
    groups = {g.split("=")[0]: g.split("=")[1].split(",") for g in args.groups.split(";") if g}
    try:
        files = split_heldout(args.heldout, groups, args.work_dir)
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    # masked-token batches and the unigram baseline, once per tokenizer
    batches: dict[str, dict] = {}
    results["heldout"] = {name: {"unigram": {}} for name in [*files, "all"]}
    for tok_dir, tokenizer in tokenizers.items():
        special = SpecialIds.from_tokenizer(tokenizer)
        counts = token_counts(tokenize_corpus(args.train, tok_dir, cache), special.vocab_size)
        batches[tok_dir] = {}
        for name, path in files.items():
            held = tokenize_corpus(path, tok_dir, cache)
            b = batches[tok_dir][name] = build_eval_batches(
                held, args.seq_len, args.capacity, special, args.mask_prob, args.seed)
            uni = pt.unigram_accuracy(counts, b, special)
            uni.update(token=tokenizer.id_to_token(uni["token_id"]), loss=float("nan"), tokens=held.num_tokens,
                       predictions=sum(int((x.labels != IGNORE_INDEX).sum()) for x in b),
                       mask_predictions=sum(int(x.mask_shown[x.labels != IGNORE_INDEX].sum()) for x in b))
            results["heldout"][name]["unigram"][tok_dir] = uni
        per_group = [results["heldout"][g]["unigram"][tok_dir] for g in files]
        results["heldout"]["all"]["unigram"][tok_dir] = {
            **pooled(per_group), "token": " / ".join(sorted({u["token"] for u in per_group})),
            "tokens": sum(u["tokens"] for u in per_group)}
    # masked words, the same for every model
    texts = {name: [json.loads(line)["text"] for line in path.read_text(encoding="utf-8").splitlines() if line]
             for name, path in files.items()}
    word_sets = {name: masked_word_sets(t, list(tokenizers.values()), args.word_frac, args.seed, args.chunk_chars)
                 for name, t in texts.items()}
    results["words"] = {name: {"unigram": u} for name, u in
                        word_unigram(args.train, word_sets, list(tokenizers.values())).items()}
    results["words"]["all"] = {"unigram": {
        "word": results["words"][next(iter(files))]["unigram"]["word"],
        **pooled_words([results["words"][g]["unigram"] for g in files])}}
    for label, spec in models.items():
        model = load_model(spec)
        tok_dir = str(tok_dirs[label])
        tokenizer = tokenizers[tok_dir]
        special = SpecialIds.from_tokenizer(tokenizer)
        for name in files:
            results["heldout"][name][label] = pt.evaluate(model, batches[tok_dir][name])
            try:
                results["words"][name][label] = word_accuracy(model, tokenizer, special, word_sets[name], args.seq_len)
            except ValueError as e:
                print(f"error: {e}", file=sys.stderr)
                return 2
        results["heldout"]["all"][label] = pooled([results["heldout"][g][label] for g in files])
        results["words"]["all"][label] = pooled_words([results["words"][g][label] for g in files])
        for name in [*files, "all"]:
            r, w = results["heldout"][name][label], results["words"][name][label]
            print(f"{label:10s} {name:14s} loss {r['loss']:.3f} acc {r['accuracy']:.4f} "
                  f"mask-acc {r['mask_accuracy']:.4f} ({r['predictions']} positions); "
                  f"word-acc {w['accuracy']:.4f} ({w['words']} words)", flush=True)
        if rows:
            preds = mask_predictions(model, tokenizer, special, [r["text"] for r in rows])
            scores = cloze_scores(rows, preds)
            results.setdefault("cloze", {})[label] = {**scores, "predictions": preds}
            print(f"{label:10s} cloze top-1 {scores['top1']:.3f} top-5 {scores['top5']:.3f} (n={scores['n']})")
    for name in [*files, "all"]:
        for tok_dir, u in results["heldout"][name]["unigram"].items():
            print(f"{'unigram':10s} {name:14s} acc {u['accuracy']:.4f} mask-acc {u['mask_accuracy']:.4f} "
                  f"({u['token']!r}, {tok_dir})")
        w = results["words"][name]["unigram"]
        print(f"{'unigram':10s} {name:14s} word-acc {w['accuracy']:.4f} ({w['word']!r}, {w['words']} words)")
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(results, indent=1) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
