"""`modernbert export onnx`: the graph in ONNX Runtime equals our PyTorch model (fp32, 1e-4) on every head, on
lengths the export never saw (up to 8192, padded), and its local layers hold no (length × length) tensor."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from conftest import padded_batch

import modernbert.model as M
from modernbert.cli import main

ort = pytest.importorskip("onnxruntime")
onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxscript")

TOL = 1e-4
LONG = dict(max_position_embeddings=8192, num_hidden_layers=3)  # layer 0 global, 1 and 2 local
SHORT = dict(num_hidden_layers=2)  # the heads: one global layer and one local (each export takes minutes)
HEADS = ["ModernBertForMaskedLM", "ModernBertForSequenceClassification", "ModernBertForTokenClassification",
         "ModernBertForQuestionAnswering", "ModernBertForMultipleChoice"]


def _export(folder, out, *extra) -> None:
    assert main(["export", "onnx", "--model", str(folder), "--output", str(out), *extra]) == 0


def _session(out):
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    return ort.InferenceSession(str(out / "onnx" / "model.onnx"), options, providers=["CPUExecutionProvider"])


def _compare(session, model, ids, mask) -> None:
    names = [o.name for o in session.get_outputs()]
    got = session.run(None, {"input_ids": ids.numpy(), "attention_mask": mask.numpy()})
    with torch.no_grad():
        want = model(input_ids=ids, attention_mask=mask)
    for name, g in zip(names, got):
        w = want[name].numpy()
        assert g.shape == w.shape, name
        if g.ndim >= 2 and g.shape[: mask.dim()] == tuple(mask.shape):  # per-token outputs: real tokens only
            g, w = g[mask.numpy().astype(bool)], w[mask.numpy().astype(bool)]
        assert np.isfinite(g).all(), name
        assert np.abs(g - w).max() < TOL, (name, float(np.abs(g - w).max()))


@pytest.fixture(scope="module")
def base_export(tiny_checkpoint, tmp_path_factory):
    """The bare encoder with a window of 128 (half-width 64), exported through the command line."""
    folder = tiny_checkpoint("ModernBertModel", local_attention=128, **LONG)
    out = tmp_path_factory.mktemp("onnx-base")
    _export(folder, out)
    return folder, out


def test_layout_and_signature(base_export):
    folder, out = base_export
    assert (out / "onnx" / "model.onnx").is_file()
    for name in ("config.json", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"):
        assert (out / name).read_bytes() == (folder / name).read_bytes(), name
    session = _session(out)
    inputs = session.get_inputs()
    assert [i.name for i in inputs] == ["input_ids", "attention_mask"]
    assert all(i.type == "tensor(int64)" and len(i.shape) == 2 and all(isinstance(d, str) for d in i.shape)
               for i in inputs)
    assert [o.name for o in session.get_outputs()] == ["last_hidden_state"]


@pytest.mark.parametrize("lengths", [[300, 131, 7], [8192], [8192, 5000]])
def test_base_parity_held_out_lengths(base_export, lengths):
    folder, out = base_export
    model = M.ModernBertModel.from_pretrained(folder)
    ids, mask = padded_batch(lengths, seed=len(lengths))
    _compare(_session(out), model, ids, mask)


def test_no_length_squared_tensor(base_export, tmp_path):
    """Every intermediate of the graph at 4096 tokens (window 128) has at most one axis of 4096 or more: the
    local layers' scores are (blocks, 64, 192), the global layer's are sliced."""
    _, out = base_export
    graph = onnx.load(str(out / "onnx" / "model.onnx"))
    values = [v for node in graph.graph.node for v in node.output if v]
    graph.graph.output.extend(onnx.helper.make_empty_tensor_value_info(v) for v in values)
    path = tmp_path / "all.onnx"
    onnx.save(graph, str(path))
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    length = 4096
    ids, mask = padded_batch([length], seed=3)
    results = session.run(None, {"input_ids": ids.numpy(), "attention_mask": mask.numpy()})
    shapes = {o.name: np.shape(r) for o, r in zip(session.get_outputs(), results)}
    assert len(shapes) > 100  # every node's output was looked at
    squared = {name: s for name, s in shapes.items() if sum(d >= length for d in s) >= 2}
    assert not squared, squared
    # the local layers' banded scores are there: (batch, heads, blocks, 64, 192)
    assert any(len(s) == 5 and s[2:] == (length // 64, 64, 192) for s in shapes.values())


@pytest.mark.parametrize("arch", HEADS)
def test_head_parity(tiny_checkpoint, tmp_path, arch):
    folder = tiny_checkpoint(arch, **SHORT)
    _export(folder, tmp_path)
    model = getattr(M, arch).from_pretrained(folder)
    session = _session(tmp_path)
    expected = {"ModernBertForQuestionAnswering": ["start_logits", "end_logits"]}.get(arch, ["logits"])
    assert [o.name for o in session.get_outputs()] == expected
    for lengths in ([23, 9, 1], [1500, 700]):
        ids, mask = padded_batch(lengths, seed=len(lengths))
        if arch == "ModernBertForMultipleChoice":  # (batch, choices, length)
            ids, mask = ids.unsqueeze(0), mask.unsqueeze(0)
        _compare(session, model, ids, mask)


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_half_precision_export(tiny_checkpoint, tmp_path, dtype):
    """--dtype fp16/bf16: a valid graph (full ONNX check) with weights in that dtype, whose logits are as close
    to the fp32 model's as our PyTorch model in that dtype is. fp16 runs in ONNX Runtime; bf16 in ONNX's
    reference evaluator, since ONNX Runtime's CPU provider has no bf16 Gemm."""
    folder = tiny_checkpoint("ModernBertForMaskedLM", **SHORT)
    _export(folder, tmp_path, "--dtype", dtype)
    path = tmp_path / "onnx" / "model.onnx"
    graph = onnx.load(str(path))
    onnx.checker.check_model(graph, full_check=True)
    kind = onnx.TensorProto.FLOAT16 if dtype == "float16" else onnx.TensorProto.BFLOAT16
    weights = [t for t in graph.graph.initializer if t.dims and np.prod(t.dims) >= 32 * 32]
    assert weights and all(t.data_type == kind for t in weights)

    ids, mask = padded_batch([300, 37], seed=5)  # 300 > the rotary block the PyTorch path rotates in
    feed = {"input_ids": ids.numpy(), "attention_mask": mask.numpy()}
    if dtype == "float16":
        got = _session(tmp_path).run(None, feed)[0]
    else:
        from onnx.reference import ReferenceEvaluator

        got = ReferenceEvaluator(str(path)).run(None, feed)[0]
    real = mask.numpy().astype(bool)
    got = got.astype(np.float32)[real]
    with torch.no_grad():
        exact = M.ModernBertForMaskedLM.from_pretrained(folder)(input_ids=ids, attention_mask=mask).logits[mask.bool()]
        half = M.ModernBertForMaskedLM.from_pretrained(folder, dtype=getattr(torch, dtype))(
            input_ids=ids, attention_mask=mask).logits.float()[mask.bool()]
    ours = (half - exact).abs().max().item()
    assert np.isfinite(got).all()
    assert np.abs(got - exact.numpy()).max() <= 2 * ours + 1e-3, (np.abs(got - exact.numpy()).max(), ours)


