"""The model's Linear: fp32 CPU GEMMs through oneDNN, with nn.Linear's parameters, state dict and gradients."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from modernbert import model as M

pytestmark = pytest.mark.skipif(not M._onednn_available(), reason="this torch build has no oneDNN")


@pytest.fixture
def calls(monkeypatch):
    """Counts the products that went through oneDNN (chosen explicitly: "auto" takes MKL on Intel CPUs)."""
    monkeypatch.setattr(M, "CPU_FP32_GEMM", "onednn")
    seen = []
    real = M._onednn_linear

    def counting(x, weight, bias):
        seen.append(tuple(x.shape))
        return real(x, weight, bias)

    monkeypatch.setattr(M, "_onednn_linear", counting)
    return seen


def _pair(bias: bool, seed: int = 0) -> tuple[M.Linear, nn.Linear]:
    torch.manual_seed(seed)
    ours = M.Linear(48, 80, bias=bias)
    ref = nn.Linear(48, 80, bias=bias)
    ref.load_state_dict(ours.state_dict())
    return ours, ref


@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("shape", [(37, 48), (3, 11, 48)])
def test_inference_goes_through_onednn_and_matches_f_linear(calls, bias, shape):
    ours, ref = _pair(bias)
    x = torch.randn(*shape)
    with torch.inference_mode():
        got, want = ours(x), ref(x)
    assert calls == [shape]
    assert got.shape == want.shape
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("frozen", [False, True])
def test_training_gradients_match_f_linear(calls, bias, frozen):
    ours, ref = _pair(bias)
    for layer in (ours, ref):
        layer.requires_grad_(not frozen)
    x = torch.randn(3, 29, 48, requires_grad=True)
    x_ref = x.detach().clone().requires_grad_()
    upstream = torch.randn(3, 29, 80)
    (ours(x) * upstream).sum().backward()
    (ref(x_ref) * upstream).sum().backward()
    # forward, the input gradient, and the weight gradient: three oneDNN products
    assert len(calls) == (2 if frozen else 3)
    torch.testing.assert_close(x.grad, x_ref.grad, rtol=1e-5, atol=1e-5)
    for mine, theirs in zip(ours.parameters(), ref.parameters()):
        if frozen:
            assert mine.grad is None
        else:
            torch.testing.assert_close(mine.grad, theirs.grad, rtol=1e-5, atol=1e-5)


def test_autocast_half_precision_and_mkl_take_f_linear(calls, monkeypatch):
    ours, ref = _pair(True)
    x = torch.randn(5, 48)
    with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16):
        assert ours(x).dtype == torch.bfloat16  # autocast cast it, as it does F.linear
    with torch.inference_mode():
        ours.to(torch.bfloat16)(x.bfloat16())
    monkeypatch.setattr(M, "CPU_FP32_GEMM", "mkl")
    ours.float()
    with torch.inference_mode():
        torch.testing.assert_close(ours(x), F.linear(x, ours.weight, ours.bias), rtol=0, atol=0)
    assert calls == []


def test_same_parameters_and_state_dict_as_nn_linear():
    ours, ref = _pair(True)
    assert isinstance(ours, nn.Linear)
    assert list(ours.state_dict()) == list(ref.state_dict()) == ["weight", "bias"]


def test_model_outputs_and_gradients_equal_with_either_library(monkeypatch):
    config = M.ModernBertConfig(
        vocab_size=120, hidden_size=64, intermediate_size=96, num_hidden_layers=3, num_attention_heads=4,
        local_attention=8, pad_token_id=0,
    )
    torch.manual_seed(0)
    model = M.ModernBertForMaskedLM(config)
    ids = torch.randint(1, 120, (3, 21))
    mask = torch.ones_like(ids)
    mask[1, 15:] = 0
    labels = ids.masked_fill(mask == 0, -100)
    results = {}
    for library in ("onednn", "mkl"):
        monkeypatch.setattr(M, "CPU_FP32_GEMM", library)
        model.zero_grad()
        out = model(input_ids=ids, attention_mask=mask, labels=labels)
        out.loss.backward()
        results[library] = out.logits.detach(), [p.grad.clone() for p in model.parameters()]
    (logits, grads), (logits_mkl, grads_mkl) = results["onednn"], results["mkl"]
    torch.testing.assert_close(logits, logits_mkl, rtol=1e-5, atol=1e-5)
    for g, g_mkl in zip(grads, grads_mkl):
        torch.testing.assert_close(g, g_mkl, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("vendor, library", [("GenuineIntel", "mkl"), ("AuthenticAMD", "onednn"), (None, "onednn")])
def test_auto_takes_mkl_on_intel_and_onednn_elsewhere(tmp_path, vendor, library):
    cpuinfo = tmp_path / "cpuinfo"
    if vendor is not None:
        cpuinfo.write_text(f"processor\t: 0\nvendor_id\t: {vendor}\nflags\t\t: fpu avx512f\n")
    assert M._auto_fp32_gemm(str(cpuinfo)) == library


def test_an_explicit_library_overrides_auto(monkeypatch):
    for library in ("onednn", "mkl"):
        monkeypatch.setattr(M, "CPU_FP32_GEMM", library)
        assert M.fp32_gemm_library() == library
