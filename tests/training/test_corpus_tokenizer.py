"""scripts/build_corpus.py and scripts/train_tokenizer.py on small fake inputs."""

from __future__ import annotations

import json

import pytest
from conftest import load_script

HEADER = "  1 This software and database is being provided to you, the LICENSEE, by  \n"
NOUNS = [
    "00001740 03 n 01 entity 0 003 ~ 00001930 n 0000 | that which is perceived or known or inferred to have its "
    "own distinct existence (living or nonliving)  \n",
    "00002137 03 n 02 abstraction 0 abstract_entity 0 000 | a general concept formed by extracting common features "
    'from specific examples; "the dog barked all night"; "a second example"  \n',
    "02084071 05 n 02 dog 0 domestic_dog 0 000 | a member of the genus Canis; \"the dog barked all night\"  \n",
]
ADJ = ['00001740 00 a 01 able(a) 0 000 | having the necessary means or skill; "able to swim"  \n']

PAGE = """<html><body><div class="sphinxsidebar"><p>navigation text</p></div>
<div class="body" role="main"><section><h1>json — JSON encoder<a class="headerlink" href="#x">¶</a></h1>
<p>The <code>json</code> module exposes an API familiar to users of the standard library.</p>
<div class="highlight"><pre>&gt;&gt;&gt; import json
json.dumps(['foo'])</pre></div>
<section><h2>Basic Usage<a class="headerlink" href="#y">¶</a></h2>
<dl><dt>json.dump(obj, fp)</dt><dd><p>Serialize <em>obj</em> as a JSON formatted stream to <em>fp</em>,
a file-like object that supports writing.</p></dd></dl></section></section></div>
<div class="footer"><p>Copyright footer</p></div></body></html>"""


@pytest.fixture
def fake_sources(tmp_path):
    wn = tmp_path / "wordnet"
    wn.mkdir()
    (wn / "data.noun").write_text(HEADER + "".join(NOUNS))
    (wn / "data.adj").write_text(HEADER + "".join(ADJ))
    (wn / "data.verb").write_text(HEADER)
    (wn / "data.adv").write_text(HEADER)
    html = tmp_path / "html"
    (html / "library").mkdir(parents=True)
    (html / "library" / "json.html").write_text(PAGE)
    (html / "library" / "copy.html").write_text(PAGE)  # an exact duplicate page: deduplicated
    (html / "genindex-A.html").write_text(PAGE.replace("json", "index"))  # index pages are skipped
    (html / "_static").mkdir()
    (html / "_static" / "x.html").write_text(PAGE.replace("json", "static"))
    return wn, html


