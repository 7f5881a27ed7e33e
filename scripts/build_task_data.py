#!/usr/bin/env python
"""Build six small labelled fine-tuning tasks from Debian packages, reproducibly (no network needed).

Sources::

    apt-get install -y wordnet-base python3-doc

* WordNet 3.0 (``/usr/share/wordnet/data.{noun,verb,adj,adv}``; WordNet 3.0 licence, permissive).
* The Python 3 documentation (``/usr/share/doc/python3/html``; PSF License Agreement).

Tasks (one folder each under ``--out``, in the formats ``modernbert finetune`` reads; docs/task-data.md
describes them):

* ``lexclass`` (text-classification): a noun synset's definition, its lemmas removed -> its lexicographer
  class (``noun.animal``, ``noun.artifact``, ...).
* ``pydoc-xref`` (token-classification, CoNLL): the words of a Python-docs paragraph, markup removed -> what
  each inline code span refers to (MOD, CLASS, EXC, FUNC, ATTR, CODE) in BIO tags.
* ``define`` (question-answering, SQuAD v2 JSON): "What is X?" over a context of three dictionary entries of
  one lexicographer class; a third of the questions name a lemma that is not in the context.
* ``cloze`` (multiple-choice): an example sentence with the defined lemma blanked -> the lemma among four of
  the same part of speech.
* ``sense-embed`` (sentence-embedding): an example sentence (anchor) -> the definition of its synset with the
  lemmas removed (positive).
* ``sense-rerank`` (reranker): an example sentence (query) and the definitions of every sense of its lemma in
  that part of speech (passages) -> 1 for the sense the sentence illustrates, else 0.

Every example goes to train, validation or test by a hash of its key (the synset; the docs page; the lemma for
``sense-rerank``, whose passages are all the senses of one lemma), so no key is in two splits. A
``manifest.json`` records counts, licences, and file hashes.

Usage::

    python scripts/build_task_data.py --out data/tasks
    python scripts/build_task_data.py --out /tmp/t --limit 50     # at most 50 examples per split
"""

from __future__ import annotations

import argparse
import functools
import hashlib
import json
import os
import random
import re
import sys
import tempfile
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the sibling script, however this one is loaded
from build_corpus import split_gloss  # noqa: E402

WORDNET_DIR = Path("/usr/share/wordnet")
PYDOC_DIR = Path("/usr/share/doc/python3/html")
POS_FILES = {"n": "noun", "v": "verb", "a": "adj", "s": "adj", "r": "adv"}
# The lexicographer files, by number (WordNet's lexnames).
LEXNAMES = (
    "adj.all adj.pert adv.all noun.Tops noun.act noun.animal noun.artifact noun.attribute noun.body "
    "noun.cognition noun.communication noun.event noun.feeling noun.food noun.group noun.location noun.motive "
    "noun.object noun.person noun.phenomenon noun.plant noun.possession noun.process noun.quantity noun.relation "
    "noun.shape noun.state noun.substance noun.time verb.body verb.change verb.cognition verb.communication "
    "verb.competition verb.consumption verb.contact verb.creation verb.emotion verb.motion verb.perception "
    "verb.possession verb.social verb.stative verb.weather adj.ppl"
).split()
LICENCES = {
    "wordnet": {"name": "WordNet 3.0 license", "debian_package": "wordnet-base",
                "copyright": "WordNet 3.0 Copyright 2006 by Princeton University. All rights reserved.",
                "url": "https://wordnet.princeton.edu/license-and-commercial-use"},
    "pydoc": {"name": "PSF License Agreement (Python documentation)", "debian_package": "python3-doc",
              "copyright": "Copyright (c) 2001-2023 Python Software Foundation. All rights reserved.",
              "url": "https://docs.python.org/3/license.html"},
}
# Examples per split (train, validation, test): small enough for minutes of tiny-model training on 2 cores.
# define trains on 12,000 questions: on 4,000 the tiny model never got past "no answer" (docs/task-data.md).
SIZES = {"lexclass": (4000, 500, 1000), "pydoc-xref": (2500, 400, 600), "define": (12000, 300, 500),
         "cloze": (2000, 300, 500), "sense-embed": (36000, 500, 1000), "sense-rerank": (1200, 200, 400)}
SPLITS = ("train", "validation", "test")
BLANK = "___"
ENTRIES = 3  # dictionary entries in a question-answering context


