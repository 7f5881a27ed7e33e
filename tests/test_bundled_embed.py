"""The bundled `modernbert-tiny-embed`: it loads offline (our SentenceEncoder, the CLI, transformers), and on
held-out WordNet pairs it ranks an example sentence's own definition far above chance and above the encoder it
was fine-tuned from.

tests/data/sense_embed_test64.jsonl is the first 64 rows of the test split of the `sense-embed` task, written by
`python scripts/build_task_data.py --out /tmp/t --tasks sense-embed --limit 64` (its test.jsonl); no synset of
it is in the model's training split.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from modernbert.hub import BUNDLED_DIR, bundled_models

NAME = "modernbert-tiny-embed"
PAIRS = Path(__file__).parent / "data" / "sense_embed_test64.jsonl"

pytestmark = pytest.mark.skipif(NAME not in bundled_models(), reason=f"{NAME} is not bundled")


def _pairs() -> tuple[list[str], list[str]]:
    rows = [json.loads(line) for line in PAIRS.read_text(encoding="utf-8").splitlines()]
    return [r["anchor"] for r in rows], [r["positive"] for r in rows]


def _ranks(encoder) -> np.ndarray:
    """The rank (1 = best) of each anchor's own positive among all 64 positives, by cosine similarity."""
    anchors, positives = _pairs()
    a = np.asarray(encoder.encode(anchors, normalize_embeddings=True), dtype=np.float64)
    p = np.asarray(encoder.encode(positives, normalize_embeddings=True), dtype=np.float64)
    scores = a @ p.T
    return 1 + (scores > np.diag(scores)[:, None]).sum(1)


@pytest.fixture(scope="module")
def encoder():
    from modernbert import SentenceEncoder

    return SentenceEncoder.from_pretrained(NAME, device="cpu")


def test_folder_is_sentence_transformers_and_small():
    folder = BUNDLED_DIR / NAME
    modules = json.loads((folder / "modules.json").read_text())
    assert [m["type"].rsplit(".", 1)[-1] for m in modules] == ["Transformer", "Pooling", "Normalize"]
    assert json.loads((folder / "1_Pooling" / "config.json").read_text())["pooling_mode_mean_tokens"]
    assert (folder / "README.md").is_file()
    # 15.1 MB of bf16 weights and a 1.1 MB tokenizer
    assert sum(f.stat().st_size for f in folder.rglob("*") if f.is_file()) < 17e6


def test_ranks_held_out_definitions_far_above_chance(encoder):
    from modernbert import SentenceEncoder

    ranks = _ranks(encoder)
    n = len(ranks)
    mrr = float((1.0 / ranks).mean())
    # Chance: mean rank (n + 1) / 2 = 32.5, MRR ~ ln(n) / n ~ 0.07, recall@1 1/64.
    assert ranks.mean() < n / 4, ranks.mean()
    assert mrr > 0.3 and (ranks == 1).mean() > 0.2, (mrr, (ranks == 1).mean())
    base = _ranks(SentenceEncoder.from_pretrained("modernbert-tiny", device="cpu", pooling="mean"))
    assert mrr > float((1.0 / base).mean()) + 0.1  # fine-tuning, not the pretrained encoder, does it


def test_similar_meanings_score_higher(encoder):
    v = encoder.encode(["a domestic animal that barks", "a dog", "a tax on imported goods"],
                       normalize_embeddings=True)
    assert float(v[0] @ v[1]) > float(v[0] @ v[2])


def test_cli_embed_offline(tmp_path):
    env = {"HF_HUB_OFFLINE": "1", "PYTHONPATH": str(Path(__file__).parents[1] / "src"), "PATH": "/usr/bin:/bin"}
    out = subprocess.run([sys.executable, "-m", "modernbert.cli", "embed", "--model", NAME, "--json",
                          "a small domesticated carnivore"], capture_output=True, text=True, env=env, timeout=120)
    assert out.returncode == 0, out.stderr
    record = json.loads(out.stdout.splitlines()[0])
    assert len(record["embedding"]) == 256
    assert abs(sum(x * x for x in record["embedding"]) - 1.0) < 1e-3  # the Normalize module applies


def test_transformers_loads_the_encoder(encoder):
    import torch
    import transformers

    folder = str(BUNDLED_DIR / NAME)
    tok = transformers.AutoTokenizer.from_pretrained(folder)
    model = transformers.AutoModel.from_pretrained(folder, dtype=torch.float32).eval()
    text = "the act of running quickly"
    with torch.no_grad():
        hidden = model(**tok(text, return_tensors="pt")).last_hidden_state[0]
    want = torch.nn.functional.normalize(hidden.mean(0), dim=0)
    got = torch.as_tensor(SentenceEncoderFloat(folder).encode(text, normalize_embeddings=True))
    torch.testing.assert_close(got, want, atol=1e-4, rtol=1e-4)


def SentenceEncoderFloat(folder: str):  # noqa: N802 - our encoder in float32, to compare with transformers
    from modernbert import SentenceEncoder

    return SentenceEncoder.from_pretrained(folder, device="cpu", dtype="float32")