def test_bad_options_are_one_line_errors(tiny_checkpoint, tmp_path, capsys):
    folder = tiny_checkpoint("ModernBertModel")
    assert main(["export", "onnx", "--model", str(folder), "--output", str(tmp_path), "--opset", "12"]) == 2
    err = capsys.readouterr().err
    assert "opset" in err and "Traceback" not in err
    assert main(["export", "onnx", "--model", str(folder), "--output", str(folder)]) == 2
    assert "own folder" in capsys.readouterr().err
    assert json.loads((folder / "config.json").read_text())["model_type"] == "modernbert"


@pytest.mark.parametrize("window", [4, 8, None])
def test_banded_kernel_equals_static_eager(window):
    """The kernel the export traces, in PyTorch: the eager static math's output, holes and an empty row too."""
    from modernbert.attention import KERNELS, AttnBatch

    torch.manual_seed(0)
    mask = torch.ones(3, 45, dtype=torch.long)
    mask[0, 30:] = 0
    mask[1, 3:9] = 0  # a hole: the window counts columns, as the reference does
    mask[2] = 0  # no token at all: finite, discarded
    batch = AttnBatch.from_attention_mask_static(mask)
    qkv = torch.randn(3 * 45, 3, 2, 8)
    want = KERNELS["eager"](qkv, batch, window)
    got = KERNELS["banded"](qkv, batch, window)
    real = mask.bool().flatten()
    assert torch.isfinite(got).all()
    assert (got - want)[real].abs().max() < 1e-5
