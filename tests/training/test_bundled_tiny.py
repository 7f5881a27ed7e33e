"""The bundled modernbert-tiny: small enough, loads offline, fills masks, and the reference agrees."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

import modernbert

FOLDER = Path(modernbert.__file__).parent / "bundled" / "modernbert-tiny"
pytestmark = pytest.mark.skipif(not (FOLDER / "model.safetensors").is_file(), reason="modernbert-tiny not bundled")

# (sentence, expected top-1 prediction): examples from the model card.
EXAMPLES_FILE = FOLDER / "examples.json"


def test_files_and_size():
    names = {p.name for p in FOLDER.iterdir()}
    assert {"config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json",
            "special_tokens_map.json", "README.md"} <= names
    assert sum(p.stat().st_size for p in FOLDER.iterdir()) <= 40_000_000
    cfg = json.loads((FOLDER / "config.json").read_text())
    assert cfg["model_type"] == "modernbert" and cfg["vocab_size"] % 64 == 0
    assert cfg["sparse_prediction"] is False


def test_loads_by_name_and_fills_masks():
    from modernbert.model import ModernBertForMaskedLM
    from modernbert.training.report import top_predictions

    model = ModernBertForMaskedLM.from_pretrained("modernbert-tiny")
    assert model.config.num_hidden_layers >= 4 and model.config.hidden_size == 256
    examples = json.loads(EXAMPLES_FILE.read_text())
    preds = top_predictions(FOLDER, [e["text"] for e in examples], k=1)
    for example, top in zip(examples, preds):
        assert top[0][0] == example["expected"], (example, top)


def test_reference_implementation_agrees():
    transformers = pytest.importorskip("transformers")
    from modernbert.model import ModernBertForMaskedLM

    tok = transformers.AutoTokenizer.from_pretrained(str(FOLDER))
    ref = transformers.AutoModelForMaskedLM.from_pretrained(str(FOLDER), attn_implementation="eager").eval()
    ours = ModernBertForMaskedLM.from_pretrained(str(FOLDER), dtype=torch.float32).eval()
    enc = tok(["The Python [MASK] library provides tools.", "A dog is a domestic [MASK]."], padding=True,
              return_tensors="pt")
    with torch.no_grad():
        a = ref(**enc).logits
        b = ours(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"]).logits
    keep = enc["attention_mask"].bool()
    torch.testing.assert_close(b[keep], a[keep].to(b.dtype), atol=2e-3, rtol=2e-3)
