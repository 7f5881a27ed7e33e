"""ModernBertConfig: both config.json layouts in and out, presets, validation."""

from __future__ import annotations

import dataclasses
import json
import warnings

import pytest
import transformers

from modernbert.config import ModernBertConfig

# The published answerdotai/ModernBERT-base config.json (transformers 4.x layout).
HUB_BASE_CONFIG = {
    "architectures": ["ModernBertForMaskedLM"],
    "attention_bias": False,
    "attention_dropout": 0.0,
    "bos_token_id": 50281,
    "classifier_activation": "gelu",
    "classifier_bias": False,
    "classifier_dropout": 0.0,
    "classifier_pooling": "mean",
    "cls_token_id": 50281,
    "decoder_bias": True,
    "deterministic_flash_attn": False,
    "embedding_dropout": 0.0,
    "eos_token_id": 50282,
    "global_attn_every_n_layers": 3,
    "global_rope_theta": 160000.0,
    "gradient_checkpointing": False,
    "hidden_activation": "gelu",
    "hidden_size": 768,
    "initializer_cutoff_factor": 2.0,
    "initializer_range": 0.02,
    "intermediate_size": 1152,
    "layer_norm_eps": 1e-05,
    "local_attention": 128,
    "local_rope_theta": 10000.0,
    "max_position_embeddings": 8192,
    "mlp_bias": False,
    "mlp_dropout": 0.0,
    "model_type": "modernbert",
    "norm_bias": False,
    "norm_eps": 1e-05,
    "num_attention_heads": 12,
    "num_hidden_layers": 22,
    "pad_token_id": 50283,
    "position_embedding_type": "absolute",
    "sep_token_id": 50282,
    "tie_word_embeddings": True,
    "torch_dtype": "float32",
    "transformers_version": "4.47.0.dev0",
    "vocab_size": 50368,
}


def test_defaults_match_reference():
    ref = transformers.ModernBertConfig()
    ours = ModernBertConfig()
    for f in dataclasses.fields(ours):
        if hasattr(ref, f.name) and f.name not in ("dtype", "architectures", "problem_type"):
            assert getattr(ours, f.name) == getattr(ref, f.name), f.name
    assert ours.global_rope_theta == ref.rope_parameters["full_attention"]["rope_theta"] == 160_000
    assert ours.local_rope_theta == ref.rope_parameters["sliding_attention"]["rope_theta"] == 10_000
    assert ours.sliding_window == ref.sliding_window == 64


def test_reads_published_4x_config():
    cfg = ModernBertConfig.from_dict(HUB_BASE_CONFIG)
    assert cfg.classifier_pooling == "mean" and cfg.dtype == "float32"
    assert [i for i, t in enumerate(cfg.layer_types) if t == "full_attention"] == [0, 3, 6, 9, 12, 15, 18, 21]
    assert (cfg.global_rope_theta, cfg.local_rope_theta) == (160_000.0, 10_000.0)
    # Stray keys are kept and written back; keys that mean nothing (reference_compile) are not.
    out = cfg.to_dict()
    assert out["position_embedding_type"] == "absolute" and out["gradient_checkpointing"] is False
    assert out["layer_norm_eps"] == 1e-5
    assert out["global_attn_every_n_layers"] == 3 and out["torch_dtype"] == out["dtype"] == "float32"


def test_reads_5x_config_and_transformers_reads_ours(tmp_path):
    ref = transformers.ModernBertConfig(
        num_hidden_layers=5, global_attn_every_n_layers=2, local_attention=32,
        rope_parameters={"full_attention": {"rope_type": "default", "rope_theta": 1234.0},
                         "sliding_attention": {"rope_type": "default", "rope_theta": 56.0}},
        id2label={0: "neg", 1: "neu", 2: "pos"}, dtype="bfloat16",
    )
    ref.save_pretrained(tmp_path)
    ours = ModernBertConfig.from_json_file(tmp_path / "config.json")
    assert ours.layer_types == ref.layer_types
    assert (ours.global_rope_theta, ours.local_rope_theta) == (1234.0, 56.0)
    assert ours.num_labels == 3 and ours.id2label[2] == "pos" and ours.label2id["neu"] == 1
    assert ours.dtype == "bfloat16"
    # Written back, transformers reads the same model.
    out = tmp_path / "ours"
    ours.save_pretrained(out)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        again = transformers.ModernBertConfig.from_pretrained(out)
    assert again.layer_types == ref.layer_types and again.rope_parameters == ref.rope_parameters
    assert again.id2label == ref.id2label and again.local_attention == 32 and again.num_labels == 3
    assert ModernBertConfig.from_json_file(out / "config.json") == ours


def test_transformers_reads_4x_config_we_write(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps(HUB_BASE_CONFIG))
    ours = ModernBertConfig.from_json_file(tmp_path / "config.json")
    ours.save_pretrained(tmp_path / "out")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = transformers.ModernBertConfig.from_pretrained(tmp_path / "out")
        ref_direct = transformers.ModernBertConfig.from_pretrained(tmp_path)
    assert ref.layer_types == ref_direct.layer_types
    assert ref.rope_parameters == ref_direct.rope_parameters
    assert ref.classifier_pooling == "mean"


def test_presets():
    base, large = ModernBertConfig.from_preset("base"), ModernBertConfig.from_preset("large")
    assert (base.hidden_size, base.num_hidden_layers) == (768, 22)
    assert (large.hidden_size, large.intermediate_size, large.num_hidden_layers, large.num_attention_heads) == (
        1024, 2624, 28, 16)
    assert ModernBertConfig.from_preset("base", num_labels=5).num_labels == 5
    with pytest.raises(ValueError, match="unknown preset 'huge'"):
        ModernBertConfig.from_preset("huge")


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(hidden_size=100, num_attention_heads=12), "hidden_size=100 must be divisible by num_attention_heads=12"),
        (dict(local_attention=127), "local_attention=127 must be a positive even integer"),
        (dict(classifier_pooling="max"), "classifier_pooling='max' must be 'cls' or 'mean'"),
        (dict(hidden_activation="swiglu"), "hidden_activation='swiglu' is not supported"),
        (dict(num_hidden_layers=0), "num_hidden_layers=0 must be a positive integer"),
        (dict(layer_types=["full_attention"]), "layer_types has 1 entries but num_hidden_layers=22"),
        (dict(dtype="int8"), "dtype='int8' is not supported"),
    ],
)
def test_validation_errors(kwargs, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        ModernBertConfig(**kwargs)


def test_other_model_type_is_rejected(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "bert", "hidden_size": 768}))
    with pytest.raises(ValueError, match="model_type='bert'"):
        ModernBertConfig.from_pretrained(tmp_path)


def test_unsupported_rope_type():
    with pytest.raises(ValueError, match="rope_type='yarn'"):
        ModernBertConfig.from_dict({"rope_parameters": {"full_attention": {"rope_type": "yarn", "factor": 2.0}}})
