"""Fixtures of the pretraining tests: a tiny synthetic corpus and a tiny tokenizer in ModernBERT's layout."""

from __future__ import annotations

import importlib.util
import json
import random
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def load_script(name: str):
    """Import scripts/<name>.py as a module."""
    path = REPO / "scripts" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"_script_{name}", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def _sentences(rng: random.Random, n: int) -> str:
    subjects = ["the cat", "a dog", "the module", "my friend", "the parser", "a small bird"]
    verbs = ["reads", "sees", "returns", "likes", "builds", "finds"]
    objects = ["the file", "a red ball", "the list", "some water", "the answer", "a new string"]
    return " ".join(
        f"{rng.choice(subjects).capitalize()} {rng.choice(verbs)} {rng.choice(objects)}." for _ in range(n)
    )


@pytest.fixture(scope="session")
def tiny_data(tmp_path_factory) -> dict[str, str]:
    """``{"train", "heldout", "tokenizer"}`` paths: 120 + 12 synthetic documents and a 320-id BPE."""
    root = tmp_path_factory.mktemp("pretrain-data")
    rng = random.Random(0)
    for split, n in (("train", 120), ("heldout", 12)):
        with (root / f"{split}.jsonl").open("w") as f:
            for _ in range(n):
                f.write(json.dumps({"text": _sentences(rng, rng.randint(2, 12))}) + "\n")
    tt = load_script("train_tokenizer")
    tok = tt.train_tokenizer([root / "train.jsonl"], vocab_size=320)
    tt.save_tokenizer(tok, root / "tokenizer", model_max_length=64)
    return {"train": str(root / "train.jsonl"), "heldout": str(root / "heldout.jsonl"),
            "tokenizer": str(root / "tokenizer")}


@pytest.fixture
def tiny_cfg(tiny_data, tmp_path):
    """A factory of tiny ``PretrainConfig``s (2 layers, width 32) writing under ``tmp_path``."""
    from modernbert.training import PretrainConfig

    def make(name: str = "run", **overrides) -> PretrainConfig:
        base = dict(
            train_data=tiny_data["train"], heldout_data=tiny_data["heldout"], tokenizer=tiny_data["tokenizer"],
            out_dir=str(tmp_path / name), cache_dir=str(tmp_path / "cache"),
            hidden_size=32, num_layers=3, num_heads=2, intermediate_size=48, local_attention=8,
            max_position_embeddings=64, seq_len=32, batch_tokens=256, lr=3e-3, steps=10,
            warmup_frac=0.1, decay_frac=0.3, eval_every=5, save_every=5, log_every=1, num_threads=1, quiet=True,
        )
        base.update(overrides)
        return PretrainConfig(**base)

    return make
