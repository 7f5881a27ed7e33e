"""torch.compile(fullgraph=True) and torch.export on the padded forward: the static layout (no unpadding, no
host sync) is taken while tracing, and its outputs equal eager's."""

from __future__ import annotations

import pytest
import torch
from conftest import padded_batch

import modernbert.model as M

TOL = 1e-5
HEADS = ["ModernBertModel", "ModernBertForMaskedLM", "ModernBertForSequenceClassification",
         "ModernBertForTokenClassification", "ModernBertForQuestionAnswering"]


def _inputs():
    ids, mask = padded_batch([20, 9, 13], seed=2)  # longer and shorter than the window, padded
    return {"input_ids": ids, "attention_mask": mask}


def _close(a, b, mask):
    for key in a:
        x, y = a[key], b[key]
        if x.dim() >= 2 and tuple(x.shape[:2]) == tuple(mask.shape):
            x, y = x[mask.bool()], y[mask.bool()]
        assert (x - y).abs().max() < TOL, key


@pytest.mark.parametrize("arch", HEADS)
def test_export_equals_eager(tiny_checkpoint, arch):
    model = getattr(M, arch).from_pretrained(tiny_checkpoint(arch))
    kwargs = _inputs()
    with torch.no_grad():
        eager = model(**kwargs)
        exported = torch.export.export(model, (), kwargs)
        out = exported.module()(**kwargs)
    assert type(out) is type(eager) and list(out.keys()) == list(eager.keys())
    _close(eager, out, kwargs["attention_mask"])
    # the graph holds no nonzero (unpadding): shapes follow the input's, not its mask
    assert "nonzero" not in str(exported.graph)


@pytest.mark.parametrize("arch,backend", [("ModernBertModel", "inductor"),
                                          ("ModernBertForSequenceClassification", "aot_eager")])
def test_compile_fullgraph_equals_eager(tiny_checkpoint, arch, backend):
    model = getattr(M, arch).from_pretrained(tiny_checkpoint(arch))
    kwargs = _inputs()
    torch._dynamo.reset()
    compiled = torch.compile(model, fullgraph=True, backend=backend)
    with torch.no_grad():
        eager = model(**kwargs)
        out = compiled(**kwargs)
    _close(eager, out, kwargs["attention_mask"])


def test_compiled_training_loss_and_gradients(tiny_checkpoint):
    """The static layout trains too: loss and gradients equal eager's."""
    folder = tiny_checkpoint("ModernBertForTokenClassification")
    kwargs = _inputs()
    kwargs["labels"] = torch.randint(0, 2, kwargs["input_ids"].shape, generator=torch.Generator().manual_seed(0))
    grads = []
    for compile_it in (False, True):
        model = M.ModernBertForTokenClassification.from_pretrained(folder).train()
        run = torch.compile(model, fullgraph=True, backend="aot_eager") if compile_it else model
        torch._dynamo.reset()
        loss = run(**kwargs).loss
        loss.backward()
        grads.append((loss.item(), {n: p.grad for n, p in model.named_parameters()}))
    assert grads[0][0] == pytest.approx(grads[1][0], abs=TOL)
    for name, g in grads[0][1].items():
        assert (g - grads[1][1][name]).abs().max() < TOL, name
