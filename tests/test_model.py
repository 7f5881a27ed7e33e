"""Parity with the reference (transformers' ModernBERT) for every head, backend and config layout."""

from __future__ import annotations

import warnings

import pytest
import torch
import transformers
from conftest import ARCHS, build_reference, padded_batch

import modernbert.model as M
from modernbert.attention import SdpaKernel

TOL = 1e-4
LENGTHS = [1, 7, 23, 40]  # length 1, shorter and longer than the tiny window (local_attention=8)
BACKENDS = ["sdpa", "eager"]


def load_pair(tiny_checkpoint, arch: str, layout: str = "5.x", impl: str = "sdpa", **overrides):
    folder = tiny_checkpoint(arch, layout=layout, **overrides)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = getattr(transformers, arch).from_pretrained(folder).eval()
    ours = getattr(M, arch).from_pretrained(folder, attn_implementation=impl)
    return ref, ours


def max_diff_real(a: torch.Tensor, b: torch.Tensor, mask: torch.Tensor | None) -> float:
    """Max |a - b| on real tokens when a is (batch, length, ...), else everywhere."""
    if mask is not None and a.dim() >= 2 and tuple(a.shape[:2]) == tuple(mask.shape):
        a, b = a[mask.bool()], b[mask.bool()]
    assert a.shape == b.shape
    return (a.float() - b.float()).abs().max().item()


def compare(ref_out, our_out, mask) -> dict[str, float]:
    diffs = {}
    for key, value in ref_out.items():
        if key == "attentions" or value is None:
            continue
        ours = our_out[key]
        if key == "hidden_states":
            assert len(ours) == len(value)
            diffs[key] = max(max_diff_real(r, o, mask) for r, o in zip(value, ours))
        elif value.dim() == 0:
            diffs[key] = abs(value.item() - ours.item())
        else:
            diffs[key] = max_diff_real(value, ours, mask)
    return diffs


def inputs_for(arch: str, lengths=LENGTHS, seed: int = 0):
    ids, mask = padded_batch(lengths, seed=seed)
    kwargs: dict = {"input_ids": ids, "attention_mask": mask}
    g = torch.Generator().manual_seed(seed + 1)
    if arch == "ModernBertForMaskedLM":
        labels = torch.where(torch.rand(ids.shape, generator=g) < 0.3, ids, torch.full_like(ids, -100))
        kwargs["labels"] = labels.masked_fill(mask == 0, -100)
    elif arch == "ModernBertForSequenceClassification":
        kwargs["labels"] = torch.randint(0, 2, (len(lengths),), generator=g)
    elif arch == "ModernBertForTokenClassification":
        kwargs["labels"] = torch.randint(0, 2, ids.shape, generator=g).masked_fill(mask == 0, -100)
    elif arch == "ModernBertForQuestionAnswering":
        kwargs["start_positions"] = torch.tensor([0, 3, 10, 30])[: len(lengths)]
        kwargs["end_positions"] = torch.tensor([0, 5, 50, 33])[: len(lengths)]  # 50 is out of range: ignored
    elif arch == "ModernBertForMultipleChoice":
        choices = 3
        ids, mask = padded_batch(lengths[:2] * choices, seed=seed)
        kwargs = {"input_ids": ids.view(2, choices, -1), "attention_mask": mask.view(2, choices, -1),
                  "labels": torch.tensor([1, 2])}
    return kwargs


