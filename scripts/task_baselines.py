#!/usr/bin/env python
"""Simple baselines on the test split of the tasks `scripts/build_task_data.py` writes.

* lexclass: the majority class of the training split (accuracy, macro-F1).
* pydoc-xref: per-word majority: each word's most frequent tag in the training split, `O` for unseen words
  (entity F1, as `modernbert finetune` computes it).
* define: the better of "no answer" for every question and "the first entry's definition" (exact match, F1).
* cloze: always the first choice (accuracy; the right one is at a random place, so chance is 1/4).
* sense-embed: BM25 of each test anchor against every test positive (MRR@10, recall@1, recall@10).
* sense-rerank: BM25 of each query against its passages (MRR@10, recall@1).

With `--embed-model FOLDER` it also scores a sentence-embedding model on sense-embed's test split with the same
protocol (`modernbert finetune` only scores the validation split of an embedding task). The metrics are the
package's own (`modernbert.training`), so baselines and fine-tuned models are measured alike.

Usage::

    python scripts/task_baselines.py --data data/tasks [--embed-model runs/sense-embed] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import math
import re
import sys
from collections import Counter, defaultdict
from pathlib import Path

from modernbert.training.finetune_pairs import retrieval_metrics
from modernbert.training.finetune_qa import squad_scores
from modernbert.training.metrics import entity_metrics

_WORD = re.compile(r"\w+")


def _jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def _conll(path: Path) -> list[tuple[list[str], list[str]]]:
    sentences = []
    for block in path.read_text(encoding="utf-8").split("\n\n"):
        pairs = [line.split("\t") for line in block.splitlines() if line.strip()]
        if pairs:
            sentences.append(([w for w, _ in pairs], [t for _, t in pairs]))
    return sentences


def _squad(path: Path) -> list[tuple[str, list[str]]]:
    """(context, answer texts) per question."""
    data = json.loads(path.read_text(encoding="utf-8"))
    return [(p["context"], [a["text"] for a in qa["answers"]])
            for article in data["data"] for p in article["paragraphs"] for qa in p["qas"]]


def _rank(scores: list[float], target: int) -> int:
    return 1 + sum(s > scores[target] for s in scores)


class BM25:
    """Okapi BM25 (k1 1.5, b 0.75) over lower-cased word tokens of a fixed set of documents."""

    def __init__(self, docs: list[str], k1: float = 1.5, b: float = 0.75) -> None:
        self.docs = [Counter(_WORD.findall(d.lower())) for d in docs]
        self.lengths = [sum(d.values()) for d in self.docs]
        self.avg = sum(self.lengths) / max(1, len(self.docs))
        df = Counter(w for d in self.docs for w in d)
        n = len(self.docs)
        self.idf = {w: math.log(1 + (n - f + 0.5) / (f + 0.5)) for w, f in df.items()}
        self.k1, self.b = k1, b

    def scores(self, query: str, among: list[int] | None = None) -> list[float]:
        words = _WORD.findall(query.lower())
        out = []
        for i in range(len(self.docs)) if among is None else among:
            d, norm = self.docs[i], self.k1 * (1 - self.b + self.b * self.lengths[i] / self.avg)
            out.append(sum(self.idf.get(w, 0.0) * d[w] * (self.k1 + 1) / (d[w] + norm) for w in words if w in d))
        return out


def lexclass(folder: Path) -> dict[str, float]:
    train, test = _jsonl(folder / "train.jsonl"), _jsonl(folder / "test.jsonl")
    majority = Counter(r["label"] for r in train).most_common(1)[0][0]
    labels = sorted({r["label"] for r in train + test})
    accuracy = sum(r["label"] == majority for r in test) / len(test)
    share = accuracy  # macro-F1: F1 of the majority class over the number of classes, the others 0
    macro_f1 = (2 * share / (share + 1)) / len(labels)
    return {"test_accuracy": accuracy, "test_f1": macro_f1, "majority": majority}


def pydoc_xref(folder: Path) -> dict[str, float]:
    counts: dict[str, Counter] = defaultdict(Counter)
    for words, tags in _conll(folder / "train.conll"):
        for w, t in zip(words, tags):
            counts[w][t] += 1
    test = _conll(folder / "test.conll")
    pred = [[counts[w].most_common(1)[0][0] if w in counts else "O" for w in words] for words, _ in test]
    m = entity_metrics([tags for _, tags in test], pred)
    return {f"test_{k}": v for k, v in m.items()}


def define(folder: Path) -> dict[str, float]:
    test = _squad(folder / "test.json")
    out = {}
    guesses = {"no answer": lambda c: "", "first definition": lambda c: c.split(": ", 1)[1].split(". ")[0]}
    for name, guess in guesses.items():
        scores = [squad_scores(guess(context), answers) for context, answers in test]
        out[name] = (100 * sum(s[0] for s in scores) / len(scores), 100 * sum(s[1] for s in scores) / len(scores))
    best = max(out, key=lambda k: out[k][1])
    return {"test_exact_match": out[best][0], "test_f1": out[best][1], "baseline": best,
            **{f"{k} (em, f1)": v for k, v in out.items()}}


def cloze(folder: Path) -> dict[str, float]:
    test = _jsonl(folder / "test.jsonl")
    return {"test_accuracy": sum(r["label"] == 0 for r in test) / len(test)}


def sense_embed(folder: Path) -> dict[str, float]:
    test = _jsonl(folder / "test.jsonl")
    bm25 = BM25([r["positive"] for r in test])
    ranks = [[_rank(bm25.scores(r["anchor"]), i)] for i, r in enumerate(test)]
    return {f"test_{k}": v for k, v in retrieval_metrics(ranks).items()}


def embed_model(folder: Path, model: str) -> dict[str, float]:
    """A sentence-embedding model on sense-embed's test split: each anchor against every positive (cosine)."""
    import numpy as np

    from modernbert import SentenceEncoder

    test = _jsonl(folder / "test.jsonl")
    enc = SentenceEncoder.from_pretrained(model, device="cpu")
    a = enc.encode([r["anchor"] for r in test], normalize_embeddings=True)
    p = enc.encode([r["positive"] for r in test], normalize_embeddings=True)
    scores = np.asarray(a) @ np.asarray(p).T
    ranks = [[1 + int((scores[i] > scores[i, i]).sum())] for i in range(len(test))]
    return {f"test_{k}": v for k, v in retrieval_metrics(ranks).items()}


