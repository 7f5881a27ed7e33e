"""ModernBERT's tokenizer: a thin layer over the `tokenizers` library, without transformers.

`Tokenizer` loads the files `transformers.AutoTokenizer` loads (tokenizer.json, tokenizer_config.json,
special_tokens_map.json) and reproduces the output of transformers' fast tokenizer for the arguments it
supports: ids, attention masks, offsets, special-token masks, overflow with stride, padding, truncation,
decoding and the addition of tokens.

    tok = Tokenizer.from_pretrained("answerdotai/ModernBERT-base")
    enc = tok(["The capital of France is [MASK]."], padding=True, return_tensors="pt")

The package, one concept a module:
- core.py: the `Tokenizer` class;
- encoding.py: `BatchEncoding`, the result of a call;
- inputs.py: the checks of what a call gets, and `TokenizerInputError`;
- strategy.py: padding and truncation, as pure functions;
- special_tokens.py: the special-token table and the attributes built from it;
- files.py: reading and writing a tokenizer folder.

Importing it does not import torch; only converting a result to torch tensors does.
"""

from __future__ import annotations

from .core import Tokenizer
from .encoding import BatchEncoding
from .inputs import TokenizerInputError
from .special_tokens import SPECIAL_TOKENS_ATTRIBUTES

__all__ = ["SPECIAL_TOKENS_ATTRIBUTES", "BatchEncoding", "Tokenizer", "TokenizerInputError"]
