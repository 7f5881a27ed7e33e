"""scripts/build_task_data.py: the six tasks build from WordNet and the Python docs, `modernbert finetune` reads
and trains on every file, and no example is in two splits."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import shutil
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
WORDNET = Path("/usr/share/wordnet")
PYDOC = Path("/usr/share/doc/python3/html")

pytestmark = pytest.mark.skipif(not (WORDNET / "data.noun").is_file() or not (PYDOC / "library").is_dir(),
                                reason="needs WordNet and the Python docs: apt-get install wordnet-base python3-doc")


def _script():
    spec = importlib.util.spec_from_file_location("build_task_data", ROOT / "scripts" / "build_task_data.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> tuple[Path, dict, object]:
    b = _script()
    # A few docs pages, at least two per split, so that the docs task is small but has every split.
    pydoc = tmp_path_factory.mktemp("html")
    per_split: dict[str, int] = {}
    for page in sorted((PYDOC / "library").glob("*.html")):
        split = b.split_of(f"library/{page.name}")
        if per_split.get(split, 0) < 2 and page.stat().st_size < 200_000:
            per_split[split] = per_split.get(split, 0) + 1
            (pydoc / "library").mkdir(exist_ok=True)
            shutil.copy(page, pydoc / "library" / page.name)
    out = tmp_path_factory.mktemp("tasks")
    manifest = b.build(out, WORDNET, pydoc, limit=16)
    return out, manifest, b


def test_manifest_counts_hashes_and_licences(built):
    out, manifest, _ = built
    assert json.loads((out / "manifest.json").read_text()) == manifest
    assert set(manifest["licences"]) == {"wordnet", "pydoc"}
    for name, task in manifest["tasks"].items():
        for split, f in task["splits"].items():
            text = (out / f["file"]).read_text()
            assert f["examples"] > 0, (name, split)
            assert f["sha256"] == hashlib.sha256(text.encode()).hexdigest()
    assert manifest["tasks"]["lexclass"]["splits"]["train"]["examples"] == 16


def test_build_is_reproducible(built, tmp_path):
    out, manifest, b = built
    again = b.build(tmp_path, WORDNET, tmp_path / "no-docs", limit=16, tasks=["lexclass", "sense-embed"])
    for name in ("lexclass", "sense-embed"):
        assert again["tasks"][name]["splits"] == manifest["tasks"][name]["splits"]


def _split_keys(out: Path, name: str, split: str) -> set[str]:
    """What must not be in two splits: the synset (or docs paragraph, or lemma) behind each example."""
    folder = out / name
    if name == "define":
        data = json.loads((folder / f"{split}.json").read_text())
        return {qa["id"].split("-")[0] for p in data["data"][0]["paragraphs"] for qa in p["qas"]}
    if name == "pydoc-xref":
        return {block for block in (folder / f"{split}.conll").read_text().split("\n\n") if block.strip()}
    rows = [json.loads(line) for line in (folder / f"{split}.jsonl").read_text().splitlines()]
    column = {"lexclass": "sentence", "cloze": "context", "sense-embed": "anchor", "sense-rerank": "query"}[name]
    keys = {r[column] for r in rows}
    if name == "sense-embed":
        keys |= {r["positive"] for r in rows}
    return keys


def test_splits_are_disjoint(built):
    out, manifest, _ = built
    for name in manifest["tasks"]:
        keys = {s: _split_keys(out, name, s) for s in ("train", "validation", "test")}
        assert all(keys.values()), name
        assert not keys["train"] & keys["test"] and not keys["train"] & keys["validation"], name
        assert not keys["validation"] & keys["test"], name


def test_labels_are_not_given_away(built):
    out, _, b = built
    synsets = {b.without_lemmas(s.definition, s.lemmas): s for s in b.read_wordnet(WORDNET)
               if s.examples and b.split_of(s.key) == "test"}
    rows = [json.loads(line) for line in (out / "lexclass" / "train.jsonl").read_text().splitlines()]
    for r in rows:
        assert r["label"].startswith("noun.") and r["label"] not in r["sentence"]
    # No lemma of its synset is left in a definition of the embedding task.
    for r in (json.loads(line) for line in (out / "sense-embed" / "test.jsonl").read_text().splitlines()):
        s = synsets[r["positive"]]
        assert not any(f" {lemma.lower()} " in f" {r['positive'].lower()} " for lemma in s.lemmas)


@pytest.mark.parametrize("name", ["lexclass", "pydoc-xref", "define", "cloze", "sense-embed", "sense-rerank"])
def test_finetune_reads_and_trains_on_every_task(built, name, tiny_checkpoint, tmp_path):
    from modernbert.training.finetune import finetune

    out, manifest, _ = built
    task = manifest["tasks"][name]
    files = {s: str(out / f["file"]) for s, f in task["splits"].items()}
    extra = {"test": files["test"]} if task["finetune_task"] != "sentence-embedding" else {}
    m = finetune(task=task["finetune_task"], model=str(tiny_checkpoint("ModernBertForMaskedLM")),
                 train=files["train"], validation=files["validation"], output=str(tmp_path / "run"), max_steps=2,
                 batch_tokens=512, num_threads=1, quiet=True, **extra)
    assert m["completed"] and m["step"] == 2
    assert "eval_loss" in m