def sense_rerank(folder: Path) -> dict[str, float]:
    test = _jsonl(folder / "test.jsonl")
    groups: dict[str, list[int]] = defaultdict(list)
    for i, r in enumerate(test):
        groups[r["query"]].append(i)
    ranks = []
    for query, members in groups.items():
        passages = [test[i]["passage"] for i in members]
        scores = BM25(passages).scores(query)
        ranks.append([_rank(scores, j) for j, i in enumerate(members) if test[i]["label"] == 1])
    return {f"test_{k}": v for k, v in retrieval_metrics(ranks).items()}


BASELINES = {"lexclass": lexclass, "pydoc-xref": pydoc_xref, "define": define, "cloze": cloze,
             "sense-embed": sense_embed, "sense-rerank": sense_rerank}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", type=Path, required=True, help="the --out folder of build_task_data.py")
    p.add_argument("--embed-model", default=None, help="also score this sentence-embedding model on sense-embed")
    p.add_argument("--json", type=Path, default=None, help="write the results here too")
    args = p.parse_args(argv)
    results = {}
    for name, baseline in BASELINES.items():
        if not (args.data / name).is_dir():
            print(f"task_baselines: {args.data / name} not found; build it with scripts/build_task_data.py",
                  file=sys.stderr)
            return 2
        results[name] = baseline(args.data / name)
    if args.embed_model:
        results["sense-embed (model)"] = embed_model(args.data / "sense-embed", args.embed_model)
    text = json.dumps(results, indent=2)
    print(text)
    if args.json:
        args.json.write_text(text + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