def split_of(key: str) -> str:
    """train (80%), validation (10%) or test (10%), from a hash of the key: fixed, independent of order."""
    h = int(hashlib.sha256(key.encode()).hexdigest()[:8], 16) % 10
    return "test" if h == 0 else "validation" if h == 1 else "train"


def order_key(key: str) -> str:
    return hashlib.sha256(("order:" + key).encode()).hexdigest()


# --------------------------------------------------------------------------------------- WordNet


@dataclass
class Synset:
    key: str  # "n00001740"
    pos: str  # noun, verb, adj, adv
    lexname: str
    lemmas: list[str]
    definition: str
    examples: list[str] = field(default_factory=list)


@functools.lru_cache(maxsize=2)
def read_wordnet(wordnet_dir: Path) -> list[Synset]:
    """Every synset of WordNet's four data files, in file order (read once per folder)."""
    synsets = []
    for name in ("noun", "verb", "adj", "adv"):
        path = wordnet_dir / f"data.{name}"
        if not path.is_file():
            raise FileNotFoundError(f"{path} not found; install it with `apt-get install wordnet-base`")
        for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
            if line.startswith("  ") or "|" not in line:  # the licence header
                continue
            head, gloss = line.split("|", 1)
            f = head.split()
            lemmas = []
            for i in range(int(f[3], 16)):
                w = re.sub(r"\([a-z]+\)$", "", f[4 + 2 * i]).replace("_", " ")
                if w not in lemmas:
                    lemmas.append(w)
            definition, examples = split_gloss(gloss.strip(), keep_remarks=False)
            synsets.append(Synset(f"{f[2]}{f[0]}", POS_FILES[f[2]], LEXNAMES[int(f[1])], lemmas, definition, examples))
    return synsets


def _lemma_pattern(lemmas: Iterable[str]) -> re.Pattern:
    words = sorted({w for lemma in lemmas for w in [lemma, *lemma.split()] if len(w) > 2 or w == lemma},
                   key=len, reverse=True)
    return re.compile(r"\b(" + "|".join(re.escape(w) for w in words) + r")(s|es|ed|d|ing)?\b", re.IGNORECASE)


def without_lemmas(text: str, lemmas: list[str]) -> str:
    """`text` with every lemma (and each word of a multi-word lemma) replaced by "something"."""
    lower = text.lower()
    if not any(w.lower() in lower for lemma in lemmas for w in lemma.split()):
        return text
    return re.sub(r"\s+", " ", _lemma_pattern(lemmas).sub("something", text)).strip()


def find_lemma(sentence: str, lemmas: list[str]) -> tuple[str, re.Match] | None:
    """The first lemma that occurs in `sentence` as a whole word (exact form), and where."""
    for lemma in lemmas:
        m = re.search(r"(?<![\w-])" + re.escape(lemma) + r"(?![\w-])", sentence)
        if m:
            return lemma, m
    return None


def _take(examples: dict[str, list], task: str, limit: int | None) -> dict[str, list]:
    """At most the task's size (or `limit`) examples per split, in a fixed hash order."""
    out = {}
    for i, split in enumerate(SPLITS):
        rows = sorted(examples[split], key=lambda r: order_key(r[0]))
        n = SIZES[task][i] if limit is None else min(limit, SIZES[task][i])
        out[split] = [r[1] for r in rows[:n]]
    return out


class Quota:
    """Rows per split up to the task's size (or `limit`), for builders that visit synsets in hash order."""

    def __init__(self, task: str, limit: int | None) -> None:
        self.size = {s: SIZES[task][i] if limit is None else min(limit, SIZES[task][i]) for i, s in enumerate(SPLITS)}
        self.rows: dict[str, list] = {s: [] for s in SPLITS}

    def full(self, split: str) -> bool:
        return len(self.rows[split]) >= self.size[split]

    def done(self) -> bool:
        return all(self.full(s) for s in SPLITS)


def in_hash_order(synsets: list[Synset]) -> list[Synset]:
    """The synsets in the fixed order `_take` uses, so that a builder can stop once its quotas are filled."""
    if _ORDERED.get("of") is not synsets:
        _ORDERED.update(of=synsets, ordered=sorted(synsets, key=lambda s: order_key(s.key)))
    return _ORDERED["ordered"]


_ORDERED: dict[str, list[Synset]] = {}


