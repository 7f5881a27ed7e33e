"""Auto classes: each loads its checkpoint into the matching class; other model types fail with a clear error."""

from __future__ import annotations

import json
import shutil
import warnings

import pytest
import torch
import transformers

import modernbert
from modernbert import (
    AutoConfig,
    AutoModel,
    AutoModelForMaskedLM,
    AutoModelForMultipleChoice,
    AutoModelForQuestionAnswering,
    AutoModelForSequenceClassification,
    AutoModelForTokenClassification,
    AutoTokenizer,
    ModernBertConfig,
    Tokenizer,
)
from modernbert.hub import bundled_models

AUTO_CLASSES = {
    "ModernBertModel": AutoModel,
    "ModernBertForMaskedLM": AutoModelForMaskedLM,
    "ModernBertForSequenceClassification": AutoModelForSequenceClassification,
    "ModernBertForTokenClassification": AutoModelForTokenClassification,
    "ModernBertForQuestionAnswering": AutoModelForQuestionAnswering,
    "ModernBertForMultipleChoice": AutoModelForMultipleChoice,
}


@pytest.mark.parametrize("arch", list(AUTO_CLASSES))
def test_auto_class_loads_matching_checkpoint(tiny_checkpoint, arch):
    folder = tiny_checkpoint(arch)
    model = AUTO_CLASSES[arch].from_pretrained(folder)
    assert type(model) is getattr(modernbert, arch)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = getattr(transformers, f"Auto{AUTO_CLASSES[arch].__name__[4:]}").from_pretrained(folder).eval()
    ids = torch.tensor([[1, 5, 9, 40, 2]]) if arch != "ModernBertForMultipleChoice" else torch.tensor([[[1, 5, 9]] * 2])
    with torch.no_grad():
        ours, theirs = model(input_ids=ids), ref(input_ids=ids)
    torch.testing.assert_close(ours[0], theirs[0], atol=1e-4, rtol=0)


def test_auto_model_from_head_checkpoint(tiny_checkpoint):
    """AutoModel on a masked-LM checkpoint gives the bare encoder, as in transformers."""
    model = AutoModel.from_pretrained(tiny_checkpoint("ModernBertForMaskedLM"))
    assert type(model) is modernbert.ModernBertModel


def test_from_pretrained_keyword_arguments(tiny_checkpoint):
    folder = tiny_checkpoint("ModernBertForSequenceClassification")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = AutoModelForSequenceClassification.from_pretrained(
            folder, num_labels=2, dtype="bfloat16", attn_implementation="eager", device="cpu",
            local_files_only=True)
    assert model.dtype == torch.bfloat16 and model.attn_implementation == "eager"
    assert model.config.num_labels == 2


def test_auto_config_and_tokenizer(tiny_checkpoint, special_ids):
    folder = tiny_checkpoint("ModernBertForMaskedLM")
    config = AutoConfig.from_pretrained(folder)
    assert isinstance(config, ModernBertConfig) and config.hidden_size == 32
    assert AutoConfig.from_pretrained(folder, num_labels=4).num_labels == 4
    assert AutoConfig.for_model(hidden_size=64, num_attention_heads=4).hidden_size == 64
    tokenizer = AutoTokenizer.from_pretrained(folder)
    assert isinstance(tokenizer, Tokenizer)
    assert tokenizer.mask_token_id == special_ids["mask_token_id"]
    reference = transformers.AutoTokenizer.from_pretrained(folder)
    text = "The capital of France is [MASK]."
    assert tokenizer(text)["input_ids"] == reference(text)["input_ids"]


def test_from_config(tiny_checkpoint):
    config = AutoConfig.from_pretrained(tiny_checkpoint("ModernBertForMaskedLM"))
    assert type(AutoModelForTokenClassification.from_config(config)) is modernbert.ModernBertForTokenClassification
    with pytest.raises(TypeError, match="ModernBertConfig"):
        AutoModel.from_config({"hidden_size": 32})


@pytest.mark.parametrize("loader", [AutoConfig, AutoModel, AutoModelForMaskedLM, AutoModelForQuestionAnswering])
def test_other_model_type_names_it(tiny_checkpoint, tmp_path, loader):
    source = tiny_checkpoint("ModernBertForMaskedLM")
    folder = tmp_path / "bert"
    shutil.copytree(source, folder)
    config = json.loads((folder / "config.json").read_text())
    config["model_type"] = "bert"
    (folder / "config.json").write_text(json.dumps(config))
    with pytest.raises(ValueError, match="model_type='bert'.*only runs 'modernbert'"):
        loader.from_pretrained(folder)


def test_missing_and_bad_names(tmp_path):
    with pytest.raises(FileNotFoundError):
        AutoModel.from_pretrained(tmp_path / "does-not-exist")
    with pytest.raises(FileNotFoundError):
        AutoTokenizer.from_pretrained(tmp_path / "does-not-exist")
    with pytest.raises(TypeError, match="name_or_path"):
        AutoModel.from_pretrained(42)
    with pytest.raises(TypeError, match="from_pretrained"):
        AutoModel()


@pytest.mark.skipif("modernbert-tiny" not in bundled_models(),
                    reason="no bundled model 'modernbert-tiny' in src/modernbert/bundled yet")
def test_bundled_name_resolves():
    config = AutoConfig.from_pretrained("modernbert-tiny")
    tokenizer = AutoTokenizer.from_pretrained("modernbert-tiny")
    model = AutoModelForMaskedLM.from_pretrained("modernbert-tiny")
    assert isinstance(config, ModernBertConfig) and isinstance(tokenizer, Tokenizer)
    assert isinstance(model, modernbert.ModernBertForMaskedLM)
    assert model.config.vocab_size >= len(tokenizer)
    out = modernbert.pipeline("fill-mask", model="modernbert-tiny")(f"Hello {tokenizer.mask_token}!")
    assert len(out) == 5
