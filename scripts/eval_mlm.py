#!/usr/bin/env python
"""Held-out masked-token accuracy and cloze accuracy of masked-LM models, for the model card.

Every model is scored on the same held-out text with the same masking (``--seq-len``, ``--capacity``,
``--mask-prob``, ``--seed``; the defaults are those of today's model card), with the pretraining's own
evaluation (`modernbert.training.pretrain.evaluate`), overall and for each group of sources in
``--groups``. The unigram baseline (always the most frequent ordinary token of ``--train``) is scored on the
same positions. The models must share one tokenizer (the masked positions are token positions).

The cloze set (``--cloze``, JSON lines ``{"text": "... [MASK] ...", "answers": [...]}``) gives top-1 and
top-5 accuracy: a sentence counts when one of the first k predicted tokens, stripped and lower-cased, is an
accepted answer. With ``--disjoint-from`` the cloze sentences are first checked against those corpus files:
every sentence, with each answer filled in, is reduced to lower-case words; neither it (when shorter than 8
words) nor any of its 8-word windows may occur in the corpus, reduced the same way.

Usage::

    python scripts/eval_mlm.py --train data/corpus/train.jsonl --heldout data/corpus/heldout.jsonl \\
        --model today=path/to/old --model new=runs/tiny2/final --cloze tests/data/cloze.jsonl \\
        --disjoint-from data/corpus/train.jsonl data/corpus/heldout.jsonl --out data/eval/results.json

A ``--model`` is a model folder or a pretraining checkpoint (``runs/NAME/checkpoints/step-*.pt``).
"""

from __future__ import annotations

import argparse
import importlib
import json
import re
import sys
from pathlib import Path

WINDOW = 8
_WORD = re.compile(r"\w+")


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


def cloze_predictions(model, tokenizer, special, rows: list[dict], k: int = 5) -> list[list[tuple[str, float]]]:
    """Top-``k`` ``(token, probability)`` at the mask of every row (special tokens never predicted)."""
    import torch

    out = []
    for row in rows:
        ids = tokenizer.encode(row["text"]).ids
        where = ids.index(special.mask)
        with torch.no_grad():
            logits = model(input_ids=torch.tensor([ids])).logits[0, where]
        probs = torch.softmax(logits[: special.num_regular].float(), dim=-1)
        top = torch.topk(probs, k)
        out.append([(tokenizer.decode([int(i)]).strip(), float(p)) for p, i in zip(top.values, top.indices)])
    return out


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
    ap.add_argument("--tokenizer", type=Path, help="tokenizer folder shared by the models (default: the first model)")
    ap.add_argument("--train", type=Path, default=Path("data/corpus/train.jsonl"), help="for the unigram baseline")
    ap.add_argument("--heldout", type=Path, default=Path("data/corpus/heldout.jsonl"))
    ap.add_argument("--groups", default="wordnet+pydoc=wordnet,pydoc;dictionaries=gcide,jargon,devil",
                    help="source groups scored apart: NAME=SRC,SRC;NAME=...")
    ap.add_argument("--seq-len", type=int, default=512)
    ap.add_argument("--capacity", type=int, default=8192, help="tokens per evaluation batch (sets the packing)")
    ap.add_argument("--mask-prob", type=float, default=0.3)
    ap.add_argument("--seed", type=int, default=1234)
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
    pt = importlib.import_module("modernbert.training.pretrain")

    torch.manual_seed(0)
    first = next(iter(models.values()))
    tok_dir = args.tokenizer or (Path(first) if not first.endswith(".pt") else None)
    if tok_dir is None:
        print("error: pass --tokenizer when the first model is a checkpoint", file=sys.stderr)
        return 2
    tokenizer = load_tokenizer(tok_dir)
    special = SpecialIds.from_tokenizer(tokenizer)
    cache = args.cache_dir or args.work_dir / "cache"
    groups = {g.split("=")[0]: g.split("=")[1].split(",") for g in args.groups.split(";") if g}
    try:
        files = split_heldout(args.heldout, groups, args.work_dir)
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    counts = token_counts(tokenize_corpus(args.train, tok_dir, cache), special.vocab_size)
    batches = {}
    for name, path in files.items():
        held = tokenize_corpus(path, tok_dir, cache)
        batches[name] = build_eval_batches(held, args.seq_len, args.capacity, special, args.mask_prob, args.seed)
        uni = pt.unigram_accuracy(counts, batches[name], special)
        uni.update(token=tokenizer.id_to_token(uni["token_id"]), loss=float("nan"), predictions=sum(
            int((b.labels != IGNORE_INDEX).sum()) for b in batches[name]), mask_predictions=sum(
            int(b.mask_shown[b.labels != IGNORE_INDEX].sum()) for b in batches[name]))
        results.setdefault("heldout", {})[name] = {"tokens": held.num_tokens, "unigram": uni}
    results["heldout"]["all"] = {"tokens": sum(results["heldout"][g]["tokens"] for g in files),
                                 "unigram": pooled([results["heldout"][g]["unigram"] for g in files])}
    results["heldout"]["all"]["unigram"]["token"] = " / ".join(
        sorted({results["heldout"][g]["unigram"]["token"] for g in files}))
    for label, spec in models.items():
        model = load_model(spec)
        for name in files:
            results["heldout"][name][label] = pt.evaluate(model, batches[name])
        results["heldout"]["all"][label] = pooled([results["heldout"][g][label] for g in files])
        for name in [*files, "all"]:
            r = results["heldout"][name][label]
            print(f"{label:10s} {name:14s} loss {r['loss']:.3f} acc {r['accuracy']:.4f} "
                  f"mask-acc {r['mask_accuracy']:.4f} ({r['predictions']} positions)", flush=True)
        if rows:
            preds = cloze_predictions(model, tokenizer, special, rows)
            scores = cloze_scores(rows, preds)
            results.setdefault("cloze", {})[label] = {**scores, "predictions": preds}
            print(f"{label:10s} cloze top-1 {scores['top1']:.3f} top-5 {scores['top5']:.3f} (n={scores['n']})")
    for name in [*files, "all"]:
        u = results["heldout"][name]["unigram"]
        print(f"{'unigram':10s} {name:14s} acc {u['accuracy']:.4f} mask-acc {u['mask_accuracy']:.4f} ({u['token']!r})")
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(results, indent=1) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