def task_lexclass(synsets: list[Synset], limit: int | None) -> dict[str, list]:
    q = Quota("lexclass", limit)
    for s in in_hash_order(synsets):
        split = split_of(s.key)
        if q.done():
            break
        if q.full(split):
            continue
        if s.pos != "noun" or s.lexname == "noun.Tops":
            continue
        text = without_lemmas(s.definition, s.lemmas)
        if len(text.split()) >= 3:
            q.rows[split].append({"sentence": text, "label": s.lexname})
    seen = {r["label"] for r in q.rows["train"]}  # a class the training split lacks cannot be learnt
    return {split: [r for r in rows if r["label"] in seen] for split, rows in q.rows.items()}


def _by_lemma(synsets: list[Synset]) -> dict[tuple[str, str], list[Synset]]:
    senses = defaultdict(list)
    for s in synsets:
        for lemma in s.lemmas:
            senses[(lemma.lower(), s.pos)].append(s)
    return senses


def task_define(synsets: list[Synset], limit: int | None) -> dict[str, list]:
    """SQuAD v2 paragraphs: three entries of one lexicographer class; one question each, a third unanswerable."""
    groups = defaultdict(lambda: defaultdict(list))  # split -> lexname -> synsets
    for s in synsets:
        if s.pos == "noun" and 4 <= len(s.definition.split()) <= 16:
            groups[split_of(s.key)][s.lexname].append(s)
    ex = defaultdict(list)
    for split, by_class in groups.items():
        for _, members in sorted(by_class.items()):
            members.sort(key=lambda s: order_key(s.key))
            for j in range(0, len(members) - ENTRIES, ENTRIES + 1):
                shown, hidden = members[j:j + ENTRIES], members[j + ENTRIES]
                rng = random.Random(shown[0].key)
                parts, spans = [], {}
                for s in shown:
                    head = ", ".join(s.lemmas[:2])
                    start = sum(len(p) + 1 for p in parts) + len(head) + 2
                    parts.append(f"{head}: {s.definition}.")
                    spans[s.key] = start
                context = " ".join(parts)
                target = hidden if rng.random() < 1 / 3 else rng.choice(shown)
                if target is hidden:
                    lemma = hidden.lemmas[0]
                    if any(lemma.lower() in (w.lower() for w in s.lemmas) for s in shown):
                        continue
                    answers = []
                else:
                    lemma = rng.choice(target.lemmas[:2])
                    answers = [{"text": target.definition, "answer_start": spans[target.key]}]
                    assert context[spans[target.key]:].startswith(target.definition)
                qa = {"id": target.key + "-" + shown[0].key, "question": f"What is {lemma}?", "answers": answers,
                      "is_impossible": not answers}
                ex[split].append((shown[0].key, {"context": context, "qas": [qa]}))
    return _take(ex, "define", limit)


def task_cloze(synsets: list[Synset], limit: int | None) -> dict[str, list]:
    by_pos = defaultdict(list)
    for s in synsets:
        by_pos[s.pos].extend(lemma for lemma in s.lemmas if " " not in lemma and lemma.isalpha())
    q = Quota("cloze", limit)
    for s in in_hash_order(synsets):
        split = split_of(s.key)
        if q.done():
            break
        if not s.examples or q.full(split):
            continue
        found = find_lemma(s.examples[0], [w for w in s.lemmas if " " not in w and w.isalpha()])
        if found is None:
            continue
        lemma, m = found
        rng = random.Random(s.key)
        forms = {w.lower() for w in s.lemmas}
        choices = [lemma]
        while len(choices) < 4:
            w = rng.choice(by_pos[s.pos])
            if w.lower() not in forms and w not in choices:
                choices.append(w)
        rng.shuffle(choices)
        context = s.examples[0][:m.start()] + BLANK + s.examples[0][m.end():]
        q.rows[split].append({"context": context, "choices": choices, "label": choices.index(lemma)})
    return q.rows


def task_sense_embed(synsets: list[Synset], limit: int | None) -> dict[str, list]:
    q = Quota("sense-embed", limit)
    for s in in_hash_order(synsets):
        split = split_of(s.key)
        if q.done():
            break
        if not s.examples or q.full(split):
            continue
        definition = without_lemmas(s.definition, s.lemmas)
        if len(definition.split()) >= 3:
            # Training takes every example sentence of a synset; validation and test one per synset.
            for example in s.examples if split == "train" else s.examples[:1]:
                if not q.full(split):
                    q.rows[split].append({"anchor": example, "positive": definition})
    return q.rows


