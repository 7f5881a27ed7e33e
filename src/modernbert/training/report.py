"""Fill-mask predictions of a trained checkpoint, for model cards: ``python -m modernbert.training.report``.

    python -m modernbert.training.report --model src/modernbert/bundled/modernbert-tiny \\
        "The dog [MASK] all night." "The json [MASK] exposes an API familiar to users of pickle."
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from .. import hub


def top_predictions(model_dir: str | os.PathLike, texts: list[str], k: int = 5) -> list[list[tuple[str, float]]]:
    """For every text (exactly one ``[MASK]`` each), the top-``k`` ``(token, probability)`` of the mask.

    Special tokens and padded vocabulary rows are never predicted; tokens are decoded with their leading
    space stripped.
    """
    import torch

    from ..model import ModernBertForMaskedLM
    from .data import SpecialIds, load_tokenizer

    tokenizer = load_tokenizer(model_dir)
    model = ModernBertForMaskedLM.from_pretrained(str(model_dir), dtype=torch.float32)
    model.eval()
    return mask_predictions(model, tokenizer, SpecialIds.from_tokenizer(tokenizer), texts, k)


def mask_predictions(model, tokenizer, special, texts: list[str], k: int = 5) -> list[list[tuple[str, float]]]:
    """`top_predictions` for a loaded masked LM, its `tokenizers.Tokenizer` and its `SpecialIds`."""
    import torch

    results = []
    for text in texts:
        ids = tokenizer.encode(text).ids
        where = [i for i, t in enumerate(ids) if t == special.mask]
        if len(where) != 1:
            raise ValueError(f"{text!r} must hold exactly one [MASK], found {len(where)}")
        with torch.no_grad():
            logits = model(input_ids=torch.tensor([ids])).logits[0, where[0]]
        probs = torch.softmax(logits[: special.num_regular].float(), dim=-1)
        top = torch.topk(probs, k)
        results.append([(tokenizer.decode([int(i)]).strip(), float(p)) for p, i in zip(top.values, top.indices)])
    return results


def main(argv: list[str] | None = None) -> int:
    """Print the top predictions of each sentence as JSON lines."""
    ap = argparse.ArgumentParser(description="Top fill-mask predictions of a checkpoint folder.")
    ap.add_argument("--model", required=True, help="folder with config.json, model.safetensors, tokenizer.json")
    ap.add_argument("--top-k", type=int, default=5)
    ap.add_argument("texts", nargs="+", help="sentences with exactly one [MASK]")
    args = ap.parse_args(argv)
    if not (Path(args.model) / hub.TOKENIZER_FILE).is_file():
        print(f"error: {args.model} has no {hub.TOKENIZER_FILE}", file=sys.stderr)
        return 2
    try:
        preds = top_predictions(args.model, args.texts, args.top_k)
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    for text, p in zip(args.texts, preds):
        print(json.dumps({"text": text, "top": [[t, round(s, 4)] for t, s in p]}, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
