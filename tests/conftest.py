"""Tiny random checkpoints, written once per session by the reference (transformers.save_pretrained).

`tiny_checkpoint(arch, **config)` returns a folder holding config.json, model.safetensors and a tokenizer in
ModernBERT's layout, for any reference class name (ModernBertForMaskedLM, ...). The same arguments return the
same folder, so modules share them.
"""

from __future__ import annotations

import json
import os
import warnings
from pathlib import Path

import pytest
import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # nothing in the suite may touch the network
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
torch.set_num_threads(1)  # tiny models run fastest on one thread, and CI's two cores are shared

from tokenizer_fixture import write_tokenizer  # noqa: E402

# Small enough to be fast; window 8 (half-width 4) so short test inputs already cross it.
TINY_CONFIG = dict(
    vocab_size=512,
    hidden_size=32,
    intermediate_size=48,
    num_hidden_layers=4,
    num_attention_heads=2,
    local_attention=8,
    max_position_embeddings=4096,
    global_attn_every_n_layers=3,
)

ARCHS = (
    "ModernBertModel",
    "ModernBertForMaskedLM",
    "ModernBertForSequenceClassification",
    "ModernBertForTokenClassification",
    "ModernBertForQuestionAnswering",
    "ModernBertForMultipleChoice",
)


def build_reference(arch: str, seed: int = 0, **overrides):
    """A random reference model (transformers) with the tiny config and the tokenizer's special ids."""
    import transformers

    special = _special_ids()
    kwargs = {**TINY_CONFIG, **special, **overrides}
    kwargs.pop("mask_token_id", None)
    kwargs.pop("unk_token_id", None)
    config = transformers.ModernBertConfig(**kwargs)
    torch.manual_seed(seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = getattr(transformers, arch)(config)
    # Random (non-trivial) norms and biases, so parity covers them too.
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "norm" in name or name.endswith("bias"):
                p.add_(torch.randn_like(p) * 0.1)
    return model.eval()


_SPECIAL: dict[str, int] = {}


def _special_ids() -> dict[str, int]:
    if not _SPECIAL:
        import tempfile

        with tempfile.TemporaryDirectory() as d:
            _SPECIAL.update(write_tokenizer(d, vocab_size=TINY_CONFIG["vocab_size"]))
    return dict(_SPECIAL)


@pytest.fixture(scope="session")
def special_ids() -> dict[str, int]:
    return _special_ids()


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory):
    cache: dict[str, Path] = {}

    def make(arch: str = "ModernBertForMaskedLM", seed: int = 0, layout: str = "5.x", **overrides) -> Path:
        key = json.dumps([arch, seed, layout, overrides], sort_keys=True, default=str)
        if key not in cache:
            folder = tmp_path_factory.mktemp(arch)
            model = build_reference(arch, seed=seed, **overrides)
            model.save_pretrained(folder)
            write_tokenizer(folder, vocab_size=TINY_CONFIG["vocab_size"])
            if layout == "4.x":
                to_4x_layout(folder / "config.json", global_attn_every_n_layers=overrides.get(
                    "global_attn_every_n_layers", TINY_CONFIG["global_attn_every_n_layers"]))
            cache[key] = folder
        return cache[key]

    return make


# The checkpoint folders most test modules share (the same arguments give the same folder).
@pytest.fixture(scope="session")
def mlm_folder(tiny_checkpoint):
    return tiny_checkpoint("ModernBertForMaskedLM")


@pytest.fixture(scope="session")
def qa_folder(tiny_checkpoint):
    return tiny_checkpoint("ModernBertForQuestionAnswering")


@pytest.fixture(scope="session")
def base_folder(tiny_checkpoint):
    return tiny_checkpoint("ModernBertModel")


def to_4x_layout(path: Path, global_attn_every_n_layers: int) -> None:
    """Rewrite a 5.x config.json in the layout of the published (4.x) hub configs."""
    cfg = json.loads(path.read_text())
    rope = cfg.pop("rope_parameters")
    cfg.pop("layer_types")
    cfg["global_rope_theta"] = rope["full_attention"]["rope_theta"]
    cfg["local_rope_theta"] = rope["sliding_attention"]["rope_theta"]
    cfg["global_attn_every_n_layers"] = global_attn_every_n_layers
    cfg["torch_dtype"] = cfg.pop("dtype", "float32")
    cfg.update(layer_norm_eps=1e-5, reference_compile=True, position_embedding_type="absolute",
               transformers_version="4.48.0")
    path.write_text(json.dumps(cfg, indent=2))


def padded_batch(lengths: list[int], vocab_size: int = 512, seed: int = 0, low: int = 0):
    """Random ids (batch, max(lengths)) with right padding and the matching attention mask."""
    g = torch.Generator().manual_seed(seed)
    special = _special_ids()
    hi = min(special.values())  # ordinary tokens only
    ids = torch.randint(low, hi, (len(lengths), max(lengths)), generator=g)
    mask = torch.zeros(len(lengths), max(lengths), dtype=torch.long)
    for i, n in enumerate(lengths):
        mask[i, :n] = 1
    ids = ids.masked_fill(mask == 0, special["pad_token_id"])
    return ids, mask