@pytest.mark.parametrize("layout", ["5.x", "4.x"])
@pytest.mark.parametrize("impl", BACKENDS)
@pytest.mark.parametrize("arch", ARCHS)
def test_parity_every_head(tiny_checkpoint, arch, impl, layout):
    ref, ours = load_pair(tiny_checkpoint, arch, layout, impl)
    kwargs = inputs_for(arch)
    with torch.no_grad():
        r = ref(**kwargs, output_hidden_states=True)
        o = ours(**kwargs, output_hidden_states=True)
    mask = kwargs["attention_mask"]
    if arch == "ModernBertForMultipleChoice":
        mask = mask.flatten(0, 1)
    if arch == "ModernBertForQuestionAnswering":
        # The reference lets padding into the softmax of its span loss; ours gives padding the lowest logit.
        r["loss"] = qa_loss_without_padding(r, kwargs)
    diffs = compare(r, o, mask)
    assert "hidden_states" in diffs and len(diffs) >= (2 if arch == "ModernBertModel" else 3), diffs
    assert max(diffs.values()) < TOL, diffs


def qa_loss_without_padding(ref_out, kwargs) -> torch.Tensor:
    pad = kwargs["attention_mask"] == 0
    lowest = torch.finfo(torch.float32).min
    start, end = (ref_out[k].masked_fill(pad, lowest) for k in ("start_logits", "end_logits"))
    n = start.shape[1]
    return (
        torch.nn.functional.cross_entropy(start, kwargs["start_positions"].clamp(0, n), ignore_index=n)
        + torch.nn.functional.cross_entropy(end, kwargs["end_positions"].clamp(0, n), ignore_index=n)
    ) / 2


def test_parity_qa_loss_unpadded(tiny_checkpoint):
    ref, ours = load_pair(tiny_checkpoint, "ModernBertForQuestionAnswering")
    ids, _ = padded_batch([30, 30])
    kwargs = dict(input_ids=ids, start_positions=torch.tensor([2, 40]), end_positions=torch.tensor([5, 9]))
    with torch.no_grad():
        assert abs(ref(**kwargs).loss.item() - ours(**kwargs).loss.item()) < TOL


@pytest.mark.parametrize(
    "overrides",
    [
        dict(classifier_pooling="mean"),
        dict(num_labels=1),  # regression
        dict(num_labels=3, problem_type="multi_label_classification"),
        dict(hidden_activation="gelu_pytorch_tanh", classifier_activation="silu", norm_bias=True,
             attention_bias=True, mlp_bias=True, classifier_bias=True),
    ],
    ids=["mean-pooling", "regression", "multi-label", "biases-and-activations"],
)
def test_parity_sequence_classification_variants(tiny_checkpoint, overrides):
    ref, ours = load_pair(tiny_checkpoint, "ModernBertForSequenceClassification", **overrides)
    ids, mask = padded_batch(LENGTHS)
    n = ours.config.num_labels
    if overrides.get("num_labels") == 1:
        labels = torch.randn(len(LENGTHS))
    elif "problem_type" in overrides:
        labels = torch.randint(0, 2, (len(LENGTHS), n)).float()
    else:
        labels = torch.randint(0, n, (len(LENGTHS),))
    with torch.no_grad():
        r = ref(input_ids=ids, attention_mask=mask, labels=labels)
        o = ours(input_ids=ids, attention_mask=mask, labels=labels)
    assert max(compare(r, o, mask).values()) < TOL


def test_parity_mean_pooling_multiple_choice(tiny_checkpoint):
    ref, ours = load_pair(tiny_checkpoint, "ModernBertForMultipleChoice", classifier_pooling="mean")
    kwargs = inputs_for("ModernBertForMultipleChoice")
    with torch.no_grad():
        diffs = compare(ref(**kwargs), ours(**kwargs), None)
    assert max(diffs.values()) < TOL


def test_multiple_choice_packed_equals_reference(tiny_checkpoint):
    ref, ours = load_pair(tiny_checkpoint, "ModernBertForMultipleChoice")
    kwargs = inputs_for("ModernBertForMultipleChoice")
    ids, mask = kwargs["input_ids"].flatten(0, 1), kwargs["attention_mask"].flatten(0, 1).bool()
    lens = mask.sum(1)
    cu = torch.nn.functional.pad(lens.cumsum(0), (1, 0)).int()
    with torch.no_grad():
        r = ref(**kwargs)
        o = ours(input_ids=ids[mask], cu_seqlens=cu, num_choices=3, labels=kwargs["labels"])
    assert o.logits.shape == (2, 3)
    assert max(compare(r, o, None).values()) < TOL
    with pytest.raises(ValueError, match="num_choices"):
        ours(input_ids=ids[mask], cu_seqlens=cu)
    with pytest.raises(ValueError, match="not a multiple of num_choices=4"):
        ours(input_ids=ids[mask], cu_seqlens=cu, num_choices=4)


