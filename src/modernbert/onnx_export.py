"""ONNX export: a model's padded forward as one ONNX graph, with its sliding-window layers banded.

`export_onnx(model, path)` traces `model(input_ids, attention_mask)` with torch.export (the static layout:
every position a token, padding masked in the kernels) and the "banded" attention kernel, so that local layers
compute (blocks, w, 3w) scores and global layers take their queries in slices: at 8192 tokens no tensor of the
graph is (length × length). Inputs `input_ids` and `attention_mask`, int64 (batch, sequence), both axes dynamic;
outputs as the model's (`OUTPUTS`). `export_folder(name, output)` writes the layout optimum and TEI's ONNX
Runtime backend load: `output/onnx/model.onnx`, with config.json and the tokenizer files beside it in
`output/`.

Needs the `export` extra (onnx, onnxscript), imported only here.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from . import rotary
from .hub import (
    CONFIG_NAME,
    ST_MODULES_FILE,
    TOKENIZER_FILES,
    dtype_name,
    resolve_folder,
    write_atomic,
)
from .model import (
    ModernBertForMaskedLM,
    ModernBertForMultipleChoice,
    ModernBertForQuestionAnswering,
    ModernBertForSequenceClassification,
    ModernBertForTokenClassification,
    ModernBertModel,
    ModernBertPreTrainedModel,
)

ONNX_DIR = "onnx"
ONNX_NAME = "model.onnx"
DEFAULT_OPSET = 18  # the lowest opset torch.onnx's exporter writes
INPUTS = ("input_ids", "attention_mask")
# The graph's outputs per model class (what the model returns, in this order).
OUTPUTS: dict[type[ModernBertPreTrainedModel], tuple[str, ...]] = {
    ModernBertModel: ("last_hidden_state",),
    ModernBertForMaskedLM: ("logits",),
    ModernBertForSequenceClassification: ("logits",),
    ModernBertForTokenClassification: ("logits",),
    ModernBertForQuestionAnswering: ("start_logits", "end_logits"),
    ModernBertForMultipleChoice: ("logits",),
}
CLASSES = {cls.__name__: cls for cls in OUTPUTS}
# Files copied beside onnx/ when present: what optimum copies, and what TEI reads for pooling.
SIDE_FILES = (CONFIG_NAME, *TOKENIZER_FILES, ST_MODULES_FILE, "config_sentence_transformers.json",
              "1_Pooling/config.json", "vocab.txt", "merges.txt")


def _install_hint() -> str:
    return "the ONNX export needs onnx and onnxscript: pip install 'modernbert[export]'"


class _Outputs(nn.Module):
    """model(input_ids, attention_mask) as a tuple of the named outputs (the graph's outputs, in order)."""

    def __init__(self, model: ModernBertPreTrainedModel, names: tuple[str, ...]) -> None:
        super().__init__()
        self.model, self.names = model, names

    def forward(self, input_ids: Tensor, attention_mask: Tensor) -> tuple[Tensor, ...]:
        out = self.model(input_ids=input_ids, attention_mask=attention_mask, return_dict=True)
        return tuple(out[name] for name in self.names)


def _example(model: ModernBertPreTrainedModel) -> tuple[Tensor, Tensor]:
    """Example inputs to trace with: two rows, one padded, longer than three blocks of the window (so that no
    shape specialises to a small case); (batch, choices, length) for multiple choice."""
    config = model.config
    length = min(config.max_position_embeddings, 3 * max(config.sliding_window, 1) + 5)
    ids = torch.full((2, length), config.pad_token_id or 0, dtype=torch.long)
    ids[:, : length - 2] = torch.arange(length - 2) % max(config.vocab_size - 1, 1)
    mask = torch.ones(2, length, dtype=torch.long)
    mask[1, length - 3 :] = 0
    if isinstance(model, ModernBertForMultipleChoice):
        ids, mask = ids.unsqueeze(1).expand(2, 2, length), mask.unsqueeze(1).expand(2, 2, length)
    device = next(model.parameters()).device
    return ids.contiguous().to(device), mask.contiguous().to(device)


def export_onnx(
    model: ModernBertPreTrainedModel, path: str | Path, *, opset: int = DEFAULT_OPSET
) -> Path:
    """Export `model` (in its dtype) to the ONNX file `path`, written atomically; returns `path`.

    model: a ModernBERT model or head (`OUTPUTS` lists the classes and their graph outputs).
    path: the .onnx file to write (its folder is created).
    opset: the ONNX opset (18 or later).

    The graph takes `input_ids` and `attention_mask`, int64 (batch, sequence) ((batch, choices, sequence) for
    multiple choice), and returns the model's outputs, zero at padding where the model's are. Local layers
    are banded and global layers sliced (the "banded" kernel), whatever kernel `model` was loaded with.
    """
    names = next((v for cls, v in OUTPUTS.items() if type(model) is cls), None)
    if names is None:
        raise ValueError(f"cannot export {type(model).__name__}: the ONNX export takes {', '.join(CLASSES)}")
    if not isinstance(opset, int) or opset < DEFAULT_OPSET:
        raise ValueError(f"opset={opset!r}: torch.onnx writes opset {DEFAULT_OPSET} or later; pass opset >= 18")
    try:
        import onnx  # noqa: F401
        import onnxscript  # noqa: F401
    except ImportError:
        raise ValueError(_install_hint()) from None
    wrapper = _Outputs(model, names).eval()
    ids, mask = _example(model)
    batch = torch.export.Dim("batch")
    sequence = torch.export.Dim("sequence", max=model.config.max_position_embeddings)
    axes = {0: batch, ids.dim() - 1: sequence}
    if ids.dim() == 3:
        axes[1] = torch.export.Dim("choices")
    implementation = model.attn_implementation
    was_training = model.training
    model.eval()
    block = rotary.ROTARY_BLOCK
    try:
        model.attn_implementation = "banded"
        # One rotary block for any length the graph takes: a split into blocks would be traced for the
        # example's length only, and a split of dynamic length is a SplitToSequence, which has no bf16.
        rotary.ROTARY_BLOCK = None
        # With autograd on, the layers take their out-of-place path: in-place updates of slices would trace to
        # scatters whose shapes the exporter fixes at the example's.
        with torch.enable_grad():
            program = torch.onnx.export(
                wrapper, (ids, mask), dynamo=True, input_names=list(INPUTS), output_names=list(names),
                dynamic_shapes={"input_ids": axes, "attention_mask": axes}, opset_version=opset,
                verbose=False, optimize=True,
            )
    finally:
        rotary.ROTARY_BLOCK = block
        model.attn_implementation = implementation
        model.train(was_training)
    buffer = io.BytesIO()
    onnx.save_model(program.model_proto, buffer)
    path = Path(path)
    write_atomic(path, buffer.getvalue())
    return path


def load_for_export(name_or_path: str | Path, *, architecture: str | None = None, dtype: str = "float32") -> Any:
    """The model of a checkpoint (folder, bundled name or hub id) for `export_onnx`, in `dtype`.

    architecture: a class name of `CLASSES`; None takes the first of config.json's `architectures` that is one
    (ModernBertModel when it names none).
    """
    from .config import ModernBertConfig

    folder = resolve_folder(str(name_or_path))
    if architecture is None:
        config = ModernBertConfig.from_pretrained(str(folder))
        architecture = next((a for a in config.architectures or () if a in CLASSES), "ModernBertModel")
    if architecture not in CLASSES:
        raise ValueError(f"architecture={architecture!r} is not one the ONNX export takes: {', '.join(CLASSES)}")
    return CLASSES[architecture].from_pretrained(str(folder), dtype=dtype_name(dtype), attn_implementation="sdpa")


def export_folder(
    name_or_path: str | Path, output: str | Path, *, architecture: str | None = None, dtype: str = "float32",
    opset: int = DEFAULT_OPSET,
) -> Path:
    """Export a checkpoint to `output/onnx/model.onnx` and copy its config.json and tokenizer files (and a
    sentence-transformers folder's pooling files) into `output/`, as optimum lays out an ONNX model.
    Returns the path of model.onnx.

    dtype: the weights' dtype in the graph: float32 (fp32), float16 (fp16) or bfloat16 (bf16).
    architecture: as `load_for_export`.
    """
    source = resolve_folder(str(name_or_path))
    output = Path(output)
    if output.resolve() == source.resolve():
        raise ValueError(f"--output {output} is the model's own folder; pass a new folder for the export")
    model = load_for_export(source, architecture=architecture, dtype=dtype)
    path = export_onnx(model, output / ONNX_DIR / ONNX_NAME, opset=opset)
    for name in SIDE_FILES:
        if (source / name).is_file():
            write_atomic(output / name, (source / name).read_bytes())
    return path