def task_sense_rerank(synsets: list[Synset], limit: int | None) -> dict[str, list]:
    """Queries grouped by lemma: each sense with an example sentence containing the lemma is one query."""
    candidates = []  # (order, split, lemma, sense, all senses), in the order queries are taken
    for (lemma, pos), senses in _by_lemma(synsets).items():
        if 2 <= len(senses) <= 8 and " " not in lemma:
            group_key = f"{pos}:{lemma}"
            split = split_of(group_key)
            candidates.extend((order_key(group_key + s.key), split, lemma, s, senses) for s in senses)
    q = Quota("sense-rerank", limit)
    for _, split, lemma, s, senses in sorted(candidates, key=lambda c: c[0]):
        if q.done():
            break
        if q.full(split):
            continue
        sentence = next((e for e in s.examples if find_lemma(e.lower(), [lemma])), None)
        if sentence is not None:
            q.rows[split].append([{"query": sentence, "passage": o.definition, "label": int(o is s)} for o in senses])
    return {split: [row for rows in q.rows[split] for row in rows] for split in SPLITS}


# ------------------------------------------------------------------------------------ Python docs

_XREF = {"py-mod": "MOD", "py-class": "CLASS", "py-exc": "EXC", "py-func": "FUNC", "py-meth": "FUNC",
         "py-attr": "ATTR", "py-data": "ATTR", "py-const": "ATTR"}
_SKIP_PAGES = re.compile(r"^(genindex.*|search|py-modindex|contents|download|copyright|license|bugs)\.html$")