@pytest.mark.parametrize("impl", BACKENDS)
def test_parity_sparse_prediction(tiny_checkpoint, impl):
    ref, ours = load_pair(tiny_checkpoint, "ModernBertForMaskedLM", impl=impl, sparse_prediction=True)
    kwargs = inputs_for("ModernBertForMaskedLM")
    with torch.no_grad():
        r, o = ref(**kwargs), ours(**kwargs)
    n_labelled = int((kwargs["labels"] != -100).sum())
    assert o.logits.shape == r.logits.shape == (n_labelled, 512)
    assert max(compare(r, o, None).values()) < TOL


@pytest.mark.parametrize("impl", BACKENDS)
def test_parity_long_sequence_small_window(tiny_checkpoint, impl):
    """One 2048-token sequence with window 8: almost every pair of tokens is outside the local window."""
    ref, ours = load_pair(tiny_checkpoint, "ModernBertModel", impl=impl)
    ids, mask = padded_batch([2048, 300], seed=3)
    with torch.no_grad():
        r = ref(input_ids=ids, attention_mask=mask)
        o = ours(input_ids=ids, attention_mask=mask)
    assert max_diff_real(r.last_hidden_state, o.last_hidden_state, mask) < TOL


def test_parity_windows_and_patterns(tiny_checkpoint):
    """Other windows and global patterns (5.x layer_types) and rope thetas."""
    for overrides in (
        dict(local_attention=16, global_attn_every_n_layers=2),
        dict(layer_types=["sliding_attention", "full_attention", "sliding_attention", "sliding_attention"],
             rope_parameters={"full_attention": {"rope_type": "default", "rope_theta": 5000.0},
                              "sliding_attention": {"rope_type": "default", "rope_theta": 300.0}}),
    ):
        ref, ours = load_pair(tiny_checkpoint, "ModernBertModel", **overrides)
        ids, mask = padded_batch([70, 5, 33], seed=4)
        with torch.no_grad():
            diff = max_diff_real(ref(ids, mask).last_hidden_state, ours(ids, mask).last_hidden_state, mask)
        assert diff < TOL, overrides


def test_parity_inputs_embeds_and_position_ids(tiny_checkpoint):
    ref, ours = load_pair(tiny_checkpoint, "ModernBertModel")
    ids, mask = padded_batch([12, 12], seed=5)
    embeds = torch.randn(2, 12, 32)
    positions = torch.arange(3, 15).unsqueeze(0)
    with torch.no_grad():
        r = ref(inputs_embeds=embeds, attention_mask=mask, position_ids=positions)
        o = ours(inputs_embeds=embeds, attention_mask=mask, position_ids=positions)
    assert max_diff_real(r.last_hidden_state, o.last_hidden_state, mask) < TOL


def test_parity_no_attention_mask(tiny_checkpoint):
    ref, ours = load_pair(tiny_checkpoint, "ModernBertForMaskedLM")
    ids, _ = padded_batch([30, 30])
    with torch.no_grad():
        assert max_diff_real(ref(input_ids=ids).logits, ours(input_ids=ids).logits, None) < TOL


