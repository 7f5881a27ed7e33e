"""The fill-mask outputs that README.md and the model card of modernbert-tiny show are the model's real outputs.

Every table row "| `sentence with [MASK]` | `token` (probability) |" of both files, and the first row of the
quick start's printed table, are run on the bundled model: the top prediction must be the token shown, with
the probability shown to its printed precision.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import modernbert

ROOT = Path(__file__).parent.parent.parent
TINY = Path(modernbert.__file__).parent / "bundled" / "modernbert-tiny"
ROW = re.compile(r"^\| `([^`]*\[MASK\][^`]*)` \| `([^`]+)` \((\d\.\d+)\) \|$", re.M)
QUICK = re.compile(r'modernbert fill-mask --model modernbert-tiny "([^"]+)"\n```\n\nprints \(real output\):\n\n```\n'
                   r"#[^\n]*\n1 +1 +(\d\.\d+) +(\S+)")


def shown_examples(path: Path) -> list[tuple[str, str, str]]:
    """``(sentence, token, probability as printed)`` of every fill-mask example shown in ``path``."""
    text = path.read_text(encoding="utf-8")
    rows = [m.groups() for m in ROW.finditer(text)]
    rows += [(s, tok, p) for s, p, tok in QUICK.findall(text)]
    return rows


@pytest.mark.parametrize("doc", [ROOT / "README.md", TINY / "README.md"], ids=["README", "model-card"])
def test_shown_predictions_are_real(doc):
    from modernbert.training.report import top_predictions

    examples = shown_examples(doc)
    assert len(examples) >= 2, f"no fill-mask examples found in {doc}"
    preds = top_predictions(TINY, [s for s, _, _ in examples], k=1)
    for (sentence, token, shown), top in zip(examples, preds):
        got, prob = top[0]
        decimals = len(shown.split(".")[1])
        assert got == token, (sentence, got, token)
        assert abs(prob - float(shown)) <= 0.5 * 10 ** -decimals + 1e-6, (sentence, prob, shown)


def test_readme_shows_both_seed_snippets():
    found = {s for s, _, _ in shown_examples(ROOT / "README.md")}
    assert "The capital of France is [MASK]." in found
    assert "Plants create [MASK] through a process known as photosynthesis." in found
