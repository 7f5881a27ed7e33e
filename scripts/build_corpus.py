#!/usr/bin/env python
"""Build the openly licensed English pretraining corpus for ``modernbert-tiny``.

Sources (all installed from Debian packages, no network needed)::

    apt-get install -y wordnet-base python3-doc dict-gcide dict-jargon dict-devil

* WordNet 3.0 (``wordnet-base``, ``/usr/share/wordnet/data.{noun,verb,adj,adv}``): every synset's
  lemmas, definition and example sentences, one synset per line ("dog, domestic dog (noun): a member of
  the genus Canis ... The dog barked all night.").  Licence: WordNet 3.0 licence (permissive, BSD-like).
* The Python 3 documentation (``python3-doc``, ``/usr/share/doc/python3/html``): the prose of every
  page (paragraphs and headings of the main body; code blocks, navigation and the index pages are
  dropped).  Licence: PSF License Agreement (code examples additionally under the Zero-Clause BSD
  licence).
* Three dictd dictionaries (``/usr/share/dictd/NAME.{index,dict.dz}``), each entry as plain text
  (headword, part of speech, definitions and quotations; markup, pronunciations and etymologies dropped):
  GCIDE (``dict-gcide``: Webster's 1913 with GCIDE's additions, GPL-2+; its senses copied from WordNet 1.5
  are left out), the Jargon File (``dict-jargon``, public domain) and The Devil's Dictionary
  (``dict-devil``, public domain).  ``--dictionaries none`` builds the corpus of the first modernbert-tiny.

The text is cut into units (``--synsets-per-unit`` consecutive synsets of one lexicographer file; one
h1/h2 section of a docs page; ``--entries-per-unit`` consecutive dictionary entries), whitespace-normalised,
exact duplicates removed, and each unit assigned to ``train.jsonl`` or ``heldout.jsonl`` by a hash of its
text (``--heldout-per-mille``, default 20 = 2%: deterministic and independent of order).  WordNet and the
docs come first and are cut as before, so their held-out units are those of the first model's corpus.
Within each split the units of one container (a WordNet lexicographer file such as ``noun.animal``, a docs
page, a dictionary's letter) are joined in source order into one document, so that pretraining cuts most
documents into full-length sequences (``--no-merge``: one document per unit).  Each line is
``{"text": ..., "source": "wordnet" | "pydoc" | "gcide" | "jargon" | "devil", "container": ...}``.  A
``manifest.json`` with counts, licences and file hashes is written next to them.

Usage::

    python scripts/build_corpus.py --out data/corpus
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import json
import re
import sys
from collections.abc import Iterable, Iterator
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
    "gcide": {
        "name": "GNU General Public License, version 2 or later (GCIDE 0.48)",
        "debian_package": "dict-gcide",
        "copyright": "GCIDE: Webster's Revised Unabridged Dictionary (1913, public domain) with additions by "
                     "Patrick Cassidy and others, distributed under the GPL-2+",
        "url": "https://www.gnu.org/software/gcide/",
    },
    "jargon": {
        "name": "public domain (The Jargon File 4.4.7)",
        "debian_package": "dict-jargon",
        "copyright": "The Jargon File is in the public domain, to be freely used, shared, and modified.",
        "url": "http://catb.org/jargon/",
    },
    "devil": {
        "name": "public domain (The Devil's Dictionary, Ambrose Bierce, 1911; copyright expired)",
        "debian_package": "dict-devil",
        "copyright": "Copyright 1911 by Albert and Charles Boni, Inc. A Public Domain Text, Copyright Expired.",
        "url": "https://www.gutenberg.org/ebooks/972",
    },
}
_SPACE = re.compile(r"\s+")
_LEX_MARKER = re.compile(r"\([a-z]+\)$")  # adjective position markers such as "able(a)"


def normalise(text: str) -> str:
    """Collapse runs of spaces/tabs inside lines, strip lines and drop empty ones."""
    lines = (_SPACE.sub(" ", line).strip() for line in text.split("\n"))
    return "\n".join(line for line in lines if line)


# --------------------------------------------------------------------------------------- WordNet


def split_gloss(gloss: str, keep_remarks: bool = True) -> tuple[str, list[str]]:
    """Split a WordNet gloss into its definition and its quoted example sentences; an unquoted remark after
    the examples is kept as one more example with ``keep_remarks``, dropped without."""
    definition: list[str] = []
    examples: list[str] = []
    for part in (p.strip() for p in gloss.split(";")):
        if part.startswith('"'):
            ex = part.strip('"').strip()
            if ex:
                examples.append(ex)
        elif part and not examples:
            definition.append(part)
        elif part and keep_remarks:
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
                definition, examples = split_gloss(gloss.strip())
                text = f"{', '.join(lemmas)} ({pos_name}): {definition}."
                if examples:
                    text += " " + " ".join(_sentence(ex) for ex in examples)
                yield lex_file, text


def consecutive_groups(items: Iterable[tuple[str, str]], size: int) -> Iterator[tuple[str, str]]:
    """``(container, text)``: runs of at most ``size`` consecutive ``(container, text)`` items of one container,
    their texts joined by newlines."""
    group: list[str] = []
    current = None
    for container, text in items:
        if group and (container != current or len(group) >= size):
            yield current, "\n".join(group)
            group = []
        current = container
        group.append(text)
    if group:
        yield current, "\n".join(group)


def wordnet_units(wordnet_dir: Path, synsets_per_unit: int) -> Iterator[tuple[str, str]]:
    """``(container, text)``: groups of consecutive synsets of the same lexicographer file."""
    entries = ((f"wordnet/{lex_file:02d}", entry) for lex_file, entry in wordnet_entries(wordnet_dir))
    return consecutive_groups(entries, synsets_per_unit)


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


# ------------------------------------------------------------------------------- dictd dictionaries

_B64 = {c: i for i, c in enumerate("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/")}
_BRACES = re.compile(r"\{([^{}]*)\}")
_GCIDE_HEAD = re.compile(r"\\[^\\]*\\\s*(\([^()]*\))?")  # "\A*back"\ ([.a]*b[a^]k")": syllables, pronunciation
_GCIDE_CITE = re.compile(r"\s--\s?[A-Z][\w.&' ]{0,40}?\.(?=\s|$)")  # "--Chaucer." attributions
_JARGON_PRON = re.compile(r"^/[^/\n]+/,?\s*")  # "/fee`ch@r·ek't@·mee/, n."


def _b64(s: str) -> int:
    n = 0
    for c in s:
        n = n * 64 + _B64[c]
    return n


def dictd_entries(dict_dir: Path, name: str) -> Iterator[str]:
    """Yield the raw text of every entry of a dictd dictionary (``NAME.index`` + ``NAME.dict.dz``), in file order.

    Several headwords of the index may point at one entry; each entry is yielded once. The database's own
    header entries (``00-database-*``) are skipped.
    """
    index, data = dict_dir / f"{name}.index", dict_dir / f"{name}.dict.dz"
    if not index.is_file() or not data.is_file():
        raise FileNotFoundError(f"{index} or {data} not found; install it with `apt-get install dict-{name}`")
    spans = set()
    for line in index.read_text(encoding="utf-8", errors="replace").splitlines():
        parts = line.split("\t")
        if len(parts) < 3 or parts[0].startswith(("00-database", "00database")):
            continue
        spans.add((_b64(parts[1]), _b64(parts[2])))
    raw = gzip.decompress(data.read_bytes())
    for offset, length in sorted(spans):
        yield raw[offset:offset + length].decode("utf-8", errors="replace")


def _drop_brackets(text: str) -> str:
    """Remove every ``[...]`` span, nested ones included (etymologies, source tags, accent markup)."""
    out, depth = [], 0
    for ch in text:
        if ch == "[":
            depth += 1
        elif ch == "]" and depth:
            depth -= 1
        elif not depth:
            out.append(ch)
    return "".join(out)


def _unwrap_refs(text: str) -> str:
    """Cross-references ``{x y}`` as their words."""
    return _BRACES.sub(lambda m: " ".join(m[1].split()), text)


def _paragraphs(text: str) -> list[str]:
    """Blank-line separated paragraphs, each joined into one line, cross-references ``{x}`` unwrapped."""
    text = _unwrap_refs(text)
    paras = (" ".join(p.split()) for p in re.split(r"\n\s*\n", text))
    return [p for p in paras if p]


def _tidy(text: str) -> str:
    text = re.sub(r"\s+([,.;:])", r"\1", text)
    return re.sub(r"([,;:])(?=[,;:.])", "", text).strip()


def gcide_entry(entry: str) -> str:
    """Plain text of one GCIDE entry: headword and part of speech, then the 1913 Webster / GCIDE senses.

    Senses copied from WordNet 1.5 are dropped (WordNet is a source of its own, and its held-out glosses
    must stay held out); so are syllabification, pronunciation, etymologies, source tags and "--Author."
    attributions.
    """
    paras = [p for p in re.split(r"\n\s*\n", entry) if "[WordNet 1.5]" not in p]
    if not paras:
        return ""
    head = _GCIDE_HEAD.sub("", paras[0])
    text = "\n\n".join([head, *paras[1:]])
    text = _drop_brackets(text)
    lines = [_tidy(_GCIDE_CITE.sub("", p)) for p in _paragraphs(text)]
    lines = [p for p in lines if len(p) > 1]
    text = "\n".join(lines)
    return text if len(text.split()) >= 4 else ""


def jargon_entry(entry: str) -> str:
    """Plain text of one Jargon File entry: headword, part of speech and the prose, pronunciation dropped."""
    head, _, body = entry.partition("\n")
    rest, _, body = body.partition("\n\n")
    pos = _JARGON_PRON.sub("", rest.strip())
    paras = [_tidy(p) for p in _paragraphs(_drop_brackets(body))]
    paras = [p for p in paras if p]
    if not paras:
        return ""
    return "\n".join([f"{head.strip()}, {pos}".rstrip(", "), *paras])


def devil_entry(entry: str) -> str:
    """Plain text of one Devil's Dictionary entry (the verse kept line by line, the prose joined)."""
    text = _unwrap_refs(entry)
    paras = []
    for p in re.split(r"\n\s*\n", text):
        lines = [ln.strip() for ln in p.splitlines() if ln.strip()]
        if not lines:
            continue
        verse = all(ln.startswith(" ") for ln in p.splitlines() if ln.strip())
        paras.append("\n".join(lines) if verse else " ".join(lines))
    return "\n".join(paras)