def test_gradients_match_reference(tiny_checkpoint):
    """Training parity: the same loss gives the same gradients (banded backward included)."""
    ref, ours = load_pair(tiny_checkpoint, "ModernBertForMaskedLM")
    kwargs = inputs_for("ModernBertForMaskedLM")
    ref.train(), ours.train()
    ref(**kwargs).loss.backward()
    ours(**kwargs).loss.backward()
    ref_grads = dict(ref.named_parameters())
    for name, p in ours.named_parameters():
        g = ref_grads[name].grad
        assert p.grad is not None and (p.grad - g).abs().max() < 1e-5, name


def test_bf16_within_reference_error(tiny_checkpoint):
    """bf16 keeps 8 mantissa bits (relative step 2^-8 ≈ 0.4%), so bf16 outputs cannot match fp32 to 1e-4.

    The justified tolerance: our bf16 error against the reference in fp32 is no more than 1.5× the
    reference's own bf16 error (plus 1e-2 absolute), measured on the same inputs.
    """
    folder = tiny_checkpoint("ModernBertForMaskedLM")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref32 = transformers.ModernBertForMaskedLM.from_pretrained(folder).eval()
        ref16 = transformers.ModernBertForMaskedLM.from_pretrained(folder, dtype=torch.bfloat16).eval()
    ours16 = M.ModernBertForMaskedLM.from_pretrained(folder, dtype=torch.bfloat16)
    assert ours16.dtype == torch.bfloat16
    ids, mask = padded_batch(LENGTHS, seed=6)
    with torch.no_grad():
        truth = ref32(ids, mask).logits
        ref_err = max_diff_real(truth, ref16(ids, mask).logits, mask)
        our_err = max_diff_real(truth, ours16(ids, mask).logits, mask)
    assert our_err <= 1.5 * ref_err + 1e-2, (our_err, ref_err)


# ----- invariants -----


@pytest.mark.parametrize("impl", BACKENDS)
def test_outputs_independent_of_batch_and_padding(tiny_checkpoint, impl):
    _, ours = load_pair(tiny_checkpoint, "ModernBertForMaskedLM", impl=impl)
    ids, mask = padded_batch([40, 9, 25], seed=7)
    with torch.no_grad():
        together = ours(ids, mask).logits
        for i, n in enumerate([40, 9, 25]):
            alone = ours(ids[i : i + 1, :n]).logits[0]
            extra_pad = torch.cat([ids[i : i + 1, :n], torch.full((1, 17), 3)], 1)
            extra_mask = torch.cat([torch.ones(1, n, dtype=torch.long), torch.zeros(1, 17, dtype=torch.long)], 1)
            padded = ours(extra_pad, extra_mask).logits[0, :n]
            assert (together[i, :n] - alone).abs().max() < 1e-5
            assert (padded - alone).abs().max() < 1e-5
        assert together[1, 9:].abs().max() == 0  # padding stays zero


def test_packed_path_equals_padded_path(tiny_checkpoint):
    _, ours = load_pair(tiny_checkpoint, "ModernBertForMaskedLM")
    lengths = [40, 9, 25]
    ids, mask = padded_batch(lengths, seed=8)
    packed_ids = ids[mask.bool()]
    cu = torch.tensor([0, 40, 49, 74], dtype=torch.int32)
    with torch.no_grad():
        padded = ours(ids, mask).logits[mask.bool()]
        packed = ours(input_ids=packed_ids, cu_seqlens=cu, max_seqlen=40).logits
    assert packed.shape == (74, 512)
    assert (packed - padded).abs().max() < 1e-5


def test_loss_ignores_minus_100(tiny_checkpoint):
    _, ours = load_pair(tiny_checkpoint, "ModernBertForMaskedLM")
    ids, mask = padded_batch([20, 20], seed=9)
    labels = torch.full_like(ids, -100)
    labels[0, 3], labels[1, 7] = 11, 12
    with torch.no_grad():
        out = ours(ids, mask, labels=labels)
        expected = torch.nn.functional.cross_entropy(out.logits[[0, 1], [3, 7]], torch.tensor([11, 12]))
        other = labels.clone()
        other[0, 5] = -100  # already ignored: no change
        assert out.loss.item() == pytest.approx(expected.item(), abs=1e-6)
        assert ours(ids, mask, labels=other).loss.item() == pytest.approx(out.loss.item(), abs=1e-7)


