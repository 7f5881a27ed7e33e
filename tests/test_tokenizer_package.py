"""The tokenizer package itself: no torch on import, modules that import on their own, one special-token
table in transformers' order, and atomic saves."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from tokenizer_fixture import write_tokenizer

from modernbert.tokenizer import SPECIAL_TOKENS_ATTRIBUTES, Tokenizer
from modernbert.tokenizer.special_tokens import SPECIAL_TOKENS

SRC = Path(__file__).resolve().parents[1] / "src"
MODULES = ["core", "encoding", "files", "inputs", "special_tokens", "strategy"]


def _python(code: str, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(SRC), os.environ.get("PYTHONPATH", "")])}
    return subprocess.run([sys.executable, "-c", code, *args], env=env, capture_output=True, text=True, timeout=120)


def test_import_does_not_load_torch():
    result = _python('import modernbert.tokenizer, sys; assert "torch" not in sys.modules, "torch imported"')
    assert result.returncode == 0, result.stderr


def test_tokenizing_without_tensors_does_not_load_torch(tmp_path):
    write_tokenizer(tmp_path / "tok")
    code = """
import sys
from modernbert.tokenizer import Tokenizer
tok = Tokenizer.from_pretrained(sys.argv[1])
enc = tok(["The capital is [MASK].", "a b"], padding=True, return_tensors="np")
tok.pad([{"input_ids": [1, 2]}, {"input_ids": [3]}])
tok.decode(enc["input_ids"][0])
tok.add_tokens(["newtok"])
tok.save_pretrained(sys.argv[2])
assert "torch" not in sys.modules, "torch imported"
tok("a", return_tensors="pt")  # the tensor path imports it
assert "torch" in sys.modules
print(enc["input_ids"].tolist())
"""
    result = _python(code, str(tmp_path / "tok"), str(tmp_path / "saved"))
    assert result.returncode == 0, result.stderr
    expected = Tokenizer.from_pretrained(tmp_path / "tok")(["The capital is [MASK].", "a b"], padding=True)
    assert json.loads(result.stdout) == expected["input_ids"]


@pytest.mark.parametrize("module", MODULES)
def test_each_module_imports_on_its_own(module):
    result = _python(f"import modernbert.tokenizer.{module}")
    assert result.returncode == 0, result.stderr


def test_special_token_table_is_transformers_order():
    transformers = pytest.importorskip("transformers")
    assert list(SPECIAL_TOKENS_ATTRIBUTES) == transformers.PreTrainedTokenizerBase.SPECIAL_TOKENS_ATTRIBUTES
    for name in SPECIAL_TOKENS:  # every entry is a documented attribute pair of the tokenizer
        assert getattr(Tokenizer, name).__doc__ == SPECIAL_TOKENS[name]
        assert name in getattr(Tokenizer, f"{name}_id").__doc__


def test_unknown_attribute_is_an_attribute_error(tmp_path):
    write_tokenizer(tmp_path)
    tok = Tokenizer.from_pretrained(tmp_path)
    with pytest.raises(AttributeError, match="no attribute 'image_token'"):
        _ = tok.image_token
    assert not hasattr(tok, "foo_token_id")


def test_model_specific_named_tokens(tmp_path):
    write_tokenizer(tmp_path)
    config = json.loads((tmp_path / "tokenizer_config.json").read_text())
    config["extra_special_tokens"] = {"image_token": "<image>"}
    (tmp_path / "tokenizer_config.json").write_text(json.dumps(config))
    tok = Tokenizer.from_pretrained(tmp_path)
    assert tok.image_token == "<image>" and tok.image_token_id == len(tok) - 1
    transformers = pytest.importorskip("transformers")
    ref = transformers.AutoTokenizer.from_pretrained(str(tmp_path))
    assert (ref.image_token, ref.image_token_id) == (tok.image_token, tok.image_token_id)
    assert tok.all_special_tokens == ref.all_special_tokens


def test_save_is_atomic(tmp_path, monkeypatch):
    write_tokenizer(tmp_path / "src")
    tok = Tokenizer.from_pretrained(tmp_path / "src")
    folder = tmp_path / "saved"
    tok.save_pretrained(folder)
    before = {p.name: p.read_bytes() for p in folder.iterdir()}
    tok.add_tokens(["newtok"])
    real_replace = os.replace

    def fail_on_config(src, dst):
        if Path(dst).name == "tokenizer_config.json":
            raise OSError("disk gone")
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", fail_on_config)
    with pytest.raises(OSError, match="disk gone"):
        tok.save_pretrained(folder)
    monkeypatch.setattr(os, "replace", real_replace)
    after = {p.name: p.read_bytes() for p in folder.iterdir()}
    assert sorted(after) == sorted(before)  # no temporary file left behind
    assert after["tokenizer_config.json"] == before["tokenizer_config.json"]  # the old file, whole
    assert after["tokenizer.json"] != before["tokenizer.json"]  # written before the failure, whole
    assert "newtok" in json.loads(after["tokenizer.json"])["added_tokens"][-1]["content"]


def test_save_into_a_file_is_refused(tmp_path):
    write_tokenizer(tmp_path)
    with pytest.raises(ValueError, match="is a file, expected a folder"):
        Tokenizer.from_pretrained(tmp_path).save_pretrained(tmp_path / "tokenizer.json")


def test_bad_config_json_names_the_file(tmp_path):
    write_tokenizer(tmp_path)
    (tmp_path / "tokenizer_config.json").write_text("{not json")
    with pytest.raises(ValueError, match=r"tokenizer_config\.json is not a valid tokenizer config"):
        Tokenizer.from_pretrained(tmp_path)
