#!/usr/bin/env python
"""Build the openly licensed English pretraining corpus for ``modernbert-tiny``.

Sources (both installed from Debian packages, no network needed)::

    apt-get install -y wordnet-base python3-doc

* WordNet 3.0 (``wordnet-base``, ``/usr/share/wordnet/data.{noun,verb,adj,adv}``): every synset's
  lemmas, definition and example sentences, one synset per line ("dog, domestic dog (noun): a member of
  the genus Canis ... The dog barked all night.").  Licence: WordNet 3.0 licence (permissive, BSD-like).
* The Python 3 documentation (``python3-doc``, ``/usr/share/doc/python3/html``): the prose of every
  page (paragraphs and headings of the main body; code blocks, navigation and the index pages are
  dropped).  Licence: PSF License Agreement (code examples additionally under the Zero-Clause BSD
  licence).

The text is cut into units (``--synsets-per-unit`` consecutive synsets of one lexicographer file; one
h1/h2 section of a docs page), whitespace-normalised, exact duplicates removed, and each unit assigned to
``train.jsonl`` or ``heldout.jsonl`` by a hash of its text (``--heldout-per-mille``, default 20 = 2%:
deterministic and independent of order).  Within each split the units of one container (a WordNet
lexicographer file such as ``noun.animal``, a docs page) are joined in source order into one document,
so that pretraining cuts most documents into full-length sequences (``--no-merge``: one document per
unit).  Each line is ``{"text": ..., "source": "wordnet" | "pydoc", "container": ...}``.  A
``manifest.json`` with counts, licences and file hashes is written next to them.

Usage::

    python scripts/build_corpus.py --out data/corpus
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import sys
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path

WORDNET_POS = {"noun": "noun", "verb": "verb", "adj": "adjective", "adv": "adverb"}
LICENCES = {
    "wordnet": {
        "name": "WordNet 3.0 license",
        "debian_package": "wordnet-base",
        "copyright": "WordNet 3.0 Copyright 2006 by Princeton University. All rights reserved.",
        "url": "https://wordnet.princeton.edu/license-and-commercial-use",
    },
    "pydoc": {
        "name": "PSF License Agreement (Python documentation); code examples also 0BSD",
        "debian_package": "python3-doc",
        "copyright": "Copyright (c) 2001-2023 Python Software Foundation. All rights reserved.",
        "url": "https://docs.python.org/3/license.html",
    },
}
_SPACE = re.compile(r"\s+")
_LEX_MARKER = re.compile(r"\([a-z]+\)$")  # adjective position markers such as "able(a)"


def normalise(text: str) -> str:
    """Collapse runs of spaces/tabs inside lines, strip lines and drop empty ones."""
    lines = (_SPACE.sub(" ", line).strip() for line in text.split("\n"))
    return "\n".join(line for line in lines if line)


# --------------------------------------------------------------------------------------- WordNet


def _split_gloss(gloss: str) -> tuple[str, list[str]]:
    """Split a WordNet gloss into its definition and its quoted example sentences."""
    parts = [p.strip() for p in gloss.split(";")]
    definition: list[str] = []
    examples: list[str] = []
    for part in parts:
        if part.startswith('"'):
            ex = part.strip('"').strip()
            if ex:
                examples.append(ex)
        elif part and not examples:
            definition.append(part)
        elif part:  # trailing non-quoted remark after examples
            examples.append(part)
    return "; ".join(definition), examples


def _sentence(text: str) -> str:
    text = text.strip()
    if not text:
        return text
    text = text[0].upper() + text[1:]
    if text[-1] not in ".!?":
        text += "."
    return text


def wordnet_entries(wordnet_dir: Path) -> Iterator[tuple[int, str]]:
    """Yield ``(lexicographer_file_number, entry_text)`` for every synset, in file order."""
    for pos_file, pos_name in WORDNET_POS.items():
        path = wordnet_dir / f"data.{pos_file}"
        if not path.is_file():
            raise FileNotFoundError(f"{path} not found; install it with `apt-get install wordnet-base`")
        with path.open(encoding="utf-8", errors="replace") as f:
            for line in f:
                if line.startswith("  ") or "|" not in line:  # licence header
                    continue
                head, gloss = line.split("|", 1)
                fields = head.split()
                lex_file = int(fields[1])
                n_words = int(fields[3], 16)
                lemmas = []
                for i in range(n_words):
                    word = _LEX_MARKER.sub("", fields[4 + 2 * i]).replace("_", " ")
                    if word not in lemmas:
                        lemmas.append(word)
                definition, examples = _split_gloss(gloss.strip())
                text = f"{', '.join(lemmas)} ({pos_name}): {definition}."
                if examples:
                    text += " " + " ".join(_sentence(ex) for ex in examples)
                yield lex_file, text


def wordnet_units(wordnet_dir: Path, synsets_per_unit: int) -> Iterator[tuple[str, str]]:
    """``(container, text)``: groups of consecutive synsets of the same lexicographer file."""
    group: list[str] = []
    current = None
    for lex_file, entry in wordnet_entries(wordnet_dir):
        if group and (lex_file != current or len(group) >= synsets_per_unit):
            yield f"wordnet/{current:02d}", "\n".join(group)
            group = []
        current = lex_file
        group.append(entry)
    if group:
        yield f"wordnet/{current:02d}", "\n".join(group)


# ------------------------------------------------------------------------------------ Python docs

_SKIP_PAGES = re.compile(r"^(genindex.*|search|py-modindex|contents|download|copyright|license|bugs)\.html$")
_BLOCKS = {"p", "h1", "h2", "h3", "h4", "h5", "h6"}
_SKIP_TAGS = {"pre", "script", "style"}


class _DocParser(HTMLParser):
    """Collect prose blocks of a Sphinx page's ``div.body``, split at h1/h2 headings."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.sections: list[list[str]] = [[]]
        self._body_depth = 0  # div nesting depth once inside div.body (0 = outside)
        self._skip_depth = 0
        self._headerlink = 0
        self._block: list[str] | None = None
        self._block_tag = ""

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "div":
            if self._body_depth:
                self._body_depth += 1
            elif "body" in (a.get("class") or "").split():
                self._body_depth = 1
            return
        if not self._body_depth:
            return
        if tag in _SKIP_TAGS:
            self._skip_depth += 1
        elif tag == "a" and "headerlink" in (a.get("class") or ""):
            self._headerlink += 1
        elif tag in _BLOCKS and self._block is None:
            if tag in ("h1", "h2") and self.sections[-1]:
                self.sections.append([])
            self._block, self._block_tag = [], tag
        elif tag == "br" and self._block is not None:
            self._block.append(" ")

    def handle_endtag(self, tag: str) -> None:
        if tag == "div":
            if self._body_depth:
                self._body_depth -= 1
            return
        if not self._body_depth:
            return
        if tag in _SKIP_TAGS:
            self._skip_depth = max(0, self._skip_depth - 1)
        elif tag == "a" and self._headerlink:
            self._headerlink -= 1
        elif tag == self._block_tag and self._block is not None:
            text = _SPACE.sub(" ", "".join(self._block)).strip()
            if text:
                self.sections[-1].append(text)
            self._block, self._block_tag = None, ""

    def handle_data(self, data: str) -> None:
        if self._block is not None and not self._skip_depth and not self._headerlink:
            self._block.append(data)