def test_projection_hooks_run_in_inference(tiny_checkpoint):
    """Inference writes Wqkv's product straight into the attention buffer, but not past a hook on Wqkv (or a
    process-wide module hook): their effect shows, as on the training path, which always calls the module."""
    ours = M.ModernBertModel.from_pretrained(tiny_checkpoint("ModernBertModel"))
    ids, mask = padded_batch([40, 23])  # longer than the window: the banded kernel takes a buffer
    local = next(layer.attn for layer in ours.layers if layer.attn.window)
    with torch.no_grad():
        plain = ours(ids, mask).last_hidden_state
    handles = [local.Wqkv.register_forward_hook(lambda module, args, out: out * 0.5)]
    seen = []
    handles.append(torch.nn.modules.module.register_module_forward_hook(lambda m, a, o: seen.append(m)))
    with torch.no_grad():
        hooked = ours(ids, mask).last_hidden_state
    assert local.Wqkv in seen
    handles.pop().remove()
    with torch.no_grad():
        hooked_local = ours(ids, mask).last_hidden_state
    training_path = ours(ids, mask).last_hidden_state.detach()  # grad enabled: the module is always called
    for h in handles:
        h.remove()
    assert torch.equal(hooked, hooked_local)
    assert (hooked - plain).abs().max() > 1e-3
    assert (hooked - training_path).abs().max() < 1e-5


def test_autocast_inference_projects_as_before(tiny_checkpoint, monkeypatch):
    """Under autocast the qkv projection runs in autocast's dtype: no fp32 buffer is taken for it."""
    ours = M.ModernBertModel.from_pretrained(tiny_checkpoint("ModernBertModel"))
    ids, mask = padded_batch([40, 23])
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        out = ours(ids, mask).last_hidden_state
        monkeypatch.setattr(SdpaKernel, "qkv_buffer", lambda *args: None)
        expected = ours(ids, mask).last_hidden_state
    assert torch.equal(out, expected)


def test_local_layers_never_build_full_score_matrix(tiny_checkpoint):
    """At 8192 tokens, no op of an all-local model may produce a tensor as large as one (8192 x 8192) matrix."""
    from torch.utils._python_dispatch import TorchDispatchMode

    layer_types = ["sliding_attention"] * 4
    folder = tiny_checkpoint("ModernBertModel", layer_types=layer_types, max_position_embeddings=8192)
    ours = M.ModernBertModel.from_pretrained(folder)
    assert all(layer.attn.window == 4 for layer in ours.layers)
    length = 8192
    largest = []

    class Probe(TorchDispatchMode):
        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            out = func(*args, **(kwargs or {}))
            for t in out if isinstance(out, (tuple, list)) else (out,):
                if isinstance(t, torch.Tensor):
                    largest.append((t.numel(), str(func)))
            return out

    ids = torch.randint(0, 400, (1, length))
    with torch.no_grad(), Probe():
        ours(ids)
    biggest, op = max(largest)
    assert biggest < length * length // 16, (biggest, op)  # O(length × window), far from length²


# ----- round trips and loading -----


def test_our_save_loads_in_transformers(tiny_checkpoint, tmp_path):
    for arch in ("ModernBertForMaskedLM", "ModernBertForTokenClassification"):
        _, ours = load_pair(tiny_checkpoint, arch)
        ours.save_pretrained(tmp_path / arch)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ref = getattr(transformers, arch).from_pretrained(tmp_path / arch).eval()
        ids, mask = padded_batch(LENGTHS)
        with torch.no_grad():
            assert max_diff_real(ref(ids, mask).logits, ours(ids, mask).logits, mask) < TOL
        again = getattr(M, arch).from_pretrained(tmp_path / arch)
        assert again.config.to_dict() == ours.config.to_dict() | {"architectures": [arch]}


