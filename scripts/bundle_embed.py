#!/usr/bin/env python
"""Copy a `modernbert finetune sentence-embedding` output into the package as a bundled model, in bf16.

The folder keeps the sentence-transformers layout the task writes (modules.json, 1_Pooling, 2_Normalize,
sentence_bert_config.json, tokenizer files); the weights are cast to bfloat16 to halve their size. A README.md
already in the destination (the model card) is kept.

Usage::

    python scripts/bundle_embed.py --run runs/sense-embed --out src/modernbert/bundled/modernbert-tiny-embed
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

KEEP = ("modules.json", "sentence_bert_config.json", "config_sentence_transformers.json", "tokenizer.json",
        "tokenizer_config.json", "special_tokens_map.json", "1_Pooling/config.json")


def bundle(run: Path, out: Path) -> None:
    import torch

    from modernbert import ModernBertModel

    if not (run / "modules.json").is_file():
        raise ValueError(f"{run} holds no modules.json; expected the output of "
                         "`modernbert finetune sentence-embedding`")
    model = ModernBertModel.from_pretrained(str(run), dtype=torch.bfloat16)
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out.parent) as tmp:
        model.save_pretrained(tmp)
        for name in ("config.json", "model.safetensors"):
            shutil.copy(Path(tmp) / name, out / name)
    for name in KEEP:
        if (run / name).is_file():
            (out / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(run / name, out / name)
    (out / "2_Normalize").mkdir(exist_ok=True)
    (out / "2_Normalize" / ".keep").touch()  # an empty folder is not packaged


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--run", type=Path, required=True, help="the --output folder of the fine-tuning run")
    p.add_argument("--out", type=Path, required=True, help="the bundled model's folder")
    args = p.parse_args(argv)
    try:
        bundle(args.run, args.out)
    except ValueError as e:
        print(f"bundle_embed: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