def pydoc_units(html_dir: Path, min_chars: int = 80) -> Iterator[tuple[str, str]]:
    """``(container, text)``: one unit per h1/h2 section of every page of the Python HTML documentation."""
    if not html_dir.is_dir():
        raise FileNotFoundError(f"{html_dir} not found; install it with `apt-get install python3-doc`")
    pages = sorted(
        p
        for p in html_dir.resolve().rglob("*.html")
        if not any(part.startswith("_") for part in p.relative_to(html_dir.resolve()).parts)
        and not _SKIP_PAGES.match(p.name)
    )
    for page in pages:
        parser = _DocParser()
        parser.feed(page.read_text(encoding="utf-8", errors="replace"))
        parser.close()
        page_name = "pydoc/" + page.relative_to(html_dir.resolve()).as_posix()
        for section in parser.sections:
            text = "\n".join(section)
            if len(text) >= min_chars:
                yield page_name, text


# ------------------------------------------------------------------------------------------ main


def is_heldout(text: str, per_mille: int) -> bool:
    """Deterministic, order-independent split by a hash of the document text."""
    h = int.from_bytes(hashlib.sha1(text.encode("utf-8")).digest()[:4], "big")
    return h % 1000 < per_mille


def build(
    out: Path,
    wordnet_dir: Path,
    pydoc_dir: Path,
    heldout_per_mille: int = 20,
    synsets_per_unit: int = 8,
    merge: bool = True,
) -> dict:
    """Build the corpus into ``out`` and return the manifest.

    Units (groups of ``synsets_per_unit`` WordNet synsets; Python-docs sections) are normalised,
    deduplicated and assigned to train or held-out by a hash of their text. With ``merge`` the units of
    one split that come from the same container (WordNet lexicographer file such as ``noun.animal``;
    Python-docs page) are joined, in source order, into one document: long documents that the
    pretraining cuts into full ``seq_len`` sequences. Without it every unit is its own document.
    """
    if not 0 < heldout_per_mille < 1000:
        raise ValueError(f"--heldout-per-mille must be in 1..999, got {heldout_per_mille}")
    if synsets_per_unit < 1:
        raise ValueError(f"--synsets-per-unit must be >= 1, got {synsets_per_unit}")
    out.mkdir(parents=True, exist_ok=True)
    seen: set[str] = set()
    counts: dict[str, dict[str, int]] = {}
    # split -> container -> unit texts (dicts keep insertion = source order)
    docs: dict[str, dict[tuple[str, str], list[str]]] = {"train": {}, "heldout": {}}
    sources = (
        ("wordnet", wordnet_units(wordnet_dir, synsets_per_unit)),
        ("pydoc", pydoc_units(pydoc_dir)),
    )
    for source, units in sources:
        c = counts.setdefault(source, {"units": 0, "duplicates": 0, "train_units": 0, "heldout_units": 0,
                                       "train_docs": 0, "heldout_docs": 0, "chars": 0})
        for n, (container, unit) in enumerate(units):
            text = normalise(unit)
            if not text:
                continue
            c["units"] += 1
            key = hashlib.sha1(text.encode("utf-8")).hexdigest()
            if key in seen:
                c["duplicates"] += 1
                continue
            seen.add(key)
            c["chars"] += len(text)
            split = "heldout" if is_heldout(text, heldout_per_mille) else "train"
            c[f"{split}_units"] += 1
            docs[split].setdefault((source, container if merge else f"{container}#{n}"), []).append(text)
    for split, by_container in docs.items():
        with (out / f"{split}.jsonl").open("w", encoding="utf-8") as f:
            for (source, container), texts in by_container.items():
                counts[source][f"{split}_docs"] += 1
                record = {"text": "\n".join(texts), "source": source, "container": container}
                f.write(json.dumps(record, ensure_ascii=False) + "\n")
    manifest = {
        "counts": counts,
        "heldout_per_mille": heldout_per_mille,
        "synsets_per_unit": synsets_per_unit,
        "merge": merge,
        "sources": {"wordnet": str(wordnet_dir), "pydoc": str(pydoc_dir)},
        "licences": LICENCES,
        "files": {
            name: hashlib.sha256((out / name).read_bytes()).hexdigest()
            for name in ("train.jsonl", "heldout.jsonl")
        },
    }
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    return manifest


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=Path("data/corpus"), help="output folder")
    ap.add_argument("--wordnet-dir", type=Path, default=Path("/usr/share/wordnet"))
    ap.add_argument("--pydoc-dir", type=Path, default=Path("/usr/share/doc/python3/html"))
    ap.add_argument("--heldout-per-mille", type=int, default=20, help="held-out share in 1/1000 (20 = 2%%)")
    ap.add_argument("--synsets-per-unit", type=int, default=8, help="WordNet synsets per split/dedupe unit")
    ap.add_argument("--no-merge", dest="merge", action="store_false",
                    help="one document per unit instead of one per WordNet lexicographer file / docs page")
    args = ap.parse_args(argv)
    try:
        manifest = build(
            args.out, args.wordnet_dir, args.pydoc_dir, args.heldout_per_mille, args.synsets_per_unit, args.merge
        )
    except (ValueError, FileNotFoundError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    total = {"train_docs": 0, "heldout_docs": 0, "chars": 0}
    for source, c in manifest["counts"].items():
        print(
            f"{source:8s} units={c['units']:6d} duplicates={c['duplicates']:4d} train units={c['train_units']:6d} "
            f"held-out units={c['heldout_units']:4d} -> docs train={c['train_docs']:5d} "
            f"held-out={c['heldout_docs']:4d}, chars={c['chars']:,}"
        )
        for k in total:
            total[k] += c[k]
    print(f"{'total':8s} train={total['train_docs']} heldout={total['heldout_docs']} chars={total['chars']:,}")
    print(f"wrote {args.out}/train.jsonl, heldout.jsonl, manifest.json")
    return 0


if __name__ == "__main__":
    sys.exit(main())