def _read(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_build_corpus(fake_sources, tmp_path):
    bc = load_script("build_corpus")
    wn, html = fake_sources
    out = tmp_path / "corpus"
    manifest = bc.build(out, wn, html, heldout_per_mille=500, synsets_per_unit=1)
    docs = _read(out / "train.jsonl") + _read(out / "heldout.jsonl")
    text = "\n".join(d["text"] for d in docs)
    assert "abstraction, abstract entity (noun): a general concept formed by extracting common features from " \
           "specific examples. The dog barked all night. A second example." in text
    assert "able (adjective): having the necessary means or skill. Able to swim." in text
    assert "dog, domestic dog (noun)" in text
    assert "LICENSEE" not in text  # the licence header of the data files is not text
    assert "The json module exposes an API familiar to users of the standard library." in text
    assert "Basic Usage" in text and "Serialize obj as a JSON formatted stream" in text
    for absent in ("import json", "¶", "navigation text", "Copyright footer", "index module", "static"):
        assert absent not in text, absent
    c = manifest["counts"]
    assert c["wordnet"]["units"] == 4 and c["pydoc"]["duplicates"] == 2  # copy.html's two sections
    assert c["wordnet"]["train_units"] + c["wordnet"]["heldout_units"] == 4
    # deterministic, and the split of a unit depends only on its text
    again = bc.build(tmp_path / "again", wn, html, heldout_per_mille=500, synsets_per_unit=1)
    assert again["files"] == manifest["files"]
    assert set(manifest["licences"]) == {"wordnet", "pydoc"}


def test_build_corpus_merges_units_per_container(fake_sources, tmp_path):
    bc = load_script("build_corpus")
    wn, html = fake_sources
    merged = bc.build(tmp_path / "m", wn, html, heldout_per_mille=1, synsets_per_unit=1)
    docs = _read(tmp_path / "m" / "train.jsonl")
    containers = [d["container"] for d in docs]
    assert len(containers) == len(set(containers))  # one document per lexicographer file / page
    assert merged["counts"]["wordnet"]["train_docs"] <= 3
    with pytest.raises(ValueError, match="heldout-per-mille"):
        bc.build(tmp_path / "bad", wn, html, heldout_per_mille=0)
    assert bc.main(["--out", str(tmp_path / "x"), "--wordnet-dir", str(tmp_path / "missing")]) == 2


def test_train_tokenizer_layout(fake_sources, tmp_path):
    bc = load_script("build_corpus")
    tt = load_script("train_tokenizer")
    wn, html = fake_sources
    bc.build(tmp_path / "corpus", wn, html, heldout_per_mille=1)
    tok = tt.train_tokenizer([tmp_path / "corpus" / "train.jsonl"], vocab_size=320)
    ids = tt.save_tokenizer(tok, tmp_path / "tok", model_max_length=128)
    assert list(ids) == ["[UNK]", "[CLS]", "[SEP]", "[PAD]", "[MASK]"]
    assert list(ids.values()) == list(range(315, 320))  # specials last; [PAD] is not 0
    data = json.loads((tmp_path / "tok" / "tokenizer.json").read_text())
    assert data["pre_tokenizer"]["type"] == "ByteLevel" and data["pre_tokenizer"]["add_prefix_space"] is False
    assert data["decoder"]["type"] == "ByteLevel" and data["post_processor"]["type"] == "TemplateProcessing"
    mask = next(t for t in data["added_tokens"] if t["content"] == "[MASK]")
    assert mask["lstrip"] is True and mask["special"] is True
    cfg = json.loads((tmp_path / "tok" / "tokenizer_config.json").read_text())
    assert cfg["tokenizer_class"] == "PreTrainedTokenizerFast" and cfg["model_max_length"] == 128
    assert cfg["model_input_names"] == ["input_ids", "attention_mask"] and cfg["clean_up_tokenization_spaces"]
    enc = tok.encode("The dog barked.", "A pair.")
    assert enc.ids[0] == ids["[CLS]"] and enc.ids.count(ids["[SEP]"]) == 2
    assert tok.decode(tok.encode("The dog  barked,\n ok").ids) == "The dog  barked,\n ok"
    with pytest.raises(ValueError, match="vocab_size"):
        tt.train_tokenizer([tmp_path / "corpus" / "train.jsonl"], vocab_size=100)


def test_tokenizer_loads_in_transformers(fake_sources, tmp_path):
    transformers = pytest.importorskip("transformers")
    bc = load_script("build_corpus")
    tt = load_script("train_tokenizer")
    wn, html = fake_sources
    bc.build(tmp_path / "corpus", wn, html, heldout_per_mille=1)
    tok = tt.train_tokenizer([tmp_path / "corpus" / "train.jsonl"], vocab_size=320)
    tt.save_tokenizer(tok, tmp_path / "tok", model_max_length=128)
    tt.check_with_transformers(tmp_path / "tok", ["The dog barked all night.", "café – “quotes”"])
    hf = transformers.AutoTokenizer.from_pretrained(str(tmp_path / "tok"))
    assert hf.pad_token_id == 318 and hf.mask_token_id == 319
    assert hf("a [MASK] b")["input_ids"][2] == 319


def _dictd(folder, name, entries):
    """A dictd dictionary: ``NAME.index`` (headword, base64 offset, base64 length) and gzip'd ``NAME.dict.dz``."""
    import gzip

    def b64(n):
        digits = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
        out = ""
        while True:
            out = chr(digits[n % 64]) + out
            n //= 64
            if not n:
                return out

    data, index, offset = b"", [], 0
    for head, text in entries:
        raw = text.encode()
        index.append(f"{head}\t{b64(offset)}\t{b64(len(raw))}")
        data, offset = data + raw, offset + len(raw)
    index.append(f"00-database-short\t{b64(0)}\t{b64(5)}")
    folder.mkdir(exist_ok=True)
    (folder / f"{name}.index").write_text("\n".join(index) + "\n")
    (folder / f"{name}.dict.dz").write_bytes(gzip.compress(data))


GCIDE = [
    ("Aback", 'Aback \\A*back"\\ ([.a]*b[a^]k"), adv. [Pref. a- + back; AS. on b[ae]c.]\n'
              '   1. Toward the back or rear; backward. "Therewith aback she\n      started." --Chaucer.\n'
              "      [1913 Webster]\n\n"),
    ("Abacus", "Abacus \\Ab\"a*cus\\, n.\n   A table or tray strewn with sand, used for {calculating}.\n"
               "   [1913 Webster]\n\n   2. A frame with beads sliding on wires.\n   [WordNet 1.5]\n\n"),
]
JARGON = [("feature creep", "feature creep\n n.\n\n    [common] The result of {creeping\n    featurism}.\n\n")]
DEVIL = [("ABSURDITY", "ABSURDITY, n.  A statement or belief manifestly inconsistent with\none's own opinion.\n\n")]


def test_build_corpus_dictd(fake_sources, tmp_path):
    bc = load_script("build_corpus")
    wn, html = fake_sources
    dd = tmp_path / "dictd"
    _dictd(dd, "gcide", GCIDE)
    _dictd(dd, "jargon", JARGON)
    _dictd(dd, "devil", DEVIL)
    base = bc.build(tmp_path / "base", wn, html, heldout_per_mille=500, synsets_per_unit=1)
    out = tmp_path / "corpus"
    manifest = bc.build(out, wn, html, heldout_per_mille=500, synsets_per_unit=1, dict_dir=dd,
                        dictionaries=("gcide", "jargon", "devil"), entries_per_unit=1)
    docs = _read(out / "train.jsonl") + _read(out / "heldout.jsonl")
    text = "\n".join(d["text"] for d in docs)
    assert 'Aback, adv. 1. Toward the back or rear; backward. "Therewith aback she started."' in text
    assert "Abacus, n. A table or tray strewn with sand, used for calculating." in text
    assert "feature creep, n.\nThe result of creeping featurism." in text
    assert "ABSURDITY, n. A statement or belief manifestly inconsistent with one's own opinion." in text
    for absent in ("Chaucer", "Webster", "beads", "[", "\\", "{", "common]", "database"):
        assert absent not in text, absent
    assert {d["source"] for d in docs} >= {"gcide", "jargon", "devil"}
    assert set(manifest["licences"]) == {"wordnet", "pydoc", "gcide", "jargon", "devil"}
    # the WordNet and docs units, and which of them are held out, do not change when dictionaries are added
    for split in ("train", "heldout"):
        old = [d for d in _read(tmp_path / "base" / f"{split}.jsonl")]
        new = [d for d in _read(out / f"{split}.jsonl") if d["source"] in ("wordnet", "pydoc")]
        assert new == old
    assert base["counts"]["wordnet"] == manifest["counts"]["wordnet"]
    with pytest.raises(ValueError, match="unknown dictionaries"):
        bc.build(tmp_path / "bad", wn, html, dict_dir=dd, dictionaries=("nosuch",))
    assert bc.main(["--out", str(tmp_path / "x"), "--wordnet-dir", str(wn), "--pydoc-dir", str(html),
                    "--dict-dir", str(tmp_path / "missing")]) == 2