class _XrefParser(HTMLParser):
    """The paragraphs of a Sphinx page's body as lists of (text, tag or None, span number)."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.paragraphs: list[list[tuple[str, str | None, int]]] = []
        self._body = 0
        self._para: list | None = None
        self._code: list[str | None] = []  # the tag of each open <code>
        self._spans = 0
        self._skip: list[str] = []  # open tags whose text is left out

    def handle_starttag(self, tag, attrs):
        cls = (dict(attrs).get("class") or "").split()
        if tag == "div":
            self._body += 1 if self._body or "body" in cls else 0
        elif self._body and tag == "p" and self._para is None:
            self._para = []
        elif self._para is not None and tag == "code":
            self._spans += 1
            label = next((_XREF[c] for c in cls if c in _XREF), "CODE" if "literal" in cls else None)
            self._code.append(label)
        if tag in ("pre", "script", "style") or (tag == "a" and "headerlink" in cls):
            self._skip.append(tag)

    def handle_endtag(self, tag):
        if tag == "div" and self._body:
            self._body -= 1
        elif tag == "p" and self._para is not None:
            self.paragraphs.append(self._para)
            self._para = None
        elif tag == "code" and self._code:
            self._code.pop()
        if self._skip and tag == self._skip[-1]:
            self._skip.pop()

    def handle_data(self, data):
        if self._para is not None and not self._skip:
            label = self._code[-1] if self._code else None
            self._para.append((data, label, self._spans if self._code else -1))


def tag_words(pieces: list[tuple[str, str | None, int]]) -> tuple[list[str], list[str]]:
    """Whitespace words and their BIO tags: a word takes the tag of the code span its first character is in."""
    chars, owner = [], []
    for text, label, span in pieces:
        chars.append(text)
        owner.extend([(label, span)] * len(text))
    text = "".join(chars)
    words, tags, last_span = [], [], None
    for m in re.finditer(r"\S+", text):
        label, span = owner[m.start()]
        words.append(m.group())
        if label is None:
            tags.append("O")
        else:
            tags.append(("I-" if span == last_span else "B-") + label)
        last_span = span if label is not None else None
    return words, tags


def task_pydoc_xref(html_dir: Path, limit: int | None) -> dict[str, list]:
    if not html_dir.is_dir():
        raise FileNotFoundError(f"{html_dir} not found; install it with `apt-get install python3-doc`")
    ex = defaultdict(list)
    for page in sorted(html_dir.rglob("*.html")):
        rel = page.relative_to(html_dir).as_posix()
        if _SKIP_PAGES.match(page.name) or rel.startswith(("_", "whatsnew/")):
            continue
        parser = _XrefParser()
        parser.feed(page.read_text(encoding="utf-8", errors="replace"))
        for i, para in enumerate(parser.paragraphs):
            words, tags = tag_words(para)
            multi_word = any(t.startswith("I-") and t != "I-CODE" for t in tags)  # rare: too few to learn
            if 8 <= len(words) <= 60 and any(t != "O" for t in tags) and not multi_word:
                ex[split_of(rel)].append((f"{rel}#{i}", (words, tags)))
    taken = _take(ex, "pydoc-xref", limit)
    seen = {t for _, tags in taken["train"] for t in tags}  # a tag the training split lacks cannot be learnt
    return {split: [(w, t) for w, t in rows if set(t) <= seen] for split, rows in taken.items()}


# ----------------------------------------------------------------------------------------- output


def _atomic_write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def _jsonl(rows: list[dict]) -> str:
    return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)


def _conll(rows: list[tuple[list[str], list[str]]]) -> str:
    return "\n".join("".join(f"{w}\t{t}\n" for w, t in zip(words, tags)) for words, tags in rows)


def _squad(paragraphs: list[dict]) -> str:
    return json.dumps({"version": "v2.0", "data": [{"title": "wordnet", "paragraphs": paragraphs}]},
                      ensure_ascii=False, indent=1)


TASKS = {  # name: (fine-tuning task, source, builder, file suffix, writer)
    "lexclass": ("text-classification", "wordnet", task_lexclass, "jsonl", _jsonl),
    "pydoc-xref": ("token-classification", "pydoc", task_pydoc_xref, "conll", _conll),
    "define": ("question-answering", "wordnet", task_define, "json", _squad),
    "cloze": ("multiple-choice", "wordnet", task_cloze, "jsonl", _jsonl),
    "sense-embed": ("sentence-embedding", "wordnet", task_sense_embed, "jsonl", _jsonl),
    "sense-rerank": ("reranker", "wordnet", task_sense_rerank, "jsonl", _jsonl),
}


def build(out: Path, wordnet_dir: Path = WORDNET_DIR, pydoc_dir: Path = PYDOC_DIR, limit: int | None = None,
          tasks: Iterable[str] = tuple(TASKS)) -> dict:
    """Write the chosen tasks under `out` (one folder each, train/validation/test) and `out/manifest.json`."""
    tasks = list(tasks)
    unknown = [t for t in tasks if t not in TASKS]
    if unknown:
        raise ValueError(f"unknown task {unknown[0]!r}; expected one of {', '.join(TASKS)}")
    synsets = read_wordnet(wordnet_dir) if any(TASKS[t][1] == "wordnet" for t in tasks) else []
    manifest = {"limit": limit, "licences": {}, "tasks": {}}
    for name in tasks:
        finetune_task, source, builder, suffix, writer = TASKS[name]
        splits = builder(pydoc_dir, limit) if source == "pydoc" else builder(synsets, limit)
        files = {}
        for split in SPLITS:
            path = out / name / f"{split}.{suffix}"
            text = writer(splits[split])
            _atomic_write(path, text)
            files[split] = {"file": f"{name}/{path.name}", "examples": len(splits[split]),
                            "sha256": hashlib.sha256(text.encode()).hexdigest()}
        manifest["tasks"][name] = {"finetune_task": finetune_task, "source": source, "splits": files}
        manifest["licences"][source] = LICENCES[source]
    _atomic_write(out / "manifest.json", json.dumps(manifest, indent=2) + "\n")
    return manifest


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", type=Path, required=True, help="output folder (one subfolder per task)")
    p.add_argument("--wordnet-dir", type=Path, default=WORDNET_DIR)
    p.add_argument("--pydoc-dir", type=Path, default=PYDOC_DIR)
    p.add_argument("--limit", type=int, default=None, help="at most N examples per split (smoke tests)")
    p.add_argument("--tasks", nargs="+", default=list(TASKS), metavar="TASK", help=", ".join(TASKS))
    args = p.parse_args(argv)
    try:
        manifest = build(args.out, args.wordnet_dir, args.pydoc_dir, args.limit, args.tasks)
    except (FileNotFoundError, ValueError) as e:
        print(f"build_task_data: {e}", file=sys.stderr)
        return 2
    for name, task in manifest["tasks"].items():
        counts = ", ".join(f"{s} {f['examples']}" for s, f in task["splits"].items())
        print(f"{name} ({task['finetune_task']}): {counts}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