DICTD_SOURCES = {"gcide": gcide_entry, "jargon": jargon_entry, "devil": devil_entry}


def dictd_units(dict_dir: Path, name: str, entries_per_unit: int) -> Iterator[tuple[str, str]]:
    """``(container, text)``: groups of consecutive entries of one dictionary; the container is its first letter."""
    def entries() -> Iterator[tuple[str, str]]:
        for raw in dictd_entries(dict_dir, name):
            text = DICTD_SOURCES[name](raw)
            if text:
                first = text[0].lower()
                yield f"{name}/{first if 'a' <= first <= 'z' else 'other'}", text

    return consecutive_groups(entries(), entries_per_unit)


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
    dict_dir: Path = Path("/usr/share/dictd"),
    dictionaries: tuple[str, ...] = (),
    entries_per_unit: int = 8,
) -> dict:
    """Build the corpus into ``out`` and return the manifest.

    Units (groups of ``synsets_per_unit`` WordNet synsets; Python-docs sections) are normalised,
    deduplicated and assigned to train or held-out by a hash of their text. With ``merge`` the units of
    one split that come from the same container (WordNet lexicographer file such as ``noun.animal``;
    Python-docs page) are joined, in source order, into one document: long documents that the
    pretraining cuts into full ``seq_len`` sequences. Without it every unit is its own document.
    The dictd ``dictionaries`` (from ``dict_dir``) follow, in groups of ``entries_per_unit`` entries, one
    container per dictionary and first letter. WordNet and the docs come first and are cut as before, so
    their units, and which of them are held out, do not depend on the dictionaries.
    """
    unknown = [d for d in dictionaries if d not in DICTD_SOURCES]
    if unknown:
        raise ValueError(f"unknown dictionaries {unknown}; choose from {sorted(DICTD_SOURCES)}")
    if entries_per_unit < 1:
        raise ValueError(f"--entries-per-unit must be >= 1, got {entries_per_unit}")
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
        *((name, dictd_units(dict_dir, name, entries_per_unit)) for name in dictionaries),
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
        "entries_per_unit": entries_per_unit,
        "sources": {"wordnet": str(wordnet_dir), "pydoc": str(pydoc_dir),
                    **{name: str(dict_dir / f"{name}.dict.dz") for name in dictionaries}},
        "licences": {k: v for k, v in LICENCES.items() if k in ("wordnet", "pydoc", *dictionaries)},
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
    ap.add_argument("--dict-dir", type=Path, default=Path("/usr/share/dictd"), help="folder of the dictd files")
    ap.add_argument("--dictionaries", default=",".join(DICTD_SOURCES),
                    help="comma-separated dictd dictionaries to add ('none': WordNet and the docs only)")
    ap.add_argument("--entries-per-unit", type=int, default=8, help="dictionary entries per split/dedupe unit")
    args = ap.parse_args(argv)
    names = () if args.dictionaries == "none" else tuple(n for n in args.dictionaries.split(",") if n)
    try:
        manifest = build(
            args.out, args.wordnet_dir, args.pydoc_dir, args.heldout_per_mille, args.synsets_per_unit, args.merge,
            args.dict_dir, names, args.entries_per_unit,
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
