"""``modernbert export onnx``: the model as an ONNX graph with banded sliding-window attention."""

from __future__ import annotations

import argparse
import sys

from ...hub import DTYPE_ALIASES
from ..errors import CLIError
from ..models import BUNDLED_MODEL, DEFAULT_MODEL, positive_int, resolve_model

HELP = "export a model to ONNX (onnx/model.onnx, banded local attention), for ONNX Runtime, TEI, optimum"
FORMATS = ("onnx",)
ARCHITECTURES = ("ModernBertModel", "ModernBertForMaskedLM", "ModernBertForSequenceClassification",
                 "ModernBertForTokenClassification", "ModernBertForQuestionAnswering", "ModernBertForMultipleChoice")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("format", choices=FORMATS, help="what to write: onnx")
    p.add_argument("-m", "--model", default=DEFAULT_MODEL,
                   help=f"checkpoint folder, bundled model ({BUNDLED_MODEL}) or hub id (default: {DEFAULT_MODEL})")
    p.add_argument("-o", "--output", required=True, metavar="DIR",
                   help="folder to write: DIR/onnx/model.onnx, with config.json and the tokenizer files in DIR")
    p.add_argument("--dtype", default="float32", choices=tuple(DTYPE_ALIASES), metavar="DTYPE",
                   help="weights dtype in the graph: float32 (fp32), float16 (fp16) or bfloat16 (bf16; ONNX "
                        "Runtime's CPU provider cannot run it) (default: float32)")
    p.add_argument("--opset", type=positive_int, default=18, metavar="N", help="ONNX opset, 18 or later (default: 18)")
    p.add_argument("--architecture", default=None, choices=ARCHITECTURES, metavar="CLASS",
                   help="the head to export, e.g. ModernBertModel for last_hidden_state only (default: the "
                        "checkpoint's architectures, else ModernBertModel)")


def run(args: argparse.Namespace) -> int:
    """Export a checkpoint to ONNX: DIR/onnx/model.onnx, with config.json and the tokenizer files in DIR (the
    layout optimum writes and TEI's ONNX Runtime backend loads).

    The graph takes input_ids and attention_mask, int64 (batch, sequence), both axes dynamic, and returns
    last_hidden_state, or logits (start_logits, end_logits for question answering) for a head. Local layers are
    banded: memory grows with length × window, not length². Needs the export extra: pip install
    'modernbert[export]'.
    """
    if args.opset < 18:
        raise CLIError(f"--opset {args.opset}: torch.onnx writes opset 18 or later")
    folder = resolve_model(args.model)
    from ...onnx_export import export_folder

    path = export_folder(folder, args.output, architecture=args.architecture, dtype=args.dtype, opset=args.opset)
    print(f"wrote {path}", file=sys.stderr)
    return 0