def test_sharded_safetensors_and_bin(tiny_checkpoint, tmp_path):
    from safetensors.torch import load_file

    folder = tiny_checkpoint("ModernBertForMaskedLM")
    ref, _ = load_pair(tiny_checkpoint, "ModernBertForMaskedLM")
    sharded = tmp_path / "sharded"
    ref.save_pretrained(sharded, max_shard_size="20KB")
    assert (sharded / "model.safetensors.index.json").is_file()
    assert len(list(sharded.glob("model-*.safetensors"))) > 1
    binary = tmp_path / "bin"
    binary.mkdir()
    (binary / "config.json").write_bytes((folder / "config.json").read_bytes())
    torch.save(load_file(folder / "model.safetensors"), binary / "pytorch_model.bin")
    ids, mask = padded_batch(LENGTHS)
    with torch.no_grad():
        expected = ref(ids, mask).logits
        for source in (sharded, binary):
            ours = M.ModernBertForMaskedLM.from_pretrained(source)
            assert max_diff_real(expected, ours(ids, mask).logits, mask) < TOL


def test_decoder_is_tied(tiny_checkpoint):
    _, ours = load_pair(tiny_checkpoint, "ModernBertForMaskedLM")
    assert ours.decoder.weight is ours.model.embeddings.tok_embeddings.weight


def test_base_checkpoint_into_heads_and_back(tiny_checkpoint):
    """Task heads missing from a checkpoint are initialised and named in one warning; others are strict."""
    mlm = tiny_checkpoint("ModernBertForMaskedLM")
    with pytest.warns(M_warning()) as record:
        cls = M.ModernBertForSequenceClassification.from_pretrained(mlm, num_labels=3)
    assert len(record) == 1
    message = str(record[0].message)
    assert "classifier.weight" in message and "decoder.bias" in message
    assert cls.classifier.weight.std() > 0 and cls.classifier.weight.shape == (3, 32)
    base = M.ModernBertModel.from_pretrained(mlm)  # MLM checkpoint into the bare encoder: heads dropped
    ref = build_reference("ModernBertForMaskedLM")
    assert torch.equal(base.layers[1].attn.Wqkv.weight, ref.model.layers[1].attn.Wqkv.weight)


def M_warning():
    from modernbert.checkpoint import LoadWarning

    return LoadWarning


def test_dtype_auto_reads_config(tiny_checkpoint, tmp_path):
    _, ours = load_pair(tiny_checkpoint, "ModernBertModel")
    ours.to(torch.bfloat16).save_pretrained(tmp_path)
    assert M.ModernBertModel.from_pretrained(tmp_path).dtype == torch.bfloat16  # dtype="auto" is the default
    assert M.ModernBertModel.from_pretrained(tmp_path, dtype=torch.float32).dtype == torch.float32
    assert M.ModernBertModel.from_pretrained(tmp_path, dtype="float16").dtype == torch.float16


@pytest.mark.skipif(not torch.cuda.is_available(), reason="flash-attn varlen needs CUDA")
def test_flash_attention_matches_eager_on_cuda(tiny_checkpoint):
    pytest.importorskip("flash_attn")
    folder = tiny_checkpoint("ModernBertModel", hidden_size=64, num_attention_heads=2)
    ids, mask = padded_batch([40, 9, 300], seed=10)
    ids, mask = ids.cuda(), mask.cuda()
    outs = {}
    for impl in ("flash_attention_2", "sdpa", "eager"):
        model = M.ModernBertModel.from_pretrained(folder, attn_implementation=impl, device="cuda",
                                                  dtype=torch.bfloat16)
        with torch.no_grad():
            outs[impl] = model(ids, mask).last_hidden_state
    for impl in ("flash_attention_2", "sdpa"):
        assert max_diff_real(outs[impl], outs["eager"], mask) < 3e-2
